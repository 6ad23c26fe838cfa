#include "cart.h"

#include <algorithm>
#include <string>

#include "example/shoppingcart/shoppingcart.pb.h"
#include "google/protobuf/empty.pb.h"
#include "massa/sdk/function.h"

namespace example::shoppingcart {
namespace {

using google::protobuf::Empty;
using massa::sdk::ActionContext;
using massa::sdk::Code;
using massa::sdk::Fail;
using massa::sdk::Result;
using CartContext = massa::sdk::ValueContext<Cart>;

constexpr char kShoppingCart[] = "example.shoppingcart.ShoppingCart";
constexpr char kCartFront[] = "example.shoppingcart.CartFront";

Result<Empty> AddItem(CartContext& ctx, const AddLineItem& cmd) {
  if (cmd.quantity() <= 0) {
    return Fail(Code::kInvalidArgument,
                "quantity must be positive, got " + std::to_string(cmd.quantity()));
  }
  if (ctx.state().checked_out()) return Fail("cart " + cmd.cart_id() + " is checked out");
  Cart& cart = ctx.mutable_state();
  auto line =
      std::find_if(cart.mutable_items()->begin(), cart.mutable_items()->end(),
                   [&](const LineItem& item) { return item.product_id() == cmd.product_id(); });
  if (line != cart.mutable_items()->end()) {
    line->set_quantity(line->quantity() + cmd.quantity());
  } else {
    LineItem* item = cart.add_items();
    item->set_product_id(cmd.product_id());
    item->set_name(cmd.name());
    item->set_quantity(cmd.quantity());
  }
  return Empty();
}

Result<Empty> RemoveItem(CartContext& ctx, const RemoveLineItem& cmd) {
  if (ctx.state().checked_out()) return Fail("cart " + cmd.cart_id() + " is checked out");
  const auto& items = ctx.state().items();
  auto line = std::find_if(items.begin(), items.end(), [&](const LineItem& item) {
    return item.product_id() == cmd.product_id();
  });
  if (line == items.end()) {
    return Fail(Code::kNotFound, "cart " + cmd.cart_id() + " has no item " + cmd.product_id());
  }
  const int index = static_cast<int>(line - items.begin());
  ctx.mutable_state().mutable_items()->DeleteSubrange(index, 1);
  return Empty();
}

Result<Cart> GetCart(CartContext& ctx, const GetShoppingCart&) { return ctx.state(); }

Result<Cart> Checkout(CartContext& ctx, const CheckoutCart& cmd) {
  if (ctx.state().checked_out()) return Fail("cart " + cmd.cart_id() + " is already checked out");
  if (ctx.state().items().empty()) return Fail("cart " + cmd.cart_id() + " is empty");
  ctx.mutable_state().set_checked_out(true);
  return ctx.state();
}

Result<Cart> AddItems(ActionContext& ctx, const AddLineItems& request) {
  // Check every item first, so that a bad one adds nothing.
  for (const LineItem& item : request.items()) {
    if (item.quantity() <= 0) {
      return Fail(Code::kInvalidArgument, "quantity of " + item.product_id() +
                                              " must be positive, got " +
                                              std::to_string(item.quantity()));
    }
  }
  for (const LineItem& item : request.items()) {
    AddLineItem add;
    add.set_cart_id(request.cart_id());
    add.set_product_id(item.product_id());
    add.set_name(item.name());
    add.set_quantity(item.quantity());
    ctx.SideEffect(kShoppingCart, "AddItem", add, /*synchronous=*/true);
  }
  GetShoppingCart get;
  get.set_cart_id(request.cart_id());
  return ctx.Forward(kShoppingCart, "GetCart", get);
}

Result<Empty> AddItemLater(ActionContext& ctx, const AddLineItem& request) {
  if (request.quantity() <= 0) {
    return Fail(Code::kInvalidArgument,
                "quantity must be positive, got " + std::to_string(request.quantity()));
  }
  ctx.Send(kShoppingCart, "AddItem", request);  // durable, delivered after the reply
  return Empty();
}

// Checks a line item as AddItem would, without touching any cart.
Result<LineItem> ValidateItem(ActionContext&, const LineItem& item) {
  if (item.product_id().empty()) return Fail(Code::kInvalidArgument, "product_id is empty");
  if (item.quantity() <= 0) {
    return Fail(Code::kInvalidArgument,
                "quantity must be positive, got " + std::to_string(item.quantity()));
  }
  return item;
}

Result<Cart> CheckoutFront(ActionContext& ctx, const CheckoutCart& request) {
  return ctx.Forward(kShoppingCart, "Checkout", request);
}

}  // namespace

void RegisterShoppingCart(massa::sdk::Function& function) {
  function.AddValueEntity<Cart>(kShoppingCart)
      .Handle("AddItem", AddItem)
      .Handle("RemoveItem", RemoveItem)
      .Handle("GetCart", GetCart)
      .Handle("Checkout", Checkout);
  function.AddAction(kCartFront)
      .Handle("AddItems", AddItems)
      .Handle("AddItemLater", AddItemLater)
      .Handle("ValidateItem", ValidateItem)
      .Handle("Checkout", CheckoutFront);
}

}  // namespace example::shoppingcart
