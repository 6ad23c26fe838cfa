// Stopping massa under load, as operators do: SIGTERM while many clients write over HTTP
// (keep-alive and Connection: close) and gRPC. Every request massa accepted must be answered
// before it exits, and nothing may be applied without its answer; massa exits as soon as the
// last answer is out. And when the grace period runs out with calls still waiting for a slow
// function, massa fails them and exits cleanly (run against an ASan build when MASSA_ASAN_BIN
// names one: no use after free, no leak).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"
#include "massa/test/slow.grpc.pb.h"

namespace massa::testing {
namespace {

namespace cart = ::example::shoppingcart;
namespace slow = ::massa::test::slow;
using ::testing::HasSubstr;
using ::testing::Not;
using Steady = std::chrono::steady_clock;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr int kWriters = 16;

// The quantity of product "p" in an HTTP/JSON cart ({"items":[{"productId":"p",...,"quantity":N}]}).
int HttpQuantity(const std::string& json) {
  const size_t at = json.find("\"quantity\":");
  return at == std::string::npos ? 0 : std::stoi(json.substr(at + 11));
}

class ShutdownTest : public ::testing::Test {
 protected:
  void StartFunction(const std::string& binary, std::vector<std::string> extra = {}) {
    socket_ = "unix:" + dir_.path() + "/function.sock";
    std::vector<std::string> argv{binary, "--listen", socket_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    function_ = std::make_unique<Process>(argv, dir_.path() + "/function.log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
  }

  void StartMassa(std::vector<std::string> extra = {}, const std::string& log = "massa",
                  const std::string& binary = "") {
    std::optional<MassaEndpoints> endpoints = massa::testing::StartMassa(
        massa_, socket_, dir_.path() + "/data", dir_.path() + "/" + log + ".log", extra, binary);
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    endpoints_ = *endpoints;
  }

  // Sends SIGTERM and waits for the exit; returns when it exited.
  Steady::time_point Terminate() {
    massa_->Signal(SIGTERM);
    exit_status_ = massa_->Wait(std::chrono::seconds(60));
    return Steady::now();
  }

  TempDir dir_;
  std::string socket_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  MassaEndpoints endpoints_;
  int exit_status_ = -1;
};

// What the writers saw.
struct Tally {
  std::vector<int> ok = std::vector<int>(kWriters, 0);
  std::mutex mu;
  Steady::time_point last_answer;
  int non_ok_answers = 0;

  void Answered(int writer, bool success) {
    std::lock_guard<std::mutex> lock(mu);
    last_answer = std::max(last_answer, Steady::now());
    if (success) {
      ++ok[writer];
    } else {
      ++non_ok_answers;
    }
  }
};

TEST_F(ShutdownTest, SigtermAnswersEveryHttpRequestAndExitsRightAfterTheLast) {
  StartFunction(CART_FUNCTION_BIN);
  StartMassa({"--shutdown-grace", "10s"});
  const int port = endpoints_.http_port;
  Tally tally;
  std::atomic<bool> terminated{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const bool keep_alive = w % 2 == 0;
      const std::string target = "/carts/s" + std::to_string(w) + "/items";
      std::unique_ptr<HttpConnection> connection;
      while (true) {
        if (connection == nullptr || !connection->open()) {
          connection = std::make_unique<HttpConnection>(port);
          if (!connection->open()) {
            if (terminated.load()) return;  // refused: massa stopped accepting
            continue;
          }
        }
        HttpResult result = connection->Request("POST", target, R"({"productId":"p","quantity":1})",
                                                "application/json", keep_alive);
        if (result.status != 0) tally.Answered(w, result.status == 200);
        if (result.status == 0 && terminated.load()) return;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  terminated.store(true);
  const Steady::time_point exited = Terminate();
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(exit_status_, 0) << massa_->log();
  EXPECT_LT(exited - tally.last_answer, std::chrono::seconds(1))
      << "massa must exit as soon as the last request is answered";
  EXPECT_EQ(tally.non_ok_answers, 0) << "no request in flight may fail in a graceful stop";

  // Every write that was made durable was answered, and every answered one is there.
  StartMassa({}, "massa-2");
  int total = 0;
  for (int w = 0; w < kWriters; ++w) {
    HttpResult cart = HttpCall(endpoints_.http_port, "GET", "/carts/s" + std::to_string(w));
    ASSERT_EQ(cart.status, 200) << cart.body;
    EXPECT_EQ(HttpQuantity(cart.body), tally.ok[w]) << "writer " << w << ": " << cart.body;
    total += tally.ok[w];
  }
  EXPECT_GT(total, kWriters) << "the writers must have been writing when SIGTERM came";
}

TEST_F(ShutdownTest, SigtermAnswersEveryGrpcCallAndExitsRightAfterTheLast) {
  StartFunction(CART_FUNCTION_BIN);
  StartMassa({"--shutdown-grace", "10s"});
  auto channel = grpc::CreateChannel(endpoints_.grpc_address, grpc::InsecureChannelCredentials());
  auto carts = cart::ShoppingCart::NewStub(channel);
  Tally tally;
  std::atomic<bool> terminated{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      cart::AddLineItem add;
      add.set_cart_id("g" + std::to_string(w));
      add.set_product_id("p");
      add.set_quantity(1);
      while (true) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        google::protobuf::Empty reply;
        grpc::Status status = carts->AddItem(&context, add, &reply);
        if (status.ok()) {
          tally.Answered(w, true);
        } else if (terminated.load()) {
          return;  // refused (UNAVAILABLE) once massa stops accepting
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  terminated.store(true);
  const Steady::time_point exited = Terminate();
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(exit_status_, 0) << massa_->log();
  EXPECT_LT(exited - tally.last_answer, std::chrono::seconds(1));

  StartMassa({}, "massa-2");
  channel = grpc::CreateChannel(endpoints_.grpc_address, grpc::InsecureChannelCredentials());
  carts = cart::ShoppingCart::NewStub(channel);
  int total = 0;
  for (int w = 0; w < kWriters; ++w) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    cart::GetShoppingCart get;
    get.set_cart_id("g" + std::to_string(w));
    cart::Cart reply;
    ASSERT_TRUE(carts->GetCart(&context, get, &reply).ok());
    const int quantity = reply.items_size() == 0 ? 0 : reply.items(0).quantity();
    EXPECT_EQ(quantity, tally.ok[w]) << "writer " << w;
    total += tally.ok[w];
  }
  EXPECT_GT(total, kWriters);
}

// The grace period runs out while every call waits for a function that takes 2 s: massa fails
// them (UNAVAILABLE over gRPC, 503 over HTTP, each with an answer), applies none of them, and
// exits 0 without touching freed memory (the ASan build says so, when there is one).
TEST_F(ShutdownTest, DrainTimeoutFailsWhatIsLeftAndExitsCleanly) {
  StartFunction(SLOW_FUNCTION_BIN, {"--handler-threads", "16"});
  const char* asan = std::getenv("MASSA_ASAN_BIN");
  StartMassa({"--shutdown-grace", "300ms"}, "massa", asan != nullptr ? asan : "");
  auto channel = grpc::CreateChannel(endpoints_.grpc_address, grpc::InsecureChannelCredentials());
  auto counter = slow::SlowCounter::NewStub(channel);
  constexpr int kGrpc = 8;
  constexpr int kHttp = 4;
  std::atomic<int> started{0};
  std::vector<grpc::StatusCode> grpc_codes(kGrpc, grpc::StatusCode::OK);
  std::vector<int> http_statuses(kHttp, -1);
  std::vector<std::thread> clients;
  for (int c = 0; c < kGrpc; ++c) {
    clients.emplace_back([&, c] {
      slow::SleepRequest request;
      request.set_id("k" + std::to_string(c));
      request.set_ms(2000);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      slow::Count reply;
      ++started;
      grpc_codes[c] = counter->Add(&context, request, &reply).error_code();
    });
  }
  for (int c = 0; c < kHttp; ++c) {
    clients.emplace_back([&, c] {
      ++started;
      HttpResult result =
          HttpCall(endpoints_.http_port, "POST", "/massa.test.slow.SlowCounter/Add",
                   R"({"id":"h)" + std::to_string(c) + R"(","ms":2000})");
      http_statuses[c] = result.status;
    });
  }
  while (started.load() < kGrpc + kHttp) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all of them at the function
  const Steady::time_point signalled = Steady::now();
  const Steady::time_point exited = Terminate();
  for (auto& client : clients) client.join();

  EXPECT_EQ(exit_status_, 0) << massa_->log();
  EXPECT_THAT(massa_->log(), Not(HasSubstr("Sanitizer")));
  EXPECT_LT(exited - signalled, std::chrono::seconds(5)) << "300 ms grace, then fail fast";
  for (int c = 0; c < kGrpc; ++c) {
    EXPECT_EQ(grpc_codes[c], grpc::StatusCode::UNAVAILABLE) << "gRPC client " << c;
  }
  for (int c = 0; c < kHttp; ++c) {
    EXPECT_EQ(http_statuses[c], 503) << "HTTP client " << c << " must get an answer";
  }

  // None of the failed calls was applied.
  StartMassa({}, "massa-2");
  channel = grpc::CreateChannel(endpoints_.grpc_address, grpc::InsecureChannelCredentials());
  counter = slow::SlowCounter::NewStub(channel);
  for (const std::string key : {"k0", "k7", "h0"}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    slow::SleepRequest get;
    get.set_id(key);
    slow::Count count;
    ASSERT_TRUE(counter->Get(&context, get, &count).ok());
    EXPECT_EQ(count.value(), 0) << key;
  }
}

}  // namespace
}  // namespace massa::testing
