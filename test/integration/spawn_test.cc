// The Spawn driver end to end: `massa serve --protocol spawn` beside the test SDK
// (spawn_sdk.h), called over the Spawn sidecar HTTP API the way Spawn's SDKs call it, and
// killed with SIGKILL where durability is the point (the SDK, in this process, stays up). The
// protocol facts are in ../shared/notes/protocols.md sections 1 and 5; what Massa adds (errors
// as "<CODE>: reason", no queueing for pools, call cycles refused) in docs/spawn.md.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/process.h"
#include "integration/spawn_sdk.h"

namespace massa::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kEventually = std::chrono::seconds(10);
// How long a test waits after an asynchronous effect showed, to see that it does not repeat.
constexpr auto kSettle = std::chrono::milliseconds(400);

template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = kEventually) {
  return PollUntil(std::move(done), timeout);
}

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The canonical status code names (absl/gRPC) an error message may start with.
const std::set<std::string>& CanonicalCodes() {
  static const std::set<std::string> codes = {"CANCELLED",
                                              "UNKNOWN",
                                              "INVALID_ARGUMENT",
                                              "DEADLINE_EXCEEDED",
                                              "NOT_FOUND",
                                              "ALREADY_EXISTS",
                                              "PERMISSION_DENIED",
                                              "RESOURCE_EXHAUSTED",
                                              "FAILED_PRECONDITION",
                                              "ABORTED",
                                              "OUT_OF_RANGE",
                                              "UNIMPLEMENTED",
                                              "INTERNAL",
                                              "UNAVAILABLE",
                                              "DATA_LOSS",
                                              "UNAUTHENTICATED"};
  return codes;
}

// An error answer as Massa gives every one: HTTP 500, an InvocationResponse with status ERROR
// and the message "<CODE>: reason" (CODE canonical; `code` when given), the reason not empty.
::testing::AssertionResult IsError(const SpawnInvokeResult& result, const std::string& code = "") {
  if (!result.error()) {
    return ::testing::AssertionFailure() << "not an error answer: " << result.Describe();
  }
  const std::string& message = result.message();
  const size_t colon = message.find(": ");
  const std::string prefix = colon == std::string::npos ? "" : message.substr(0, colon);
  if (CanonicalCodes().count(prefix) == 0) {
    return ::testing::AssertionFailure()
           << "message \"" << message << "\" does not start with a canonical code";
  }
  if (!code.empty() && prefix != code) {
    return ::testing::AssertionFailure()
           << "code " << prefix << ", expected " << code << ": \"" << message << "\"";
  }
  if (message.find_first_not_of(' ', colon + 2) == std::string::npos) {
    return ::testing::AssertionFailure() << "message \"" << message << "\" gives no reason";
  }
  return ::testing::AssertionSuccess();
}

// An async answer: 200, status OK, neither value nor noop.
::testing::AssertionResult IsAsyncOk(const SpawnInvokeResult& result) {
  if (!result.ok()) return ::testing::AssertionFailure() << result.Describe();
  if (result.response.has_value() || result.response.has_noop()) {
    return ::testing::AssertionFailure() << "async answer with a payload: " << result.Describe();
  }
  return ::testing::AssertionSuccess();
}

SpawnInvokeOptions Value(int64_t n) {
  SpawnInvokeOptions options;
  options.value = n;
  return options;
}

SpawnInvokeOptions Instance(const std::string& parent, std::optional<int64_t> n = std::nullopt) {
  SpawnInvokeOptions options;
  options.parent = parent;
  options.value = n;
  return options;
}

// Records with an Int64 payload equal to `n`.
int CountWithValue(const std::vector<SpawnInvocationRecord>& records, int64_t n) {
  int count = 0;
  for (const SpawnInvocationRecord& record : records) {
    if (record.value_int64() == n) ++count;
  }
  return count;
}

class SpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sdk_ = SpawnSdk::Start();
    ASSERT_NE(sdk_, nullptr) << "the test SDK could not listen";
    ASSERT_NO_FATAL_FAILURE(StartMassaProcess());
  }

  void StartMassaProcess() {
    const std::string log = dir_.path() + "/massa" + std::to_string(starts_++) + ".log";
    std::optional<MassaEndpoints> endpoints =
        StartMassa(massa_, "127.0.0.1:" + std::to_string(sdk_->port()), dir_.path() + "/data", log,
                   {"--protocol", "spawn", "--spawn-listen", "127.0.0.1:0",
                    // ticker's 200 ms as it is, not raised to the default minimum of 1 s
                    "--timer-min-interval", "100ms"});
    ASSERT_TRUE(endpoints.has_value()) << (massa_ ? massa_->log() : "");
    ASSERT_NE(endpoints->spawn_port, 0);
    port_ = endpoints->spawn_port;
    sdk_->set_spawn_port(port_);
  }

  void RegisterOk() {
    SpawnRegisterResult result = sdk_->Register(port_);
    ASSERT_TRUE(result.ok()) << "HTTP " << result.http_status << " decoded=" << result.decoded
                             << " \"" << result.response.status().message() << "\"\n"
                             << massa_->log();
  }

  // kill -9, then massa again on the same data dir, and the SDK registers again (as a Spawn
  // SDK does when its sidecar restarts).
  void KillRestartAndRegister() {
    massa_->Signal(SIGKILL);
    ASSERT_NE(massa_->Wait(std::chrono::seconds(10)), -1);
    ASSERT_NO_FATAL_FAILURE(StartMassaProcess());
    ASSERT_NO_FATAL_FAILURE(RegisterOk());
  }

  SpawnInvokeResult Invoke(const std::string& actor, const std::string& action,
                           const SpawnInvokeOptions& options = {}) {
    return SpawnInvoke(port_, actor, action, options);
  }

  // The state through the built-in get (nullopt: no Int64 state, or the call failed).
  std::optional<int64_t> Get(const std::string& actor, const std::string& parent = "") {
    SpawnInvokeResult result = Invoke(actor, "get", Instance(parent));
    return result.ok() ? result.value_int64() : std::nullopt;
  }

  // Polls get until it is `expected`.
  ::testing::AssertionResult EventuallyState(const std::string& actor, int64_t expected,
                                             const std::string& parent = "") {
    std::optional<int64_t> last;
    if (Eventually([&] { return (last = Get(actor, parent)) == expected; })) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << actor << " is " << (last ? std::to_string(*last) : "unset") << ", not " << expected
           << " after " << kEventually.count() << " s";
  }

  // After an effect showed: `actor` stays at `expected` (no repeat).
  ::testing::AssertionResult StaysAt(const std::string& actor, int64_t expected,
                                     const std::string& parent = "") {
    std::this_thread::sleep_for(kSettle);
    std::optional<int64_t> now = Get(actor, parent);
    if (now == expected) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << actor << " moved on to " << (now ? std::to_string(*now) : "unset") << " from "
           << expected;
  }

  // Spawns rooms r1 and r2, gives them states 1 and 2, and lets them passivate (100 ms).
  void SpawnRooms() {
    SpawnSpawnResult spawned = SpawnActors(port_, {"r1", "r2"}, "room");
    ASSERT_TRUE(spawned.ok()) << "HTTP " << spawned.http_status;
    for (int i = 1; i <= 2; ++i) {
      SpawnInvokeResult result = Invoke("r" + std::to_string(i), "receive", Instance("room", i));
      ASSERT_TRUE(result.ok()) << result.Describe();
      ASSERT_EQ(result.value_int64(), i);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  // After a broadcast of `n` (SpawnRooms before): listener holds n, r1 and r2 n+1 and n+2, and
  // they stay so (each got it once).
  void ExpectBroadcastApplied(int64_t n) {
    EXPECT_TRUE(EventuallyState("listener", n));
    EXPECT_TRUE(EventuallyState("r1", n + 1, "room"));
    EXPECT_TRUE(EventuallyState("r2", n + 2, "room"));
    std::this_thread::sleep_for(kSettle);
    EXPECT_EQ(Get("listener"), n);
    EXPECT_EQ(Get("r1", "room"), n + 1);
    EXPECT_EQ(Get("r2", "room"), n + 2);
  }

  int Health(const std::string& path, std::string* body = nullptr) {
    HttpResult result = HttpCall(port_, "GET", path, "", "");
    if (body != nullptr) *body = result.body;
    return result.status;
  }

  TempDir dir_;
  std::unique_ptr<SpawnSdk> sdk_;  // destroyed after massa
  std::unique_ptr<Process> massa_;
  int port_ = 0;
  int starts_ = 0;
};

// Health and metrics routes; readiness waits for an SDK's registration.
TEST_F(SpawnTest, HealthAndReadinessFollowRegistration) {
  std::string body;
  EXPECT_EQ(Health("/health", &body), 200);
  EXPECT_THAT(body, HasSubstr("\"up\"")) << body;
  EXPECT_EQ(Health("/health/liveness", &body), 200);
  EXPECT_THAT(body, HasSubstr("\"up\"")) << body;
  EXPECT_EQ(Health("/health/readiness"), 503) << "ready before any SDK registered";
  EXPECT_EQ(Health("/metrics", &body), 200);
  EXPECT_THAT(body, HasSubstr("# TYPE "));

  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  EXPECT_EQ(Health("/health/readiness", &body), 200) << body;
  EXPECT_EQ(Health("/health/liveness"), 200);
}

// A registration with an invalid actor is refused whole (500 + RegistrationResponse ERROR
// naming the actor), and what was registered before keeps working; registering again (an SDK
// restart) is accepted and keeps the state.
TEST_F(SpawnTest, RegistrationRefusesInvalidActorsAndKeepsWhatWasRegistered) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_EQ(Invoke("counter", "add", Value(5)).value_int64(), 5);

  ::spawn::RegistrationRequest with_task = SpawnSdk::Registration();
  ::spawn::actors::Actor task;
  task.mutable_id()->set_name("bad_task");
  task.mutable_id()->set_system(kSpawnSystem);
  task.mutable_state();
  task.mutable_settings()->set_kind(::spawn::actors::TASK);
  task.add_actions()->set_name("run");
  (*with_task.mutable_actor_system()->mutable_registry()->mutable_actors())["bad_task"] = task;
  SpawnRegisterResult refused = PostRegistration(port_, SpawnSdk::RegistrationBody(with_task));
  EXPECT_EQ(refused.http_status, 500);
  ASSERT_TRUE(refused.decoded) << refused.body;
  EXPECT_EQ(refused.response.status().status(), ::spawn::ERROR);
  EXPECT_THAT(refused.response.status().message(), HasSubstr("bad_task"));

  ::spawn::RegistrationRequest with_timer = SpawnSdk::Registration();
  ::spawn::actors::Actor timed;
  timed.mutable_id()->set_name("bad_timer");
  timed.mutable_id()->set_system(kSpawnSystem);
  timed.mutable_state();
  timed.mutable_settings()->set_kind(::spawn::actors::NAMED);
  timed.mutable_settings()->set_stateful(true);
  ::spawn::actors::FixedTimerAction* timer = timed.add_timer_actions();
  timer->set_seconds(0);
  timer->mutable_action()->set_name("tick");
  (*with_timer.mutable_actor_system()->mutable_registry()->mutable_actors())["bad_timer"] = timed;
  refused = PostRegistration(port_, SpawnSdk::RegistrationBody(with_timer));
  EXPECT_EQ(refused.http_status, 500);
  ASSERT_TRUE(refused.decoded) << refused.body;
  EXPECT_EQ(refused.response.status().status(), ::spawn::ERROR);
  EXPECT_THAT(refused.response.status().message(), HasSubstr("bad_timer"));

  refused = PostRegistration(port_, std::string("\x01\x02") + "not protobuf");
  EXPECT_EQ(refused.http_status, 500);
  ASSERT_TRUE(refused.decoded) << refused.body;
  EXPECT_EQ(refused.response.status().status(), ::spawn::ERROR);
  EXPECT_FALSE(refused.response.status().message().empty());

  EXPECT_EQ(Health("/health/readiness"), 200);
  SpawnInvokeResult added = Invoke("counter", "add", Value(1));
  EXPECT_TRUE(added.ok()) << added.Describe();
  EXPECT_EQ(added.value_int64(), 6);
  SpawnInvokeResult bad = Invoke("bad_task", "run");
  EXPECT_TRUE(IsError(bad)) << "a refused registration's actor was registered";

  ASSERT_NO_FATAL_FAILURE(RegisterOk());  // again, as after an SDK restart
  added = Invoke("counter", "add", Value(1));
  EXPECT_TRUE(added.ok()) << added.Describe();
  EXPECT_EQ(added.value_int64(), 7);
  EXPECT_EQ(Get("counter"), 7);
}

// A synchronous invocation of a named actor: the reply, what the SDK receives (context, tags,
// metadata, caller), init once per activation before the first command, both content types,
// and the built-in get answered by Massa without calling the SDK.
TEST_F(SpawnTest, InvokeNamedActorInitTagsAndBuiltInGet) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeOptions first = Value(5);
  first.caller = "tester";
  first.metadata = {{"trace-id", "t1"}};
  SpawnInvokeResult result = Invoke("counter", "add", first);
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 5);
  EXPECT_EQ(result.response.system().name(), kSpawnSystem);
  EXPECT_EQ(result.response.actor().id().name(), "counter");

  SpawnInvokeOptions second = Value(3);
  second.content_type = "application/protobuf";
  result = Invoke("counter", "add", second);
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 8);

  for (const char* get : {"get", "getState"}) {
    result = Invoke("counter", get);
    ASSERT_TRUE(result.ok()) << get << ": " << result.Describe();
    ASSERT_TRUE(result.response.has_value()) << get << ": " << result.Describe();
    EXPECT_EQ(result.response.value().type_url(), kInt64TypeUrl);
    EXPECT_EQ(result.value_int64(), 8) << get;
  }
  EXPECT_TRUE(sdk_->Invocations("counter", "get").empty()) << "get went to the SDK";
  EXPECT_TRUE(sdk_->Invocations("counter", "getState").empty()) << "getState went to the SDK";

  const std::vector<SpawnInvocationRecord> adds = sdk_->Invocations("counter", "add");
  ASSERT_EQ(adds.size(), 2u);
  EXPECT_EQ(adds[0].system, kSpawnSystem);
  EXPECT_EQ(adds[0].parent, "");
  EXPECT_TRUE(adds[0].has_context) << "no current_context (the Node SDK needs it)";
  EXPECT_EQ(adds[0].value_int64(), 5);
  EXPECT_EQ(adds[0].state_int64().value_or(0), 0);
  EXPECT_EQ(adds[0].metadata.count("trace-id") ? adds[0].metadata.at("trace-id") : "", "t1");
  EXPECT_TRUE(adds[0].caller == "tester" || adds[0].context_caller == "tester")
      << "caller '" << adds[0].caller << "', context caller '" << adds[0].context_caller << "'";
  EXPECT_EQ(adds[1].value_int64(), 3);
  EXPECT_EQ(adds[1].state_int64(), 5);
  // Tags: the registration's, and what init set.
  EXPECT_EQ(adds[1].tags,
            (std::map<std::string, std::string>{{"kind", "counter"}, {"initialized", "yes"}}));

  const std::vector<SpawnInvocationRecord> inits = sdk_->Invocations("counter", "init");
  ASSERT_EQ(inits.size(), 1u);
  EXPECT_EQ(sdk_->init_count("counter"), 1);
  EXPECT_LT(inits[0].seq, adds[0].seq) << "init ran after the first command";
  EXPECT_FALSE(inits[0].value.has_value()) << "init is invoked with noop";
  EXPECT_EQ(inits[0].tags.count("kind") ? inits[0].tags.at("kind") : "", "counter")
      << "the registration's tags are not in init's context";
  EXPECT_EQ(adds[0].tags.count("initialized") ? adds[0].tags.at("initialized") : "", "yes")
      << "init's tags are not in the next invocation's context";
  EXPECT_EQ(sdk_->max_overlap("counter"), 1);
}

// async=true and scheduled_to: 200 with neither value nor noop once durably accepted; the
// invocation runs later, also when massa is killed right after the answer.
TEST_F(SpawnTest, AsyncAndScheduledInvocationsAreDurable) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeOptions async = Value(2);
  async.async = true;
  SpawnInvokeResult result = Invoke("counter", "add", async);
  EXPECT_TRUE(IsAsyncOk(result));
  ASSERT_NO_FATAL_FAILURE(KillRestartAndRegister());
  EXPECT_TRUE(EventuallyState("counter", 2));
  EXPECT_TRUE(StaysAt("counter", 2));

  SpawnInvokeOptions scheduled = Value(3);
  scheduled.scheduled_to = EpochMs() + 300;
  result = Invoke("counter", "add", scheduled);
  EXPECT_TRUE(IsAsyncOk(result));
  EXPECT_TRUE(EventuallyState("counter", 5));
  EXPECT_TRUE(StaysAt("counter", 5));
  EXPECT_EQ(CountWithValue(sdk_->Invocations("counter", "add"), 3), 1);
}

// Unnamed actors: spawned first, or on the fly with register_ref; the SDK sees the parent;
// never spawned = NOT_FOUND; revisions are refused.
TEST_F(SpawnTest, UnnamedActorsSpawnedOrRegisteredByRef) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnSpawnResult spawned = SpawnActors(port_, {"w1"}, "worker");
  EXPECT_TRUE(spawned.ok()) << "HTTP " << spawned.http_status << " "
                            << spawned.response.status().message();

  SpawnInvokeResult result = Invoke("w1", "add", Instance("worker", 4));
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 4);
  std::vector<SpawnInvocationRecord> records = sdk_->Invocations("w1", "add");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].parent, "worker");
  EXPECT_EQ(records[0].system, kSpawnSystem);

  result = Invoke("w9", "add", Instance("worker", 1));
  EXPECT_TRUE(IsError(result, "NOT_FOUND"));
  EXPECT_TRUE(sdk_->Invocations("w9").empty());

  SpawnInvokeOptions by_ref = Value(7);
  by_ref.register_ref = "worker";
  result = Invoke("w2", "add", by_ref);
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 7);
  records = sdk_->Invocations("w2", "add");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].parent, "worker");

  EXPECT_EQ(Get("w1", "worker"), 4);
  EXPECT_EQ(Get("w2", "worker"), 7);

  spawned = SpawnActors(port_, {"w3"}, "worker", "?revision=2");
  EXPECT_EQ(spawned.http_status, 500);
  ASSERT_TRUE(spawned.decoded) << spawned.body;
  EXPECT_EQ(spawned.response.status().status(), ::spawn::ERROR);
  EXPECT_FALSE(spawned.response.status().message().empty());
}

// A pooled actor runs at most max_pool_size invocations at once; beyond that a call fails at
// once with RESOURCE_EXHAUSTED (Massa does not queue).
TEST_F(SpawnTest, PooledActorRunsAtMostMaxPoolSizeAtOnce) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeResult echoed = Invoke("pool", "echo", Value(11));
  ASSERT_TRUE(echoed.ok()) << echoed.Describe();
  EXPECT_EQ(echoed.value_int64(), 11);

  std::vector<SpawnInvokeResult> held(2), extra(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] { held[i] = Invoke("pool", "slow_echo", Value(21 + i)); });
  }
  EXPECT_TRUE(Eventually([&] { return sdk_->pool_in_flight() == 2; }))
      << "the first two calls never ran together";
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] { extra[i] = Invoke("pool", "slow_echo", Value(31 + i)); });
  }
  for (std::thread& thread : threads) thread.join();

  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(held[i].ok()) << held[i].Describe();
    EXPECT_EQ(held[i].value_int64(), 21 + i);
  }
  int exhausted = 0;
  for (int i = 0; i < 3; ++i) {
    if (extra[i].ok()) {
      EXPECT_EQ(extra[i].value_int64(), 31 + i);
    } else {
      EXPECT_TRUE(IsError(extra[i], "RESOURCE_EXHAUSTED"));
      ++exhausted;
    }
  }
  EXPECT_GE(exhausted, 1) << "five calls at once on a pool of two, none refused";
  EXPECT_LE(sdk_->pool_max_overlap(), 2);
}

// Workflow side effects: the caller's reply comes first; the effects reach their target
// asynchronously and exactly once, a scheduled one at its time.
TEST_F(SpawnTest, SideEffectsRunAsynchronouslyOnce) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeResult result = Invoke("flow", "effects", Value(4));
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_TRUE(result.response.has_noop()) << result.Describe();
  EXPECT_TRUE(EventuallyState("counter", 4));
  std::vector<SpawnInvocationRecord> adds = sdk_->Invocations("counter", "add");
  ASSERT_EQ(adds.size(), 1u);
  EXPECT_EQ(adds[0].value_int64(), 4);
  EXPECT_TRUE(adds[0].caller == "flow" || adds[0].context_caller == "flow")
      << "the effect's caller is lost";

  SpawnInvokeOptions scheduled = Value(5);
  scheduled.metadata = {{"delay_ms", "300"}};
  result = Invoke("flow", "scheduled", scheduled);
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_TRUE(EventuallyState("counter", 9));
  EXPECT_TRUE(StaysAt("counter", 9));
  EXPECT_EQ(CountWithValue(sdk_->Invocations("counter", "add"), 5), 1);
}

// A scheduled side effect fires once although massa is killed -9 right after the reply.
TEST_F(SpawnTest, ScheduledSideEffectFiresOnceAcrossKill) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeResult result = Invoke("flow", "scheduled", Value(7));  // in 1.5 s
  ASSERT_TRUE(result.ok()) << result.Describe();
  ASSERT_NO_FATAL_FAILURE(KillRestartAndRegister());
  EXPECT_TRUE(EventuallyState("counter", 7));
  EXPECT_TRUE(StaysAt("counter", 7));
}

// A broadcast reaches the Channel subscriber through its action and every room (subscribed
// the Python SDK's way, passivated) through `receive`, each exactly once.
TEST_F(SpawnTest, BroadcastReachesEverySubscriberOnce) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_NO_FATAL_FAILURE(SpawnRooms());
  SpawnInvokeResult result = Invoke("flow", "broadcast", Value(10));
  ASSERT_TRUE(result.ok()) << result.Describe();

  ExpectBroadcastApplied(10);
  EXPECT_EQ(CountWithValue(sdk_->Invocations("listener", "on_news"), 10), 1);
  for (const char* room : {"r1", "r2"}) {
    std::vector<SpawnInvocationRecord> received = sdk_->Invocations(room, "receive");
    EXPECT_EQ(CountWithValue(received, 10), 1) << room;
    for (const SpawnInvocationRecord& record : received) EXPECT_EQ(record.parent, "room");
  }
  EXPECT_TRUE(sdk_->Invocations("listener", "receive").empty())
      << "the Channel's action was ignored";
}

// The same when massa is killed -9 right after the broadcast was acknowledged.
TEST_F(SpawnTest, BroadcastSurvivesKill) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_NO_FATAL_FAILURE(SpawnRooms());
  SpawnInvokeResult result = Invoke("flow", "broadcast", Value(20));
  ASSERT_TRUE(result.ok()) << result.Describe();
  ASSERT_NO_FATAL_FAILURE(KillRestartAndRegister());

  ExpectBroadcastApplied(20);
}

// Pipe: the caller gets the target's reply to this reply's payload; forward: the target gets
// the original payload; a failing pipe target fails the call.
TEST_F(SpawnTest, PipeAndForwardAnswerWithTheTargetsReply) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_EQ(Invoke("counter", "add", Value(100)).value_int64(), 100);

  SpawnInvokeResult result = Invoke("flow", "pipe", Value(5));
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 105);
  EXPECT_EQ(CountWithValue(sdk_->Invocations("counter", "add"), 5), 1);

  result = Invoke("flow", "forward", Value(7));
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 112);
  EXPECT_EQ(CountWithValue(sdk_->Invocations("counter", "add"), 7), 1);

  result = Invoke("flow", "pipe_fail", Value(3));
  EXPECT_TRUE(IsError(result)) << "the pipe target's failure was swallowed";
  EXPECT_FALSE(sdk_->Invocations("counter", "fail").empty()) << "the pipe never reached counter";
  EXPECT_EQ(Get("counter"), 112);
}

// flow.call_back -> flow2.call_flow -> flow.effects (each a synchronous call through the
// sidecar from the SDK): a call cycle, answered with an error naming it instead of a hang.
TEST_F(SpawnTest, CallCycleIsRefused) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeResult result = Invoke("flow", "call_back", Value(1));
  ASSERT_NE(result.http_status, 0) << "no answer: the cycle hung";
  // The SDK fails its actions with an empty 400 (as Node's does): massa names the refusal.
  EXPECT_TRUE(IsError(result, "ABORTED"));
  EXPECT_THAT(result.message(), ::testing::ContainsRegex("[Cc]ycle")) << result.Describe();
  EXPECT_EQ(sdk_->Invocations("flow2", "call_flow").size(), 1u);
  EXPECT_TRUE(sdk_->Invocations("flow", "effects").empty())
      << "flow ran a second invocation while its first waited";
  EXPECT_EQ(sdk_->max_overlap("flow"), 1);
  EXPECT_TRUE(sdk_->Invocations("counter", "add").empty());
}

// Invocations of one actor run one at a time; request-timeout metadata bounds a call.
TEST_F(SpawnTest, InvocationsAreSerializedAndRequestTimeoutApplies) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  SpawnInvokeResult slow;
  std::thread caller([&] { slow = Invoke("counter", "slow", Value(1)); });
  EXPECT_TRUE(Eventually([&] { return !sdk_->Invocations("counter", "slow").empty(); }));
  SpawnInvokeResult added = Invoke("counter", "add", Value(2));
  caller.join();
  ASSERT_TRUE(slow.ok()) << slow.Describe();
  ASSERT_TRUE(added.ok()) << added.Describe();
  EXPECT_EQ(slow.value_int64(), 1);
  EXPECT_EQ(added.value_int64(), 3) << "add did not wait for slow";
  EXPECT_EQ(sdk_->max_overlap("counter"), 1);

  SpawnInvokeOptions bounded = Value(5);
  bounded.metadata = {{"request-timeout", "200"}};
  SpawnInvokeResult timed_out = Invoke("counter", "slow", bounded);
  EXPECT_TRUE(IsError(timed_out, "DEADLINE_EXCEEDED"));
}

// The SDK's failures (Python's 500 text/html, Node's 400, a body that is not protobuf, a reply
// without updated_context) are errors, and the state is as before.
TEST_F(SpawnTest, SdkFailuresAreErrorsAndLeaveStateUnchanged) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_EQ(Invoke("counter", "add", Value(10)).value_int64(), 10);
  for (const char* action : {"fail", "fail400", "garbage", "nocontext"}) {
    SpawnInvokeResult result = Invoke("counter", action, Value(5));
    EXPECT_TRUE(IsError(result)) << action;
    EXPECT_FALSE(sdk_->Invocations("counter", action).empty())
        << action << " never reached the SDK";
    EXPECT_EQ(Get("counter"), 10) << "after " << action;
  }
  SpawnInvokeResult result = Invoke("counter", "add", Value(1));
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 11);
}

// Bad input: a body that is not an InvocationRequest, an unknown actor or action; errors that
// say what was wrong, with no state changed and no call to the SDK for an unknown action.
TEST_F(SpawnTest, BadInputIsRefusedWithoutChangingState) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_EQ(Invoke("counter", "add", Value(10)).value_int64(), 10);

  SpawnInvokeResult result = SpawnInvokeRaw(port_, "counter", std::string("\x01\x02") + "junk");
  EXPECT_TRUE(IsError(result, "INVALID_ARGUMENT"));

  result = Invoke("nosuch", "add", Value(1));
  EXPECT_TRUE(IsError(result));
  EXPECT_THAT(result.message(), HasSubstr("nosuch"));
  EXPECT_TRUE(sdk_->Invocations("nosuch").empty());

  result = Invoke("counter", "nosuchaction", Value(1));
  EXPECT_TRUE(IsError(result));
  EXPECT_THAT(result.message(), HasSubstr("nosuchaction"));
  EXPECT_TRUE(sdk_->Invocations("counter", "nosuchaction").empty());

  EXPECT_EQ(Get("counter"), 10);
}

// Timer actions (seconds holding milliseconds) tick by themselves, and again after kill -9.
TEST_F(SpawnTest, TimerActionsTickAndSurviveKill) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  std::optional<int64_t> ticks;
  EXPECT_TRUE(Eventually([&] { return (ticks = Get("ticker")).value_or(0) >= 3; }))
      << "ticker at " << ticks.value_or(0);
  const int64_t before = ticks.value_or(0);
  ASSERT_NO_FATAL_FAILURE(KillRestartAndRegister());
  EXPECT_TRUE(Eventually([&] { return (ticks = Get("ticker")).value_or(0) >= before + 2; }))
      << "ticker at " << ticks.value_or(0) << " after the restart, was " << before;
  std::vector<SpawnInvocationRecord> records = sdk_->Invocations("ticker", "tick");
  ASSERT_FALSE(records.empty());
  EXPECT_FALSE(records[0].value_int64().has_value()) << "tick is invoked with noop";
}

// The state survives kill -9 (massa restarted on the same data, the SDK registering again);
// init runs again on the new activation.
TEST_F(SpawnTest, StateSurvivesKillAndInitRunsPerActivation) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  ASSERT_EQ(Invoke("counter", "add", Value(42)).value_int64(), 42);
  EXPECT_EQ(sdk_->init_count("counter"), 1);
  ASSERT_NO_FATAL_FAILURE(KillRestartAndRegister());
  EXPECT_EQ(Get("counter"), 42);
  SpawnInvokeResult result = Invoke("counter", "add", Value(1));
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.value_int64(), 43);
  EXPECT_EQ(sdk_->init_count("counter"), 2);
  std::vector<SpawnInvocationRecord> inits = sdk_->Invocations("counter", "init");
  std::vector<SpawnInvocationRecord> adds = sdk_->Invocations("counter", "add");
  ASSERT_EQ(inits.size(), 2u);
  ASSERT_EQ(adds.size(), 2u);
  EXPECT_LT(inits[1].seq, adds[1].seq);
  EXPECT_GT(inits[1].seq, adds[0].seq);
  EXPECT_EQ(adds[1].state_int64(), 42);
}

// The Node SDK's habits: JSON state under the old package name, kept byte for byte and given
// back by get; a Noop packed into `value` and an empty workflow in the reply.
TEST_F(SpawnTest, NodeStyleJsonStateIsKeptAsSent) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  const google::protobuf::Any first = OldJsonAny("{\"a\":1}");
  SpawnInvokeOptions set;
  set.any = first;
  SpawnInvokeResult result = Invoke("jsonish", "set", set);
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_TRUE(result.response.has_noop() || (result.response.has_value() &&
                                             result.response.value().type_url().ends_with(".Noop")))
      << result.Describe();

  result = Invoke("jsonish", "get");
  ASSERT_TRUE(result.ok()) << result.Describe();
  ASSERT_TRUE(result.response.has_value()) << result.Describe();
  EXPECT_EQ(result.response.value().type_url(), kOldJsonTypeUrl);
  EXPECT_EQ(result.response.value().value(), first.value());

  set.any = OldJsonAny("{\"a\":2}");
  result = Invoke("jsonish", "set", set);
  ASSERT_TRUE(result.ok()) << result.Describe();
  std::vector<SpawnInvocationRecord> sets = sdk_->Invocations("jsonish", "set");
  ASSERT_EQ(sets.size(), 2u);
  ASSERT_TRUE(sets[1].state.has_value());
  EXPECT_EQ(sets[1].state->type_url(), kOldJsonTypeUrl);
  EXPECT_EQ(sets[1].state->value(), first.value());
  result = Invoke("jsonish", "get");
  ASSERT_TRUE(result.ok()) << result.Describe();
  EXPECT_EQ(result.response.value().value(), set.any->value());
}

// SIGTERM while 8 clients invoke over keep-alive connections: every invocation massa applied was
// answered OK (and each OK was applied): after a restart, each worker's state is exactly the
// number of OK answers its client got. (The last wave's check found HTTP calls in flight at
// SIGTERM applied but never answered; this is that check on the Spawn API.)
TEST_F(SpawnTest, SigtermAnswersEveryInvocationThatWasApplied) {
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  constexpr int kClients = 8;
  std::vector<std::string> workers;
  for (int i = 0; i < kClients; ++i) workers.push_back("s" + std::to_string(i));
  ASSERT_TRUE(SpawnActors(port_, workers, "worker").ok());
  std::vector<int64_t> acknowledged(kClients, 0);
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      const std::string body =
          MakeInvocationRequest(workers[i], "add", Instance("worker", 1)).SerializeAsString();
      const std::string target =
          std::string("/api/v1/system/") + kSpawnSystem + "/actors/" + workers[i] + "/invoke";
      for (int round = 0; round < 10'000; ++round) {
        HttpConnection connection(port_);
        if (!connection.open()) return;  // massa stopped listening
        while (connection.open()) {
          SpawnInvokeResult result = DecodeInvocationResponse(
              connection.Request("POST", target, body, "application/octet-stream"));
          if (result.http_status == 0) break;  // closed: the answer never came
          if (result.ok()) {
            ++acknowledged[i];
            ++answered;
          }
        }
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return answered.load() >= 200; }));
  massa_->Signal(SIGTERM);
  EXPECT_EQ(massa_->Wait(std::chrono::seconds(20)), 0) << massa_->log();
  for (std::thread& client : clients) client.join();

  ASSERT_NO_FATAL_FAILURE(StartMassaProcess());
  ASSERT_NO_FATAL_FAILURE(RegisterOk());
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(Get(workers[i], "worker"), acknowledged[i]) << workers[i];
  }
}

}  // namespace
}  // namespace massa::testing
