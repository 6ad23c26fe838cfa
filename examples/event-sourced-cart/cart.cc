#include "cart.h"

#include <algorithm>
#include <string>
#include <utility>

#include "example/escart/escart.pb.h"
#include "google/protobuf/empty.pb.h"

namespace example::escart {
namespace {

using google::protobuf::Empty;
using massa::sdk::Code;
using massa::sdk::Fail;
using massa::sdk::Result;
using CartContext = massa::sdk::EventContext<Cart>;

constexpr char kShoppingCart[] = "example.escart.ShoppingCart";

// The line of `product_id` in `cart`, or null.
const LineItem* FindLine(const Cart& cart, const std::string& product_id) {
  auto line = std::find_if(cart.items().begin(), cart.items().end(),
                           [&](const LineItem& item) { return item.product_id() == product_id; });
  return line == cart.items().end() ? nullptr : &*line;
}

// ---- Command handlers: check the command against the state, then emit events ----

Result<Empty> AddItem(CartContext& ctx, const AddLineItem& cmd) {
  if (cmd.quantity() <= 0) {
    return Fail(Code::kInvalidArgument,
                "quantity must be positive, got " + std::to_string(cmd.quantity()));
  }
  if (ctx.state().checked_out()) return Fail("cart " + cmd.cart_id() + " is checked out");
  ItemAdded added;
  LineItem* item = added.mutable_item();
  item->set_product_id(cmd.product_id());
  item->set_name(cmd.name());
  item->set_quantity(cmd.quantity());
  ctx.Emit(added);
  return Empty();
}

Result<Empty> RemoveItem(CartContext& ctx, const RemoveLineItem& cmd) {
  if (ctx.state().checked_out()) return Fail("cart " + cmd.cart_id() + " is checked out");
  if (FindLine(ctx.state(), cmd.product_id()) == nullptr) {
    return Fail(Code::kNotFound, "cart " + cmd.cart_id() + " has no item " + cmd.product_id());
  }
  ItemRemoved removed;
  removed.set_product_id(cmd.product_id());
  ctx.Emit(removed);
  return Empty();
}

Result<Cart> GetCart(CartContext& ctx, const GetShoppingCart&) { return ctx.state(); }

Result<Cart> Checkout(CartContext& ctx, const CheckoutCart& cmd) {
  if (ctx.state().checked_out()) return Fail("cart " + cmd.cart_id() + " is already checked out");
  if (ctx.state().items().empty()) return Fail("cart " + cmd.cart_id() + " is empty");
  ctx.Emit(CheckedOut());
  return ctx.state();  // with the CheckedOut event applied
}

// ---- Event handlers: apply one event to the state; no checks, no side effects ----

void OnItemAdded(Cart& cart, const ItemAdded& event) {
  for (LineItem& line : *cart.mutable_items()) {
    if (line.product_id() == event.item().product_id()) {
      line.set_quantity(line.quantity() + event.item().quantity());
      return;
    }
  }
  *cart.add_items() = event.item();
}

void OnItemRemoved(Cart& cart, const ItemRemoved& event) {
  auto* items = cart.mutable_items();
  items->erase(
      std::remove_if(items->begin(), items->end(),
                     [&](const LineItem& item) { return item.product_id() == event.product_id(); }),
      items->end());
}

void OnCheckedOut(Cart& cart, const CheckedOut&) { cart.set_checked_out(true); }

}  // namespace

void RegisterShoppingCart(massa::sdk::Function& function, massa::sdk::EventSourcedOptions options) {
  function.AddEventSourcedEntity<Cart>(kShoppingCart, std::move(options))
      .Handle("AddItem", AddItem)
      .Handle("RemoveItem", RemoveItem)
      .Handle("GetCart", GetCart)
      .Handle("Checkout", Checkout)
      .OnEvent(OnItemAdded)
      .OnEvent(OnItemRemoved)
      .OnEvent(OnCheckedOut);
}

}  // namespace example::escart
