// End to end on PostgreSQL: the real `massa serve --store postgres://...` with the example
// functions, against a throwaway PostgreSQL server the test starts on loopback.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "example/bank/bank.grpc.pb.h"
#include "example/escart/escart.grpc.pb.h"
#include "example/orders/orders.grpc.pb.h"
#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "fakes/postgres_server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"
#include "massa/test/mesh.grpc.pb.h"

namespace massa::testing {
namespace {

namespace cart = ::example::shoppingcart;
namespace escart = ::example::escart;
namespace orders = ::example::orders;
namespace bank = ::example::bank;
namespace mesh = ::massa::test::mesh;

constexpr auto kStartTimeout = std::chrono::seconds(30);

class PostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PostgresServer>> started = PostgresServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = started->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    absl::StatusOr<std::string> db = server_->CreateDatabase(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(db.ok()) << db.status();
    conninfo_ = *db;
    socket_ = "unix:" + dir_.path() + "/function.sock";
  }

  void StartFunction(const char* binary) {
    function_ = std::make_unique<Process>(std::vector<std::string>{binary, "--listen", socket_},
                                          dir_.path() + "/function.log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
  }

  void StartMassa() {
    std::optional<MassaEndpoints> endpoints = massa::testing::StartMassa(
        massa_, socket_, dir_.path() + "/unused-data",
        dir_.path() + "/massa-" + std::to_string(++massa_starts_) + ".log",
        {"--store", conninfo_});
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    endpoints_ = *endpoints;
    channel_ = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
  }

  void RestartMassa() {
    massa_->Signal(SIGTERM);
    ASSERT_EQ(massa_->Wait(std::chrono::seconds(30)), 0) << massa_->log();
    StartMassa();
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return context;
  }

  static inline PostgresServer* server_ = nullptr;
  TempDir dir_;
  std::string conninfo_;
  std::string socket_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  int massa_starts_ = 0;
  MassaEndpoints endpoints_;
  std::shared_ptr<grpc::Channel> channel_;
};

cart::AddLineItem ValueAdd(const std::string& cart_id, const std::string& product) {
  cart::AddLineItem request;
  request.set_cart_id(cart_id);
  request.set_product_id(product);
  request.set_quantity(1);
  return request;
}

int Quantity(const cart::Cart& c, const std::string& product) {
  for (const auto& item : c.items()) {
    if (item.product_id() == product) return item.quantity();
  }
  return 0;
}

TEST_F(PostgresTest, ValueCartSurvivesRestart) {
  StartFunction(CART_FUNCTION_BIN);
  StartMassa();
  auto carts = cart::ShoppingCart::NewStub(channel_);
  google::protobuf::Empty empty;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(carts->AddItem(Context().get(), ValueAdd("c1", "pen"), &empty).ok());
  }
  ASSERT_TRUE(carts->AddItem(Context().get(), ValueAdd("c1", "ink"), &empty).ok());
  RestartMassa();
  carts = cart::ShoppingCart::NewStub(channel_);
  cart::GetShoppingCart get;
  get.set_cart_id("c1");
  cart::Cart c;
  ASSERT_TRUE(carts->GetCart(Context().get(), get, &c).ok());
  EXPECT_EQ(Quantity(c, "pen"), 5);
  EXPECT_EQ(Quantity(c, "ink"), 1);
}

TEST_F(PostgresTest, EventSourcedCartSurvivesRestart) {
  StartFunction(ES_CART_FUNCTION_BIN);
  StartMassa();
  auto carts = escart::ShoppingCart::NewStub(channel_);
  google::protobuf::Empty empty;
  for (int i = 0; i < 150; ++i) {  // crosses a snapshot (massa's default: every 100)
    escart::AddLineItem add;
    add.set_cart_id("e1");
    add.set_product_id("p" + std::to_string(i % 10));
    add.set_quantity(1);
    ASSERT_TRUE(carts->AddItem(Context().get(), add, &empty).ok()) << i;
  }
  RestartMassa();
  carts = escart::ShoppingCart::NewStub(channel_);
  escart::GetShoppingCart get;
  get.set_cart_id("e1");
  escart::Cart c;
  ASSERT_TRUE(carts->GetCart(Context().get(), get, &c).ok());
  ASSERT_EQ(c.items_size(), 10);
  for (const auto& item : c.items()) EXPECT_EQ(item.quantity(), 15) << item.product_id();
}

// The database dies under load and comes back: nothing acknowledged is lost, calls during the
// outage fail with UNAVAILABLE, and massa serves again without a restart.
TEST_F(PostgresTest, DatabaseKilledUnderLoadLosesNothingAndMassaRecovers) {
  StartFunction(CART_FUNCTION_BIN);
  StartMassa();
  constexpr int kWriters = 8;
  std::vector<std::vector<std::string>> acked(kWriters);
  std::vector<absl::flat_hash_set<std::string>> unknown(kWriters);
  std::atomic<int> unavailable{0};
  std::atomic<int> acked_after_restart{0};
  std::atomic<bool> restarted{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto stub = cart::ShoppingCart::NewStub(channel_);
      google::protobuf::Empty empty;
      for (int n = 0; !stop.load(); ++n) {
        std::string product = "w" + std::to_string(w) + "-" + std::to_string(n);
        grpc::Status status =
            stub->AddItem(Context().get(), ValueAdd("pg-" + std::to_string(w), product), &empty);
        if (status.ok()) {
          acked[w].push_back(product);
          if (restarted.load()) ++acked_after_restart;
        } else {
          unknown[w].insert(product);
          if (status.error_code() == grpc::StatusCode::UNAVAILABLE) ++unavailable;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ASSERT_TRUE(server_->Kill().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(server_->Restart().ok());
  restarted = true;
  // Let the load run until every writer got through again (bounded).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (acked_after_restart.load() < 8 * kWriters && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& writer : writers) writer.join();

  EXPECT_GT(unavailable.load(), 0) << "no call saw the outage";
  EXPECT_GE(acked_after_restart.load(), 8 * kWriters) << "massa did not recover: "
                                                      << massa_->log();
  EXPECT_TRUE(massa_->running());

  RestartMassa();  // read back from the database, not from massa's cache
  auto carts = cart::ShoppingCart::NewStub(channel_);
  for (int w = 0; w < kWriters; ++w) {
    SCOPED_TRACE("writer " + std::to_string(w));
    cart::GetShoppingCart get;
    get.set_cart_id("pg-" + std::to_string(w));
    cart::Cart c;
    ASSERT_TRUE(carts->GetCart(Context().get(), get, &c).ok());
    for (const std::string& product : acked[w]) EXPECT_EQ(Quantity(c, product), 1) << product;
    for (const auto& item : c.items()) {
      const bool known = unknown[w].contains(item.product_id()) ||
                         std::find(acked[w].begin(), acked[w].end(), item.product_id()) !=
                             acked[w].end();
      EXPECT_TRUE(known) << item.product_id() << " was never sent";
    }
  }
}

}  // namespace
}  // namespace massa::testing

namespace massa::testing {
namespace {

// The promises of effectively-once and durable time on the shared store: a deadline timer, an
// event through the outbox, a keyed retry, across a kill -9.
TEST_F(PostgresTest, TimersOutboxAndIdempotencyKeysSurviveAKill) {
  StartFunction(ORDERS_FUNCTION_BIN);
  StartMassa();
  auto stub = orders::Orders::NewStub(channel_);
  orders::PlaceOrder place;
  place.set_customer("ann");
  place.set_total_cents(500);
  place.set_payment_window_ms(1500);
  orders::Order reply;
  for (const char* id : {"unpaid", "paid"}) {
    place.set_order_id(id);
    grpc::Status placed = stub->Place(Context().get(), place, &reply);
    ASSERT_TRUE(placed.ok()) << placed.error_message();
  }
  const std::string pay = R"({"amountCents":500})";
  HttpResult paid = HttpCall(endpoints_.http_port, "POST", "/orders/paid:pay", pay,
                             "application/json", {{"Idempotency-Key", "pay-1"}});
  ASSERT_EQ(paid.status, 200) << paid.body;
  massa_->Signal(SIGKILL);
  massa_->Wait(std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));  // the deadline passes meanwhile
  StartMassa();
  HttpResult retried = HttpCall(endpoints_.http_port, "POST", "/orders/paid:pay", pay,
                                "application/json", {{"Idempotency-Key", "pay-1"}});
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_NE(retried.headers.find("massa-idempotent-replay: true"), std::string::npos)
      << retried.headers;
  stub = orders::Orders::NewStub(channel_);  // the new massa
  auto reports = orders::Reports::NewStub(channel_);
  orders::GetReport get_report;
  get_report.set_report_id("all");
  orders::ReportState report;
  bool settled = false;
  grpc::Status order_status, report_status;
  for (int i = 0; i < 500 && !settled; ++i) {
    orders::GetOrder get;
    get.set_order_id("unpaid");
    order_status = stub->Get(Context().get(), get, &reply);
    report_status = reports->Get(Context().get(), get_report, &report);
    settled = order_status.ok() && reply.status() == orders::ORDER_STATUS_CANCELLED &&
              report_status.ok() && report.today().cancelled() == 1;
    if (!settled) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(settled) << order_status.error_message() << "; " << report_status.error_message()
                       << reply.DebugString() << report.DebugString()
                       << HttpCall(endpoints_.admin_port, "GET", "/v1/timers", "", "").body
                       << HttpCall(endpoints_.admin_port, "GET", "/v1/outbox", "", "").body
                       << massa_->log();
  EXPECT_EQ(report.today().placed(), 2) << "each event once";
  EXPECT_EQ(report.today().paid(), 1) << "the retry was not applied again";
}

TEST_F(PostgresTest, SpawnedActorsAndABroadcastSurviveAKill) {
  StartFunction(MESH_FUNCTION_BIN);
  StartMassa();
  for (const char* room : {"r1", "r2"}) {
    HttpResult spawned = HttpCall(endpoints_.http_port, "POST",
                                  std::string("/massa/v1/actors/massa.test.mesh.Room/") + room +
                                      "/spawn");
    ASSERT_EQ(spawned.status, 200) << spawned.body;
  }
  const auto to = [](const char* room) {
    std::unique_ptr<grpc::ClientContext> context = Context();
    context->AddMetadata("massa-entity-key", room);
    return context;
  };
  auto rooms = mesh::Room::NewStub(channel_);
  mesh::RoomState state;
  ASSERT_TRUE(rooms->Post(to("r1").get(), mesh::Note(), &state).ok());
  mesh::News news;
  news.set_text("hello");
  mesh::Empty empty;
  ASSERT_TRUE(mesh::Front::NewStub(channel_)->Announce(Context().get(), news, &empty).ok());
  massa_->Signal(SIGKILL);  // acknowledged; maybe delivered, maybe not
  massa_->Wait(std::chrono::seconds(30));
  StartMassa();
  rooms = mesh::Room::NewStub(channel_);
  const auto heard_once = [&] {
    for (const char* room : {"r1", "r2"}) {
      if (!rooms->Get(to(room).get(), mesh::GetRoom(), &state).ok() || state.news() != 1) {
        return false;
      }
    }
    return true;
  };
  for (int i = 0; i < 300 && !heard_once(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // a second delivery would show
  EXPECT_TRUE(heard_once());
  ASSERT_TRUE(rooms->Get(to("r1").get(), mesh::GetRoom(), &state).ok());
  EXPECT_EQ(state.notes(), 1);
  EXPECT_EQ(rooms->Get(to("r3").get(), mesh::GetRoom(), &state).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(PostgresTest, ConcurrentTransfersKeepTheTotal) {
  StartFunction(BANK_FUNCTION_BIN);
  StartMassa();
  auto accounts = bank::Accounts::NewStub(channel_);
  auto bank_stub = bank::Bank::NewStub(channel_);
  bank::Balance balance;
  for (int i = 0; i < 4; ++i) {
    bank::Amount amount;
    amount.set_account_id("a" + std::to_string(i));
    amount.set_amount_cents(500);
    ASSERT_TRUE(accounts->Deposit(Context().get(), amount, &balance).ok());
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      bank::TransferRequest request;
      request.set_transfer_id("t" + std::to_string(i));
      request.set_from_account("a" + std::to_string(i % 4));
      request.set_to_account("a" + std::to_string((i + 1) % 4));
      request.set_amount_cents(100 + 50 * i);
      bank::TransferReply reply;
      if (!bank_stub->Transfer(Context().get(), request, &reply).ok()) ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  int64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    bank::GetAccount get;
    get.set_account_id("a" + std::to_string(i));
    ASSERT_TRUE(accounts->GetBalance(Context().get(), get, &balance).ok());
    total += balance.balance_cents();
  }
  EXPECT_EQ(total, 2000);
  auto auditor = bank::Auditor::NewStub(channel_);
  bank::AuditLog log;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(auditor->GetLog(Context().get(), bank::GetAuditLog(), &log).ok());
    if (log.completed() + log.failed() >= 16) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(log.completed() + log.failed(), 16);
}

}  // namespace
}  // namespace massa::testing
