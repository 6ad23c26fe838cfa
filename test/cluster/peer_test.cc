// Forwarding between nodes: a command sent with PeerClients reaches the other node's router
// (here a recording dispatcher behind the Peer service) with everything it needs to run there,
// and its result comes back; an unreachable node is UNAVAILABLE.
#include "cluster/peer.h"

#include <chrono>
#include <future>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "ingress_grpc/local_server.h"
#include "rpc/loop_service.h"

namespace massa::cluster {
namespace {

using Steady = std::chrono::steady_clock;

// Records the commands it gets and answers with `answer`.
class RecordingDispatcher final : public Dispatcher {
 public:
  void Dispatch(Command command, ResultCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      last_ = std::move(command);
    }
    std::move(done)(answer);
  }
  std::optional<Command> last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }
  CommandResult answer{absl::OkStatus(), "reply", {{"k", "v"}}};

 private:
  absl::Mutex mu_;
  std::optional<Command> last_;
};

CommandResult ForwardAndWait(PeerClients& clients, const std::string& address, Command command) {
  std::promise<CommandResult> promise;
  clients.Forward(address, std::move(command),
                  [&promise](CommandResult result) { promise.set_value(std::move(result)); });
  return promise.get_future().get();
}

class PeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    secret_->Set("s3cret");
    service_ = NewPeerService(dispatcher_, secret_);
    server_ = testing::LocalServer::Start({service_.get()});
    ASSERT_NE(server_, nullptr);
    address_ = server_->address();
  }
  void TearDown() override { server_.reset(); }

  RecordingDispatcher dispatcher_;
  std::shared_ptr<PeerSecret> secret_ = std::make_shared<PeerSecret>();
  std::unique_ptr<rpc::LoopService> service_;
  std::unique_ptr<testing::LocalServer> server_;
  std::string address_;
};

TEST_F(PeerTest, ACommandArrivesWithWhatItNeedsAndItsResultComesBack) {
  Command command;
  command.service = "example.bank.Accounts";
  command.method = "Deposit";
  command.entity_key = "a1";
  command.payload = std::string("\x00\xff", 2);
  command.metadata = {{"idempotency-key", "k1"}, {"x", "y"}};
  command.deadline = Steady::now() + std::chrono::seconds(20);
  command.hops = 3;
  command.idempotency_key = "derived";
  command.addressed = true;
  command.call_chain = {"example.bank.Bank/t1"};
  PeerClients clients(secret_);
  CommandResult result = ForwardAndWait(clients, address_, command);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.payload, "reply");
  ASSERT_EQ(result.metadata.size(), 1u);
  EXPECT_EQ(result.metadata[0].second, "v");

  std::optional<Command> got = dispatcher_.last();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->service, command.service);
  EXPECT_EQ(got->method, command.method);
  EXPECT_EQ(got->entity_key, "a1");
  EXPECT_EQ(got->payload, command.payload);
  EXPECT_EQ(got->metadata, command.metadata);
  EXPECT_EQ(got->hops, 3u);
  EXPECT_EQ(got->idempotency_key, "derived");
  EXPECT_TRUE(got->addressed);
  EXPECT_EQ(got->call_chain, command.call_chain);
  EXPECT_FALSE(got->spawn);
  // The remaining deadline travelled: later than now, not later than the sender's.
  EXPECT_GT(got->deadline, Steady::now());
  EXPECT_LE(got->deadline, command.deadline + std::chrono::milliseconds(50));
}

TEST_F(PeerTest, NoDeadlineStaysNoDeadlineAndErrorsKeepTheirCode) {
  dispatcher_.answer = CommandResult{absl::NotFoundError("actor x was never spawned"), "", {}};
  Command command;
  command.service = "s";
  command.method = "m";
  command.spawn = true;
  PeerClients clients(secret_);
  CommandResult result = ForwardAndWait(clients, address_, command);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status.message(), "actor x was never spawned");
  std::optional<Command> got = dispatcher_.last();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->deadline, Steady::time_point::max());
  EXPECT_TRUE(got->spawn);
}

// The Peer service shares the public gRPC port: a call without the cluster's secret (or with
// another) is refused and reaches no entity.
TEST_F(PeerTest, ACallWithoutTheClustersSecretIsRefused) {
  Command command;
  command.service = "example.bank.Accounts";
  command.method = "Deposit";
  command.entity_key = "a1";
  for (const char* offered : {"", "s3cre", "s3cres", "s3cret-and-more"}) {
    auto other = std::make_shared<PeerSecret>();
    other->Set(offered);
    PeerClients clients(other);
    CommandResult result = ForwardAndWait(clients, address_, command);
    EXPECT_EQ(result.status.code(), absl::StatusCode::kPermissionDenied) << offered;
    EXPECT_NE(std::string(result.status.message()).find("secret"), std::string::npos);
  }
  EXPECT_FALSE(dispatcher_.last().has_value()) << "nothing reached the router";
  secret_->Set("");  // a node that has not joined yet refuses everything
  PeerClients empty(secret_);
  EXPECT_EQ(ForwardAndWait(empty, address_, command).status.code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(PeerTest, AnUnreachableNodeIsUnavailable) {
  server_->Shutdown();
  Command command;
  command.service = "s";
  command.method = "m";
  command.deadline = Steady::now() + std::chrono::seconds(2);
  PeerClients clients(secret_);
  CommandResult result = ForwardAndWait(clients, address_, command);
  EXPECT_TRUE(result.status.code() == absl::StatusCode::kUnavailable ||
              result.status.code() == absl::StatusCode::kDeadlineExceeded)
      << result.status;
  EXPECT_NE(std::string(result.status.message()).find(address_), std::string::npos);
}

}  // namespace
}  // namespace massa::cluster
