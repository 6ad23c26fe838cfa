// CRDT entities through the real binaries: every data type's operations over gRPC (and a
// counter over HTTP), values across SIGTERM and kill -9 restarts, deleting an entity, many
// concurrent writers on one key.
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"
#include "massa/test/crdt.grpc.pb.h"

namespace massa::testing {
namespace {

namespace crdt = ::massa::test::crdt;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr auto kStartTimeout = std::chrono::seconds(30);

// Calls `method` ("/package.Service/Method") with the serialized request; the status and, when
// OK, the serialized reply.
std::pair<grpc::Status, std::string> UnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                               const std::string& method,
                                               const std::string& request_bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  std::string bytes;
  std::vector<grpc::Slice> slices;
  if (status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return {status, bytes};
}

class CrdtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = "unix:" + dir_.path() + "/function.sock";
    function_ = std::make_unique<Process>(
        std::vector<std::string>{CRDT_FUNCTION_BIN, "--listen", socket_},
        dir_.path() + "/function.log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
    Launch();
  }

  void Launch() {
    std::optional<MassaEndpoints> endpoints =
        StartMassa(massa_, socket_, dir_.path() + "/data",
                   dir_.path() + "/massa-" + std::to_string(++starts_) + ".log");
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    endpoints_ = *endpoints;
    channel_ = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
  }

  void Restart(int signal) {
    massa_->Signal(signal);
    massa_->Wait(std::chrono::seconds(30));
    Launch();
  }

  // Calls /massa.test.crdt.<service>/<method> with `op` and returns the view (or fails).
  crdt::View Call(const std::string& service, const std::string& method, crdt::Op op,
                  grpc::Status* status_out = nullptr) {
    auto [status, bytes] =
        UnaryCall(channel_, "/massa.test.crdt." + service + "/" + method, op.SerializeAsString());
    crdt::View view;
    if (status_out != nullptr) *status_out = status;
    if (!status.ok()) {
      if (status_out == nullptr) ADD_FAILURE() << service << "/" << method << ": " << status.error_message();
      return view;
    }
    EXPECT_TRUE(view.ParseFromString(bytes));
    return view;
  }

  static crdt::Op Op(const std::string& id, int64_t n = 0, const std::string& item = "",
                     bool flag = false) {
    crdt::Op op;
    op.set_id(id);
    op.set_n(n);
    op.set_item(item);
    op.set_flag(flag);
    return op;
  }

  TempDir dir_;
  std::string socket_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  int starts_ = 0;
  MassaEndpoints endpoints_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(CrdtTest, EveryTypesOperationsAndTheirValues) {
  EXPECT_EQ(Call("Hits", "Add", Op("h", 3)).counter(), 3);
  EXPECT_EQ(Call("Hits", "Add", Op("h", 4)).counter(), 7);
  EXPECT_EQ(Call("Balance", "Add", Op("b", 10)).counter(), 10);
  EXPECT_EQ(Call("Balance", "Add", Op("b", -25)).counter(), -15);
  Call("Tags", "Add", Op("t", 0, "red"));
  EXPECT_THAT(Call("Tags", "Add", Op("t", 0, "blue")).items(), ElementsAre("blue", "red"));
  Call("Members", "Add", Op("m", 0, "ann"));
  Call("Members", "Add", Op("m", 0, "bob"));
  EXPECT_THAT(Call("Members", "Remove", Op("m", 0, "ann")).items(), ElementsAre("bob"));
  EXPECT_THAT(Call("Members", "Add", Op("m", 0, "ann")).items(), ElementsAre("ann", "bob"));
  EXPECT_THAT(Call("Members", "Clear", Op("m")).items(), IsEmpty());
  EXPECT_THAT(Call("Members", "Get", Op("m")).items(), IsEmpty());
  EXPECT_EQ(Call("Title", "Get", Op("x")).text(), "");
  Call("Title", "Set", Op("x", 0, "first"));
  EXPECT_EQ(Call("Title", "Set", Op("x", 0, "second")).text(), "second");
  EXPECT_FALSE(Call("Switch", "Get", Op("s")).flag());
  EXPECT_TRUE(Call("Switch", "Enable", Op("s")).flag());
  EXPECT_TRUE(Call("Switch", "Get", Op("s")).flag());
  Call("Scores", "Add", Op("g", 5, "ann"));
  Call("Scores", "Add", Op("g", 2, "bob"));
  crdt::View scores = Call("Scores", "Add", Op("g", 1, "ann"));
  EXPECT_THAT(scores.scores(), UnorderedElementsAre(Pair("ann", 6), Pair("bob", 2)));
  scores = Call("Scores", "Remove", Op("g", 0, "bob"));
  EXPECT_THAT(scores.scores(), UnorderedElementsAre(Pair("ann", 6)));
  crdt::View poll = Call("Poll", "Cast", Op("p", 0, "", true));
  EXPECT_TRUE(poll.flag());
  poll = Call("Poll", "Get", Op("p"));
  EXPECT_TRUE(poll.flag());
  EXPECT_EQ(poll.votes_for(), 1u);
  EXPECT_EQ(poll.voters(), 1u);
  Call("Poll", "Cast", Op("p", 0, "", false));
  poll = Call("Poll", "Get", Op("p"));
  EXPECT_EQ(poll.votes_for(), 0u);
  EXPECT_EQ(poll.voters(), 1u);

  HttpResult http = HttpCall(endpoints_.http_port, "POST", "/massa.test.crdt.Balance/Add",
                             R"({"id":"b","n":"5"})");
  EXPECT_EQ(http.status, 200) << http.body;
  EXPECT_THAT(http.body, HasSubstr("\"counter\":\"-10\""));
}

TEST_F(CrdtTest, ValuesSurviveRestartsAndKill9) {
  Call("Balance", "Add", Op("b", 42));
  Call("Members", "Add", Op("m", 0, "ann"));
  Call("Members", "Add", Op("m", 0, "bob"));
  Call("Members", "Remove", Op("m", 0, "bob"));
  Call("Scores", "Add", Op("g", 3, "ann"));
  Call("Title", "Set", Op("x", 0, "kept"));
  Call("Switch", "Enable", Op("s"));
  Restart(SIGTERM);
  EXPECT_EQ(Call("Balance", "Get", Op("b")).counter(), 42);
  Call("Balance", "Add", Op("b", 1));
  Restart(SIGKILL);
  EXPECT_EQ(Call("Balance", "Get", Op("b")).counter(), 43);
  EXPECT_THAT(Call("Members", "Get", Op("m")).items(), ElementsAre("ann"));
  EXPECT_THAT(Call("Scores", "Get", Op("g")).scores(), UnorderedElementsAre(Pair("ann", 3)));
  EXPECT_EQ(Call("Title", "Get", Op("x")).text(), "kept");
  EXPECT_TRUE(Call("Switch", "Get", Op("s")).flag());
}

TEST_F(CrdtTest, ADeletedEntityStartsEmpty) {
  Call("Balance", "Add", Op("b", 9));
  Call("Members", "Add", Op("m", 0, "ann"));
  Call("Balance", "Delete", Op("b"));
  Call("Members", "Delete", Op("m"));
  EXPECT_EQ(Call("Balance", "Get", Op("b")).counter(), 0);
  EXPECT_THAT(Call("Members", "Get", Op("m")).items(), IsEmpty());
  Restart(SIGKILL);
  EXPECT_EQ(Call("Balance", "Get", Op("b")).counter(), 0);
  EXPECT_EQ(Call("Balance", "Add", Op("b", 2)).counter(), 2);
}

TEST_F(CrdtTest, ConcurrentWritersOnOneKeyLoseNothing) {
  constexpr int kWriters = 16;
  constexpr int kEach = 25;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([this, w] {
      for (int i = 0; i < kEach; ++i) {
        Call("Balance", "Add", Op("hot", 2));
        Call("Members", "Add", Op("hot", 0, "w" + std::to_string(w) + "-" + std::to_string(i)));
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(Call("Balance", "Get", Op("hot")).counter(), 2 * kWriters * kEach);
  EXPECT_EQ(Call("Members", "Get", Op("hot")).items_size(), kWriters * kEach);
}

TEST_F(CrdtTest, AHandleOfAnotherTypeFailsTheCommandAndChangesNothing) {
  Call("Hits", "Add", Op("h", 1));
  crdt::Op wrong = Op("h", 5);
  wrong.set_wrong("handle");
  grpc::Status status;
  Call("Hits", "Add", wrong, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("PNCounter"));
  EXPECT_THAT(status.error_message(), HasSubstr("GCounter"));
  EXPECT_EQ(Call("Hits", "Get", Op("h")).counter(), 1);
  crdt::Op negative = Op("h", -1);
  Call("Hits", "Add", negative, &status);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(Call("Hits", "Get", Op("h")).counter(), 1);
}

// The likes example (examples/likes) over HTTP and gRPC.
TEST(LikesExampleTest, LikesAndPresenceOverHttpAndGrpc) {
  TempDir dir;
  const std::string socket = "unix:" + dir.path() + "/function.sock";
  Process function({LIKES_FUNCTION_BIN, "--listen", socket}, dir.path() + "/function.log");
  ASSERT_TRUE(function.WaitForLine("listening on", kStartTimeout)) << function.log();
  std::unique_ptr<Process> massa;
  std::optional<MassaEndpoints> endpoints =
      StartMassa(massa, socket, dir.path() + "/data", dir.path() + "/massa.log");
  ASSERT_TRUE(endpoints.has_value()) << massa->log();
  const int http = endpoints->http_port;
  for (int i = 0; i < 3; ++i) {
    HttpResult liked = HttpCall(http, "POST", "/articles/a1:like", "{}");
    ASSERT_EQ(liked.status, 200) << liked.body;
  }
  HttpResult unliked = HttpCall(http, "POST", "/articles/a1:unlike", "{}");
  EXPECT_THAT(unliked.body, HasSubstr("\"likes\":\"2\""));
  HttpResult none = HttpCall(http, "POST", "/articles/a2:unlike", "{}");
  EXPECT_EQ(none.status, 400) << none.body;
  EXPECT_THAT(HttpCall(http, "GET", "/articles/a1/likes").body, HasSubstr("\"likes\":\"2\""));
  HttpCall(http, "POST", "/rooms/lobby:join", R"({"user":"ann"})");
  HttpCall(http, "POST", "/rooms/lobby:join", R"({"user":"bob"})");
  HttpResult left = HttpCall(http, "POST", "/rooms/lobby:leave", R"({"user":"ann"})");
  EXPECT_THAT(left.body, HasSubstr("\"users\":[\"bob\"]"));
  HttpResult online = HttpCall(http, "GET", "/rooms/lobby/online");
  EXPECT_THAT(online.body, HasSubstr("\"users\":[\"bob\"]"));
  // The same entity over gRPC sees the HTTP writes.
  auto channel = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
  auto [status, bytes] = UnaryCall(channel, "/example.likes.Likes/GetLikes",
                                   std::string("\x0a\x02") + "a1");  // ArticleRef{"a1"}
  ASSERT_TRUE(status.ok()) << status.error_message();
  // LikeCount{article_id: "a1", likes: 2}: field 2 (varint) = 2.
  EXPECT_NE(bytes.find(std::string("\x10\x02")), std::string::npos);
}

}  // namespace
}  // namespace massa::testing
