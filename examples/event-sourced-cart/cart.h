// File: examples/event-sourced-cart/cart.h
//
// The event-sourced shopping cart example: ShoppingCart, an event-sourced entity whose carts
// are journals of ItemAdded, ItemRemoved and CheckedOut events, folded into one Cart per
// cart_id (see proto/example/escart/escart.proto).
#pragma once

#include "massa/sdk/function.h"

namespace example::escart {

// Registers the command and event handlers of ShoppingCart on `function`. `options` go into
// the service's spec (snapshot_every, delete_events_on_snapshot, ...).
void RegisterShoppingCart(massa::sdk::Function& function,
                          massa::sdk::EventSourcedOptions options = {});

}  // namespace example::escart
