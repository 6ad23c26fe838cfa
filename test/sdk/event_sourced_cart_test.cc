// The event-sourced shopping cart example's handlers, called over the native protocol as
// Massa would: the events each command emits, the state after them, and Fold.
#include <string>
#include <utility>
#include <vector>

#include "cart_helpers.h"
#include "event-sourced-cart/cart.h"
#include "example/escart/escart.pb.h"
#include "gtest/gtest.h"
#include "massa/sdk/function.h"
#include "test_function.h"

namespace example::escart {
namespace {

namespace v1 = massa::protocol::v1;
using google::protobuf::Any;
using massa::sdk::testing::CartWith;
using massa::sdk::testing::EventSourcedCommand;
using massa::sdk::testing::FoldRequest;
using massa::sdk::testing::Pack;
using massa::sdk::testing::ServedFunction;
using massa::sdk::testing::Unpack;

constexpr char kCart[] = "example.escart.ShoppingCart";

AddLineItem Add(const std::string& product, int quantity) {
  return massa::sdk::testing::AddItem<AddLineItem>(product, quantity);
}

RemoveLineItem Remove(const std::string& product) {
  RemoveLineItem remove;
  remove.set_cart_id("c1");
  remove.set_product_id(product);
  return remove;
}

CheckoutCart Checkout() {
  CheckoutCart checkout;
  checkout.set_cart_id("c1");
  return checkout;
}

class EsShoppingCartTest : public ::testing::Test {
 protected:
  // Sends `payload` to ShoppingCart/`method` of cart c1, expecting an OK RPC.
  v1::EventSourcedResponse Handle(const std::string& method,
                                  const google::protobuf::Message& payload,
                                  const Cart* state = nullptr, uint64_t sequence = 0) {
    return served_.HandleOk(EventSourcedCommand(kCart, method, "c1", payload, state, sequence));
  }

  // Runs the commands on cart c1 one after another, as Massa would (each from the state the
  // previous one returned), expecting each to succeed; returns the state and appends the
  // events to `journal`.
  Cart Session(
      const std::vector<std::pair<std::string, const google::protobuf::Message*>>& commands,
      std::vector<Any>& journal) {
    Cart state;
    for (const auto& [method, payload] : commands) {
      v1::EventSourcedResponse response =
          Handle(method, *payload, journal.empty() ? nullptr : &state, journal.size());
      EXPECT_TRUE(response.client_action().has_reply()) << method << ": " << response.DebugString();
      journal.insert(journal.end(), response.events().begin(), response.events().end());
      if (response.has_state()) state = Unpack<Cart>(response.state());
    }
    return state;
  }

  massa::sdk::Function function_{"event-sourced-cart"};
  bool registered_ = (RegisterShoppingCart(function_), true);  // before serving
  ServedFunction served_{function_};
};

void ExpectFailure(const v1::EventSourcedResponse& response, grpc::StatusCode code) {
  ASSERT_TRUE(response.client_action().has_failure()) << response.DebugString();
  EXPECT_EQ(response.client_action().failure().code(), static_cast<int>(code));
  EXPECT_FALSE(response.client_action().failure().message().empty());
  EXPECT_EQ(response.events_size(), 0);
  EXPECT_FALSE(response.has_state());
  EXPECT_FALSE(response.has_effects());
}

TEST_F(EsShoppingCartTest, AddItemToNewCartEmitsItemAdded) {
  v1::EventSourcedResponse response = Handle("AddItem", Add("p1", 2));
  ASSERT_TRUE(response.client_action().has_reply());
  EXPECT_EQ(response.client_action().reply().payload().type_url(),
            "type.googleapis.com/google.protobuf.Empty");
  ASSERT_EQ(response.events_size(), 1);
  EXPECT_EQ(response.events(0).type_url(), "type.googleapis.com/example.escart.ItemAdded");
  ItemAdded added = Unpack<ItemAdded>(response.events(0));
  EXPECT_EQ(added.item().product_id(), "p1");
  EXPECT_EQ(added.item().name(), "Pen");
  EXPECT_EQ(added.item().quantity(), 2);

  ASSERT_TRUE(response.has_state());
  EXPECT_EQ(response.state().type_url(), "type.googleapis.com/example.escart.Cart");
  Cart cart = Unpack<Cart>(response.state());
  ASSERT_EQ(cart.items_size(), 1);
  EXPECT_EQ(cart.items(0).product_id(), "p1");
  EXPECT_EQ(cart.items(0).quantity(), 2);
  EXPECT_FALSE(cart.checked_out());
}

TEST_F(EsShoppingCartTest, AddItemSumsTheSameProductAndKeepsTheOrderFirstAdded) {
  const AddLineItem p1 = Add("p1", 1), p2 = Add("p2", 5), p1_again = Add("p1", 4);
  std::vector<Any> journal;
  Cart cart = Session({{"AddItem", &p1}, {"AddItem", &p2}, {"AddItem", &p1_again}}, journal);
  EXPECT_EQ(journal.size(), 3u);
  ASSERT_EQ(cart.items_size(), 2);
  EXPECT_EQ(cart.items(0).product_id(), "p1");
  EXPECT_EQ(cart.items(0).quantity(), 5);
  EXPECT_EQ(cart.items(1).product_id(), "p2");
  EXPECT_EQ(cart.items(1).quantity(), 5);
}

TEST_F(EsShoppingCartTest, AddItemRejectsNonPositiveQuantity) {
  ExpectFailure(Handle("AddItem", Add("p1", 0)), grpc::StatusCode::INVALID_ARGUMENT);
  Cart state = CartWith<Cart>({{"p1", 1}});
  ExpectFailure(Handle("AddItem", Add("p1", -3), &state, 1), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EsShoppingCartTest, CheckedOutCartRefusesChanges) {
  Cart state = CartWith<Cart>({{"p1", 1}}, /*checked_out=*/true);
  ExpectFailure(Handle("AddItem", Add("p1", 1), &state, 2), grpc::StatusCode::FAILED_PRECONDITION);
  ExpectFailure(Handle("RemoveItem", Remove("p1"), &state, 2),
                grpc::StatusCode::FAILED_PRECONDITION);
  ExpectFailure(Handle("Checkout", Checkout(), &state, 2), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(EsShoppingCartTest, RemoveItemEmitsItemRemoved) {
  Cart state = CartWith<Cart>({{"p1", 1}, {"p2", 2}, {"p3", 3}});
  v1::EventSourcedResponse response = Handle("RemoveItem", Remove("p2"), &state, 3);
  ASSERT_TRUE(response.client_action().has_reply());
  ASSERT_EQ(response.events_size(), 1);
  EXPECT_EQ(Unpack<ItemRemoved>(response.events(0)).product_id(), "p2");
  Cart cart = Unpack<Cart>(response.state());
  ASSERT_EQ(cart.items_size(), 2);
  EXPECT_EQ(cart.items(0).product_id(), "p1");
  EXPECT_EQ(cart.items(1).product_id(), "p3");
}

TEST_F(EsShoppingCartTest, RemoveMissingItemIsNotFound) {
  Cart state = CartWith<Cart>({{"p1", 1}});
  ExpectFailure(Handle("RemoveItem", Remove("p9"), &state, 1), grpc::StatusCode::NOT_FOUND);
  ExpectFailure(Handle("RemoveItem", Remove("p1")), grpc::StatusCode::NOT_FOUND);
}

TEST_F(EsShoppingCartTest, GetCartReturnsTheStateAndEmitsNothing) {
  GetShoppingCart get;
  get.set_cart_id("c1");
  v1::EventSourcedResponse empty = Handle("GetCart", get);
  ASSERT_TRUE(empty.client_action().has_reply());
  EXPECT_EQ(Unpack<Cart>(empty.client_action().reply().payload()).items_size(), 0);
  EXPECT_EQ(empty.events_size(), 0);
  EXPECT_FALSE(empty.has_state());

  Cart state = CartWith<Cart>({{"p1", 4}});
  v1::EventSourcedResponse full = Handle("GetCart", get, &state, 1);
  EXPECT_EQ(Unpack<Cart>(full.client_action().reply().payload()).DebugString(),
            state.DebugString());
  EXPECT_EQ(full.events_size(), 0);
  EXPECT_FALSE(full.has_state());
}

TEST_F(EsShoppingCartTest, CheckoutEmitsCheckedOutAndRepliesWithTheCheckedOutCart) {
  ExpectFailure(Handle("Checkout", Checkout()), grpc::StatusCode::FAILED_PRECONDITION);
  Cart emptied;  // items added and removed again: still empty
  ExpectFailure(Handle("Checkout", Checkout(), &emptied, 2), grpc::StatusCode::FAILED_PRECONDITION);

  Cart state = CartWith<Cart>({{"p1", 1}});
  v1::EventSourcedResponse response = Handle("Checkout", Checkout(), &state, 1);
  ASSERT_TRUE(response.client_action().has_reply());
  ASSERT_EQ(response.events_size(), 1);
  EXPECT_EQ(response.events(0).type_url(), "type.googleapis.com/example.escart.CheckedOut");
  Cart reply = Unpack<Cart>(response.client_action().reply().payload());
  EXPECT_TRUE(reply.checked_out());
  EXPECT_EQ(reply.items_size(), 1);
  EXPECT_TRUE(Unpack<Cart>(response.state()).checked_out());
}

TEST_F(EsShoppingCartTest, FoldRebuildsTheCartFromItsJournal) {
  const AddLineItem p1 = Add("p1", 2), p2 = Add("p2", 1), p3 = Add("p3", 7), more_p1 = Add("p1", 1);
  const RemoveLineItem remove_p2 = Remove("p2");
  const CheckoutCart checkout = Checkout();
  std::vector<Any> journal;
  Cart cart = Session({{"AddItem", &p1},
                       {"AddItem", &p2},
                       {"AddItem", &p3},
                       {"RemoveItem", &remove_p2},
                       {"AddItem", &more_p1},
                       {"Checkout", &checkout}},
                      journal);
  ASSERT_EQ(journal.size(), 6u);
  ASSERT_EQ(cart.items_size(), 2);
  EXPECT_EQ(cart.items(0).quantity(), 3);
  EXPECT_EQ(cart.items(1).product_id(), "p3");
  EXPECT_TRUE(cart.checked_out());

  EXPECT_EQ(Unpack<Cart>(served_.FoldOk(FoldRequest(kCart, "c1", journal)).state()).DebugString(),
            cart.DebugString());

  // From a snapshot after the first two events, as Massa does after snapshot_every events.
  Cart snapshot = CartWith<Cart>({{"p1", 2}, {"p2", 1}});
  snapshot.mutable_items(0)->set_name("Pen");
  snapshot.mutable_items(1)->set_name("Pen");
  std::vector<Any> rest(journal.begin() + 2, journal.end());
  EXPECT_EQ(Unpack<Cart>(served_.FoldOk(FoldRequest(kCart, "c1", rest, &snapshot, 3)).state())
                .DebugString(),
            cart.DebugString());
}

TEST_F(EsShoppingCartTest, FoldRefusesAnEventItDoesNotKnow) {
  v1::FoldResponse folded;
  grpc::Status status = served_.Fold(FoldRequest(kCart, "c1", {Pack(Add("p1", 1))}), &folded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
}

TEST(EsShoppingCartSpecTest, OptionsGoIntoTheSpec) {
  massa::sdk::Function function("event-sourced-cart");
  RegisterShoppingCart(function, {.snapshot_every = 3, .delete_events_on_snapshot = true});
  ServedFunction served(function);
  v1::Spec spec;
  ASSERT_TRUE(served.Discover(massa::sdk::testing::Proxy(), &spec).ok());
  ASSERT_EQ(spec.services_size(), 1);
  EXPECT_EQ(spec.services(0).service_name(), kCart);
  EXPECT_EQ(spec.services(0).kind(), v1::ENTITY_KIND_EVENT_SOURCED);
  EXPECT_EQ(spec.services(0).state_type(), "example.escart.Cart");
  EXPECT_EQ(spec.services(0).snapshot_every(), 3u);
  EXPECT_TRUE(spec.services(0).delete_events_on_snapshot());
}

}  // namespace
}  // namespace example::escart
