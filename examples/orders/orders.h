// The orders example's handlers (see proto/example/orders/orders.proto).
#pragma once

#include <chrono>
#include <string>

#include "massa/sdk/function.h"

namespace example::orders {

struct OrdersOptions {
  // How long a placed order waits for payment before its timer cancels it.
  std::chrono::milliseconds payment_window = std::chrono::minutes(15);
  // When the report closes its day (cron, UTC): midnight.
  std::string report_cron = "0 0 0 * * *";
  // The report every order counts in.
  std::string report_id = "all";
};

void RegisterOrders(massa::sdk::Function& function, OrdersOptions options = {});

}  // namespace example::orders
