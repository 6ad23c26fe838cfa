// Registration errors are programming errors: the SDK aborts with a message saying what.
#include "example/escart/escart.pb.h"
#include "example/shoppingcart/shoppingcart.pb.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "massa/sdk/function.h"

namespace massa::sdk {
namespace {

namespace cart = example::shoppingcart;
using google::protobuf::Empty;

constexpr char kCart[] = "example.shoppingcart.ShoppingCart";
constexpr char kFront[] = "example.shoppingcart.CartFront";
constexpr char kEsCart[] = "example.escart.ShoppingCart";

Result<Empty> AddItem(ValueContext<cart::Cart>&, const cart::AddLineItem&) { return Empty(); }

class RegistrationDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(RegistrationDeathTest, UnknownService) {
  Function function("f");
  EXPECT_DEATH(function.AddAction("example.shoppingcart.NoSuch"),
               "service 'example.shoppingcart.NoSuch' is not in the linked generated code");
  EXPECT_DEATH(function.AddAction("ShoppingCart"), "fully qualified");
}

TEST_F(RegistrationDeathTest, ServiceTwice) {
  Function function("f");
  function.AddAction(kFront);
  EXPECT_DEATH(function.AddValueEntity<cart::Cart>(kFront), "registered twice");
}

TEST_F(RegistrationDeathTest, UnknownMethod) {
  Function function("f");
  auto& entity = function.AddValueEntity<cart::Cart>(kCart);
  EXPECT_DEATH((entity.Handle<cart::AddLineItem, Empty>("Add", AddItem)),
               "has no method 'Add' \\(its methods: AddItem, RemoveItem, GetCart, Checkout\\)");
}

TEST_F(RegistrationDeathTest, SubscriptionToAnUnknownMethod) {
  Function function("f");
  auto& entity = function.AddValueEntity<cart::Cart>(kCart);
  EXPECT_DEATH(entity.Subscribe("news", "Hear"),
               "subscribes to channel 'news' with method 'Hear', which it does not have");
}

TEST_F(RegistrationDeathTest, WrongTypes) {
  Function function("f");
  auto& entity = function.AddValueEntity<cart::Cart>(kCart);
  EXPECT_DEATH(
      (entity.Handle<cart::AddLineItem, cart::Cart>(
          "AddItem",
          [](ValueContext<cart::Cart>&, const cart::AddLineItem&) -> Result<cart::Cart> {
            return cart::Cart();
          })),
      "AddItem takes example.shoppingcart.AddLineItem and returns google.protobuf.Empty, but its "
      "handler takes example.shoppingcart.AddLineItem and returns example.shoppingcart.Cart");
  EXPECT_DEATH((entity.Handle<cart::RemoveLineItem, Empty>(
                   "AddItem",
                   [](ValueContext<cart::Cart>&, const cart::RemoveLineItem&) -> Result<Empty> {
                     return Empty();
                   })),
               "but its handler takes example.shoppingcart.RemoveLineItem");
}

TEST_F(RegistrationDeathTest, MethodTwice) {
  Function function("f");
  auto& entity = function.AddValueEntity<cart::Cart>(kCart);
  entity.Handle<cart::AddLineItem, Empty>("AddItem", AddItem);
  EXPECT_DEATH((entity.Handle<cart::AddLineItem, Empty>("AddItem", AddItem)), "two handlers");
}

TEST_F(RegistrationDeathTest, SharedEntityTypeOfAnotherKind) {
  Function function("f");
  function.AddValueEntity<cart::Cart>(kCart, EntityOptions{.entity_type = kFront});
  EXPECT_DEATH(function.AddAction(kFront), "share entity type");
}

TEST_F(RegistrationDeathTest, AfterStart) {
  Function function("f");
  auto& entity = function.AddValueEntity<cart::Cart>(kCart);
  ASSERT_TRUE(function.Start("127.0.0.1:0").ok());
  EXPECT_DEATH(function.AddAction(kFront), "after the function started");
  EXPECT_DEATH((entity.Handle<cart::AddLineItem, Empty>("AddItem", AddItem)),
               "after the function started");
}

TEST_F(RegistrationDeathTest, EventHandlerTwice) {
  Function function("f");
  auto& entity = function.AddEventSourcedEntity<example::escart::Cart>(kEsCart);
  auto apply = [](example::escart::Cart&, const example::escart::CheckedOut&) {};
  entity.OnEvent(apply);
  EXPECT_DEATH(entity.OnEvent(apply), "two handlers for events example.escart.CheckedOut");
}

TEST_F(RegistrationDeathTest, EventHandlerAfterStart) {
  Function function("f");
  auto& entity = function.AddEventSourcedEntity<example::escart::Cart>(kEsCart);
  ASSERT_TRUE(function.Start("127.0.0.1:0").ok());
  EXPECT_DEATH(entity.OnEvent([](example::escart::Cart&, const example::escart::CheckedOut&) {}),
               "after the function started");
}

TEST_F(RegistrationDeathTest, EventSourcedSharingAValueEntityType) {
  Function function("f");
  function.AddValueEntity<cart::Cart>(kCart);
  EXPECT_DEATH(function.AddEventSourcedEntity<example::escart::Cart>(
                   kEsCart, EventSourcedOptions{.entity_type = kCart}),
               "share entity type");
}

}  // namespace
}  // namespace massa::sdk
