// File: examples/shopping-cart/cart.h
//
// The shopping cart example: ShoppingCart, a value entity holding one Cart per cart_id, and
// CartFront, a stateless action that calls it (see proto/example/shoppingcart/shoppingcart.proto).
#pragma once

namespace massa::sdk {
class Function;
}  // namespace massa::sdk

namespace example::shoppingcart {

// Registers the handlers of ShoppingCart and CartFront on `function`.
void RegisterShoppingCart(massa::sdk::Function& function);

}  // namespace example::shoppingcart
