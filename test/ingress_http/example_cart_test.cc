// The google.api.http rules of the example shopping cart
// (examples/shopping-cart/proto/example/shoppingcart/shoppingcart.proto) build and route as
// its README describes.

#include <memory>
#include <string>

#include "entity/catalog.h"
#include "example/shoppingcart/shoppingcart.pb.h"
#include "fakes/fake_function.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "ingress/http/transcoder.h"

namespace massa::http {
namespace {

namespace cart = example::shoppingcart;

class ExampleCartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FunctionSpec spec;
    spec.descriptor_set = testing::DescriptorSetOf(*cart::Cart::descriptor()->file());
    ServiceSpec carts;
    carts.name = "example.shoppingcart.ShoppingCart";
    carts.kind = EntityKind::kValueEntity;
    carts.state_type = "example.shoppingcart.Cart";
    ServiceSpec front;
    front.name = "example.shoppingcart.CartFront";
    front.kind = EntityKind::kAction;
    spec.services = {carts, front};
    absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(std::move(spec));
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = *std::move(catalog);
    absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(*catalog_);
    ASSERT_TRUE(transcoder.ok()) << transcoder.status();
    transcoder_ = *std::move(transcoder);
  }

  // Transcodes `method path` with `body` and checks it reaches `service`.`rpc`.
  absl::StatusOr<TranscodedRequest> Call(const std::string& method, const std::string& path,
                                         const std::string& body, const std::string& service,
                                         const std::string& rpc) {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.content_type = "application/json";
    request.body = body;
    absl::StatusOr<TranscodedRequest> r = transcoder_->TranscodeRequest(request);
    if (r.ok()) {
      EXPECT_EQ(r->service, "example.shoppingcart." + service) << method << " " << path;
      EXPECT_EQ(r->method_name, rpc) << method << " " << path;
    }
    return r;
  }

  template <typename T>
  static T Decode(const absl::StatusOr<TranscodedRequest>& r) {
    T message;
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_TRUE(message.ParseFromString(r->payload));
    }
    return message;
  }

  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<Transcoder> transcoder_;
};

TEST_F(ExampleCartTest, Routes) {
  auto add = Decode<cart::AddLineItem>(Call("POST", "/carts/c1/items",
                                            R"({"productId": "p1", "name": "Pen", "quantity": 2})",
                                            "ShoppingCart", "AddItem"));
  EXPECT_EQ(add.cart_id(), "c1");
  EXPECT_EQ(add.product_id(), "p1");
  EXPECT_EQ(add.name(), "Pen");
  EXPECT_EQ(add.quantity(), 2);

  auto remove = Decode<cart::RemoveLineItem>(
      Call("DELETE", "/carts/c1/items/p%201", "", "ShoppingCart", "RemoveItem"));
  EXPECT_EQ(remove.cart_id(), "c1");
  EXPECT_EQ(remove.product_id(), "p 1");

  EXPECT_EQ(Decode<cart::GetShoppingCart>(Call("GET", "/carts/c1", "", "ShoppingCart", "GetCart"))
                .cart_id(),
            "c1");
  EXPECT_EQ(Decode<cart::CheckoutCart>(
                Call("POST", "/carts/c1:checkout", "{}", "ShoppingCart", "Checkout"))
                .cart_id(),
            "c1");
  EXPECT_EQ(Decode<cart::CheckoutCart>(
                Call("POST", "/front/carts/c1:checkout", "", "CartFront", "Checkout"))
                .cart_id(),
            "c1");

  auto items = Decode<cart::AddLineItems>(Call(
      "PUT", "/front/carts/c1/items",
      R"([{"productId": "p1", "quantity": 1}, {"productId": "p2"}])", "CartFront", "AddItems"));
  EXPECT_EQ(items.cart_id(), "c1");
  ASSERT_EQ(items.items_size(), 2);
  EXPECT_EQ(items.items(1).product_id(), "p2");
}

TEST_F(ExampleCartTest, CartItemsAsAJsonArray) {
  absl::StatusOr<TranscodedRequest> r =
      Call("GET", "/carts/c1/items", "", "ShoppingCart", "GetCart");
  ASSERT_TRUE(r.ok()) << r.status();
  cart::Cart reply;
  cart::LineItem* item = reply.add_items();
  item->set_product_id("p1");
  item->set_quantity(2);
  absl::StatusOr<std::string> json =
      transcoder_->TranscodeResponse(*r->route, reply.SerializeAsString());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"([{"productId":"p1","name":"","quantity":2}])");
  // The whole cart at GET /carts/{cart_id}.
  r = Call("GET", "/carts/c1", "", "ShoppingCart", "GetCart");
  ASSERT_TRUE(r.ok()) << r.status();
  json = transcoder_->TranscodeResponse(*r->route, reply.SerializeAsString());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"items":[{"productId":"p1","name":"","quantity":2}],"checkedOut":false})");
}

}  // namespace
}  // namespace massa::http
