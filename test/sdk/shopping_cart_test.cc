// The shopping cart example's handlers, called over the native protocol as Massa would.
#include "cart_helpers.h"
#include "example/shoppingcart/shoppingcart.pb.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "massa/sdk/function.h"
#include "shopping-cart/cart.h"
#include "test_function.h"

namespace example::shoppingcart {
namespace {

namespace v1 = massa::protocol::v1;
using massa::sdk::testing::ActionCommand;
using massa::sdk::testing::CartWith;
using massa::sdk::testing::EntityCommand;
using massa::sdk::testing::ServedFunction;
using massa::sdk::testing::Unpack;

constexpr char kCart[] = "example.shoppingcart.ShoppingCart";
constexpr char kFront[] = "example.shoppingcart.CartFront";

AddLineItem Add(const std::string& product, int quantity) {
  return massa::sdk::testing::AddItem<AddLineItem>(product, quantity);
}

class ShoppingCartTest : public ::testing::Test {
 protected:
  // Sends `payload` to ShoppingCart/`method` of cart c1, expecting an OK RPC.
  v1::ValueEntityResponse Entity(const std::string& method,
                                 const google::protobuf::Message& payload,
                                 const Cart* state = nullptr) {
    v1::ValueEntityResponse response;
    grpc::Status status =
        served_.Handle(EntityCommand(kCart, method, "c1", payload, state), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::ActionResponse Action(const std::string& method, const google::protobuf::Message& payload) {
    v1::ActionResponse response;
    grpc::Status status = served_.Handle(ActionCommand(kFront, method, payload), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  massa::sdk::Function function_{"shopping-cart"};
  bool registered_ = (RegisterShoppingCart(function_), true);  // before serving
  ServedFunction served_{function_};
};

void ExpectFailure(const v1::ValueEntityResponse& response, grpc::StatusCode code) {
  ASSERT_TRUE(response.client_action().has_failure()) << response.DebugString();
  EXPECT_EQ(response.client_action().failure().code(), static_cast<int>(code));
  EXPECT_FALSE(response.client_action().failure().message().empty());
  EXPECT_FALSE(response.has_state_action());
  EXPECT_FALSE(response.has_effects());
}

TEST_F(ShoppingCartTest, AddItemToNewCart) {
  v1::ValueEntityResponse response = Entity("AddItem", Add("p1", 2));
  ASSERT_TRUE(response.client_action().has_reply());
  EXPECT_EQ(response.client_action().reply().payload().type_url(),
            "type.googleapis.com/google.protobuf.Empty");
  ASSERT_TRUE(response.state_action().has_update());
  EXPECT_EQ(response.state_action().update().type_url(),
            "type.googleapis.com/example.shoppingcart.Cart");
  Cart cart = Unpack<Cart>(response.state_action().update());
  ASSERT_EQ(cart.items_size(), 1);
  EXPECT_EQ(cart.items(0).product_id(), "p1");
  EXPECT_EQ(cart.items(0).name(), "Pen");
  EXPECT_EQ(cart.items(0).quantity(), 2);
  EXPECT_FALSE(cart.checked_out());
}

TEST_F(ShoppingCartTest, AddItemSumsQuantitiesOfTheSameProduct) {
  Cart cart;
  for (int i = 0; i < 64; ++i) {
    v1::ValueEntityResponse response = Entity("AddItem", Add("p1", 1), i == 0 ? nullptr : &cart);
    ASSERT_TRUE(response.state_action().has_update());
    cart = Unpack<Cart>(response.state_action().update());
  }
  ASSERT_EQ(cart.items_size(), 1);
  EXPECT_EQ(cart.items(0).quantity(), 64);
}

TEST_F(ShoppingCartTest, AddItemAppendsOtherProducts) {
  Cart state = CartWith<Cart>({{"p1", 3}});
  v1::ValueEntityResponse response = Entity("AddItem", Add("p2", 5), &state);
  Cart cart = Unpack<Cart>(response.state_action().update());
  ASSERT_EQ(cart.items_size(), 2);
  EXPECT_EQ(cart.items(0).product_id(), "p1");
  EXPECT_EQ(cart.items(0).quantity(), 3);
  EXPECT_EQ(cart.items(1).product_id(), "p2");
  EXPECT_EQ(cart.items(1).quantity(), 5);
}

TEST_F(ShoppingCartTest, AddItemRejectsNonPositiveQuantity) {
  ExpectFailure(Entity("AddItem", Add("p1", 0)), grpc::StatusCode::INVALID_ARGUMENT);
  ExpectFailure(Entity("AddItem", Add("p1", -3)), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ShoppingCartTest, CheckedOutCartRefusesChanges) {
  Cart state = CartWith<Cart>({{"p1", 1}}, /*checked_out=*/true);
  ExpectFailure(Entity("AddItem", Add("p1", 1), &state), grpc::StatusCode::FAILED_PRECONDITION);
  RemoveLineItem remove;
  remove.set_cart_id("c1");
  remove.set_product_id("p1");
  ExpectFailure(Entity("RemoveItem", remove, &state), grpc::StatusCode::FAILED_PRECONDITION);
  CheckoutCart checkout;
  checkout.set_cart_id("c1");
  ExpectFailure(Entity("Checkout", checkout, &state), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ShoppingCartTest, RemoveItem) {
  Cart state = CartWith<Cart>({{"p1", 1}, {"p2", 2}, {"p3", 3}});
  RemoveLineItem remove;
  remove.set_cart_id("c1");
  remove.set_product_id("p2");
  v1::ValueEntityResponse response = Entity("RemoveItem", remove, &state);
  ASSERT_TRUE(response.client_action().has_reply());
  Cart cart = Unpack<Cart>(response.state_action().update());
  ASSERT_EQ(cart.items_size(), 2);
  EXPECT_EQ(cart.items(0).product_id(), "p1");
  EXPECT_EQ(cart.items(1).product_id(), "p3");
}

TEST_F(ShoppingCartTest, RemoveMissingItemIsNotFound) {
  Cart state = CartWith<Cart>({{"p1", 1}});
  RemoveLineItem remove;
  remove.set_cart_id("c1");
  remove.set_product_id("p9");
  ExpectFailure(Entity("RemoveItem", remove, &state), grpc::StatusCode::NOT_FOUND);
  ExpectFailure(Entity("RemoveItem", remove), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ShoppingCartTest, GetCartReturnsTheStateAndLeavesItUnchanged) {
  GetShoppingCart get;
  get.set_cart_id("c1");
  v1::ValueEntityResponse empty = Entity("GetCart", get);
  ASSERT_TRUE(empty.client_action().has_reply());
  EXPECT_EQ(Unpack<Cart>(empty.client_action().reply().payload()).items_size(), 0);
  EXPECT_FALSE(empty.has_state_action());

  Cart state = CartWith<Cart>({{"p1", 4}});
  v1::ValueEntityResponse full = Entity("GetCart", get, &state);
  EXPECT_EQ(Unpack<Cart>(full.client_action().reply().payload()).DebugString(),
            state.DebugString());
  EXPECT_FALSE(full.has_state_action());
}

TEST_F(ShoppingCartTest, Checkout) {
  CheckoutCart checkout;
  checkout.set_cart_id("c1");
  ExpectFailure(Entity("Checkout", checkout), grpc::StatusCode::FAILED_PRECONDITION);

  Cart state = CartWith<Cart>({{"p1", 1}});
  v1::ValueEntityResponse response = Entity("Checkout", checkout, &state);
  ASSERT_TRUE(response.client_action().has_reply());
  Cart reply = Unpack<Cart>(response.client_action().reply().payload());
  EXPECT_TRUE(reply.checked_out());
  EXPECT_EQ(reply.items_size(), 1);
  Cart stored = Unpack<Cart>(response.state_action().update());
  EXPECT_TRUE(stored.checked_out());
}

TEST_F(ShoppingCartTest, FrontAddItemsSideEffectsThenForwardsToGetCart) {
  AddLineItems request;
  request.set_cart_id("c7");
  for (const auto& [product, quantity] : {std::pair<std::string, int>{"p1", 1}, {"p2", 2}}) {
    LineItem* item = request.add_items();
    item->set_product_id(product);
    item->set_name(product + "-name");
    item->set_quantity(quantity);
  }
  v1::ActionResponse response = Action("AddItems", request);

  ASSERT_EQ(response.effects().side_effects_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const v1::SideEffect& effect = response.effects().side_effects(i);
    EXPECT_EQ(effect.service_name(), kCart);
    EXPECT_EQ(effect.method(), "AddItem");
    EXPECT_TRUE(effect.synchronous());
    EXPECT_EQ(effect.payload().type_url(), "type.googleapis.com/example.shoppingcart.AddLineItem");
    AddLineItem add = Unpack<AddLineItem>(effect.payload());
    EXPECT_EQ(add.cart_id(), "c7");
    EXPECT_EQ(add.product_id(), request.items(i).product_id());
    EXPECT_EQ(add.name(), request.items(i).name());
    EXPECT_EQ(add.quantity(), request.items(i).quantity());
  }
  ASSERT_TRUE(response.client_action().has_forward()) << response.DebugString();
  const v1::Forward& forward = response.client_action().forward();
  EXPECT_EQ(forward.service_name(), kCart);
  EXPECT_EQ(forward.method(), "GetCart");
  EXPECT_EQ(forward.payload().type_url(),
            "type.googleapis.com/example.shoppingcart.GetShoppingCart");
  EXPECT_EQ(Unpack<GetShoppingCart>(forward.payload()).cart_id(), "c7");
}

TEST_F(ShoppingCartTest, FrontAddItemsRejectsABadItemBeforeAddingAny) {
  AddLineItems request;
  request.set_cart_id("c7");
  request.add_items()->set_quantity(1);
  request.add_items()->set_quantity(0);
  v1::ActionResponse response = Action("AddItems", request);
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(response.has_effects());
}

TEST_F(ShoppingCartTest, FrontAddItemLaterRepliesAtOnceWithAnAsyncSideEffect) {
  v1::ActionResponse response = Action("AddItemLater", Add("p1", 2));
  ASSERT_TRUE(response.client_action().has_reply());
  EXPECT_EQ(response.client_action().reply().payload().type_url(),
            "type.googleapis.com/google.protobuf.Empty");
  ASSERT_EQ(response.effects().side_effects_size(), 1);
  const v1::SideEffect& effect = response.effects().side_effects(0);
  EXPECT_EQ(effect.service_name(), kCart);
  EXPECT_EQ(effect.method(), "AddItem");
  EXPECT_FALSE(effect.synchronous());
  EXPECT_EQ(Unpack<AddLineItem>(effect.payload()).quantity(), 2);
}

TEST_F(ShoppingCartTest, FrontCheckoutForwards) {
  CheckoutCart checkout;
  checkout.set_cart_id("c3");
  v1::ActionResponse response = Action("Checkout", checkout);
  ASSERT_TRUE(response.client_action().has_forward());
  EXPECT_EQ(response.client_action().forward().service_name(), kCart);
  EXPECT_EQ(response.client_action().forward().method(), "Checkout");
  EXPECT_EQ(Unpack<CheckoutCart>(response.client_action().forward().payload()).cart_id(), "c3");
  EXPECT_FALSE(response.has_effects());
}

TEST_F(ShoppingCartTest, FrontValidateItemRepliesWithTheItemOrFails) {
  LineItem item;
  item.set_product_id("p1");
  item.set_quantity(2);
  v1::ActionResponse response = Action("ValidateItem", item);
  ASSERT_TRUE(response.client_action().has_reply());
  EXPECT_EQ(Unpack<LineItem>(response.client_action().reply().payload()).product_id(), "p1");
  EXPECT_FALSE(response.has_effects());

  item.set_quantity(0);
  response = Action("ValidateItem", item);
  ASSERT_TRUE(response.client_action().has_failure());
  EXPECT_EQ(response.client_action().failure().code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
}

}  // namespace
}  // namespace example::shoppingcart
