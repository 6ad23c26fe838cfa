// Health checking: HealthState, and the grpc.health.v1 service served by an in-process
// grpc::Server and driven through the generated stub.

#include "ingress_grpc/local_server.h"
#include "ingress/grpc/health.h"

#include <chrono>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace massa {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::Optional;

constexpr char kCounter[] = "massa.test.Counter";

TEST(HealthStateTest, StartsNotServingAndKnowsOnlyTheServer) {
  HealthState state;
  EXPECT_THAT(state.Get(""), Optional(ServingStatus::kNotServing));
  EXPECT_EQ(state.Get(kCounter), std::nullopt);
}

TEST(HealthStateTest, FollowedServicesAnswerTheOverallStatus) {
  HealthState state;
  state.Follow(kCounter);
  EXPECT_THAT(state.Get(kCounter), Optional(ServingStatus::kNotServing));
  state.SetServing(true);
  EXPECT_THAT(state.Get(""), Optional(ServingStatus::kServing));
  EXPECT_THAT(state.Get(kCounter), Optional(ServingStatus::kServing));
  state.SetServing(false);
  EXPECT_THAT(state.Get(kCounter), Optional(ServingStatus::kNotServing));
}

TEST(HealthStateTest, OwnStatusOverridesUntilFollowedAgain) {
  HealthState state;
  state.SetServing(true);
  state.SetStatus("svc", ServingStatus::kNotServing);
  EXPECT_THAT(state.Get("svc"), Optional(ServingStatus::kNotServing));
  EXPECT_THAT(state.Get(""), Optional(ServingStatus::kServing));
  state.Follow("svc");
  EXPECT_THAT(state.Get("svc"), Optional(ServingStatus::kServing));
  state.SetStatus("", ServingStatus::kNotServing);  // "" is the overall status
  EXPECT_THAT(state.Get("svc"), Optional(ServingStatus::kNotServing));
}

TEST(HealthStateTest, ShutdownIsNotServingForGood) {
  HealthState state;
  state.Follow(kCounter);
  state.SetServing(true);
  state.Shutdown();
  state.Shutdown();  // idempotent
  EXPECT_THAT(state.Get(""), Optional(ServingStatus::kNotServing));
  EXPECT_THAT(state.Get(kCounter), Optional(ServingStatus::kNotServing));
  state.SetServing(true);  // ignored
  EXPECT_THAT(state.Get(""), Optional(ServingStatus::kNotServing));
  EXPECT_EQ(state.Get("other"), std::nullopt);
}

class HealthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.Follow(kCounter);
    service_ = NewHealthService(state_);
    server_ = testing::LocalServer::Start({service_.get()});
    ASSERT_NE(server_, nullptr);
    stub_ = grpc::health::v1::Health::NewStub(server_->channel());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  grpc::Status Check(const std::string& service, HealthCheckResponse::ServingStatus* status) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status result = stub_->Check(&context, request, &response);
    *status = response.status();
    return result;
  }

  // An open Watch call.
  struct Watch {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;

    // The next status sent, or UNKNOWN when the stream ended.
    HealthCheckResponse::ServingStatus Next() {
      HealthCheckResponse response;
      if (!reader->Read(&response)) return HealthCheckResponse::UNKNOWN;
      return response.status();
    }
  };

  std::unique_ptr<Watch> StartWatch(const std::string& service) {
    auto watch = std::make_unique<Watch>();
    watch->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    HealthCheckRequest request;
    request.set_service(service);
    watch->reader = stub_->Watch(&watch->context, request);
    return watch;
  }

  HealthState state_;
  std::unique_ptr<rpc::LoopService> service_;
  std::unique_ptr<testing::LocalServer> server_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

TEST_F(HealthServiceTest, CheckAnswersTheCurrentStatus) {
  HealthCheckResponse::ServingStatus status;
  ASSERT_TRUE(Check("", &status).ok());
  EXPECT_EQ(status, HealthCheckResponse::NOT_SERVING);

  state_.SetServing(true);
  ASSERT_TRUE(Check("", &status).ok());
  EXPECT_EQ(status, HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check(kCounter, &status).ok());
  EXPECT_EQ(status, HealthCheckResponse::SERVING);

  state_.SetServing(false);  // draining
  ASSERT_TRUE(Check(kCounter, &status).ok());
  EXPECT_EQ(status, HealthCheckResponse::NOT_SERVING);
}

TEST_F(HealthServiceTest, CheckOfUnknownServiceIsNotFound) {
  HealthCheckResponse::ServingStatus status;
  grpc::Status result = Check("massa.test.Nope", &status);
  EXPECT_EQ(result.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(result.error_message(), ::testing::HasSubstr("massa.test.Nope"));
}

TEST_F(HealthServiceTest, WatchSeesServingThenNotServing) {
  state_.SetServing(true);
  auto overall = StartWatch("");
  auto counter = StartWatch(kCounter);
  EXPECT_EQ(overall->Next(), HealthCheckResponse::SERVING);
  EXPECT_EQ(counter->Next(), HealthCheckResponse::SERVING);

  state_.SetServing(false);
  EXPECT_EQ(overall->Next(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(counter->Next(), HealthCheckResponse::NOT_SERVING);

  // No news is not sent: the next message is the next change.
  state_.SetServing(false);
  state_.SetStatus("unrelated", ServingStatus::kServing);
  state_.SetServing(true);
  EXPECT_EQ(overall->Next(), HealthCheckResponse::SERVING);
  EXPECT_EQ(counter->Next(), HealthCheckResponse::SERVING);

  // A status of its own moves only that service.
  state_.SetStatus(kCounter, ServingStatus::kNotServing);
  EXPECT_EQ(counter->Next(), HealthCheckResponse::NOT_SERVING);

  // Shutdown: the last news, then the stream ends.
  state_.Shutdown();
  EXPECT_EQ(overall->Next(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(overall->Next(), HealthCheckResponse::UNKNOWN);  // ended
  EXPECT_EQ(overall->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(counter->Next(), HealthCheckResponse::UNKNOWN);  // already NOT_SERVING: ended
  EXPECT_EQ(counter->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(HealthServiceTest, WatchOfUnknownServiceStaysOpenUntilItIsKnown) {
  state_.SetServing(true);
  auto watch = StartWatch("massa.test.Later");
  EXPECT_EQ(watch->Next(), HealthCheckResponse::SERVICE_UNKNOWN);
  state_.Follow("massa.test.Later");
  EXPECT_EQ(watch->Next(), HealthCheckResponse::SERVING);
  watch->context.TryCancel();
  EXPECT_EQ(watch->Next(), HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(watch->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(HealthServiceTest, WatchAfterShutdownGetsNotServingAndEnds) {
  state_.SetServing(true);
  state_.Shutdown();
  auto watch = StartWatch("");
  EXPECT_EQ(watch->Next(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(watch->Next(), HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(watch->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(HealthServiceTest, ShutdownEndsOpenWatchesSoServerShutdownDoesNotWait) {
  state_.SetServing(true);
  auto first = StartWatch("");
  auto second = StartWatch(kCounter);
  ASSERT_EQ(first->Next(), HealthCheckResponse::SERVING);
  ASSERT_EQ(second->Next(), HealthCheckResponse::SERVING);

  auto start = std::chrono::steady_clock::now();
  state_.Shutdown();
  server_->Shutdown();  // no deadline: would wait forever for a Watch still open
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(first->Next(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(first->Next(), HealthCheckResponse::UNKNOWN);
}

TEST_F(HealthServiceTest, ServerShutdownDeadlineCancelsOpenWatches) {
  state_.SetServing(true);
  auto watch = StartWatch("");
  ASSERT_EQ(watch->Next(), HealthCheckResponse::SERVING);

  auto start = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(watch->Next(), HealthCheckResponse::UNKNOWN);
  EXPECT_FALSE(watch->reader->Finish().ok());
}

TEST_F(HealthServiceTest, CancelledWatchesAreDropped) {
  state_.SetServing(true);
  for (int i = 0; i < 10; ++i) {
    auto watch = StartWatch(kCounter);
    ASSERT_EQ(watch->Next(), HealthCheckResponse::SERVING);
    watch->context.TryCancel();
    EXPECT_EQ(watch->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Changes after the cancellations reach no dead stream (a crash or hang here would say so).
  state_.SetServing(false);
  state_.SetServing(true);
  auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// The state may be destroyed before the server: open streams just see no more changes.
TEST(HealthLifetimeTest, StateMayGoBeforeTheServer) {
  auto state = std::make_unique<HealthState>();
  state->SetServing(true);
  std::unique_ptr<rpc::LoopService> service = NewHealthService(*state);
  std::unique_ptr<testing::LocalServer> server = testing::LocalServer::Start({service.get()});
  ASSERT_NE(server, nullptr);
  auto stub = grpc::health::v1::Health::NewStub(server->channel());

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = stub->Watch(&context, HealthCheckRequest());
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  state.reset();
  grpc::ClientContext check_context;
  ASSERT_TRUE(stub->Check(&check_context, HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);  // the last status set

  context.TryCancel();
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  server->Shutdown();
}

}  // namespace
}  // namespace massa
