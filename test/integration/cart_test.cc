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
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
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
    std::optional<MassaEndpoints> endpoints =
        massa::testing::StartMassa(massa_, socket_, dir_.path() + "/data",
                                   dir_.path() + "/massa-" + std::to_string(++massa_starts_) + ".log",
                                   extra);
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    address_ = endpoints->grpc_address;
    http_port_ = endpoints->http_port;
    admin_port_ = endpoints->admin_port;
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
  int http_port_ = 0;
  int admin_port_ = 0;
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

// ---- HTTP/JSON ingress (google.api.http rules of the example) -----------------------------

TEST_F(CartTest, HttpRulesServeTheCart) {
  HttpResult r = HttpCall(http_port_, "POST", "/carts/h1/items",
                          R"({"productId":"pen","name":"Pen","quantity":2})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "{}");
  r = HttpCall(http_port_, "GET", "/carts/h1");  // get with a path variable
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("productId":"pen")"));
  EXPECT_THAT(r.body, HasSubstr(R"("quantity":2)"));
  r = HttpCall(http_port_, "GET", "/carts/h1/items");  // additional binding, response_body
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.front(), '[');
  r = HttpCall(http_port_, "PUT", "/front/carts/h1/items",  // body: "items", through an action
               R"([{"productId":"ink","quantity":1}])");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("productId":"ink")"));
  r = HttpCall(http_port_, "DELETE", "/carts/h1/items/pen", "", "");  // no body
  ASSERT_EQ(r.status, 200) << r.body;
  r = HttpCall(http_port_, "POST", "/carts/h1:checkout", "", "");  // custom verb
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("checkedOut":true)"));
  // The same state is seen over gRPC.
  cart::Cart c = GetCart("h1");
  EXPECT_TRUE(c.checked_out());
  EXPECT_EQ(Quantity(c, "ink"), 1);
  EXPECT_EQ(Quantity(c, "pen"), 0);
}

TEST_F(CartTest, HttpMethodWithoutRuleIsReachableByItsName) {
  HttpResult r = HttpCall(http_port_, "POST", "/example.shoppingcart.CartFront/ValidateItem",
                          R"({"product_id":"p","quantity":3})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("quantity":3)"));
}

TEST_F(CartTest, HttpErrorsHaveStatusAndJsonBody) {
  // Unknown route: 501.
  HttpResult r = HttpCall(http_port_, "GET", "/nowhere");
  EXPECT_EQ(r.status, 501);
  EXPECT_THAT(r.body, HasSubstr(R"("code":12)"));
  // Invalid JSON and unknown fields: 400, nothing written.
  r = HttpCall(http_port_, "POST", "/carts/e1/items", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr(R"("message":)"));
  r = HttpCall(http_port_, "POST", "/carts/e1/items", R"({"productId":"p","quantity":1,"x":2})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("x"));
  // Wrong content type: 400 naming it.
  r = HttpCall(http_port_, "POST", "/carts/e1/items", "productId=p", "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("content type"));
  // The function's failure: its code mapped, its message kept.
  r = HttpCall(http_port_, "POST", "/carts/e1/items", R"({"productId":"p","quantity":0})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("quantity must be positive"));
  r = HttpCall(http_port_, "DELETE", "/carts/e1/items/missing", "", "");
  EXPECT_EQ(r.status, 404);
  // A body over the limit (--max-message-bytes, 4 MiB): 413.
  r = HttpCall(http_port_, "POST", "/carts/e1/items", std::string(5 << 20, ' '));
  EXPECT_EQ(r.status, 413);
  // Nothing above changed the cart.
  EXPECT_EQ(GetCart("e1").items_size(), 0);
  EXPECT_TRUE(massa_->running());
}

// ---- Reflection, health, metrics, shutdown --------------------------------------------------

TEST_F(CartTest, ReflectionListsAndDescribesTheUsersServices) {
  for (int version = 0; version < 2; ++version) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    std::vector<std::string> services;
    if (version == 0) {
      auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
      auto stream = stub->ServerReflectionInfo(&context);
      grpc::reflection::v1alpha::ServerReflectionRequest request;
      request.set_list_services("");
      ASSERT_TRUE(stream->Write(request));
      grpc::reflection::v1alpha::ServerReflectionResponse response;
      ASSERT_TRUE(stream->Read(&response));
      for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
      request.set_file_containing_symbol("example.shoppingcart.ShoppingCart");
      ASSERT_TRUE(stream->Write(request));
      ASSERT_TRUE(stream->Read(&response));
      ASSERT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
      stream->WritesDone();
    } else {
      auto stub = grpc::reflection::v1::ServerReflection::NewStub(channel_);
      auto stream = stub->ServerReflectionInfo(&context);
      grpc::reflection::v1::ServerReflectionRequest request;
      request.set_list_services("");
      ASSERT_TRUE(stream->Write(request));
      grpc::reflection::v1::ServerReflectionResponse response;
      ASSERT_TRUE(stream->Read(&response));
      for (const auto& s : response.list_services_response().service()) services.push_back(s.name());
      request.set_file_containing_symbol("example.shoppingcart.Cart");
      ASSERT_TRUE(stream->Write(request));
      ASSERT_TRUE(stream->Read(&response));
      ASSERT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
      stream->WritesDone();
    }
    EXPECT_THAT(services, ::testing::Contains("example.shoppingcart.ShoppingCart"));
    EXPECT_THAT(services, ::testing::Contains("example.shoppingcart.CartFront"));
    EXPECT_THAT(services, ::testing::Contains("grpc.health.v1.Health"));
  }
}

TEST_F(CartTest, HealthFollowsTheFunctionAndShutdown) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  auto check = [&](const std::string& service) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status = health->Check(&context, request, &response);
    return status.ok() ? static_cast<int>(response.status()) : -status.error_code();
  };
  auto ready_status = [&] { return HttpCall(admin_port_, "GET", "/readyz").status; };
  // Poll (bounded) until `want` holds: readiness is re-evaluated every half second.
  auto eventually = [&](auto get, int want) {
    int got = get();
    for (int i = 0; i < 100 && got != want; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      got = get();
    }
    return got;
  };
  constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;
  constexpr int kNotServing = grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  EXPECT_EQ(HttpCall(admin_port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(eventually(ready_status, 200), 200);
  EXPECT_EQ(eventually([&] { return check(""); }, kServing), kServing);
  EXPECT_EQ(check("example.shoppingcart.ShoppingCart"), kServing);
  EXPECT_EQ(check("no.such.Service"), -grpc::StatusCode::NOT_FOUND);

  function_->Signal(SIGKILL);  // the function is gone: not ready, still alive
  function_->Wait(std::chrono::seconds(10));
  EXPECT_EQ(eventually(ready_status, 503), 503);
  EXPECT_EQ(eventually([&] { return check(""); }, kNotServing), kNotServing);
  EXPECT_EQ(HttpCall(admin_port_, "GET", "/healthz").status, 200);
  StartFunction();
  EXPECT_EQ(eventually(ready_status, 200), 200);
  EXPECT_EQ(eventually([&] { return check(""); }, kServing), kServing);

  // SIGTERM: a watcher sees NOT_SERVING before the stream ends, and massa exits 0.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::health::v1::HealthCheckRequest request;
  auto watch = health->Watch(&context, request);
  grpc::health::v1::HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(static_cast<int>(update.status()), kServing);
  StopMassa(SIGTERM);
  int last = static_cast<int>(update.status());
  while (watch->Read(&update)) last = static_cast<int>(update.status());
  EXPECT_EQ(last, kNotServing);
  EXPECT_EQ(exit_status_, 0) << massa_->log();
}

TEST_F(CartTest, MetricsCountRequests) {
  auto scrape = [&] { return HttpCall(admin_port_, "GET", "/metrics"); };
  HttpResult before = scrape();
  ASSERT_EQ(before.status, 200);
  EXPECT_THAT(before.headers, HasSubstr("text/plain"));
  ASSERT_TRUE(AddItem("m1", "pen", 1).ok());
  ASSERT_EQ(HttpCall(http_port_, "GET", "/carts/m1").status, 200);
  EXPECT_EQ(AddItem("m1", "pen", 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  HttpResult after = scrape();
  EXPECT_THAT(after.body, HasSubstr(R"(massa_requests_total{service="example.shoppingcart.ShoppingCart",method="AddItem",protocol="grpc",code="OK"} 1)"));
  EXPECT_THAT(after.body, HasSubstr(R"(massa_requests_total{service="example.shoppingcart.ShoppingCart",method="AddItem",protocol="grpc",code="INVALID_ARGUMENT"} 1)"));
  EXPECT_THAT(after.body, HasSubstr(R"(massa_requests_total{service="example.shoppingcart.ShoppingCart",method="GetCart",protocol="http",code="OK"} 1)"));
  EXPECT_THAT(after.body, HasSubstr(R"(massa_active_entities{entity_type="example.shoppingcart.ShoppingCart"} 1)"));
  EXPECT_THAT(after.body, HasSubstr("massa_function_call_duration_seconds_count"));
  EXPECT_THAT(after.body, HasSubstr("massa_store_write_duration_seconds_count 1"));
  EXPECT_THAT(before.body, ::testing::Not(HasSubstr("method=\"AddItem\"")));
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
