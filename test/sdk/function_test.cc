// The SDK's protocol handling: discovery, dispatch, errors, state and effects, and serving.
#include "massa/sdk/function.h"
#include "massa/sdk/version.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>

#include "example/shoppingcart/shoppingcart.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "massa/protocol/v1/options.pb.h"
#include "test_function.h"

namespace massa::sdk {
namespace {

namespace v1 = massa::protocol::v1;
namespace cart = example::shoppingcart;
using google::protobuf::Empty;
using testing::ActionCommand;
using testing::EntityCommand;
using testing::Proxy;
using testing::ServedFunction;
using testing::TempDir;
using testing::Unpack;

constexpr char kCart[] = "example.shoppingcart.ShoppingCart";
constexpr char kFront[] = "example.shoppingcart.CartFront";

// A function over the example's services whose handlers exercise the SDK rather than carts.
void RegisterTestHandlers(Function& function) {
  function
      .AddValueEntity<cart::Cart>(
          kCart,
          EntityOptions{.entity_type = "carts", .passivation_timeout = std::chrono::seconds(30)})
      .Handle<cart::AddLineItem, Empty>(
          "AddItem",
          [](ValueContext<cart::Cart>& ctx, const cart::AddLineItem& cmd) -> Result<Empty> {
            if (cmd.product_id() == "throw") throw std::runtime_error("boom " + cmd.name());
            if (cmd.product_id() == "throw-int") throw 42;
            if (cmd.product_id() == "fail") return Fail("plain failure");
            ctx.mutable_state().add_items()->set_product_id(cmd.product_id());
            ctx.SideEffect(kCart, "GetCart", cart::GetShoppingCart());
            return Empty();
          })
      .Handle<cart::RemoveLineItem, Empty>(
          "RemoveItem",
          [](ValueContext<cart::Cart>& ctx, const cart::RemoveLineItem& cmd) -> Result<Empty> {
            // Timers and TTL, chosen by product_id.
            cart::GetShoppingCart get;
            get.set_cart_id(cmd.cart_id());
            if (cmd.product_id() == "timers" || cmd.product_id() == "timers-then-fail") {
              ctx.ScheduleTimer("once", "GetCart", get, Schedule::After(std::chrono::minutes(15)));
              ctx.ScheduleTimer("at", "GetCart", get,
                                Schedule::At(std::chrono::system_clock::time_point(
                                    std::chrono::milliseconds(1'900'000'000'000))));
              ctx.ScheduleTimer("hourly", kFront, "AddItems", cart::AddLineItems(),
                                Schedule::Every(std::chrono::hours(1), std::chrono::minutes(5))
                                    .SkipMissed());
              ctx.ScheduleTimer("daily", "GetCart", get, Schedule::Cron("0 0 0 * * *"));
              ctx.CancelTimer("old");
              if (cmd.product_id() == "timers-then-fail") return Fail("changed my mind");
              return Empty();
            }
            if (cmd.product_id() == "timer-wrong-payload") {
              ctx.ScheduleTimer("t", "AddItem", get, Schedule::After(std::chrono::seconds(1)));
              return Empty();
            }
            if (cmd.product_id() == "ttl") {
              ctx.mutable_state().add_items()->set_product_id("short-lived");
              ctx.ExpireStateAfter(std::chrono::seconds(30));
              return Empty();
            }
            ctx.DeleteState();
            return Empty();
          })
      .Handle<cart::GetShoppingCart, cart::Cart>(
          "GetCart",
          [](ValueContext<cart::Cart>& ctx, const cart::GetShoppingCart&) -> Result<cart::Cart> {
            // Echoes what the context tells the handler.
            cart::Cart reply;
            cart::LineItem* item = reply.add_items();
            item->set_product_id(ctx.entity_key());
            item->set_name(ctx.metadata("user").value_or("<none>"));
            item->set_quantity(ctx.has_state() ? ctx.state().items_size() : -1);
            reply.set_checked_out(ctx.service_name() == kCart && ctx.method() == "GetCart");
            if (!ctx.idempotency_key().empty()) {
              reply.add_items()->set_product_id("key:" + ctx.idempotency_key());
            }
            return reply;
          })
      .Handle<cart::CheckoutCart, cart::Cart>(
          "Checkout",
          [](ValueContext<cart::Cart>& ctx, const cart::CheckoutCart& cmd) -> Result<cart::Cart> {
            // Misuses of forwards and side effects, chosen by cart_id.
            ctx.SetState(cart::Cart());
            if (cmd.cart_id() == "wrong-payload") {
              return ctx.Forward(kCart, "GetCart", cart::AddLineItem());
            }
            if (cmd.cart_id() == "wrong-reply") {
              return ctx.Forward(kCart, "RemoveItem", cart::RemoveLineItem());
            }
            if (cmd.cart_id() == "unknown-method") {
              ctx.SideEffect(kCart, "Nope", cmd);
              return cart::Cart();
            }
            if (cmd.cart_id() == "pipe-wrong-reply") {
              return ctx.Pipe(cart::LineItem(), kCart, "GetCart");  // Checkout replies a Cart
            }
            if (cmd.cart_id() == "pipe") {
              cart::Cart reply;
              reply.add_items()->set_product_id("piped");
              return ctx.Pipe(reply, "elsewhere.Service", "Take");
            }
            if (cmd.cart_id() == "publish") {
              ctx.Publish("carts", cmd);
              return cart::Cart();
            }
            return ctx.Forward("elsewhere.Service", "Do", cmd);  // not linked: not checked
          });
  // CartFront.AddItemLater and Checkout deliberately have no handler.
  function.AddAction(kFront).Handle<cart::AddLineItems, cart::Cart>(
      "AddItems", [](ActionContext& ctx, const cart::AddLineItems& request) -> Result<cart::Cart> {
        if (request.cart_id().empty()) return Fail(Code::kInvalidArgument, "no cart");
        cart::GetShoppingCart get;
        get.set_cart_id(request.cart_id());
        ctx.SideEffect(kCart, "GetCart", get, /*synchronous=*/true);
        return ctx.Forward(kCart, "GetCart", get);
      });
}

class FunctionTest : public ::testing::Test {
 protected:
  v1::ValueEntityResponse Entity(const v1::ValueEntityCommand& command) {
    v1::ValueEntityResponse response;
    grpc::Status status = served_.Handle(command, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  grpc::Status EntityStatus(const v1::ValueEntityCommand& command) {
    v1::ValueEntityResponse response;
    return served_.Handle(command, &response);
  }

  Function function_{"test-function", "1.2.3"};
  bool registered_ = (RegisterTestHandlers(function_), true);  // before serving
  ServedFunction served_{function_};
};

cart::AddLineItem Add(const std::string& product, const std::string& name = "") {
  cart::AddLineItem add;
  add.set_cart_id("c1");
  add.set_product_id(product);
  add.set_name(name);
  add.set_quantity(1);
  return add;
}

// --- Discovery -------------------------------------------------------------------------

TEST_F(FunctionTest, DiscoverDescribesTheFunction) {
  v1::Spec spec;
  ASSERT_TRUE(served_.Discover(Proxy(), &spec).ok());
  EXPECT_EQ(spec.protocol().major(), 1u);
  EXPECT_EQ(spec.protocol().minor(), 2u);  // 1.2: timers, state TTL, idempotency keys
  EXPECT_EQ(spec.function().sdk_name(), "massa-cpp");
  EXPECT_EQ(spec.function().sdk_version(), MASSA_SDK_VERSION);
  EXPECT_EQ(spec.function().function_name(), "test-function");
  EXPECT_EQ(spec.function().function_version(), "1.2.3");

  ASSERT_EQ(spec.services_size(), 2);
  const v1::ServiceSpec& entity = spec.services(0);
  EXPECT_EQ(entity.service_name(), kCart);
  EXPECT_EQ(entity.kind(), v1::ENTITY_KIND_VALUE_ENTITY);
  EXPECT_EQ(entity.state_type(), "example.shoppingcart.Cart");
  EXPECT_EQ(entity.entity_type(), "carts");
  EXPECT_EQ(entity.passivation_timeout_ms(), 30000u);
  const v1::ServiceSpec& action = spec.services(1);
  EXPECT_EQ(action.service_name(), kFront);
  EXPECT_EQ(action.kind(), v1::ENTITY_KIND_ACTION);
  EXPECT_EQ(action.entity_type(), kFront);
  EXPECT_EQ(action.state_type(), "");
  EXPECT_EQ(action.passivation_timeout_ms(), 0u);
}

TEST(FunctionDiscoveryTest, ActorSettingsAndSubscriptionsAreInTheSpec) {
  Function function("actors");
  function
      .AddValueEntity<cart::Cart>(kCart, massa::sdk::EntityOptions{.actor_name = "the-cart"})
      .Subscribe("carts", "AddItem")
      .Subscribe("cleanup", "RemoveItem");
  function.AddAction(kFront, massa::sdk::ActionOptions{.max_concurrency = 3});
  ServedFunction served(function);
  v1::Spec spec;
  ASSERT_TRUE(served.Discover(Proxy(), &spec).ok());
  ASSERT_EQ(spec.services_size(), 2);
  const v1::ServiceSpec& named = spec.services(0);
  EXPECT_EQ(named.actor_name(), "the-cart");
  EXPECT_FALSE(named.spawned());
  ASSERT_EQ(named.subscriptions_size(), 2);
  EXPECT_EQ(named.subscriptions(0).channel(), "carts");
  EXPECT_EQ(named.subscriptions(0).method(), "AddItem");
  EXPECT_EQ(named.subscriptions(1).channel(), "cleanup");
  EXPECT_EQ(spec.services(1).max_concurrency(), 3u);
}

TEST_F(FunctionTest, DiscoverSendsEveryFileDependenciesFirst) {
  v1::Spec spec;
  ASSERT_TRUE(served_.Discover(Proxy(), &spec).ok());
  google::protobuf::FileDescriptorSet files;
  ASSERT_TRUE(files.ParseFromString(spec.descriptor_set()));

  // Each file once, after its dependencies, so that it loads file by file.
  std::set<std::string> loaded;
  google::protobuf::DescriptorPool pool;
  for (const auto& file : files.file()) {
    EXPECT_TRUE(loaded.insert(file.name()).second) << file.name() << " sent twice";
    for (const auto& dependency : file.dependency()) {
      EXPECT_TRUE(loaded.count(dependency)) << file.name() << " before " << dependency;
    }
    ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
  }
  EXPECT_TRUE(loaded.count("google/protobuf/empty.proto"));
  EXPECT_TRUE(loaded.count("google/protobuf/descriptor.proto"));
  EXPECT_TRUE(loaded.count("massa/protocol/v1/options.proto"));
  EXPECT_TRUE(loaded.count("example/shoppingcart/shoppingcart.proto"));

  const google::protobuf::ServiceDescriptor* entity = pool.FindServiceByName(kCart);
  ASSERT_NE(entity, nullptr);
  ASSERT_NE(entity->FindMethodByName("AddItem"), nullptr);
  EXPECT_EQ(entity->FindMethodByName("AddItem")->input_type()->full_name(),
            "example.shoppingcart.AddLineItem");
  EXPECT_NE(pool.FindServiceByName(kFront), nullptr);
  EXPECT_NE(pool.FindMessageTypeByName("example.shoppingcart.Cart"), nullptr);

  const google::protobuf::FieldDescriptor* key =
      pool.FindMessageTypeByName("example.shoppingcart.AddLineItem")->FindFieldByName("cart_id");
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(key->options().GetExtension(massa::protocol::v1::entity_key));
  const google::protobuf::FieldDescriptor* not_key =
      pool.FindMessageTypeByName("example.shoppingcart.AddLineItem")->FindFieldByName("name");
  EXPECT_FALSE(not_key->options().GetExtension(massa::protocol::v1::entity_key));
}

TEST_F(FunctionTest, DiscoverRefusesAnotherMajorVersion) {
  v1::Spec spec;
  v1::ProxyInfo info = Proxy(2);
  info.mutable_protocol()->set_minor(3);
  grpc::Status status = served_.Discover(info, &spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("2.3"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find(MASSA_SDK_PROTOCOL_VERSION), std::string::npos)
      << status.error_message();

  EXPECT_EQ(served_.Discover(v1::ProxyInfo(), &spec).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(FunctionTest, DiscoverRefusesAProxyWithoutAKindWeNeed) {
  v1::ProxyInfo info = Proxy();
  info.clear_supported_kinds();
  info.add_supported_kinds(v1::ENTITY_KIND_ACTION);
  v1::Spec spec;
  grpc::Status status = served_.Discover(info, &spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find(kCart), std::string::npos) << status.error_message();
}

TEST_F(FunctionTest, ReportErrorIsAccepted) {
  auto stub = v1::Discovery::NewStub(served_.channel());
  grpc::ClientContext context;
  v1::UserFunctionError error;
  error.set_message("bad outcome");
  error.set_service_name(kCart);
  error.set_method("AddItem");
  Empty empty;
  EXPECT_TRUE(stub->ReportError(&context, error, &empty).ok());
}

// --- Value entity commands -------------------------------------------------------------

TEST_F(FunctionTest, HandlerSeesTheCommandAndState) {
  v1::ValueEntityCommand command =
      EntityCommand(kCart, "GetCart", "key-9", cart::GetShoppingCart());
  v1::MetadataEntry* entry = command.mutable_command()->mutable_metadata()->add_entries();
  entry->set_key("user");
  entry->set_string_value("ann");
  cart::Cart reply = Unpack<cart::Cart>(Entity(command).client_action().reply().payload());
  EXPECT_EQ(reply.items(0).product_id(), "key-9");
  EXPECT_EQ(reply.items(0).name(), "ann");
  EXPECT_EQ(reply.items(0).quantity(), -1);  // no state
  EXPECT_TRUE(reply.checked_out());

  cart::Cart state;
  state.add_items();
  state.add_items();
  reply = Unpack<cart::Cart>(
      Entity(EntityCommand(kCart, "GetCart", "k", cart::GetShoppingCart(), &state))
          .client_action()
          .reply()
          .payload());
  EXPECT_EQ(reply.items(0).name(), "<none>");
  EXPECT_EQ(reply.items(0).quantity(), 2);
}

TEST_F(FunctionTest, StateUpdateStartsFromTheGivenState) {
  cart::Cart state;
  state.add_items()->set_product_id("old");
  v1::ValueEntityResponse response =
      Entity(EntityCommand(kCart, "AddItem", "k", Add("new"), &state));
  ASSERT_TRUE(response.client_action().has_reply());
  cart::Cart updated = Unpack<cart::Cart>(response.state_action().update());
  ASSERT_EQ(updated.items_size(), 2);
  EXPECT_EQ(updated.items(0).product_id(), "old");
  EXPECT_EQ(updated.items(1).product_id(), "new");
  ASSERT_EQ(response.effects().side_effects_size(), 1);
  EXPECT_FALSE(response.effects().side_effects(0).synchronous());
}

TEST_F(FunctionTest, DeleteState) {
  cart::Cart state;
  state.add_items()->set_product_id("p");
  v1::ValueEntityResponse response =
      Entity(EntityCommand(kCart, "RemoveItem", "k", cart::RemoveLineItem(), &state));
  ASSERT_TRUE(response.client_action().has_reply());
  EXPECT_TRUE(response.state_action().has_delete_());
  EXPECT_FALSE(response.state_action().has_update());
}

TEST_F(FunctionTest, FailureDropsStateAndEffects) {
  v1::ValueEntityResponse response = Entity(EntityCommand(kCart, "AddItem", "k", Add("fail")));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(response.client_action().failure().message(), "plain failure");
  EXPECT_FALSE(response.has_state_action());
  EXPECT_FALSE(response.has_effects());
}

cart::RemoveLineItem Remove(const std::string& product) {
  cart::RemoveLineItem remove;
  remove.set_cart_id("c1");
  remove.set_product_id(product);
  return remove;
}

TEST_F(FunctionTest, TimersAreSentAsEffects) {
  v1::ValueEntityResponse response =
      Entity(EntityCommand(kCart, "RemoveItem", "c1", Remove("timers")));
  ASSERT_TRUE(response.client_action().has_reply());
  const auto& timers = response.effects().timers();
  ASSERT_EQ(timers.size(), 5);
  EXPECT_EQ(timers[0].name(), "once");
  EXPECT_EQ(timers[0].service_name(), "") << "this entity";
  EXPECT_EQ(timers[0].method(), "GetCart");
  EXPECT_EQ(timers[0].delay_ms(), 900'000);
  EXPECT_EQ(Unpack<cart::GetShoppingCart>(timers[0].payload()).cart_id(), "c1");
  EXPECT_EQ(timers[1].at_ms(), 1'900'000'000'000);
  EXPECT_EQ(timers[2].service_name(), kFront);
  EXPECT_EQ(timers[2].interval_ms(), 3'600'000);
  EXPECT_EQ(timers[2].delay_ms(), 300'000);
  EXPECT_EQ(timers[2].missed(), v1::MISSED_TICKS_SKIP);
  EXPECT_EQ(timers[3].cron(), "0 0 0 * * *");
  EXPECT_EQ(timers[3].missed(), v1::MISSED_TICKS_CATCH_UP_ONCE);
  EXPECT_EQ(timers[4].name(), "old");
  EXPECT_TRUE(timers[4].cancel());
}

TEST_F(FunctionTest, TimersOfAFailedCommandAreDropped) {
  v1::ValueEntityResponse response =
      Entity(EntityCommand(kCart, "RemoveItem", "c1", Remove("timers-then-fail")));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_FALSE(response.has_effects());
}

TEST_F(FunctionTest, ATimerWithTheWrongPayloadIsAMisuse) {
  v1::ValueEntityResponse response =
      Entity(EntityCommand(kCart, "RemoveItem", "c1", Remove("timer-wrong-payload")));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(response.client_action().failure().message().find("timer to"), std::string::npos)
      << response.client_action().failure().message();
}

TEST_F(FunctionTest, AStateMayExpire) {
  v1::ValueEntityResponse response = Entity(EntityCommand(kCart, "RemoveItem", "c1", Remove("ttl")));
  ASSERT_TRUE(response.state_action().has_update());
  EXPECT_EQ(response.state_action().ttl_ms(), 30'000u);
  response = Entity(EntityCommand(kCart, "AddItem", "c1", Add("p")));
  EXPECT_EQ(response.state_action().ttl_ms(), 0u) << "only where the handler asks";
}

TEST_F(FunctionTest, TheHandlerSeesTheIdempotencyKey) {
  v1::ValueEntityCommand command = EntityCommand(kCart, "GetCart", "c1", cart::GetShoppingCart());
  command.mutable_command()->set_idempotency_key("order-7");
  cart::Cart reply = Unpack<cart::Cart>(Entity(command).client_action().reply().payload());
  ASSERT_EQ(reply.items_size(), 2);
  EXPECT_EQ(reply.items(1).product_id(), "key:order-7");
}

TEST_F(FunctionTest, DiscoverSendsTheServicesRetentionAndTtl) {
  Function function("ttl-function", "1");
  function.AddValueEntity<cart::Cart>(
      kCart, EntityOptions{.idempotency_retention = std::chrono::hours(2),
                           .state_ttl = std::chrono::minutes(10)});
  ServedFunction served(function);
  v1::Spec spec;
  ASSERT_TRUE(served.Discover(Proxy(), &spec).ok());
  ASSERT_EQ(spec.services_size(), 1);
  EXPECT_EQ(spec.services(0).idempotency_retention_ms(), 7'200'000u);
  EXPECT_EQ(spec.services(0).state_ttl_ms(), 600'000u);
}

TEST_F(FunctionTest, HandlerExceptionBecomesInternalFailure) {
  v1::ValueEntityResponse response =
      Entity(EntityCommand(kCart, "AddItem", "k", Add("throw", "now")));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(response.client_action().failure().message(), "boom now");
  EXPECT_FALSE(response.has_state_action());

  response = Entity(EntityCommand(kCart, "AddItem", "k", Add("throw-int")));
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INTERNAL);

  // The function is still serving.
  EXPECT_TRUE(Entity(EntityCommand(kCart, "AddItem", "k", Add("p"))).client_action().has_reply());
}

TEST_F(FunctionTest, UnknownServiceOrMethodIsUnimplemented) {
  EXPECT_EQ(EntityStatus(EntityCommand("no.Such", "AddItem", "k", Add("p"))).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(EntityStatus(EntityCommand(kCart, "Nope", "k", Add("p"))).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(EntityStatus(EntityCommand(kCart, "", "k", Add("p"))).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // An action is not a value entity.
  EXPECT_EQ(EntityStatus(EntityCommand(kFront, "AddItems", "k", cart::AddLineItems())).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // A method of the service that has no handler.
  v1::ActionResponse response;
  EXPECT_EQ(served_.Handle(ActionCommand(kFront, "AddItemLater", Add("p")), &response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(served_.Handle(ActionCommand(kCart, "AddItem", Add("p")), &response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(FunctionTest, BadPayloadOrStateIsInvalidArgument) {
  // Another message type.
  v1::ValueEntityCommand command = EntityCommand(kCart, "AddItem", "k", cart::GetShoppingCart());
  grpc::Status status = EntityStatus(command);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("example.shoppingcart.AddLineItem"), std::string::npos);
  // Bytes that do not parse.
  command = EntityCommand(kCart, "AddItem", "k", Add("p"));
  command.mutable_command()->mutable_payload()->set_value("\xff\xff\xff");
  EXPECT_EQ(EntityStatus(command).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // No payload.
  command.mutable_command()->clear_payload();
  EXPECT_EQ(EntityStatus(command).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A state of another type.
  cart::LineItem not_a_cart;
  command = EntityCommand(kCart, "AddItem", "k", Add("p"));
  *command.mutable_state() = testing::Pack(not_a_cart);
  EXPECT_EQ(EntityStatus(command).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(FunctionTest, MisusedForwardsAndSideEffectsFailWithInternal) {
  for (const char* variant :
       {"wrong-payload", "wrong-reply", "unknown-method", "pipe-wrong-reply"}) {
    cart::CheckoutCart checkout;
    checkout.set_cart_id(variant);
    v1::ValueEntityResponse response = Entity(EntityCommand(kCart, "Checkout", "k", checkout));
    ASSERT_TRUE(response.client_action().has_failure()) << variant;
    EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INTERNAL) << variant;
    EXPECT_FALSE(response.has_state_action()) << variant;
  }
  // A target that is not linked into the function is passed on as is.
  cart::CheckoutCart checkout;
  checkout.set_cart_id("elsewhere");
  v1::ValueEntityResponse response = Entity(EntityCommand(kCart, "Checkout", "k", checkout));
  ASSERT_TRUE(response.client_action().has_forward());
  EXPECT_EQ(response.client_action().forward().service_name(), "elsewhere.Service");
  EXPECT_EQ(response.client_action().forward().method(), "Do");
  EXPECT_TRUE(response.state_action().has_update());
}

TEST_F(FunctionTest, PipesAndPublicationsReachTheResponse) {
  cart::CheckoutCart checkout;
  checkout.set_cart_id("pipe");
  v1::ValueEntityResponse response = Entity(EntityCommand(kCart, "Checkout", "k", checkout));
  ASSERT_TRUE(response.client_action().has_pipe());
  EXPECT_EQ(response.client_action().pipe().service_name(), "elsewhere.Service");
  EXPECT_EQ(response.client_action().pipe().method(), "Take");
  EXPECT_EQ(Unpack<cart::Cart>(response.client_action().pipe().payload()).items(0).product_id(),
            "piped");
  checkout.set_cart_id("publish");
  response = Entity(EntityCommand(kCart, "Checkout", "k", checkout));
  ASSERT_TRUE(response.client_action().has_reply());
  ASSERT_EQ(response.effects().broadcasts_size(), 1);
  EXPECT_EQ(response.effects().broadcasts(0).channel(), "carts");
  EXPECT_EQ(Unpack<cart::CheckoutCart>(response.effects().broadcasts(0).payload()).cart_id(),
            "publish");
}

// --- Actions ---------------------------------------------------------------------------

TEST_F(FunctionTest, ActionEffectsAndForward) {
  cart::AddLineItems request;
  request.set_cart_id("c9");
  v1::ActionResponse response;
  ASSERT_TRUE(served_.Handle(ActionCommand(kFront, "AddItems", request), &response).ok());
  ASSERT_EQ(response.effects().side_effects_size(), 1);
  EXPECT_TRUE(response.effects().side_effects(0).synchronous());
  ASSERT_TRUE(response.client_action().has_forward());
  EXPECT_EQ(Unpack<cart::GetShoppingCart>(response.client_action().forward().payload()).cart_id(),
            "c9");

  request.clear_cart_id();
  response.Clear();
  ASSERT_TRUE(served_.Handle(ActionCommand(kFront, "AddItems", request), &response).ok());
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.client_action().failure().message(), "no cart");
  EXPECT_FALSE(response.has_effects());
}

// --- Serving ---------------------------------------------------------------------------

TEST_F(FunctionTest, StartTwiceFails) {
  Status status = function_.Start("unix:" + served_.socket_path() + "2");
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_EQ(function_.address(), "unix:" + served_.socket_path());
}

TEST_F(FunctionTest, ShutdownRemovesTheSocket) {
  struct stat info {};
  ASSERT_EQ(::lstat(served_.socket_path().c_str(), &info), 0);
  function_.Shutdown();
  EXPECT_NE(::lstat(served_.socket_path().c_str(), &info), 0);
  EXPECT_EQ(function_.address(), "");
  function_.Wait();  // returns at once
}

// Makes a socket file at `path` as a crashed function would leave it.
void MakeStaleSocket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);  // bound, never listened: the file stays, nobody answers
}

TEST(FunctionServeTest, RemovesAStaleSocketFile) {
  TempDir dir;
  const std::string path = dir.path() + "/stale.sock";
  MakeStaleSocket(path);
  Function function("f");
  RegisterTestHandlers(function);
  Status status = function.Start("unix://" + path);
  ASSERT_TRUE(status.ok()) << status.message();
  auto channel = grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  v1::Spec spec;
  EXPECT_TRUE(v1::Discovery::NewStub(channel)->Discover(&context, Proxy(), &spec).ok());
}

TEST(FunctionServeTest, RefusesALiveSocketOrAnotherFile) {
  TempDir dir;
  Function first("first");
  const std::string path = dir.path() + "/f.sock";
  ASSERT_TRUE(first.Start("unix:" + path).ok());
  Function second("second");
  EXPECT_EQ(second.Start("unix:" + path).code(), Code::kUnavailable);

  const std::string file = dir.path() + "/not-a-socket";
  std::ofstream(file) << "data";
  EXPECT_EQ(second.Start("unix:" + file).code(), Code::kUnavailable);
  std::ifstream in(file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "data");
}

TEST(FunctionServeTest, TcpPortZeroReportsTheRealPort) {
  Function function("tcp");
  RegisterTestHandlers(function);
  ASSERT_TRUE(function.Start("127.0.0.1:0").ok());
  const std::string address = function.address();
  ASSERT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
  EXPECT_NE(address, "127.0.0.1:0");
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  v1::Spec spec;
  EXPECT_TRUE(v1::Discovery::NewStub(channel)->Discover(&context, Proxy(), &spec).ok());
  function.Shutdown();
}

TEST(FunctionServeTest, BadAddresses) {
  Function function("f");
  EXPECT_EQ(function.Start("unix:").code(), Code::kInvalidArgument);
  EXPECT_EQ(function.Start("nothing").code(), Code::kInvalidArgument);
  EXPECT_EQ(function.Start("unix:/no/such/dir/f.sock").code(), Code::kUnavailable);
}

TEST(FunctionServeTest, WaitReturnsAfterShutdownFromAnotherThread) {
  TempDir dir;
  Function function("f");
  ASSERT_TRUE(function.Start("unix:" + dir.path() + "/f.sock").ok());
  std::thread stopper([&] { function.Shutdown(); });
  function.Wait();
  stopper.join();
  EXPECT_EQ(function.address(), "");
}

// --- Result ----------------------------------------------------------------------------

TEST(ResultTest, HoldsOneOfReplyFailureForward) {
  Result<Empty> reply = Empty();
  EXPECT_TRUE(reply.is_reply());
  EXPECT_FALSE(reply.is_failure());
  Result<Empty> failure = Fail("x");
  ASSERT_TRUE(failure.is_failure());
  EXPECT_EQ(failure.failure().code, Code::kFailedPrecondition);
  EXPECT_EQ(failure.failure().message, "x");
  Result<Empty> coded = Fail(Code::kNotFound, "y");
  EXPECT_EQ(coded.failure().code, Code::kNotFound);
  EXPECT_EQ(static_cast<int>(Code::kNotFound), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(static_cast<int>(Code::kUnauthenticated),
            static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
}

}  // namespace
}  // namespace massa::sdk
