// End to end: the real `massa serve` and the real example function as processes on loopback,
// called through gRPC like any client would.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"

namespace massa::testing {
namespace {

using ::testing::HasSubstr;
namespace cart = ::example::shoppingcart;

constexpr auto kStartTimeout = std::chrono::seconds(30);

class CartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = "unix:" + dir_.path() + "/function.sock";
    StartFunction();
    StartMassa();
  }

  void StartFunction() {
    function_ = std::make_unique<Process>(
        std::vector<std::string>{CART_FUNCTION_BIN, "--listen", socket_},
        dir_.path() + "/function-" + std::to_string(++function_starts_) + ".log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
  }

  void StartMassa(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {MASSA_BIN,       "serve",
                                     "--function",    socket_,
                                     "--grpc-listen", "127.0.0.1:0",
                                     "--data-dir",    dir_.path() + "/data",
                                     "--log-level",   "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    massa_ = std::make_unique<Process>(
        argv, dir_.path() + "/massa-" + std::to_string(++massa_starts_) + ".log");
    auto line = massa_->WaitForLine("massa: serving gRPC on ", kStartTimeout);
    ASSERT_TRUE(line.has_value()) << massa_->log();
    address_ = line->substr(line->rfind(' ') + 1);
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    carts_ = cart::ShoppingCart::NewStub(channel_);
    front_ = cart::CartFront::NewStub(channel_);
  }

  void StopMassa(int signal) {
    massa_->Signal(signal);
    exit_status_ = massa_->Wait(std::chrono::seconds(30));
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return context;
  }

  grpc::Status AddItem(const std::string& cart_id, const std::string& product, int quantity) {
    cart::AddLineItem request;
    request.set_cart_id(cart_id);
    request.set_product_id(product);
    request.set_name("Product " + product);
    request.set_quantity(quantity);
    google::protobuf::Empty reply;
    return carts_->AddItem(Context().get(), request, &reply);
  }

  cart::Cart GetCart(const std::string& cart_id, grpc::Status* status_out = nullptr) {
    cart::GetShoppingCart request;
    request.set_cart_id(cart_id);
    cart::Cart reply;
    grpc::Status status = carts_->GetCart(Context().get(), request, &reply);
    if (status_out != nullptr) *status_out = status;
    EXPECT_TRUE(status.ok() || status_out != nullptr) << status.error_message();
    return reply;
  }

  static int Quantity(const cart::Cart& c, const std::string& product) {
    for (const auto& item : c.items()) {
      if (item.product_id() == product) return item.quantity();
    }
    return 0;
  }

  // Calls a method with raw request bytes, as a client with a broken encoder would.
  grpc::Status RawCall(const std::string& method, const std::string& bytes) {
    grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer> stub(channel_);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    auto context = Context();
    std::mutex mu;
    std::condition_variable cv;
    std::optional<grpc::Status> result;
    grpc::StubOptions options;
    stub.UnaryCall(context.get(), method, options, &request, &response, [&](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      result = std::move(s);
      cv.notify_one();
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return result.has_value(); });
    return *result;
  }

  TempDir dir_;
  std::string socket_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  std::string address_;
  int exit_status_ = -1;
  int massa_starts_ = 0;
  int function_starts_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<cart::ShoppingCart::Stub> carts_;
  std::unique_ptr<cart::CartFront::Stub> front_;
};

TEST_F(CartTest, AddRemoveAndGet) {
  ASSERT_TRUE(AddItem("c1", "pen", 2).ok());
  ASSERT_TRUE(AddItem("c1", "ink", 1).ok());
  ASSERT_TRUE(AddItem("c1", "pen", 3).ok());
  cart::RemoveLineItem remove;
  remove.set_cart_id("c1");
  remove.set_product_id("ink");
  google::protobuf::Empty empty;
  ASSERT_TRUE(carts_->RemoveItem(Context().get(), remove, &empty).ok());

  cart::Cart c = GetCart("c1");
  ASSERT_EQ(c.items_size(), 1);
  EXPECT_EQ(c.items(0).product_id(), "pen");
  EXPECT_EQ(c.items(0).quantity(), 5);
  EXPECT_EQ(GetCart("other").items_size(), 0);  // entities are separate
}

TEST_F(CartTest, ActionForwardsAndSideEffects) {
  cart::AddLineItems request;
  request.set_cart_id("c2");
  for (const char* product : {"a", "b", "c"}) {
    auto* item = request.add_items();
    item->set_product_id(product);
    item->set_name(product);
    item->set_quantity(1);
  }
  cart::Cart reply;
  grpc::Status status = front_->AddItems(Context().get(), request, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Synchronous side effects completed before the forward to GetCart produced the reply.
  EXPECT_EQ(reply.items_size(), 3);

  cart::CheckoutCart checkout;
  checkout.set_cart_id("c2");
  ASSERT_TRUE(front_->Checkout(Context().get(), checkout, &reply).ok());
  EXPECT_TRUE(reply.checked_out());
  status = AddItem("c2", "d", 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // An asynchronous side effect: the reply comes first, the item shows up afterwards.
  cart::AddLineItem later;
  later.set_cart_id("c3");
  later.set_product_id("late");
  later.set_quantity(4);
  google::protobuf::Empty empty;
  ASSERT_TRUE(front_->AddItemLater(Context().get(), later, &empty).ok());
  int quantity = 0;
  for (int i = 0; i < 500 && quantity == 0; ++i) {
    quantity = Quantity(GetCart("c3"), "late");
    if (quantity == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(quantity, 4);
}

TEST_F(CartTest, StateSurvivesRestart) {
  ASSERT_TRUE(AddItem("keep", "pen", 7).ok());
  StopMassa(SIGTERM);
  EXPECT_EQ(exit_status_, 0) << massa_->log();
  StartMassa();
  EXPECT_EQ(Quantity(GetCart("keep"), "pen"), 7);
}

TEST_F(CartTest, KillNineKeepsEveryAcknowledgedWrite) {
  constexpr int kWriters = 8;
  constexpr int kWritesEach = 25;
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWritesEach; ++i) {
        if (AddItem("crash-" + std::to_string(w), "p" + std::to_string(i), 1).ok()) {
          acknowledged.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_EQ(acknowledged.load(), kWriters * kWritesEach);
  StopMassa(SIGKILL);  // no shutdown, no flush: only what was fsync'd survives
  EXPECT_EQ(exit_status_, 128 + SIGKILL);
  StartMassa();
  for (int w = 0; w < kWriters; ++w) {
    cart::Cart c = GetCart("crash-" + std::to_string(w));
    EXPECT_EQ(c.items_size(), kWritesEach) << "cart crash-" << w;
  }
}

TEST_F(CartTest, ConcurrentCommandsOnOneEntityLoseNothing) {
  constexpr int kCommands = 64;
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < kCommands; ++i) {
    callers.emplace_back([&] {
      if (AddItem("hot", "counter", 1).ok()) ok.fetch_add(1);
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok.load(), kCommands);
  EXPECT_EQ(Quantity(GetCart("hot"), "counter"), kCommands);
}

TEST_F(CartTest, UnknownServiceOrMethodIsUnimplemented) {
  grpc::Status status = RawCall("/nope.Service/Method", "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(status.error_message(), HasSubstr("nope.Service"));
  status = RawCall("/example.shoppingcart.ShoppingCart/Explode", "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(status.error_message(), HasSubstr("Explode"));
}

TEST_F(CartTest, MissingEntityKeyIsInvalidArgument) {
  grpc::Status status = AddItem("", "pen", 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("cart_id"));
}

TEST_F(CartTest, MalformedRequestIsInvalidArgument) {
  grpc::Status status =
      RawCall("/example.shoppingcart.ShoppingCart/AddItem", std::string("\xff\xff\xff\xff", 4));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("does not decode"));
}

TEST_F(CartTest, HandlerFailureChangesNothing) {
  ASSERT_TRUE(AddItem("f", "pen", 2).ok());
  grpc::Status status = AddItem("f", "pen", 0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("quantity"));
  EXPECT_EQ(Quantity(GetCart("f"), "pen"), 2);
}

TEST_F(CartTest, FunctionDownIsUnavailableAndMassaReconnects) {
  ASSERT_TRUE(AddItem("r", "pen", 1).ok());
  function_->Signal(SIGKILL);
  function_->Wait(std::chrono::seconds(10));
  grpc::Status status = AddItem("r", "pen", 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  StartFunction();
  // The channel reconnects with backoff; the first calls may still see UNAVAILABLE.
  for (int i = 0; i < 300; ++i) {
    status = AddItem("r", "pen", 1);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Quantity(GetCart("r"), "pen"), 2);  // the failed command changed nothing
  EXPECT_TRUE(massa_->running());
}

TEST_F(CartTest, CallSubcommandSpeaksJson) {
  std::string command = std::string(MASSA_BIN) + " call --address " + address_ +
                        " example.shoppingcart.ShoppingCart/AddItem "
                        "'{\"cart_id\":\"cli\",\"product_id\":\"pen\",\"quantity\":3}' 2>&1 && " +
                        MASSA_BIN + " call --address " + address_ +
                        " example.shoppingcart.ShoppingCart/GetCart '{\"cart_id\":\"cli\"}' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_THAT(output, HasSubstr("\"quantity\":3"));

  command = std::string(MASSA_BIN) + " call --address " + address_ +
            " example.shoppingcart.ShoppingCart/GetCart '{\"nope\":1}' 2>&1";
  pipe = popen(command.c_str(), "r");
  output.clear();
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  EXPECT_NE(pclose(pipe), 0);
  EXPECT_THAT(output, HasSubstr("nope"));
}

// Startup problems stop massa with one line that names the problem.
TEST(MassaStartupTest, BadOptionValueNamesTheOption) {
  TempDir dir;
  Process massa({MASSA_BIN, "serve", "--passivation-timeout", "soon"}, dir.path() + "/log");
  EXPECT_EQ(massa.Wait(std::chrono::seconds(10)), 2);
  EXPECT_THAT(massa.log(), HasSubstr("--passivation-timeout"));
  EXPECT_THAT(massa.log(), HasSubstr("'soon' is not a duration"));
}

TEST(MassaStartupTest, BadYamlKeyIsRefused) {
  TempDir dir;
  {
    std::ofstream yaml(dir.path() + "/massa.yaml");
    yaml << "store: memory\nno-such-option: 1\n";
  }
  Process massa({MASSA_BIN, "serve", "--config", dir.path() + "/massa.yaml"},
                dir.path() + "/log");
  EXPECT_EQ(massa.Wait(std::chrono::seconds(10)), 2);
  EXPECT_THAT(massa.log(), HasSubstr("no-such-option"));
}

TEST(MassaStartupTest, UnreachableFunctionStopsWithAClearError) {
  TempDir dir;
  Process massa({MASSA_BIN, "serve", "--function", "unix:" + dir.path() + "/nobody.sock",
                 "--store", "memory", "--grpc-listen", "127.0.0.1:0", "--discovery-timeout",
                 "1s"},
                dir.path() + "/log");
  EXPECT_EQ(massa.Wait(std::chrono::seconds(30)), 1);
  EXPECT_THAT(massa.log(), HasSubstr("did not answer discovery"));
}

}  // namespace
}  // namespace massa::testing
