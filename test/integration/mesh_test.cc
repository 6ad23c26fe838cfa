// Calls between actors, through the real binaries: the mesh function's nodes call the next node
// of a path in the middle of their handler (ctx.Call) and use its reply.
#include <chrono>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"
#include "massa/test/mesh.grpc.pb.h"

namespace massa::testing {
namespace {

namespace mesh = ::massa::test::mesh;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kStartTimeout = std::chrono::seconds(30);

class MeshTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> function_flags = {"--handler-threads", "4"}) {
    const std::string socket = "unix:" + dir_.path() + "/function.sock";
    std::vector<std::string> argv = {MESH_FUNCTION_BIN, "--listen", socket};
    argv.insert(argv.end(), function_flags.begin(), function_flags.end());
    function_ = std::make_unique<Process>(argv, dir_.path() + "/function.log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
    std::optional<MassaEndpoints> endpoints = StartMassa(
        massa_, socket, dir_.path() + "/data", dir_.path() + "/massa.log");
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    endpoints_ = *endpoints;
    auto channel = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
    nodes_ = mesh::Node::NewStub(channel);
    front_ = mesh::Front::NewStub(channel);
  }

  static std::unique_ptr<grpc::ClientContext> Context(
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + timeout);
    return context;
  }

  static mesh::RelayRequest Path(const std::string& first, std::vector<std::string> then,
                                 int sleep_ms = 0) {
    mesh::RelayRequest request;
    request.set_node_id(first);
    for (std::string& node : then) request.add_then(std::move(node));
    request.set_sleep_ms(sleep_ms);
    return request;
  }

  grpc::Status Relay(const mesh::RelayRequest& request, mesh::RelayReply* reply,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return nodes_->Relay(Context(timeout).get(), request, reply);
  }

  int64_t Relays(const std::string& node) {
    mesh::GetNode get;
    get.set_node_id(node);
    mesh::NodeState state;
    grpc::Status status = nodes_->Get(Context().get(), get, &state);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return state.relays();
  }

  TempDir dir_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  MassaEndpoints endpoints_;
  std::unique_ptr<mesh::Node::Stub> nodes_;
  std::unique_ptr<mesh::Front::Stub> front_;
};

TEST_F(MeshTest, AHandlerCallsAnotherActorAndUsesItsReply) {
  Start();
  mesh::RelayReply reply;
  grpc::Status status = Relay(Path("a", {"b", "c"}), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message() << massa_->log();
  EXPECT_THAT(reply.visited(), ElementsAre("c:1", "b:1", "a:1"));
  status = Relay(Path("a", {"b"}), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(reply.visited(), ElementsAre("b:2", "a:2"));
  EXPECT_EQ(Relays("a"), 2);
  EXPECT_EQ(Relays("b"), 2);
  EXPECT_EQ(Relays("c"), 1);
}

TEST_F(MeshTest, AnActionCallsAnEntity) {
  Start();
  mesh::RelayReply reply;
  grpc::Status status = front_->Start(Context().get(), Path("a", {"b"}), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(reply.visited(), ElementsAre("b:1", "a:1"));
}

TEST_F(MeshTest, ACallCycleIsRefusedAtOnceNamingTheChainAndChangesNothing) {
  Start();
  mesh::RelayReply reply;
  // A 10 s deadline: a cycle that hung would end DEADLINE_EXCEEDED, not ABORTED.
  grpc::Status status = Relay(Path("a", {"b", "a"}), &reply, std::chrono::seconds(10));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
  EXPECT_THAT(status.error_message(),
              HasSubstr("massa.test.mesh.Node/a -> massa.test.mesh.Node/b -> "
                        "massa.test.mesh.Node/a"));
  EXPECT_EQ(Relays("a"), 0);
  EXPECT_EQ(Relays("b"), 0);
  // Both serve their next commands.
  status = Relay(Path("b", {"a"}), &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(reply.visited(), ElementsAre("a:1", "b:1"));
}

TEST_F(MeshTest, AReadOnlyMethodMayBeReEnteredOnTheLastDurableState) {
  Start();
  mesh::RelayReply reply;
  ASSERT_TRUE(Relay(Path("a", {}), &reply).ok());  // a has 1 relay
  mesh::RelayRequest request = Path("a", {"b"});
  request.set_peek("a");  // b reads a, which waits for b
  request.set_peek_method("Peek");
  grpc::Status status = Relay(request, &reply, std::chrono::seconds(10));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(reply.visited(), ElementsAre("peek:a:1", "b:1", "a:2"));
  request.set_peek_method("BadPeek");  // read-only, but it writes: refused, nothing applied
  status = Relay(request, &reply, std::chrono::seconds(10));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("may only reply"));
  EXPECT_EQ(Relays("a"), 2);
  EXPECT_EQ(Relays("b"), 1);
}

TEST_F(MeshTest, TheCallersDeadlineBoundsTheCallAndNothingIsWritten) {
  Start();
  mesh::RelayReply reply;
  grpc::Status status =
      Relay(Path("a", {"b"}, /*sleep_ms=*/1000), &reply, std::chrono::milliseconds(200));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // b's handler has answered
  EXPECT_EQ(Relays("a"), 0);
  EXPECT_EQ(Relays("b"), 0) << "b answered after the deadline: its state is not written";
}

TEST_F(MeshTest, AnHttpCallersTimeoutHeaderIsItsDeadline) {
  Start();
  const std::string slow = R"({"nodeId":"a","then":["b"],"sleepMs":1000})";
  HttpResult late = HttpCall(endpoints_.http_port, "POST", "/massa.test.mesh.Node/Relay", slow,
                             "application/json", {{"Request-Timeout", "200ms"}});
  EXPECT_EQ(late.status, 504) << late.body;
  HttpResult bad = HttpCall(endpoints_.http_port, "POST", "/massa.test.mesh.Node/Relay", slow,
                            "application/json", {{"Request-Timeout", "soon"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_THAT(bad.body, HasSubstr("request-timeout: 'soon'"));
  HttpResult plain = HttpCall(endpoints_.http_port, "POST", "/massa.test.mesh.Node/Relay",
                              R"({"nodeId":"c","then":["d"]})", "application/json",
                              {{"Request-Timeout", "5000"}});
  EXPECT_EQ(plain.status, 200) << plain.body;
  EXPECT_THAT(plain.body, HasSubstr("d:1"));
  HttpResult cycle = HttpCall(endpoints_.http_port, "POST", "/massa.test.mesh.Node/Relay",
                              R"({"nodeId":"e","then":["f","e"]})");
  EXPECT_THAT(cycle.body, AllOf(HasSubstr("\"code\":10"), HasSubstr("call cycle")))
      << "ABORTED over HTTP too";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // b's handler has answered
  EXPECT_EQ(Relays("a"), 0);
  EXPECT_EQ(Relays("b"), 0);
  EXPECT_EQ(Relays("e"), 0);
}

TEST_F(MeshTest, CallsNestedTooDeepAreRefused) {
  Start();
  std::vector<std::string> path;
  for (int i = 1; i <= 40; ++i) path.push_back("n" + std::to_string(i));
  mesh::RelayReply reply;
  grpc::Status status = Relay(Path("n0", path), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("nested more than 32 deep"));
  EXPECT_EQ(Relays("n0"), 0);
}

TEST_F(MeshTest, ACallFromAHandlerOnTheIoThreadSaysItNeedsHandlerThreads) {
  Start(/*function_flags=*/{});
  mesh::RelayReply reply;
  grpc::Status status = Relay(Path("a", {"b"}), &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("--handler-threads"));
}

}  // namespace
}  // namespace massa::testing
