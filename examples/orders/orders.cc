#include "orders.h"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "example/orders/orders.pb.h"
#include "google/protobuf/empty.pb.h"

namespace example::orders {
namespace {

using massa::sdk::Code;
using massa::sdk::Fail;
using massa::sdk::Result;
using massa::sdk::Schedule;
using massa::sdk::ValueContext;

constexpr char kOrders[] = "example.orders.Orders";
constexpr char kReports[] = "example.orders.Reports";
constexpr char kPaymentDeadline[] = "payment-deadline";
constexpr char kDailyReport[] = "daily-report";
constexpr int kDaysKept = 30;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string UtcNow() {
  // system_clock, not time(): time() reads a coarse clock that may still show the previous
  // second just after a cron tick.
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Tells the report about an order event: an asynchronous side effect, which Massa writes to
// its outbox with the order's state change and delivers once it is durable.
void Count(massa::sdk::CommandContext& ctx, const OrdersOptions& options, OrderEventKind kind,
           const Order& order) {
  RecordOrderEvent event;
  event.set_report_id(options.report_id);
  event.set_kind(kind);
  event.set_amount_cents(order.total_cents());
  event.set_order_id(order.order_id());
  ctx.SideEffect(kReports, "Record", event);
}

}  // namespace

void RegisterOrders(massa::sdk::Function& function, OrdersOptions options) {
  function.AddValueEntity<Order>(kOrders)
      .Handle("Place",
              [options](ValueContext<Order>& ctx, const PlaceOrder& request) -> Result<Order> {
                if (ctx.has_state()) {
                  return Fail(Code::kAlreadyExists, "order " + request.order_id() + " exists");
                }
                if (request.total_cents() <= 0) {
                  return Fail(Code::kInvalidArgument, "total_cents must be positive");
                }
                // A negative window is passed on as is: Massa refuses the timer (delay_ms is
                // negative) with INVALID_ARGUMENT, and nothing of the order is stored.
                const std::chrono::milliseconds window =
                    request.payment_window_ms() != 0
                        ? std::chrono::milliseconds(request.payment_window_ms())
                        : options.payment_window;
                Order& order = ctx.mutable_state();
                order.set_order_id(request.order_id());
                order.set_customer(request.customer());
                order.set_total_cents(request.total_cents());
                order.set_status(ORDER_STATUS_PENDING);
                order.set_placed_ms(NowMs());
                order.set_pay_by_ms(order.placed_ms() + window.count());
                ExpireOrder expire;
                expire.set_order_id(request.order_id());
                ctx.ScheduleTimer(kPaymentDeadline, "Expire", expire, Schedule::After(window));
                Count(ctx, options, ORDER_EVENT_PLACED, order);
                return order;
              })
      .Handle("Pay",
              [options](ValueContext<Order>& ctx, const PayOrder& request) -> Result<Order> {
                if (!ctx.has_state()) {
                  return Fail(Code::kNotFound, "no order " + request.order_id());
                }
                const Order& current = ctx.state();
                if (current.status() == ORDER_STATUS_CANCELLED) {
                  return Fail(Code::kFailedPrecondition,
                              "order " + request.order_id() + " was cancelled: " +
                                  current.cancel_reason());
                }
                if (current.status() == ORDER_STATUS_PAID) {
                  return Fail(Code::kFailedPrecondition,
                              "order " + request.order_id() + " is already paid");
                }
                if (request.amount_cents() != current.total_cents()) {
                  return Fail(Code::kInvalidArgument,
                              "amount_cents " + std::to_string(request.amount_cents()) +
                                  " is not the order's total " +
                                  std::to_string(current.total_cents()));
                }
                Order& order = ctx.mutable_state();
                order.set_status(ORDER_STATUS_PAID);
                order.set_paid_ms(NowMs());
                ctx.CancelTimer(kPaymentDeadline);
                Count(ctx, options, ORDER_EVENT_PAID, order);
                return order;
              })
      .Handle("Expire",
              [options](ValueContext<Order>& ctx, const ExpireOrder&) -> Result<Order> {
                if (ctx.state().status() != ORDER_STATUS_PENDING) return ctx.state();
                Order& order = ctx.mutable_state();
                order.set_status(ORDER_STATUS_CANCELLED);
                order.set_cancelled_ms(NowMs());
                order.set_cancel_reason(
                    "not paid within " +
                    std::to_string((order.pay_by_ms() - order.placed_ms()) / 1000) + " s");
                // A cancelled order is kept for a while, then expires.
                ctx.ExpireStateAfter(options.cancelled_retention);
                Count(ctx, options, ORDER_EVENT_CANCELLED, order);
                return order;
              })
      .Handle("Get", [](ValueContext<Order>& ctx, const GetOrder& request) -> Result<Order> {
        if (!ctx.has_state()) return Fail(Code::kNotFound, "no order " + request.order_id());
        return ctx.state();
      });

  function.AddValueEntity<ReportState>(kReports)
      .Handle("Record",
              [options](ValueContext<ReportState>& ctx,
                        const RecordOrderEvent& event) -> Result<google::protobuf::Empty> {
                if (options.fail_reports) {
                  return Fail(Code::kUnavailable, "reports are down (ORDERS_FAIL_REPORTS)");
                }
                ReportState& state = ctx.mutable_state();
                DayCounts& today = *state.mutable_today();
                switch (event.kind()) {
                  case ORDER_EVENT_PLACED:
                    today.set_placed(today.placed() + 1);
                    break;
                  case ORDER_EVENT_PAID:
                    today.set_paid(today.paid() + 1);
                    today.set_revenue_cents(today.revenue_cents() + event.amount_cents());
                    break;
                  case ORDER_EVENT_CANCELLED:
                    today.set_cancelled(today.cancelled() + 1);
                    break;
                  default:
                    return Fail(Code::kInvalidArgument, "unknown order event kind");
                }
                if (!state.scheduled()) {  // the first event sets the daily close
                  CloseReportDay close;
                  close.set_report_id(event.report_id());
                  ctx.ScheduleTimer(kDailyReport, "CloseDay", close,
                                    Schedule::Cron(options.report_cron));
                  state.set_scheduled(true);
                }
                return google::protobuf::Empty();
              })
      .Handle("CloseDay",
              [](ValueContext<ReportState>& ctx, const CloseReportDay&) -> Result<ReportState> {
                // Each tick of the close timer runs this once: its state change is written
                // together with the timer's move to its next time.
                ReportState& state = ctx.mutable_state();
                DailyReport* day = state.add_days();
                day->set_closed_at(UtcNow());
                if (std::optional<std::string> due = ctx.metadata("massa-timer-due")) {
                  day->set_tick_due_ms(std::atoll(due->c_str()));
                }
                *day->mutable_counts() = state.today();
                state.clear_today();
                if (state.days_size() > kDaysKept) {
                  state.mutable_days()->DeleteSubrange(0, state.days_size() - kDaysKept);
                }
                return state;
              })
      .Handle("ScheduleClose",
              [](ValueContext<ReportState>& ctx,
                 const CloseSchedule& request) -> Result<ReportState> {
                CloseReportDay close;
                close.set_report_id(request.report_id());
                Schedule schedule =
                    request.every_ms() != 0
                        ? Schedule::Every(std::chrono::milliseconds(request.every_ms()))
                        : Schedule::Cron(request.cron());
                if (request.skip_missed()) schedule.SkipMissed();
                ctx.ScheduleTimer(kDailyReport, "CloseDay", close, schedule);
                ctx.mutable_state().set_scheduled(true);
                return ctx.state();
              })
      .Handle("Get", [](ValueContext<ReportState>& ctx, const GetReport&) -> Result<ReportState> {
        return ctx.state();
      });
}

}  // namespace example::orders
