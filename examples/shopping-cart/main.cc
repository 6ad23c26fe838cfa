// The shopping cart example function. Usage: shopping-cart-function [--listen ADDRESS]
#include "cart.h"
#include "massa/sdk/function.h"

int main(int argc, char** argv) {
  massa::sdk::Function function("shopping-cart", "0.1.0");
  example::shoppingcart::RegisterShoppingCart(function);
  return function.Run(argc, argv);
}
