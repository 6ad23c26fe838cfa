// Calls between actors, through the real binaries: the mesh function's nodes call the next node
// of a path in the middle of their handler (ctx.Call) and use its reply.
#include <signal.h>

#include <chrono>
#include <future>
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
    Connect(*endpoints);
  }

  void Connect(const MassaEndpoints& endpoints) {
    endpoints_ = endpoints;
    auto channel = grpc::CreateChannel(endpoints.grpc_address, grpc::InsecureChannelCredentials());
    nodes_ = mesh::Node::NewStub(channel);
    front_ = mesh::Front::NewStub(channel);
    rooms_ = mesh::Room::NewStub(channel);
    hub_ = mesh::Hub::NewStub(channel);
    pool_ = mesh::Pool::NewStub(channel);
  }

  // Stops massa with kill -9 and starts it again on the same data (the function keeps running).
  void KillAndRestartMassa() {
    massa_->Signal(SIGKILL);
    massa_->Wait(std::chrono::seconds(10));
    std::optional<MassaEndpoints> endpoints =
        StartMassa(massa_, "unix:" + dir_.path() + "/function.sock", dir_.path() + "/data",
                   dir_.path() + "/massa2.log");
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    Connect(*endpoints);
  }

  // A context addressed to the actor `name` (the massa-entity-key metadata).
  static std::unique_ptr<grpc::ClientContext> To(const std::string& name) {
    std::unique_ptr<grpc::ClientContext> context = Context();
    context->AddMetadata("massa-entity-key", name);
    return context;
  }

  grpc::Status SpawnRoom(const std::string& name) {
    mesh::SpawnRoom request;
    request.set_name(name);
    mesh::Empty reply;
    return front_->Spawn(Context().get(), request, &reply);
  }

  grpc::Status Room(const std::string& name, mesh::RoomState* state) {
    return rooms_->Get(To(name).get(), mesh::GetRoom(), state);
  }

  mesh::NodeState Node(const std::string& node) {
    mesh::GetNode get;
    get.set_node_id(node);
    mesh::NodeState state;
    grpc::Status status = nodes_->Get(Context().get(), get, &state);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return state;
  }

  mesh::HubState Hub() {
    mesh::HubState state;
    grpc::Status status = hub_->Get(Context().get(), mesh::GetRoom(), &state);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return state;
  }

  // Polls `done` every 50 ms for up to `timeout`; whether it became true.
  template <typename F>
  static bool Eventually(F done, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return done();
  }

  // Entities of `type` active in massa, from its metrics.
  int ActiveEntities(const std::string& type) {
    HttpResult metrics = HttpCall(endpoints_.admin_port, "GET", "/metrics");
    const std::string needle = "massa_active_entities{entity_type=\"" + type + "\"} ";
    const size_t at = metrics.body.find(needle);
    if (at == std::string::npos) return 0;
    return std::stoi(metrics.body.substr(at + needle.size()));
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
  std::unique_ptr<mesh::Room::Stub> rooms_;
  std::unique_ptr<mesh::Hub::Stub> hub_;
  std::unique_ptr<mesh::Pool::Stub> pool_;
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

TEST_F(MeshTest, AnUnspawnedActorIsNotFoundAndASpawnedOneSurvivesARestart) {
  Start();
  mesh::RoomState state;
  grpc::Status status = Room("lobby", &state);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("never spawned"));
  // A request without an address names no actor.
  status = rooms_->Get(Context().get(), mesh::GetRoom(), &state);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("massa-entity-key"));

  grpc::Status spawn = SpawnRoom("lobby");  // from a handler: ctx.Spawn
  ASSERT_TRUE(spawn.ok()) << spawn.error_message();
  ASSERT_TRUE(SpawnRoom("lobby").ok()) << "spawning twice is a no-op";
  HttpResult spawned =
      HttpCall(endpoints_.http_port, "POST", "/massa/v1/actors/massa.test.mesh.Room/kitchen/spawn");
  EXPECT_EQ(spawned.status, 200) << spawned.body;  // over HTTP
  HttpResult not_spawnable =
      HttpCall(endpoints_.http_port, "POST", "/massa/v1/actors/massa.test.mesh.Node/x/spawn");
  EXPECT_EQ(not_spawnable.status, 400) << not_spawnable.body;
  EXPECT_THAT(not_spawnable.body, HasSubstr("not a service of spawned actors"));

  mesh::Note note;
  ASSERT_TRUE(rooms_->Post(To("lobby").get(), note, &state).ok());
  ASSERT_TRUE(rooms_->Post(To("lobby").get(), note, &state).ok());
  EXPECT_EQ(state.notes(), 2);
  HttpResult posted = HttpCall(endpoints_.http_port, "POST", "/massa.test.mesh.Room/Post", "{}",
                               "application/json", {{"Massa-Entity-Key", "kitchen"}});
  EXPECT_EQ(posted.status, 200) << posted.body;
  EXPECT_THAT(posted.body, HasSubstr("\"notes\":\"1\""));

  KillAndRestartMassa();
  ASSERT_TRUE(Room("lobby", &state).ok());
  EXPECT_EQ(state.notes(), 2);
  ASSERT_TRUE(Room("kitchen", &state).ok());
  EXPECT_EQ(state.notes(), 1);
  EXPECT_EQ(Room("attic", &state).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(MeshTest, ANamedActorHasOneEntity) {
  Start();
  mesh::HubState state;
  ASSERT_TRUE(hub_->Get(Context().get(), mesh::GetRoom(), &state).ok());
  grpc::Status status = hub_->Get(To("other").get(), mesh::GetRoom(), &state);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("named actor 'hub'"));
}

TEST_F(MeshTest, ABroadcastReachesEverySubscriberOnceAlsoPassivatedAndAcrossKill9) {
  Start();
  mesh::RoomState room;
  mesh::Note note;
  for (const std::string name : {"r1", "r2", "r3"}) {
    ASSERT_TRUE(SpawnRoom(name).ok());
    ASSERT_TRUE(rooms_->Post(To(name).get(), note, &room).ok());
  }
  // The rooms passivate after 300 ms idle (the sweep runs every second).
  ASSERT_TRUE(Eventually([&] { return ActiveEntities("massa.test.mesh.Room") == 0; }))
      << "the rooms were not passivated";

  mesh::News news;
  news.set_text("hello");
  mesh::Empty empty;
  ASSERT_TRUE(front_->Announce(Context().get(), news, &empty).ok());
  const auto all_heard_once = [&] {
    for (const std::string name : {"r1", "r2", "r3"}) {
      if (!Room(name, &room).ok() || room.news() != 1) return false;
    }
    mesh::HubState hub = Hub();
    return hub.news() == 1 && hub.echoed() == 1 && Node("n1").news() == 1;
  };
  EXPECT_TRUE(Eventually(all_heard_once)) << "rooms, hub, echo and node n1 each hear it once";
  EXPECT_EQ(Node("n2").news(), 0) << "a keyed subscriber hears only the key in the message";

  // Published, acknowledged, then massa is killed: delivered after the restart, still once.
  news.set_text("again");
  ASSERT_TRUE(front_->Announce(Context().get(), news, &empty).ok());
  KillAndRestartMassa();
  const auto all_heard_twice = [&] {
    for (const std::string name : {"r1", "r2", "r3"}) {
      if (!Room(name, &room).ok() || room.news() != 2) return false;
    }
    mesh::HubState hub = Hub();
    return hub.news() == 2 && hub.echoed() == 2 && Node("n1").news() == 2;
  };
  EXPECT_TRUE(Eventually(all_heard_twice));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a second delivery would show
  EXPECT_TRUE(all_heard_twice());
  for (const std::string name : {"r1", "r2", "r3"}) {
    ASSERT_TRUE(Room(name, &room).ok());
    EXPECT_EQ(room.news(), 2) << name;
    EXPECT_EQ(room.notes(), 1) << name;
  }
}

TEST_F(MeshTest, AMessageSentByAnAcknowledgedWriteArrivesOnceAfterKill9) {
  Start();
  mesh::TellRequest tell;
  tell.set_node_id("a");
  tell.set_to("b");
  mesh::NodeState state;
  ASSERT_TRUE(nodes_->Tell(Context().get(), tell, &state).ok());
  KillAndRestartMassa();
  EXPECT_TRUE(Eventually([&] { return Node("b").pokes() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(Node("b").pokes(), 1);
  EXPECT_EQ(Node("a").relays(), 1);
}

TEST_F(MeshTest, APoolNeverRunsMoreThanItsConcurrency) {
  Start({"--handler-threads", "8"});
  std::vector<std::future<std::pair<grpc::Status, int>>> calls;
  for (int i = 0; i < 12; ++i) {
    calls.push_back(std::async(std::launch::async, [this] {
      mesh::Work work;
      work.set_sleep_ms(300);
      mesh::WorkReply reply;
      grpc::Status status = pool_->Work(Context().get(), work, &reply);
      return std::make_pair(status, reply.running());
    }));
  }
  int ok = 0;
  int exhausted = 0;
  for (auto& call : calls) {
    auto [status, running] = call.get();
    if (status.ok()) {
      ++ok;
      EXPECT_LE(running, 2);
    } else {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
      EXPECT_THAT(status.error_message(), HasSubstr("maximum of 2"));
      ++exhausted;
    }
  }
  EXPECT_GE(ok, 2);
  EXPECT_GT(exhausted, 0);
}

TEST_F(MeshTest, AForwardLoopStopsAtTheHopLimit) {
  Start();
  mesh::GetNode get;
  get.set_node_id("loop");
  mesh::NodeState state;
  grpc::Status status = nodes_->Loop(Context().get(), get, &state);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("more than 32 forwards"));
}

TEST_F(MeshTest, AFailingForwardTargetsErrorReachesTheCallerFromEveryKind) {
  Start();
  mesh::GetNode get;
  get.set_node_id("x");
  mesh::NodeState state;
  grpc::Status from_entity = nodes_->ForwardToRefuse(Context().get(), get, &state);
  EXPECT_EQ(from_entity.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(from_entity.error_message(), "refused by x-target");
  grpc::Status from_action = front_->ForwardToRefuse(Context().get(), get, &state);
  EXPECT_EQ(from_action.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(from_action.error_message(), "refused by x");
  HttpResult http = HttpCall(endpoints_.http_port, "POST", "/massa.test.mesh.Front/ForwardToRefuse",
                             R"({"nodeId":"y"})");
  EXPECT_EQ(http.status, 400) << http.body;
  EXPECT_THAT(http.body, HasSubstr("refused by y"));
}

TEST_F(MeshTest, APipeFromEveryKindRepliesWithItsTargetsReplyOrError) {
  Start();
  auto channel = grpc::CreateChannel(endpoints_.grpc_address, grpc::InsecureChannelCredentials());
  auto tally = mesh::Tally::NewStub(channel);
  mesh::PipeRequest request;
  request.set_node_id("p");
  request.set_method("Absorb");
  mesh::HubState hub;
  ASSERT_TRUE(front_->PipeTo(Context().get(), request, &hub).ok());
  EXPECT_EQ(hub.echoed(), 1);
  ASSERT_TRUE(nodes_->PipeTo(Context().get(), request, &hub).ok());
  EXPECT_EQ(hub.echoed(), 2);
  grpc::Status status = tally->PipeTo(Context().get(), request, &hub);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(hub.echoed(), 3);
  request.set_method("Reject");
  grpc::Status from_action = front_->PipeTo(Context().get(), request, &hub);
  grpc::Status from_entity = nodes_->PipeTo(Context().get(), request, &hub);
  grpc::Status from_journal = tally->PipeTo(Context().get(), request, &hub);
  for (const grpc::Status& failed : {from_action, from_entity, from_journal}) {
    EXPECT_EQ(failed.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(failed.error_message(), "rejected by hub");
  }
  EXPECT_EQ(Hub().echoed(), 3);
}

}  // namespace
}  // namespace massa::testing
