// The SDK's event-sourced entities: discovery, Emit, events and state in the response, Fold.
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "example/escart/escart.pb.h"
#include "example/shoppingcart/shoppingcart.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "cart_helpers.h"
#include "massa/sdk/function.h"
#include "test_function.h"

namespace massa::sdk {
namespace {

namespace v1 = massa::protocol::v1;
namespace escart = example::escart;
using google::protobuf::Any;
using google::protobuf::Empty;
using google::protobuf::StringValue;
using testing::EventSourcedCommand;
using testing::FoldRequest;
using testing::Pack;
using testing::Proxy;
using testing::ServedFunction;
using testing::Unpack;

constexpr char kEsCart[] = "example.escart.ShoppingCart";
constexpr char kValueCart[] = "example.shoppingcart.ShoppingCart";

escart::ItemAdded Added(const std::string& product, int quantity) {
  escart::ItemAdded added;
  added.mutable_item()->set_product_id(product);
  added.mutable_item()->set_quantity(quantity);
  return added;
}

// A function over the example's event-sourced service whose handlers exercise the SDK rather
// than carts, chosen by product_id.
void RegisterTestHandlers(Function& function) {
  function
      .AddEventSourcedEntity<escart::Cart>(
          kEsCart, EventSourcedOptions{.entity_type = "es-carts",
                                       .passivation_timeout = std::chrono::seconds(45),
                                       .snapshot_every = 25,
                                       .delete_events_on_snapshot = true})
      .Handle("AddItem",
              [](EventContext<escart::Cart>& ctx, const escart::AddLineItem& cmd) -> Result<Empty> {
                if (cmd.product_id() == "unhandled") ctx.Emit(cmd);  // no handler for its type
                if (cmd.product_id() == "throw") throw std::runtime_error("boom");
                if (cmd.product_id() == "note") {
                  StringValue note;  // an event type from another .proto file
                  note.set_value(cmd.name());
                  ctx.Emit(note);
                  return Empty();
                }
                // One ItemAdded of quantity 1 per unit, to have several events in order.
                for (int i = 0; i < cmd.quantity(); ++i) ctx.Emit(Added(cmd.product_id(), 1));
                if (cmd.product_id() == "fail") return Fail("failed after emitting");
                ctx.SideEffect(kEsCart, "GetCart", escart::GetShoppingCart());
                return Empty();
              })
      .Handle("GetCart",
              [](EventContext<escart::Cart>& ctx,
                 const escart::GetShoppingCart&) -> Result<escart::Cart> {
                // Echoes what the context tells the handler.
                escart::Cart reply;
                escart::LineItem* item = reply.add_items();
                item->set_product_id(ctx.entity_key());
                item->set_name(ctx.has_state() ? "has state" : "new");
                item->set_quantity(static_cast<int>(ctx.sequence()));
                reply.set_checked_out(ctx.state().checked_out());
                return reply;
              })
      .Handle(
          "Checkout",
          [](EventContext<escart::Cart>& ctx, const escart::CheckoutCart&) -> Result<escart::Cart> {
            // Each Emit is visible to the code after it.
            const int before = ctx.state().items_size();
            ctx.Emit(Added("bonus", 1));
            if (ctx.state().items_size() != before + 1) return Fail("ItemAdded not applied");
            ctx.Emit(escart::CheckedOut());
            if (!ctx.state().checked_out()) return Fail("CheckedOut not applied");
            escart::Cart reply = ctx.state();
            escart::LineItem* sequence = reply.add_items();
            sequence->set_product_id("sequence");
            sequence->set_quantity(static_cast<int>(ctx.sequence()));
            return reply;
          })
      .OnEvent<escart::ItemAdded>([](escart::Cart& cart, const escart::ItemAdded& event) {
        for (escart::LineItem& line : *cart.mutable_items()) {
          if (line.product_id() == event.item().product_id()) {
            line.set_quantity(line.quantity() + event.item().quantity());
            return;
          }
        }
        *cart.add_items() = event.item();
      })
      .OnEvent([](escart::Cart& cart, const escart::CheckedOut&) { cart.set_checked_out(true); })
      .OnEvent([](escart::Cart& cart, const StringValue& note) {
        if (note.value() == "throw") throw std::runtime_error("bad note");
        cart.add_items()->set_name(note.value());
      });
  // A value entity too, to check that kinds are kept apart.
  function.AddValueEntity<example::shoppingcart::Cart>(kValueCart);
}

class EventSourcedEntityTest : public ::testing::Test {
 protected:
  v1::EventSourcedResponse Handle(const v1::EventSourcedCommand& command) {
    return served_.HandleOk(command);
  }

  grpc::Status HandleStatus(const v1::EventSourcedCommand& command) {
    v1::EventSourcedResponse response;
    return served_.Handle(command, &response);
  }

  // Folds, expecting an OK RPC; returns the state.
  escart::Cart Fold(const v1::FoldRequest& request) {
    v1::FoldResponse response = served_.FoldOk(request);
    EXPECT_EQ(response.state().type_url(), "type.googleapis.com/example.escart.Cart");
    return Unpack<escart::Cart>(response.state());
  }

  grpc::Status FoldStatus(const v1::FoldRequest& request) {
    v1::FoldResponse response;
    return served_.Fold(request, &response);
  }

  Function function_{"es-test"};
  bool registered_ = (RegisterTestHandlers(function_), true);  // before serving
  ServedFunction served_{function_};
};

escart::AddLineItem Add(const std::string& product, int quantity, const std::string& name = "") {
  return testing::AddItem<escart::AddLineItem>(product, quantity, name);
}

std::vector<Any> Events(const v1::EventSourcedResponse& response) {
  return {response.events().begin(), response.events().end()};
}

void ExpectNothingPersisted(const v1::EventSourcedResponse& response) {
  EXPECT_EQ(response.events_size(), 0);
  EXPECT_FALSE(response.has_state());
  EXPECT_FALSE(response.has_effects());
}

// --- Discovery -------------------------------------------------------------------------

TEST_F(EventSourcedEntityTest, DiscoverReportsTheServiceAndItsJournalSettings) {
  v1::Spec spec;
  ASSERT_TRUE(served_.Discover(Proxy(), &spec).ok());
  ASSERT_EQ(spec.services_size(), 2);
  const v1::ServiceSpec& service = spec.services(0);
  EXPECT_EQ(service.service_name(), kEsCart);
  EXPECT_EQ(service.kind(), v1::ENTITY_KIND_EVENT_SOURCED);
  EXPECT_EQ(service.state_type(), "example.escart.Cart");
  EXPECT_EQ(service.entity_type(), "es-carts");
  EXPECT_EQ(service.passivation_timeout_ms(), 45000u);
  EXPECT_EQ(service.snapshot_every(), 25u);
  EXPECT_TRUE(service.delete_events_on_snapshot());
  // Other kinds leave the journal settings unset.
  const v1::ServiceSpec& value = spec.services(1);
  EXPECT_EQ(value.kind(), v1::ENTITY_KIND_VALUE_ENTITY);
  EXPECT_EQ(value.snapshot_every(), 0u);
  EXPECT_FALSE(value.delete_events_on_snapshot());
}

TEST_F(EventSourcedEntityTest, DiscoverSendsTheFilesOfStateAndEventTypes) {
  v1::Spec spec;
  ASSERT_TRUE(served_.Discover(Proxy(), &spec).ok());
  google::protobuf::FileDescriptorSet files;
  ASSERT_TRUE(files.ParseFromString(spec.descriptor_set()));
  google::protobuf::DescriptorPool pool;
  std::set<std::string> names;
  for (const auto& file : files.file()) {
    names.insert(file.name());
    ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
  }
  EXPECT_TRUE(names.count("example/escart/escart.proto"));
  // StringValue is an event type only: escart.proto does not import its file.
  EXPECT_TRUE(names.count("google/protobuf/wrappers.proto"));
  for (const char* type : {"example.escart.Cart", "example.escart.ItemAdded",
                           "example.escart.CheckedOut", "google.protobuf.StringValue"}) {
    EXPECT_NE(pool.FindMessageTypeByName(type), nullptr) << type;
  }
}

TEST_F(EventSourcedEntityTest, DiscoverRefusesAProxyWithoutEventSourcing) {
  v1::ProxyInfo info = Proxy();
  info.clear_supported_kinds();
  info.add_supported_kinds(v1::ENTITY_KIND_VALUE_ENTITY);
  v1::Spec spec;
  grpc::Status status = served_.Discover(info, &spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("event-sourced"), std::string::npos)
      << status.error_message();
}

// --- Handle ----------------------------------------------------------------------------

TEST_F(EventSourcedEntityTest, HandleWithoutStateReturnsEventsAndState) {
  v1::EventSourcedResponse response =
      Handle(EventSourcedCommand(kEsCart, "AddItem", "c1", Add("p1", 3)));
  ASSERT_TRUE(response.client_action().has_reply()) << response.DebugString();
  ASSERT_EQ(response.events_size(), 3);
  for (const Any& event : response.events()) {
    EXPECT_EQ(event.type_url(), "type.googleapis.com/example.escart.ItemAdded");
    EXPECT_EQ(Unpack<escart::ItemAdded>(event).item().product_id(), "p1");
  }
  ASSERT_TRUE(response.has_state());
  EXPECT_EQ(response.state().type_url(), "type.googleapis.com/example.escart.Cart");
  escart::Cart state = Unpack<escart::Cart>(response.state());
  ASSERT_EQ(state.items_size(), 1);
  EXPECT_EQ(state.items(0).quantity(), 3);
  EXPECT_EQ(response.effects().side_effects_size(), 1);
}

TEST_F(EventSourcedEntityTest, HandleStartsFromTheGivenState) {
  escart::Cart state;
  state.add_items()->set_product_id("old");
  v1::EventSourcedResponse response =
      Handle(EventSourcedCommand(kEsCart, "AddItem", "c1", Add("new", 1), &state, 7));
  escart::Cart updated = Unpack<escart::Cart>(response.state());
  ASSERT_EQ(updated.items_size(), 2);
  EXPECT_EQ(updated.items(0).product_id(), "old");
  EXPECT_EQ(updated.items(1).product_id(), "new");
}

TEST_F(EventSourcedEntityTest, EmitIsSeenByLaterCodeInTheHandler) {
  escart::Cart state;
  state.add_items()->set_product_id("p1");
  v1::EventSourcedResponse response =
      Handle(EventSourcedCommand(kEsCart, "Checkout", "c1", escart::CheckoutCart(), &state, 4));
  ASSERT_TRUE(response.client_action().has_reply()) << response.DebugString();
  escart::Cart reply = Unpack<escart::Cart>(response.client_action().reply().payload());
  ASSERT_EQ(reply.items_size(), 3);
  EXPECT_EQ(reply.items(1).product_id(), "bonus");
  EXPECT_TRUE(reply.checked_out());
  EXPECT_EQ(reply.items(2).product_id(), "sequence");
  EXPECT_EQ(reply.items(2).quantity(), 6);  // 4 before the command, 2 emitted

  ASSERT_EQ(response.events_size(), 2);
  EXPECT_EQ(response.events(0).type_url(), "type.googleapis.com/example.escart.ItemAdded");
  EXPECT_EQ(response.events(1).type_url(), "type.googleapis.com/example.escart.CheckedOut");
  escart::Cart final_state = Unpack<escart::Cart>(response.state());
  EXPECT_EQ(final_state.items_size(), 2);  // p1 and bonus
  EXPECT_TRUE(final_state.checked_out());
}

TEST_F(EventSourcedEntityTest, NoEventsMeansNoState) {
  escart::Cart state;
  state.set_checked_out(true);
  v1::EventSourcedResponse response = Handle(
      EventSourcedCommand(kEsCart, "GetCart", "key-9", escart::GetShoppingCart(), &state, 12));
  ASSERT_TRUE(response.client_action().has_reply());
  escart::Cart reply = Unpack<escart::Cart>(response.client_action().reply().payload());
  EXPECT_EQ(reply.items(0).product_id(), "key-9");
  EXPECT_EQ(reply.items(0).name(), "has state");
  EXPECT_EQ(reply.items(0).quantity(), 12);
  EXPECT_TRUE(reply.checked_out());
  ExpectNothingPersisted(response);
}

TEST_F(EventSourcedEntityTest, HasStateTellsANewEntityFromOneWithEvents) {
  auto seen = [&](const escart::Cart* state, uint64_t sequence) {
    v1::EventSourcedResponse response = Handle(
        EventSourcedCommand(kEsCart, "GetCart", "k", escart::GetShoppingCart(), state, sequence));
    return Unpack<escart::Cart>(response.client_action().reply().payload()).items(0).name();
  };
  escart::Cart state;
  EXPECT_EQ(seen(nullptr, 0), "new");
  EXPECT_EQ(seen(nullptr, 3), "has state");  // events folded to an empty state
  EXPECT_EQ(seen(&state, 0), "has state");
}

TEST_F(EventSourcedEntityTest, FailurePersistsNoEvents) {
  v1::EventSourcedResponse response =
      Handle(EventSourcedCommand(kEsCart, "AddItem", "c1", Add("fail", 2)));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(response.client_action().failure().message(), "failed after emitting");
  ExpectNothingPersisted(response);
}

TEST_F(EventSourcedEntityTest, EmittingAnEventWithoutHandlerFailsWithInternal) {
  v1::EventSourcedResponse response =
      Handle(EventSourcedCommand(kEsCart, "AddItem", "c1", Add("unhandled", 1)));
  ASSERT_TRUE(response.client_action().has_failure()) << response.DebugString();
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(response.client_action().failure().message().find("example.escart.AddLineItem"),
            std::string::npos)
      << response.client_action().failure().message();
  ExpectNothingPersisted(response);
}

TEST_F(EventSourcedEntityTest, HandlerExceptionFailsWithInternal) {
  v1::EventSourcedResponse response =
      Handle(EventSourcedCommand(kEsCart, "AddItem", "c1", Add("throw", 1)));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(response.client_action().failure().message(), "boom");
  ExpectNothingPersisted(response);
}

TEST_F(EventSourcedEntityTest, KindsAndStatesAreChecked) {
  // A value entity is not event-sourced, and the other way round.
  EXPECT_EQ(HandleStatus(EventSourcedCommand(kValueCart, "GetCart", "c1",
                                             example::shoppingcart::GetShoppingCart()))
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  v1::ValueEntityResponse value_response;
  EXPECT_EQ(served_
                .Handle(testing::EntityCommand(kEsCart, "GetCart", "c1", escart::GetShoppingCart()),
                        &value_response)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // A state of another type.
  escart::LineItem not_a_cart;
  EXPECT_EQ(HandleStatus(EventSourcedCommand(kEsCart, "GetCart", "c1", escart::GetShoppingCart(),
                                             &not_a_cart, 1))
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// --- Fold ------------------------------------------------------------------------------

TEST_F(EventSourcedEntityTest, FoldOfTheEventsEqualsTheStateFromTheHandlers) {
  // A session of commands, each starting from the state the previous one returned.
  std::vector<Any> journal;
  escart::Cart state;
  uint64_t sequence = 0;
  std::vector<escart::Cart> states;  // after each command
  for (const v1::EventSourcedCommand& command :
       {EventSourcedCommand(kEsCart, "AddItem", "c1", Add("p1", 2)),
        EventSourcedCommand(kEsCart, "AddItem", "c1", Add("p2", 1)),
        EventSourcedCommand(kEsCart, "AddItem", "c1", Add("note", 0, "gift")),
        EventSourcedCommand(kEsCart, "AddItem", "c1", Add("p1", 1)),
        EventSourcedCommand(kEsCart, "Checkout", "c1", escart::CheckoutCart())}) {
    v1::EventSourcedCommand next = command;
    if (sequence > 0) *next.mutable_state() = Pack(state);
    next.set_sequence(sequence);
    v1::EventSourcedResponse response = Handle(next);
    ASSERT_TRUE(response.has_state()) << response.DebugString();
    for (const Any& event : Events(response)) journal.push_back(event);
    sequence += response.events_size();
    state = Unpack<escart::Cart>(response.state());
    states.push_back(state);
  }
  ASSERT_EQ(journal.size(), 7u);     // 2 + 1 + 1 + 1 + 2
  ASSERT_EQ(state.items_size(), 4);  // p1, p2, the note, bonus
  EXPECT_EQ(state.items(0).quantity(), 3);
  EXPECT_EQ(state.items(2).name(), "gift");
  EXPECT_TRUE(state.checked_out());

  EXPECT_EQ(Fold(FoldRequest(kEsCart, "c1", journal)).DebugString(), state.DebugString());
  // From a snapshot taken after the second command (3 events) plus the events after it.
  std::vector<Any> rest(journal.begin() + 3, journal.end());
  EXPECT_EQ(Fold(FoldRequest(kEsCart, "c1", rest, &states[1], 4)).DebugString(),
            state.DebugString());
}

TEST_F(EventSourcedEntityTest, FoldWithoutEventsReturnsTheState) {
  EXPECT_EQ(Fold(FoldRequest(kEsCart, "c1", {})).ByteSizeLong(), 0u);  // the initial state
  escart::Cart state;
  state.add_items()->set_product_id("p1");
  EXPECT_EQ(Fold(FoldRequest(kEsCart, "c1", {}, &state)).DebugString(), state.DebugString());
}

TEST_F(EventSourcedEntityTest, FoldOfAnEventTypeWithoutHandlerIsInternal) {
  std::vector<Any> journal = {Pack(Added("p1", 1)), Pack(Add("p2", 1))};
  grpc::Status status = FoldStatus(FoldRequest(kEsCart, "c7", journal));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  const std::string& message = status.error_message();
  EXPECT_NE(message.find("example.escart.AddLineItem"), std::string::npos) << message;
  EXPECT_NE(message.find("event 2 "), std::string::npos) << message;
  EXPECT_NE(message.find("'c7'"), std::string::npos) << message;
}

TEST_F(EventSourcedEntityTest, FoldOfAnEventThatDoesNotDecodeOrApplyIsInternal) {
  Any garbage = Pack(Added("p1", 1));
  garbage.set_value("\xff\xff\xff");
  grpc::Status status = FoldStatus(FoldRequest(kEsCart, "c1", {garbage}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(status.error_message().find("does not decode as example.escart.ItemAdded"),
            std::string::npos)
      << status.error_message();

  StringValue bad_note;
  bad_note.set_value("throw");
  status = FoldStatus(FoldRequest(kEsCart, "c1", {Pack(bad_note)}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(status.error_message().find("bad note"), std::string::npos) << status.error_message();
}

TEST_F(EventSourcedEntityTest, FoldOfAnotherServiceOrABadStateFails) {
  EXPECT_EQ(FoldStatus(FoldRequest("no.Such", "c1", {})).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(FoldStatus(FoldRequest(kValueCart, "c1", {})).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  escart::LineItem not_a_cart;
  EXPECT_EQ(FoldStatus(FoldRequest(kEsCart, "c1", {}, &not_a_cart)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace massa::sdk
