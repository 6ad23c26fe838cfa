// End to end with an event-sourced entity: the real `massa serve` and the event-sourced cart
// example as processes on loopback. Journals are inspected through massa's admin API
// (/v1/entities/{type}/{key}/events), which reads the store.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "example/escart/escart.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"

namespace massa::testing {
namespace {

using ::testing::HasSubstr;
namespace escart = ::example::escart;
namespace pb = google::protobuf;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr char kCartType[] = "example.escart.ShoppingCart";

// One event as the admin API shows it.
struct JournalEvent {
  uint64_t sequence = 0;
  std::string type;
  std::string product_id;  // ItemAdded / ItemRemoved
};

struct Journal {
  uint64_t last_sequence = 0;
  uint64_t snapshot_sequence = 0;
  std::vector<JournalEvent> events;  // every event still in the journal, in order
};

class EventSourcedCartTest : public ::testing::Test {
 protected:
  void SetUp() override { socket_ = "unix:" + dir_.path() + "/function.sock"; }

  void StartFunction(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {ES_CART_FUNCTION_BIN, "--listen", socket_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    function_ = std::make_unique<Process>(
        argv, dir_.path() + "/function-" + std::to_string(++function_starts_) + ".log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
  }

  void StartMassa(std::vector<std::string> extra = {}) {
    std::optional<MassaEndpoints> endpoints = massa::testing::StartMassa(
        massa_, socket_, dir_.path() + "/data",
        dir_.path() + "/massa-" + std::to_string(++massa_starts_) + ".log", extra);
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    admin_port_ = endpoints->admin_port;
    http_port_ = endpoints->http_port;
    channel_ = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
    carts_ = escart::ShoppingCart::NewStub(channel_);
  }

  void RestartMassa(std::vector<std::string> extra = {}) {
    massa_->Signal(SIGTERM);
    ASSERT_EQ(massa_->Wait(std::chrono::seconds(30)), 0) << massa_->log();
    StartMassa(std::move(extra));
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return context;
  }

  grpc::Status AddItem(escart::ShoppingCart::Stub& stub, const std::string& cart_id,
                       const std::string& product, int quantity) {
    escart::AddLineItem request;
    request.set_cart_id(cart_id);
    request.set_product_id(product);
    request.set_name("Product " + product);
    request.set_quantity(quantity);
    pb::Empty reply;
    return stub.AddItem(Context().get(), request, &reply);
  }
  grpc::Status AddItem(const std::string& cart_id, const std::string& product, int quantity) {
    return AddItem(*carts_, cart_id, product, quantity);
  }

  escart::Cart GetCart(const std::string& cart_id) {
    escart::GetShoppingCart request;
    request.set_cart_id(cart_id);
    escart::Cart reply;
    grpc::Status status = carts_->GetCart(Context().get(), request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return reply;
  }

  static int Quantity(const escart::Cart& cart, const std::string& product) {
    for (const auto& item : cart.items()) {
      if (item.product_id() == product) return item.quantity();
    }
    return 0;
  }

  // The whole journal of one cart, read page by page from the admin API.
  Journal ReadJournal(const std::string& cart_id) {
    Journal journal;
    uint64_t from = 1;
    while (true) {
      HttpResult result =
          HttpCall(admin_port_, "GET",
                   "/v1/entities/" + std::string(kCartType) + "/" + cart_id +
                       "/events?limit=1000&from=" + std::to_string(from));
      EXPECT_EQ(result.status, 200) << result.body;
      pb::Struct page;
      EXPECT_TRUE(pb::util::JsonStringToMessage(result.body, &page).ok()) << result.body;
      const auto& fields = page.fields();
      journal.last_sequence = static_cast<uint64_t>(fields.at("last_sequence").number_value());
      journal.snapshot_sequence =
          static_cast<uint64_t>(fields.at("snapshot_sequence").number_value());
      for (const pb::Value& value : fields.at("events").list_value().values()) {
        const auto& event = value.struct_value().fields();
        JournalEvent parsed;
        parsed.sequence = static_cast<uint64_t>(event.at("sequence").number_value());
        parsed.type = event.at("type").string_value();
        const auto& payload = event.at("payload").struct_value().fields();
        if (auto item = payload.find("item"); item != payload.end()) {
          parsed.product_id = item->second.struct_value().fields().at("productId").string_value();
        } else if (auto product = payload.find("productId"); product != payload.end()) {
          parsed.product_id = product->second.string_value();
        }
        journal.events.push_back(std::move(parsed));
      }
      auto next = fields.find("next_from");
      if (next == fields.end() || result.status != 200) break;
      from = static_cast<uint64_t>(next->second.number_value());
    }
    return journal;
  }

  // Waits until massa reports no active entity of the cart type (passivated).
  bool AwaitPassivated(std::chrono::seconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      HttpResult metrics = HttpCall(admin_port_, "GET", "/metrics");
      if (metrics.status == 200 &&
          metrics.body.find("massa_active_entities{entity_type=\"" + std::string(kCartType)) ==
              std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  TempDir dir_;
  std::string socket_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  int admin_port_ = 0;
  int http_port_ = 0;
  int function_starts_ = 0;
  int massa_starts_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<escart::ShoppingCart::Stub> carts_;
};

// ---- A long journal survives passivation and restart -----------------------------------------

TEST_F(EventSourcedCartTest, CartOfAThousandEventsSurvivesPassivationAndRestart) {
  StartFunction();
  StartMassa({"--passivation-timeout", "1s"});
  constexpr int kWriters = 4;
  constexpr int kEach = 250;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        // 20 products: each gets 50 events of quantity 1.
        if (!AddItem("big", "p" + std::to_string((w * kEach + i) % 20), 1).ok()) ++failures;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  ASSERT_EQ(failures.load(), 0);

  auto expect_full_cart = [&](const char* when) {
    SCOPED_TRACE(when);
    escart::Cart cart = GetCart("big");
    ASSERT_EQ(cart.items_size(), 20);
    for (const auto& item : cart.items()) EXPECT_EQ(item.quantity(), 50) << item.product_id();
  };
  expect_full_cart("active");
  Journal journal = ReadJournal("big");
  EXPECT_EQ(journal.last_sequence, 1000u);
  EXPECT_EQ(journal.snapshot_sequence, 1000u);  // massa's default: every 100 events
  ASSERT_EQ(journal.events.size(), 1000u);
  for (size_t i = 0; i < journal.events.size(); ++i) {
    ASSERT_EQ(journal.events[i].sequence, i + 1);
    EXPECT_EQ(journal.events[i].type, "example.escart.ItemAdded");
  }

  ASSERT_TRUE(AwaitPassivated(std::chrono::seconds(30))) << "the cart never passivated";
  expect_full_cart("after passivation");
  RestartMassa({"--snapshot-every", "0"});  // no snapshot to help: the whole journal is folded
  ASSERT_TRUE(AddItem("big", "p0", 1).ok());
  EXPECT_EQ(Quantity(GetCart("big"), "p0"), 51);
  RestartMassa();
  EXPECT_EQ(Quantity(GetCart("big"), "p0"), 51);
  EXPECT_EQ(ReadJournal("big").last_sequence, 1001u);
}

// ---- Snapshots and retention as the function's spec asks -------------------------------------

TEST_F(EventSourcedCartTest, SnapshotFrequencyFromTheSpecIsHonoured) {
  StartFunction({"--snapshot-every", "7"});
  StartMassa();
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(AddItem("s", "p" + std::to_string(i), i).ok());
  Journal journal = ReadJournal("s");
  EXPECT_EQ(journal.last_sequence, 10u);
  EXPECT_EQ(journal.snapshot_sequence, 7u);
  EXPECT_EQ(journal.events.size(), 10u);  // no retention: every event stays
  for (int i = 11; i <= 14; ++i) ASSERT_TRUE(AddItem("s", "p" + std::to_string(i), 1).ok());
  EXPECT_EQ(ReadJournal("s").snapshot_sequence, 14u);
  RestartMassa();
  EXPECT_EQ(GetCart("s").items_size(), 14);
}

TEST_F(EventSourcedCartTest, RetentionDeletesEventsCoveredByTheSnapshot) {
  StartFunction({"--snapshot-every", "5", "--delete-events-on-snapshot"});
  StartMassa();
  for (int i = 1; i <= 12; ++i) ASSERT_TRUE(AddItem("r", "p" + std::to_string(i), 1).ok());
  Journal journal = ReadJournal("r");
  EXPECT_EQ(journal.last_sequence, 12u);
  EXPECT_EQ(journal.snapshot_sequence, 10u);
  ASSERT_EQ(journal.events.size(), 2u);
  EXPECT_EQ(journal.events[0].sequence, 11u);
  EXPECT_EQ(journal.events[1].product_id, "p12");
  RestartMassa();
  EXPECT_EQ(GetCart("r").items_size(), 12);
}

TEST_F(EventSourcedCartTest, AKeyedRetryAcrossAKillAppendsOnce) {
  StartFunction();
  StartMassa();
  escart::AddLineItem request;
  request.set_cart_id("keyed");
  request.set_product_id("pen");
  request.set_quantity(2);
  const auto keyed = [&] {
    auto context = Context();
    context->AddMetadata("idempotency-key", "add-pen-1");
    pb::Empty reply;
    grpc::Status status = carts_->AddItem(context.get(), request, &reply);
    EXPECT_TRUE(status.ok()) << status.error_message();
    const auto& metadata = context->GetServerInitialMetadata();
    return metadata.find("massa-idempotent-replay") != metadata.end();
  };
  EXPECT_FALSE(keyed());
  EXPECT_TRUE(keyed());
  massa_->Signal(SIGKILL);
  massa_->Wait(std::chrono::seconds(30));
  StartMassa();
  EXPECT_TRUE(keyed()) << "answered from the record after the restart";
  EXPECT_EQ(ReadJournal("keyed").last_sequence, 1u) << "one event for one key";
  EXPECT_EQ(Quantity(GetCart("keyed"), "pen"), 2);
}

TEST_F(EventSourcedCartTest, RulesAndHttpRoutes) {
  StartFunction();
  StartMassa();
  EXPECT_EQ(AddItem("h", "x", 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  HttpResult added = HttpCall(http_port_, "POST", "/es/carts/h/items",
                              R"({"productId":"apple","name":"Apple","quantity":3})");
  EXPECT_EQ(added.status, 200) << added.body;
  HttpResult cart = HttpCall(http_port_, "GET", "/es/carts/h");
  EXPECT_EQ(cart.status, 200);
  EXPECT_THAT(cart.body, HasSubstr("\"apple\""));
  HttpResult missing = HttpCall(http_port_, "DELETE", "/es/carts/h/items/pear");
  EXPECT_EQ(missing.status, 404) << missing.body;
  // The failed commands persisted nothing.
  Journal journal = ReadJournal("h");
  EXPECT_EQ(journal.last_sequence, 1u);

  HttpResult unknown = HttpCall(admin_port_, "GET", "/v1/entities/no.Such/h/events");
  EXPECT_EQ(unknown.status, 404);
  HttpResult bad_limit =
      HttpCall(admin_port_, "GET", std::string("/v1/entities/") + kCartType + "/h/events?limit=0");
  EXPECT_EQ(bad_limit.status, 400);
  HttpResult stream =
      HttpCall(admin_port_, "GET", std::string("/v1/entity-types/") + kCartType + "/events");
  EXPECT_EQ(stream.status, 200);
  EXPECT_THAT(stream.body, HasSubstr("\"offset\":1"));
  EXPECT_THAT(stream.body, HasSubstr("\"key\":\"h\""));
}

// ---- Crash: kill -9 under load, nothing acknowledged is lost or doubled ----------------------

TEST_F(EventSourcedCartTest, KillNineUnderLoadLosesNoAcknowledgedEvent) {
  StartFunction({"--snapshot-every", "16"});  // snapshots are taken during the load too
  constexpr int kWriters = 16;
  constexpr int kRounds = 3;
  // Per writer: products acknowledged (in order) and products whose outcome is unknown.
  std::vector<std::vector<std::string>> acked(kWriters);
  std::vector<absl::flat_hash_set<std::string>> unknown(kWriters);
  std::vector<int> next(kWriters, 0);
  std::mt19937 random(std::random_device{}());

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    StartMassa();
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        auto stub = escart::ShoppingCart::NewStub(channel_);
        while (!stop.load()) {
          std::string product = "w" + std::to_string(w) + "-" + std::to_string(next[w]++);
          grpc::Status status = AddItem(*stub, "crash-" + std::to_string(w), product, 1);
          if (status.ok()) {
            acked[w].push_back(product);
          } else {
            unknown[w].insert(product);
            if (status.error_code() == grpc::StatusCode::UNAVAILABLE) return;  // massa is gone
          }
        }
      });
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 1200)(random)));
    massa_->Signal(SIGKILL);
    massa_->Wait(std::chrono::seconds(30));
    stop = true;
    for (auto& writer : writers) writer.join();
  }

  StartMassa();
  size_t total_acked = 0;
  for (int w = 0; w < kWriters; ++w) {
    SCOPED_TRACE("writer " + std::to_string(w));
    const std::string cart_id = "crash-" + std::to_string(w);
    Journal journal = ReadJournal(cart_id);
    ASSERT_EQ(journal.events.size(), journal.last_sequence);
    std::vector<std::string> present;  // acknowledged products, in journal order
    absl::flat_hash_set<std::string> seen;
    for (size_t i = 0; i < journal.events.size(); ++i) {
      const JournalEvent& event = journal.events[i];
      ASSERT_EQ(event.sequence, i + 1) << "gap or reordering in the journal";
      ASSERT_TRUE(seen.insert(event.product_id).second) << event.product_id << " twice";
      if (unknown[w].contains(event.product_id)) continue;  // in flight at a kill: may be there
      present.push_back(event.product_id);
    }
    EXPECT_EQ(present, acked[w]) << "acknowledged events missing or out of order";
    total_acked += acked[w].size();

    // The state folds to what the acknowledged replies said: one of each product, in order.
    escart::Cart cart = GetCart(cart_id);
    ASSERT_EQ(static_cast<size_t>(cart.items_size()), journal.events.size());
    for (int i = 0; i < cart.items_size(); ++i) {
      EXPECT_EQ(cart.items(i).product_id(), journal.events[static_cast<size_t>(i)].product_id);
      EXPECT_EQ(cart.items(i).quantity(), 1);
    }
  }
  EXPECT_GT(total_acked, 0u) << "the load never got an acknowledgement";
  std::printf("crash test: %zu acknowledged events over %d kill -9 rounds, all present once\n",
              total_acked, kRounds);
}

}  // namespace
}  // namespace massa::testing
