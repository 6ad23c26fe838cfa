// End to end, effectively-once and durable time: the real `massa serve` beside the example
// functions, called over gRPC and HTTP like clients would, and killed with SIGKILL while they
// call. Idempotency keys across kill rounds, the outbox across a kill before delivery, timers
// across kills before and during their ticks, missed ticks after downtime, state TTL across a
// restart, and the bad input each of these can get.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "example/orders/orders.grpc.pb.h"
#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"

namespace massa::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace cart = ::example::shoppingcart;
namespace orders = ::example::orders;
using Clock = std::chrono::steady_clock;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kEventually = std::chrono::seconds(30);

template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = kEventually) {
  return PollUntil(std::move(done), timeout);
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& idempotency_key = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!idempotency_key.empty()) context->AddMetadata("idempotency-key", idempotency_key);
  return context;
}

bool Replayed(const grpc::ClientContext& context) {
  const auto& metadata = context.GetServerInitialMetadata();
  auto it = metadata.find("massa-idempotent-replay");
  return it != metadata.end() && std::string(it->second.data(), it->second.size()) == "true";
}

// A massa (and a function) that tests start, kill and restart on the same data directory.
class Sidecar {
 public:
  explicit Sidecar(TempDir& dir) : dir_(dir), socket_("unix:" + dir.path() + "/function.sock") {}

  // Starts the function `binary` with `env` (NAME=value) in its environment.
  void StartFunction(const std::string& binary, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), {binary, "--listen", socket_});
    function_ = std::make_unique<Process>(
        argv, dir_.path() + "/function-" + std::to_string(++function_starts_) + ".log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
  }

  void StopFunction() {
    function_->Signal(SIGKILL);
    function_->Wait(std::chrono::seconds(10));
  }

  void StartMassa(std::vector<std::string> extra = {}) {
    std::optional<MassaEndpoints> endpoints = massa::testing::StartMassa(
        massa_, socket_, dir_.path() + "/data",
        dir_.path() + "/massa-" + std::to_string(++massa_starts_) + ".log", extra);
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    std::lock_guard<std::mutex> lock(mu_);
    endpoints_ = *endpoints;
    channel_ = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
  }

  // SIGKILL: no shutdown, no flush; only what was made durable survives.
  void KillMassa() {
    massa_->Signal(SIGKILL);
    EXPECT_EQ(massa_->Wait(std::chrono::seconds(30)), 128 + SIGKILL);
  }

  std::shared_ptr<grpc::Channel> channel() const {
    std::lock_guard<std::mutex> lock(mu_);
    return channel_;
  }
  int http_port() const {
    std::lock_guard<std::mutex> lock(mu_);
    return endpoints_.http_port;
  }
  int admin_port() const {
    std::lock_guard<std::mutex> lock(mu_);
    return endpoints_.admin_port;
  }
  std::string massa_log() const { return massa_->log(); }
  std::string function_log() const { return function_->log(); }

 private:
  TempDir& dir_;
  const std::string socket_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  int function_starts_ = 0;
  int massa_starts_ = 0;
  mutable std::mutex mu_;
  MassaEndpoints endpoints_;
  std::shared_ptr<grpc::Channel> channel_;
};

// ---- Idempotency keys, on the shopping cart --------------------------------------------------

class IdempotencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sidecar_.StartFunction(CART_FUNCTION_BIN);
    sidecar_.StartMassa();
  }

  static cart::AddLineItem Add(const std::string& cart_id, int quantity) {
    cart::AddLineItem add;
    add.set_cart_id(cart_id);
    add.set_product_id("pen");
    add.set_name("Pen");
    add.set_quantity(quantity);
    return add;
  }

  grpc::Status AddOverGrpc(const std::string& cart_id, int quantity, const std::string& key,
                           bool* replayed = nullptr) {
    auto stub = cart::ShoppingCart::NewStub(sidecar_.channel());
    auto context = Context(key);
    google::protobuf::Empty reply;
    grpc::Status status = stub->AddItem(context.get(), Add(cart_id, quantity), &reply);
    if (replayed != nullptr) *replayed = status.ok() && Replayed(*context);
    return status;
  }

  HttpResult AddOverHttp(const std::string& cart_id, int quantity, const std::string& key) {
    return HttpCall(sidecar_.http_port(), "POST", "/carts/" + cart_id + "/items",
                    R"({"productId":"pen","name":"Pen","quantity":)" + std::to_string(quantity) +
                        "}",
                    "application/json", {{"Idempotency-Key", key}});
  }

  int Quantity(const std::string& cart_id) {
    auto stub = cart::ShoppingCart::NewStub(sidecar_.channel());
    cart::GetShoppingCart get;
    get.set_cart_id(cart_id);
    cart::Cart reply;
    grpc::Status status = stub->GetCart(Context().get(), get, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    int quantity = 0;
    for (const auto& item : reply.items()) quantity += item.quantity();
    return quantity;
  }

  TempDir dir_;
  Sidecar sidecar_{dir_};
};

TEST_F(IdempotencyTest, ThousandRetriesAcrossKillRoundsApplyEachKeyOnce) {
  constexpr int kKeys = 50;
  constexpr int kAttempts = 1000;
  constexpr int kThreads = 4;
  constexpr int kKillRounds = 4;
  std::atomic<int> sent{0};
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};  // an answer that is neither OK nor "massa is down"
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = t; sent.fetch_add(1) < kAttempts; i += kThreads) {
        const std::string key = "key-" + std::to_string(i % kKeys);
        bool answered = false;
        if (i % 2 == 0) {
          grpc::Status status = AddOverGrpc("retried", 1, key);
          answered = status.ok();
          if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE &&
              status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
            ++wrong;
            ADD_FAILURE() << status.error_code() << " " << status.error_message();
          }
        } else {
          HttpResult result = AddOverHttp("retried", 1, key);
          answered = result.status == 200;
          if (result.status != 200 && result.status != 0 && result.status != 503) {
            ++wrong;
            ADD_FAILURE() << result.status << " " << result.body;
          }
        }
        if (answered) ++ok;
      }
    });
  }
  // Kill -9 and restart while the clients retry.
  for (int round = 0; round < kKillRounds && sent.load() < kAttempts; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sidecar_.KillMassa();
    sidecar_.StartMassa();
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(ok.load(), kKeys) << "most retries were answered";
  // Every key once more: each is answered (from its record, where it was applied before).
  int replays = 0;
  for (int i = 0; i < kKeys; ++i) {
    bool replayed = false;
    grpc::Status status = AddOverGrpc("retried", 1, "key-" + std::to_string(i), &replayed);
    ASSERT_TRUE(status.ok()) << status.error_message();
    replays += replayed ? 1 : 0;
  }
  EXPECT_GE(replays, kKeys - 5);
  EXPECT_EQ(Quantity("retried"), kKeys) << "exactly one change per key";
}

TEST_F(IdempotencyTest, RetriesGetTheStoredReplyOverGrpcAndHttp) {
  bool replayed = true;
  ASSERT_TRUE(AddOverGrpc("c", 2, "k1", &replayed).ok());
  EXPECT_FALSE(replayed);
  ASSERT_TRUE(AddOverGrpc("c", 2, "k1", &replayed).ok());
  EXPECT_TRUE(replayed);
  HttpResult http = AddOverHttp("c", 2, "k1");
  EXPECT_EQ(http.status, 200) << http.body;
  EXPECT_THAT(http.headers, HasSubstr("massa-idempotent-replay: true"));
  EXPECT_EQ(Quantity("c"), 2);
  HttpResult fresh = AddOverHttp("c", 2, "k2");
  EXPECT_EQ(fresh.status, 200);
  EXPECT_THAT(fresh.headers, Not(HasSubstr("massa-idempotent-replay")));
  EXPECT_EQ(Quantity("c"), 4);
}

TEST_F(IdempotencyTest, AUsedKeyWithAnotherRequestIsInvalidArgument) {
  ASSERT_TRUE(AddOverGrpc("c", 2, "k1").ok());
  grpc::Status other = AddOverGrpc("c", 3, "k1");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(other.error_message(), HasSubstr("idempotency-key 'k1' was already used"));
  HttpResult http = AddOverHttp("c", 3, "k1");
  EXPECT_EQ(http.status, 400);
  EXPECT_THAT(http.body, HasSubstr("already used for a different request"));
  EXPECT_EQ(Quantity("c"), 2);
}

TEST_F(IdempotencyTest, AKeyOverTheLimitIsInvalidArgumentNamingTheHeader) {
  const std::string key(257, 'k');
  grpc::Status status = AddOverGrpc("c", 1, key);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("idempotency-key is 257 bytes long"));
  HttpResult http = AddOverHttp("c", 1, key);
  EXPECT_EQ(http.status, 400);
  EXPECT_THAT(http.body, HasSubstr("idempotency-key is 257 bytes long"));
  EXPECT_EQ(Quantity("c"), 0);
}

TEST_F(IdempotencyTest, ConcurrentDuplicatesRunOnce) {
  constexpr int kDuplicates = 16;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kDuplicates; ++i) {
    threads.emplace_back([&, i] {
      if (i % 2 == 0) {
        ok += AddOverGrpc("c", 1, "same").ok() ? 1 : 0;
      } else {
        ok += AddOverHttp("c", 1, "same").status == 200 ? 1 : 0;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kDuplicates);
  EXPECT_EQ(Quantity("c"), 1);
}

// ---- The outbox and timers, on the orders example ------------------------------------------

class OrdersTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> env = {}, std::vector<std::string> massa_flags = {}) {
    sidecar_.StartFunction(ORDERS_FUNCTION_BIN, env);
    sidecar_.StartMassa(massa_flags);
  }

  std::unique_ptr<orders::Orders::Stub> Orders() {
    return orders::Orders::NewStub(sidecar_.channel());
  }
  std::unique_ptr<orders::Reports::Stub> Reports() {
    return orders::Reports::NewStub(sidecar_.channel());
  }

  grpc::Status Place(const std::string& id, int64_t window_ms = 0) {
    orders::PlaceOrder place;
    place.set_order_id(id);
    place.set_customer("ann");
    place.set_total_cents(500);
    place.set_payment_window_ms(window_ms);
    orders::Order reply;
    return Orders()->Place(Context().get(), place, &reply);
  }

  std::optional<orders::Order> Get(const std::string& id, grpc::Status* status_out = nullptr) {
    orders::GetOrder get;
    get.set_order_id(id);
    orders::Order reply;
    grpc::Status status = Orders()->Get(Context().get(), get, &reply);
    if (status_out != nullptr) *status_out = status;
    if (!status.ok()) return std::nullopt;
    return reply;
  }

  orders::ReportState Report() {
    orders::GetReport get;
    get.set_report_id("all");
    orders::ReportState reply;
    grpc::Status status = Reports()->Get(Context().get(), get, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return reply;
  }

  grpc::Status ScheduleClose(const std::string& cron, int64_t every_ms = 0,
                             bool skip_missed = false) {
    orders::CloseSchedule request;
    request.set_report_id("all");
    request.set_cron(cron);
    request.set_every_ms(every_ms);
    request.set_skip_missed(skip_missed);
    orders::ReportState reply;
    return Reports()->ScheduleClose(Context().get(), request, &reply);
  }

  std::string Admin(const std::string& path) {
    HttpResult result = HttpCall(sidecar_.admin_port(), "GET", path, "", "");
    EXPECT_EQ(result.status, 200) << path << ": " << result.body;
    return result.body;
  }

  // The due time of the report's close timer, or -1.
  int64_t CloseDue() {
    const std::string body = Admin("/v1/entities/example.orders.Reports/all/timers");
    const size_t at = body.find("\"due_ms\":");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + 9));
  }

  bool OutboxEmpty() { return Admin("/v1/outbox").find("\"pending\":[]") != std::string::npos; }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  TempDir dir_;
  Sidecar sidecar_{dir_};
};

TEST_F(OrdersTest, AnUnpaidOrderIsCancelledAndAPaidOneIsNot) {
  Start({"ORDERS_PAYMENT_WINDOW=1500ms"});
  HttpResult placed = HttpCall(sidecar_.http_port(), "POST", "/orders/unpaid",
                               R"({"customer":"ann","totalCents":500})");
  ASSERT_EQ(placed.status, 200) << placed.body;
  EXPECT_THAT(placed.body, HasSubstr("ORDER_STATUS_PENDING"));
  ASSERT_TRUE(Place("paid").ok());
  EXPECT_THAT(Admin("/v1/entities/example.orders.Orders/paid/timers"),
              HasSubstr("\"name\":\"payment-deadline\""));
  EXPECT_THAT(Admin("/v1/timers"), HasSubstr("\"key\":\"unpaid\""));
  HttpResult cluster = HttpCall(sidecar_.admin_port(), "GET", "/v1/cluster", "", "");
  EXPECT_EQ(cluster.status, 404) << "one node, no cluster: " << cluster.body;
  HttpResult paid = HttpCall(sidecar_.http_port(), "POST", "/orders/paid:pay",
                             R"({"amountCents":500})");
  ASSERT_EQ(paid.status, 200) << paid.body;
  EXPECT_THAT(Admin("/v1/entities/example.orders.Orders/paid/timers"),
              HasSubstr("\"timers\":[]"))
      << "paying cancelled the deadline";
  ASSERT_TRUE(Eventually([&] {
    auto order = Get("unpaid");
    return order.has_value() && order->status() == orders::ORDER_STATUS_CANCELLED;
  })) << sidecar_.massa_log();
  EXPECT_EQ(Get("paid")->status(), orders::ORDER_STATUS_PAID);
  HttpResult late = HttpCall(sidecar_.http_port(), "POST", "/orders/unpaid:pay",
                             R"({"amountCents":500})");
  EXPECT_EQ(late.status, 400) << late.body;  // FAILED_PRECONDITION
  EXPECT_THAT(late.body, HasSubstr("was cancelled: not paid within 1 s"));
  ASSERT_TRUE(Eventually([&] {
    orders::ReportState report = Report();
    return report.today().placed() == 2 && report.today().paid() == 1 &&
           report.today().cancelled() == 1;
  })) << Report().DebugString();
}

TEST_F(OrdersTest, EffectsAcknowledgedBeforeAKillAreDeliveredOnceAfterRestart) {
  constexpr int kOrders = 20;
  Start({"ORDERS_FAIL_REPORTS=1", "ORDERS_PAYMENT_WINDOW=1h"});
  for (int i = 0; i < kOrders; ++i) ASSERT_TRUE(Place("o" + std::to_string(i)).ok());
  // The reports are down: every event waits in the outbox, visibly.
  ASSERT_TRUE(Eventually([&] {
    const std::string outbox = Admin("/v1/outbox");
    size_t retried = 0;
    for (size_t at = outbox.find("\"attempts\":"); at != std::string::npos;
         at = outbox.find("\"attempts\":", at + 1)) {
      retried += outbox.compare(at, 13, "\"attempts\":0,") != 0 ? 1 : 0;
    }
    return retried == kOrders;
  })) << Admin("/v1/outbox");
  HttpResult metrics = HttpCall(sidecar_.admin_port(), "GET", "/metrics", "", "");
  EXPECT_THAT(metrics.body, HasSubstr("massa_outbox_failing " + std::to_string(kOrders)));
  EXPECT_THAT(Admin("/v1/outbox"), HasSubstr("reports are down"));
  sidecar_.KillMassa();
  sidecar_.StopFunction();
  sidecar_.StartFunction(ORDERS_FUNCTION_BIN, {"ORDERS_PAYMENT_WINDOW=1h"});
  sidecar_.StartMassa();
  ASSERT_TRUE(Eventually([&] { return OutboxEmpty(); }))
      << Admin("/v1/outbox") << sidecar_.function_log() << sidecar_.massa_log();
  EXPECT_EQ(Report().today().placed(), kOrders) << "each event exactly once";
}

TEST_F(OrdersTest, TimersDueWhileMassaIsDownFireOnceAfterRestart) {
  constexpr int kOrders = 10;
  Start({"ORDERS_PAYMENT_WINDOW=1s"});
  for (int i = 0; i < kOrders; ++i) ASSERT_TRUE(Place("o" + std::to_string(i)).ok());
  sidecar_.KillMassa();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past their due time
  sidecar_.StartMassa();
  ASSERT_TRUE(Eventually([&] {
    for (int i = 0; i < kOrders; ++i) {
      auto order = Get("o" + std::to_string(i));
      if (!order.has_value() || order->status() != orders::ORDER_STATUS_CANCELLED) return false;
    }
    return true;
  })) << sidecar_.massa_log();
  ASSERT_TRUE(Eventually([&] { return OutboxEmpty(); }));
  orders::ReportState report = Report();
  EXPECT_EQ(report.today().placed(), kOrders);
  EXPECT_EQ(report.today().cancelled(), kOrders);
  EXPECT_THAT(Admin("/v1/timers"), Not(HasSubstr("example.orders.Orders")))
      << "every deadline fired and is gone";
}

TEST_F(OrdersTest, KillsDuringTicksChangeTheStateOncePerTick) {
  Start();
  ASSERT_TRUE(ScheduleClose("", /*every_ms=*/1000).ok());
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200 + 350 * round));
    sidecar_.KillMassa();
    sidecar_.StartMassa();
  }
  ASSERT_TRUE(Eventually([&] { return Report().days_size() >= 5; }));
  orders::ReportState report = Report();
  std::set<int64_t> ticks;
  int64_t previous = 0;
  for (const orders::DailyReport& day : report.days()) {
    EXPECT_GT(day.tick_due_ms(), previous) << "ticks in order, none twice";
    EXPECT_TRUE(ticks.insert(day.tick_due_ms()).second) << "tick " << day.tick_due_ms();
    previous = day.tick_due_ms();
  }
  for (int64_t tick : ticks) EXPECT_EQ((tick - *ticks.begin()) % 1000, 0) << "on the grid";
}

// A cron expression that matches once a day, `seconds_from_now` from now (UTC).
std::string DailyAt(int seconds_from_now) {
  const std::time_t at = std::time(nullptr) + seconds_from_now;
  std::tm tm{};
  gmtime_r(&at, &tm);
  return std::to_string(tm.tm_sec) + " " + std::to_string(tm.tm_min) + " " +
         std::to_string(tm.tm_hour) + " * * *";
}

TEST_F(OrdersTest, ATickMissedWhileDownFiresOnceToCatchUp) {
  Start();
  ASSERT_TRUE(ScheduleClose(DailyAt(2)).ok());
  const int64_t due = CloseDue();
  ASSERT_GT(due, NowMs());
  sidecar_.KillMassa();
  std::this_thread::sleep_for(std::chrono::milliseconds(due - NowMs() + 2000));
  sidecar_.StartMassa();
  ASSERT_TRUE(Eventually([&] { return CloseDue() > due; })) << "moved to tomorrow";
  EXPECT_EQ(CloseDue(), due + 24 * 3600 * 1000);
  orders::ReportState report = Report();
  ASSERT_EQ(report.days_size(), 1) << "one tick for the missed one";
  EXPECT_EQ(report.days(0).tick_due_ms(), due);
}

TEST_F(OrdersTest, ATickMissedWhileDownIsSkippedUnderSkip) {
  Start();
  ASSERT_TRUE(ScheduleClose(DailyAt(2), 0, /*skip_missed=*/true).ok());
  const int64_t due = CloseDue();
  ASSERT_GT(due, NowMs());
  sidecar_.KillMassa();
  std::this_thread::sleep_for(std::chrono::milliseconds(due - NowMs() + 2000));
  sidecar_.StartMassa();
  ASSERT_TRUE(Eventually([&] { return CloseDue() > due; }));
  EXPECT_EQ(CloseDue(), due + 24 * 3600 * 1000);
  EXPECT_EQ(Report().days_size(), 0) << "the missed tick was skipped";
}

TEST_F(OrdersTest, ExpiredStateReadsAsAbsentBeforeAndAfterRestart) {
  Start({"ORDERS_PAYMENT_WINDOW=200ms", "ORDERS_CANCELLED_RETENTION=1500ms"});
  ASSERT_TRUE(Place("short-lived").ok());
  ASSERT_TRUE(Eventually([&] {
    auto order = Get("short-lived");
    return order.has_value() && order->status() == orders::ORDER_STATUS_CANCELLED;
  }));
  // The expiry sweep runs once a minute: what follows happens before it.
  ASSERT_TRUE(Eventually([&] {
    grpc::Status status;
    Get("short-lived", &status);
    return status.error_code() == grpc::StatusCode::NOT_FOUND;
  }));
  EXPECT_EQ(HttpCall(sidecar_.http_port(), "GET", "/orders/short-lived", "", "").status, 404);
  sidecar_.KillMassa();
  sidecar_.StartMassa();
  grpc::Status status;
  EXPECT_FALSE(Get("short-lived", &status).has_value());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_EQ(HttpCall(sidecar_.http_port(), "GET", "/orders/short-lived", "", "").status, 404);
  // A new order under the same id starts afresh.
  ASSERT_TRUE(Place("short-lived", 3'600'000).ok());
  EXPECT_EQ(Get("short-lived")->status(), orders::ORDER_STATUS_PENDING);
}

TEST_F(OrdersTest, BadTimersAreInvalidArgumentNamingTheField) {
  Start();
  grpc::Status negative = Place("neg", -5);
  EXPECT_EQ(negative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(negative.error_message(), HasSubstr("delay_ms is negative (-5)"));
  grpc::Status missing;
  Get("neg", &missing);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND) << "nothing was stored";
  HttpResult http = HttpCall(sidecar_.http_port(), "POST", "/orders/neg",
                             R"({"customer":"ann","totalCents":5,"paymentWindowMs":"-5"})");
  EXPECT_EQ(http.status, 400);
  EXPECT_THAT(http.body, HasSubstr("delay_ms is negative"));

  grpc::Status cron = ScheduleClose("61 * * * * *");
  EXPECT_EQ(cron.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(cron.error_message(), HasSubstr("cron: cron expression '61 * * * * *': second 61"));
  http = HttpCall(sidecar_.http_port(), "POST", "/reports/all:schedule",
                  R"({"cron":"0 0 0 32 * *"})");
  EXPECT_EQ(http.status, 400);
  EXPECT_THAT(http.body, HasSubstr("day-of-month 32 is out of range"));
  grpc::Status interval = ScheduleClose("", /*every_ms=*/10);
  EXPECT_EQ(interval.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(interval.error_message(), HasSubstr("interval_ms 10 is under the minimum of 1000"));
  EXPECT_EQ(CloseDue(), -1) << "no timer was set";
}

}  // namespace
}  // namespace massa::testing
