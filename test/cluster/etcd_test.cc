// Membership and ownership claims on a real etcd (a throwaway one on loopback, fakes/
// etcd_server.h): joins, leaves, crashes (a lease left to expire), exclusive claims with
// growing fencing tokens, and etcd itself killed and restarted. Waits are bounded polls; no
// assertion is about timing.
#include "cluster/etcd.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "fakes/etcd_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::cluster {
namespace {

using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ids = std::vector<std::string>;

// Polls `done` every 20 ms until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

Ids IdsOf(const std::vector<Member>& members) {
  Ids ids;
  for (const Member& member : members) ids.push_back(member.id);
  return ids;
}

// What a node's on_members callback saw, in order (shared with the callback, which may outlive
// the test's view of it).
class Recorder {
 public:
  static std::shared_ptr<Recorder> Make() { return std::make_shared<Recorder>(); }

  static std::function<void(const std::vector<Member>&)> Callback(std::shared_ptr<Recorder> r) {
    return [r](const std::vector<Member>& members) {
      absl::MutexLock lock(&r->mu_);
      r->calls_.push_back(IdsOf(members));
    };
  }

  std::vector<Ids> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  Ids last() const {
    absl::MutexLock lock(&mu_);
    return calls_.empty() ? Ids{} : calls_.back();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Ids> calls_ ABSL_GUARDED_BY(mu_);
};

EtcdOptions Options(const std::string& endpoint, const std::string& cluster,
                    const std::string& node_id, milliseconds ttl) {
  EtcdOptions options;
  options.endpoint = endpoint;
  options.cluster = cluster;
  options.node_id = node_id;
  options.peer_address = "addr-" + node_id + ":7000";
  options.ttl = ttl;
  options.rpc_timeout = milliseconds(2000);
  return options;
}

// Starts etcd, or skips the test when etcd is not installed.
#define MASSA_START_ETCD(server)                                                 \
  do {                                                                           \
    absl::StatusOr<std::unique_ptr<testing::EtcdServer>> started =               \
        testing::EtcdServer::Start();                                            \
    if (absl::IsFailedPrecondition(started.status())) GTEST_SKIP() << started.status(); \
    ASSERT_TRUE(started.ok()) << started.status();                               \
    server = std::move(*started);                                                \
  } while (0)

// Most tests share one etcd, each under a cluster name of its own.
class EtcdClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<testing::EtcdServer>> started = testing::EtcdServer::Start();
    if (started.ok()) {
      server_ = std::move(*started).release();
    } else {
      start_status_ = new absl::Status(started.status());
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete start_status_;
    start_status_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr && absl::IsFailedPrecondition(*start_status_)) {
      GTEST_SKIP() << *start_status_;
    }
    ASSERT_NE(server_, nullptr) << *start_status_;
  }

  std::unique_ptr<EtcdCluster> Join(const std::string& node_id, milliseconds ttl,
                                    std::shared_ptr<Recorder> recorder = nullptr) {
    std::function<void(const std::vector<Member>&)> callback;
    if (recorder != nullptr) callback = Recorder::Callback(recorder);
    absl::StatusOr<std::unique_ptr<EtcdCluster>> node =
        EtcdCluster::Start(Options(server_->endpoint(), Cluster(), node_id, ttl), callback);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? std::move(*node) : nullptr;
  }

  static std::string Cluster() {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  static testing::EtcdServer* server_;
  static absl::Status* start_status_;
};

testing::EtcdServer* EtcdClusterTest::server_ = nullptr;
absl::Status* EtcdClusterTest::start_status_ = nullptr;

constexpr milliseconds kLongTtl{10'000};  // outlasts every wait: only a revoke removes a key
constexpr milliseconds kShortTtl{1'000};  // for tests that wait for an expiry
constexpr milliseconds kWait{8'000};

TEST_F(EtcdClusterTest, ThreeNodesSeeEachOtherAndALeaveAtOnce) {
  auto ra = Recorder::Make(), rb = Recorder::Make(), rc = Recorder::Make();
  std::unique_ptr<EtcdCluster> a = Join("a", kLongTtl, ra);
  std::unique_ptr<EtcdCluster> b = Join("b", kLongTtl, rb);
  std::unique_ptr<EtcdCluster> c = Join("c", kLongTtl, rc);
  ASSERT_TRUE(a && b && c);
  const Ids all = {"a", "b", "c"};
  for (auto* r : {ra.get(), rb.get(), rc.get()}) {
    EXPECT_TRUE(WaitFor([&] { return r->last() == all; }, kWait)) << ::testing::PrintToString(r->calls());
  }
  for (EtcdCluster* node : {a.get(), b.get(), c.get()}) {
    EXPECT_THAT(node->members(),
                ElementsAre(Member{"a", "addr-a:7000"}, Member{"b", "addr-b:7000"},
                            Member{"c", "addr-c:7000"}));
    EXPECT_TRUE(node->healthy());
  }
  // The first call is the initial list, which includes the node itself.
  EXPECT_THAT(ra->calls().front(), ElementsAre("a"));
  EXPECT_THAT(rc->calls().front(), ElementsAre("a", "b", "c"));

  c->Leave();  // revokes: gone long before the 10 s TTL
  EXPECT_FALSE(c->healthy());
  for (auto* r : {ra.get(), rb.get()}) {
    EXPECT_TRUE(WaitFor([&] { return r->last() == Ids{"a", "b"}; }, kWait))
        << ::testing::PrintToString(r->calls());
  }
  EXPECT_THAT(IdsOf(a->members()), ElementsAre("a", "b"));
  EXPECT_THAT(IdsOf(b->members()), ElementsAre("a", "b"));
  c->Leave();  // idempotent
  EXPECT_TRUE(absl::IsFailedPrecondition(c->Claim(1).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(c->Rejoin()));
}

// The first node records the cluster's partition count and secret; a node with another count
// is refused naming both, one with the same count (or a restart) is accepted, and every node
// reads the same secret.
TEST_F(EtcdClusterTest, ThePartitionCountIsRecordedOnceAndEveryNodeMustAgree) {
  std::unique_ptr<EtcdCluster> a = Join("a", kLongTtl);
  std::unique_ptr<EtcdCluster> b = Join("b", kLongTtl);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->RecordPartitions(64).ok());
  EXPECT_TRUE(b->RecordPartitions(64).ok());
  EXPECT_TRUE(a->RecordPartitions(64).ok());
  absl::StatusOr<std::string> secret = a->ClusterSecret();
  ASSERT_TRUE(secret.ok()) << secret.status();
  EXPECT_EQ(secret->size(), 32u);
  EXPECT_EQ(b->ClusterSecret().value_or(""), *secret) << "one secret per cluster";
  absl::Status other = b->RecordPartitions(32);
  EXPECT_TRUE(absl::IsFailedPrecondition(other)) << other;
  EXPECT_THAT(std::string(other.message()),
              AllOf(HasSubstr("created with 64 partitions"), HasSubstr("started with 32")));
}

TEST_F(EtcdClusterTest, AnAbandonedNodeGoesAfterItsTtlWithItsClaims) {
  auto ra = Recorder::Make();
  std::unique_ptr<EtcdCluster> a = Join("a", kShortTtl, ra);
  std::unique_ptr<EtcdCluster> b = Join("b", kShortTtl);
  ASSERT_TRUE(a && b);
  absl::StatusOr<int64_t> b_token = b->Claim(7);
  ASSERT_TRUE(b_token.ok()) << b_token.status();
  ASSERT_TRUE(WaitFor([&] { return ra->last() == Ids{"a", "b"}; }, kWait));

  b->AbandonForTest();  // no revoke: etcd expires the lease
  EXPECT_TRUE(WaitFor([&] { return ra->last() == Ids{"a"}; }, kWait))
      << ::testing::PrintToString(ra->calls());
  EXPECT_THAT(IdsOf(a->members()), ElementsAre("a"));
  EXPECT_TRUE(WaitFor([&] {
    absl::StatusOr<std::pair<std::string, int64_t>> holder = a->Holder(7);
    return holder.ok() && holder->first.empty();
  }, kWait));
  absl::StatusOr<int64_t> a_token = a->Claim(7);
  ASSERT_TRUE(a_token.ok()) << a_token.status();
  EXPECT_GT(*a_token, *b_token);
  EXPECT_TRUE(a->healthy());  // a kept its own lease alive all along
}

// A node withdrawn from the members (it is leaving, or its function is down) keeps its lease
// and claims, so it can hand them over; listed again, the others see it again.
TEST_F(EtcdClusterTest, AWithdrawnNodeKeepsItsClaimsAndCanBeListedAgain) {
  auto ra = Recorder::Make();
  std::unique_ptr<EtcdCluster> a = Join("a", kLongTtl, ra);
  std::unique_ptr<EtcdCluster> b = Join("b", kLongTtl);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->Claim(3).ok());
  ASSERT_TRUE(WaitFor([&] { return ra->last() == Ids{"a", "b"}; }, kWait));

  ASSERT_TRUE(b->SetMember(false).ok());
  ASSERT_TRUE(b->SetMember(false).ok());  // idempotent
  EXPECT_TRUE(WaitFor([&] { return ra->last() == Ids{"a"}; }, kWait))
      << ::testing::PrintToString(ra->calls());
  EXPECT_TRUE(b->healthy());
  absl::StatusOr<std::pair<std::string, int64_t>> holder = a->Holder(3);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->first, "b") << "a withdrawn node's claims stay until it releases them";
  EXPECT_TRUE(absl::IsFailedPrecondition(a->Claim(3).status()));

  ASSERT_TRUE(b->SetMember(true).ok());
  ASSERT_TRUE(b->SetMember(true).ok());  // idempotent
  EXPECT_TRUE(WaitFor([&] { return ra->last() == Ids{"a", "b"}; }, kWait))
      << ::testing::PrintToString(ra->calls());
  b->Leave();
  EXPECT_TRUE(absl::IsFailedPrecondition(b->SetMember(true)));
}

TEST_F(EtcdClusterTest, TheSameNodeIdWhileItsHolderLivesIsAlreadyExists) {
  std::unique_ptr<EtcdCluster> a = Join("a", kLongTtl);
  ASSERT_TRUE(a);
  EtcdOptions twin = Options(server_->endpoint(), Cluster(), "a", kLongTtl);
  twin.peer_address = "elsewhere:7000";
  absl::StatusOr<std::unique_ptr<EtcdCluster>> second = EtcdCluster::Start(twin, nullptr);
  ASSERT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("addr-a:7000"));
  // The first holder is untouched.
  EXPECT_THAT(a->members(), ElementsAre(Member{"a", "addr-a:7000"}));
  EXPECT_TRUE(a->healthy());

  a->Leave();  // then the id is free
  second = EtcdCluster::Start(twin, nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT((*second)->members(), ElementsAre(Member{"a", "elsewhere:7000"}));
}

TEST_F(EtcdClusterTest, ClaimsAreExclusiveAndTheirTokensGrow) {
  std::unique_ptr<EtcdCluster> a = Join("a", kLongTtl);
  std::unique_ptr<EtcdCluster> b = Join("b", kLongTtl);
  ASSERT_TRUE(a && b);
  absl::StatusOr<int64_t> t1 = a->Claim(5);
  ASSERT_TRUE(t1.ok()) << t1.status();
  EXPECT_GT(*t1, 0);

  absl::StatusOr<int64_t> refused = b->Claim(5);
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("held by a"));

  absl::StatusOr<int64_t> again = a->Claim(5);  // a holds it already: the same token
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *t1);

  ASSERT_TRUE(a->Release(5).ok());
  absl::StatusOr<std::pair<std::string, int64_t>> holder = a->Holder(5);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, std::make_pair(std::string(), int64_t{0}));

  absl::StatusOr<int64_t> t2 = b->Claim(5);
  ASSERT_TRUE(t2.ok()) << t2.status();
  EXPECT_GT(*t2, *t1);
  holder = a->Holder(5);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, std::make_pair(std::string("b"), *t2));

  // Releasing what another node holds changes nothing.
  absl::StatusOr<int64_t> t9 = a->Claim(9);
  ASSERT_TRUE(t9.ok()) << t9.status();
  EXPECT_GT(*t9, *t2);
  EXPECT_TRUE(b->Release(9).ok());
  holder = b->Holder(9);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, std::make_pair(std::string("a"), *t9));
  EXPECT_TRUE(a->Release(100).ok());  // holds nothing: OK
  holder = a->Holder(5);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->first, "b");
}

// etcd killed and restarted before the lease's TTL ran out: the node recovers by itself.
TEST(EtcdClusterRestartTest, EtcdBackWithinTheTtl) {
  std::unique_ptr<testing::EtcdServer> server;
  MASSA_START_ETCD(server);
  const milliseconds ttl{6000};
  auto ra = Recorder::Make();
  absl::StatusOr<std::unique_ptr<EtcdCluster>> a =
      EtcdCluster::Start(Options(server->endpoint(), "c", "a", ttl), Recorder::Callback(ra));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE((*a)->healthy());
  EXPECT_TRUE(absl::IsFailedPrecondition((*a)->Rejoin()));  // the lease is alive
  absl::StatusOr<int64_t> token = (*a)->Claim(1);
  ASSERT_TRUE(token.ok()) << token.status();

  ASSERT_TRUE(server->Kill().ok());
  EXPECT_TRUE(WaitFor([&] { return !(*a)->healthy(); }, ttl + milliseconds(2000)));
  // Meanwhile nobody can join.
  EtcdOptions unreachable = Options(server->endpoint(), "c", "x", ttl);
  unreachable.rpc_timeout = milliseconds(300);
  absl::StatusOr<std::unique_ptr<EtcdCluster>> x = EtcdCluster::Start(unreachable, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(x.status())) << x.status();

  ASSERT_TRUE(server->Restart().ok()) << server->log();
  EXPECT_TRUE(WaitFor([&] { return (*a)->healthy(); }, kWait));
  absl::StatusOr<std::pair<std::string, int64_t>> holder = (*a)->Holder(1);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(*holder, std::make_pair(std::string("a"), *token));  // the same lease: claim kept

  // The watch came back too: a new node is seen.
  absl::StatusOr<std::unique_ptr<EtcdCluster>> b =
      EtcdCluster::Start(Options(server->endpoint(), "c", "b", ttl), nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(WaitFor([&] { return ra->last() == Ids{"a", "b"}; }, kWait))
      << ::testing::PrintToString(ra->calls());
}

// etcd down for longer than the TTL: the node's lease counts as expired even though etcd,
// restarted, extends the leases it had; the node stays unhealthy until it rejoins.
TEST(EtcdClusterRestartTest, EtcdBackAfterTheTtlNeedsARejoin) {
  std::unique_ptr<testing::EtcdServer> server;
  MASSA_START_ETCD(server);
  const milliseconds ttl = kShortTtl;
  auto ra = Recorder::Make();
  absl::StatusOr<std::unique_ptr<EtcdCluster>> a =
      EtcdCluster::Start(Options(server->endpoint(), "c", "a", ttl), Recorder::Callback(ra));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*a)->Claim(3).ok());
  const int64_t old_lease = (*a)->lease_id();

  ASSERT_TRUE(server->Kill().ok());
  EXPECT_TRUE(WaitFor([&] { return !(*a)->healthy(); }, ttl + milliseconds(2000)));
  std::this_thread::sleep_for(2 * ttl);  // the TTL runs out while etcd is down
  ASSERT_TRUE(server->Restart().ok()) << server->log();

  // It stays unhealthy (reusing the old lease would make it healthy within a keep-alive).
  const bool came_back = WaitFor([&] { return (*a)->healthy(); }, milliseconds(1500));
  EXPECT_FALSE(came_back);
  EXPECT_TRUE(absl::IsFailedPrecondition((*a)->Claim(4).status()));

  ASSERT_TRUE((*a)->Rejoin().ok());
  EXPECT_TRUE((*a)->healthy());
  EXPECT_NE((*a)->lease_id(), old_lease);
  // The old lease is gone with its claim, and the node is registered again.
  absl::StatusOr<std::pair<std::string, int64_t>> holder = (*a)->Holder(3);
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->first, "");
  absl::StatusOr<std::unique_ptr<EtcdCluster>> b =
      EtcdCluster::Start(Options(server->endpoint(), "c", "b", ttl), nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(IdsOf((*b)->members()), ElementsAre("a", "b"));
  EXPECT_TRUE(WaitFor([&] { return ra->last() == Ids{"a", "b"}; }, kWait))
      << ::testing::PrintToString(ra->calls());
  ASSERT_TRUE((*a)->Claim(3).ok());
  EXPECT_TRUE(WaitFor([&] { return (*a)->healthy(); }, kWait));
}

}  // namespace
}  // namespace massa::cluster
