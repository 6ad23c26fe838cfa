// The orders example function. Usage: orders-function [--listen ADDRESS]
// Environment: ORDERS_PAYMENT_WINDOW (a duration such as 15m, 30s, 500ms; default 15m),
// ORDERS_REPORT_CRON (default "0 0 0 * * *", midnight UTC), ORDERS_CANCELLED_RETENTION (how long
// a cancelled order is kept; default 720h) and ORDERS_FAIL_REPORTS=1 (the reports refuse every
// event with UNAVAILABLE, as if down: Massa's outbox keeps and retries them).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "massa/sdk/function.h"
#include "orders.h"

namespace {

// "500ms", "30s", "15m", "2h"; nullopt-like -1 when malformed.
long long ParseMillis(const std::string& text) {
  size_t end = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &end);
  } catch (...) {
    return -1;
  }
  const std::string unit = text.substr(end);
  if (unit == "ms") return value;
  if (unit == "s") return value * 1000;
  if (unit == "m") return value * 60'000;
  if (unit == "h") return value * 3'600'000;
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  example::orders::OrdersOptions options;
  if (const char* window = std::getenv("ORDERS_PAYMENT_WINDOW"); window != nullptr) {
    const long long ms = ParseMillis(window);
    if (ms <= 0) {
      std::fprintf(stderr, "orders-function: ORDERS_PAYMENT_WINDOW '%s' is not a duration\n",
                   window);
      return 2;
    }
    options.payment_window = std::chrono::milliseconds(ms);
  }
  if (const char* cron = std::getenv("ORDERS_REPORT_CRON"); cron != nullptr) {
    options.report_cron = cron;
  }
  if (const char* retention = std::getenv("ORDERS_CANCELLED_RETENTION"); retention != nullptr) {
    const long long ms = ParseMillis(retention);
    if (ms <= 0) {
      std::fprintf(stderr,
                   "orders-function: ORDERS_CANCELLED_RETENTION '%s' is not a duration\n",
                   retention);
      return 2;
    }
    options.cancelled_retention = std::chrono::milliseconds(ms);
  }
  if (const char* fail = std::getenv("ORDERS_FAIL_REPORTS"); fail != nullptr) {
    options.fail_reports = std::string(fail) == "1";
  }
  massa::sdk::Function function("orders", "0.1.0");
  example::orders::RegisterOrders(function, options);
  return function.Run(argc, argv);
}
