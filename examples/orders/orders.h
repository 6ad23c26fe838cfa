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
  // How long a cancelled order is kept before it expires (reads as not found).
  std::chrono::milliseconds cancelled_retention = std::chrono::hours(24 * 30);
  // Demonstrations and tests: Reports.Record fails with UNAVAILABLE, as a target that is down
  // would; Massa's outbox keeps the orders' events and retries them.
  bool fail_reports = false;
};

void RegisterOrders(massa::sdk::Function& function, OrdersOptions options = {});

}  // namespace example::orders
