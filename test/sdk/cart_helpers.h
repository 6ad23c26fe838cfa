// File: test/sdk/cart_helpers.h
//
// Messages for the tests of the two cart examples, whose messages have the same fields in two
// packages (example.shoppingcart, example.escart): templates over the generated types.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace massa::sdk::testing {

// An AddLineItem command for cart c1.
template <typename AddLineItem>
AddLineItem AddItem(const std::string& product, int quantity, const std::string& name = "Pen") {
  AddLineItem add;
  add.set_cart_id("c1");
  add.set_product_id(product);
  add.set_name(name);
  add.set_quantity(quantity);
  return add;
}

// A Cart with a line per (product, quantity), each named "<product>-name".
template <typename Cart>
Cart CartWith(std::initializer_list<std::pair<std::string, int>> items, bool checked_out = false) {
  Cart cart;
  for (const auto& [product, quantity] : items) {
    auto* item = cart.add_items();
    item->set_product_id(product);
    item->set_name(product + "-name");
    item->set_quantity(quantity);
  }
  cart.set_checked_out(checked_out);
  return cart;
}

}  // namespace massa::sdk::testing
