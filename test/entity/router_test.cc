// Router: resolution, request checks and the hop limit, in front of the real runtime.

#include "entity/router.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "crdt/change.h"
#include "crdt/crdt.h"
#include "entity/runtime_harness.h"
#include "entity/state_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::entity_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class RouterTest : public RuntimeHarness {
 protected:
  void SetUp() override { Start(); }
};

std::string MessageOf(const CommandResult& result) { return std::string(result.status.message()); }

TEST_F(RouterTest, UnknownServiceIsUnimplemented) {
  CommandResult result = Call(MakeCommand("massa.test.Nope", "Get", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(MessageOf(result), HasSubstr("'massa.test.Nope'"));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, UnknownMethodIsUnimplemented) {
  CommandResult result = Call(MakeCommand(kCounter, "Reset", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("'Reset'"), HasSubstr(kCounter)));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, MissingKeyIsInvalidArgument) {
  CommandResult result = Call(MakeCommand(kCounter, "Increment", IncrementRequest("", 1)));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(result),
              AllOf(HasSubstr("/massa.test.Counter/Increment"), HasSubstr("'id'")));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, MalformedRequestIsInvalidArgument) {
  CommandResult result =
      Call(MakeCommand(kCounter, "Increment", std::string("\x0a\x05" "ab", 4)));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("/massa.test.Counter/Increment"),
                                       HasSubstr("does not decode")));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, MalformedActionRequestIsInvalidArgument) {
  CommandResult result = Call(MakeCommand(kEcho, "Say", std::string("\x0a\x05" "ab", 4)));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, StreamingMethodIsUnimplemented) {
  CommandResult result = Call(MakeCommand(kCounter, "Watch", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("/massa.test.Counter/Watch"),
                                       HasSubstr("streaming")));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, HopLimit) {
  Command over = MakeCommand(kCounter, "Get", GetRequest("a"));
  over.hops = Router::kMaxHops + 1;
  CommandResult result = Call(over);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(result), HasSubstr("/massa.test.Counter/Get"));
  EXPECT_EQ(function_.call_count(), 0u);

  Command at_limit = MakeCommand(kCounter, "Get", GetRequest("a"));
  at_limit.hops = Router::kMaxHops;
  EXPECT_TRUE(Call(at_limit).status.ok());
  EXPECT_EQ(function_.call_count(), 1u);
}

TEST_F(RouterTest, RoutedCommandCarriesKeyAndRequestType) {
  ASSERT_TRUE(Increment("c-1", 2).status.ok());
  function_.OnValueEntity(kTwoKey, [](const Command&, const std::optional<TypedValue>&) {
    return ReplyOutcome(Ping("ok"));
  });
  ASSERT_TRUE(Call(MakeCommand(kTwoKey, "Do", TwoKeyRequest("acme", 42))).status.ok());
  std::vector<testing::FakeFunction::Call> calls = function_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[0].entity);
  EXPECT_EQ(calls[0].command.entity_key, "c-1");
  EXPECT_EQ(calls[0].command.request_type, "massa.test.IncrementRequest");
  EXPECT_EQ(calls[0].command.payload, IncrementRequest("c-1", 2));
  EXPECT_EQ(calls[1].command.entity_key, "acme/42");
  EXPECT_EQ(calls[1].command.request_type, "massa.test.TwoKeyRequest");
}

TEST_F(RouterTest, ActionHasNoKey) {
  function_.OnAction(kEcho, [](const Command& command) { return ReplyOutcome(command.payload); });
  CommandResult result = Call(MakeCommand(kEcho, "Say", Ping("hi")));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(ParsePing(result.payload), "hi");
  std::vector<testing::FakeFunction::Call> calls = function_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].entity);
  EXPECT_EQ(calls[0].command.entity_key, "");
  EXPECT_EQ(calls[0].command.request_type, "massa.test.Ping");
}

}  // namespace
}  // namespace massa::entity_test

namespace massa::entity_test {
namespace {

TEST_F(RouterTest, ACallToAnEntityWaitingInTheChainIsAbortedNamingTheChain) {
  Command call = MakeCommand(kCounter, "Increment", IncrementRequest("a", 1));
  call.call_chain = {"massa.test.Counter/a", "massa.test.Other/b"};
  CommandResult result = Call(std::move(call));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(MessageOf(result),
              HasSubstr("massa.test.Counter/a -> massa.test.Other/b -> massa.test.Counter/a"));
  EXPECT_EQ(function_.call_count(), 0u);
  EXPECT_EQ(Stored("a"), std::nullopt);
}

TEST_F(RouterTest, AnEntityOutsideTheChainIsCalledAndSeesItselfWaiting) {
  Command call = MakeCommand(kCounter, "Increment", IncrementRequest("b", 1));
  call.call_chain = {"massa.test.Counter/a"};
  ASSERT_TRUE(Call(std::move(call)).status.ok());
  const auto calls = function_.CallsTo(kCounter);
  ASSERT_EQ(calls.size(), 1u);
  // While its handler runs, the entity is in the chain of the calls it makes.
  EXPECT_THAT(calls[0].command.call_chain,
              ::testing::ElementsAre("massa.test.Counter/a", "massa.test.Counter/b"));
}

TEST_F(RouterTest, AForwardCarriesTheChainSoItCannotCloseACycle) {
  // b, called by a (which waits), forwards to a: a could never run it.
  function_.OnValueEntity(kCounter, [](const Command& command,
                                       const std::optional<TypedValue>& state) {
    if (command.entity_key != "b") return CounterHandler(command, state);
    Outcome outcome;
    outcome.result = Forward{kCounter, "Get", GetRequest("a"), {}};
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  Command call = MakeCommand(kCounter, "Get", GetRequest("b"));
  call.call_chain = {"massa.test.Counter/a"};
  CommandResult result = Call(std::move(call));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted) << result.status;
  EXPECT_THAT(MessageOf(result), HasSubstr("massa.test.Counter/a -> massa.test.Counter/a"));
}

TEST_F(RouterTest, AFailingForwardTargetsErrorReachesTheCaller) {
  function_.OnValueEntity(kCounter, [](const Command& command,
                                       const std::optional<TypedValue>& state) {
    if (command.entity_key == "broken") {
      return absl::StatusOr<Outcome>(
          FailureOutcome(absl::FailedPreconditionError("account broken is frozen")));
    }
    if (command.entity_key != "b") return CounterHandler(command, state);
    Outcome outcome;
    outcome.result = Pipe{kCounter, "Get", GetRequest("broken"), {}};
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  CommandResult result = Call(MakeCommand(kCounter, "Get", GetRequest("b")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(result), HasSubstr("account broken is frozen"));
}

TEST_F(RouterTest, CallsNestedTooDeepAreRefused) {
  Command call = MakeCommand(kCounter, "Increment", IncrementRequest("x", 1));
  for (size_t i = 0; i < Router::kMaxCallDepth; ++i) {
    call.call_chain.push_back("massa.test.Counter/n" + std::to_string(i));
  }
  CommandResult result = Call(std::move(call));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(result), HasSubstr("nested more than 32 deep"));
}


// The actor kinds and channels.
class ActorTest : public RuntimeHarness {
 protected:
  void Start(std::function<void(FunctionSpec&)> change) {
    FunctionSpec spec = ValidSpec();
    change(spec);
    RuntimeHarness::Start(Options(), std::move(spec));
  }

  static ServiceSpec& Find(FunctionSpec& spec, const char* name) {
    for (ServiceSpec& service : spec.services) {
      if (service.name == name) return service;
    }
    ADD_FAILURE() << name;
    return spec.services.front();
  }

  CommandResult Spawn(const char* service, const std::string& name) {
    Command command;
    command.service = service;
    command.entity_key = name;
    command.addressed = true;
    command.spawn = true;
    return Call(std::move(command));
  }

  // Polls `done` for up to 10 s.
  template <typename F>
  static bool Eventually(F done) {
    for (int i = 0; i < 1000 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }
};

TEST_F(ActorTest, ASpawnedActorIsNotFoundUntilSpawnedAndSpawningTwiceIsANoOp) {
  Start([](FunctionSpec& spec) { Find(spec, kSession).spawned = true; });
  function_.OnValueEntity(kSession, [](const Command&, const std::optional<TypedValue>&) {
    return ReplyOutcome(CounterValue(1));
  });
  CommandResult before = Call(MakeCommand(kSession, "Touch", GetRequest("s1")));
  EXPECT_EQ(before.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(MessageOf(before), AllOf(HasSubstr("s1"), HasSubstr("never spawned")));
  ASSERT_TRUE(Spawn(kSession, "s1").status.ok());
  ASSERT_TRUE(Spawn(kSession, "s1").status.ok());
  EXPECT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest("s1"))).status.ok());
  EXPECT_EQ(Call(MakeCommand(kSession, "Touch", GetRequest("s2"))).status.code(),
            absl::StatusCode::kNotFound);
  CommandResult not_spawnable = Spawn(kCounter, "c1");
  EXPECT_EQ(not_spawnable.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(not_spawnable), HasSubstr("not a service of spawned actors"));
  EXPECT_EQ(Spawn(kSession, "").status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ActorTest, ANamedActorTakesCommandsWithoutAKeyAndRefusesOtherKeys) {
  Start([](FunctionSpec& spec) { Find(spec, kSession).actor_name = "the-one"; });
  function_.OnValueEntity(kSession, [](const Command&, const std::optional<TypedValue>&) {
    return ReplyOutcome(CounterValue(1));
  });
  ASSERT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest(""))).status.ok());
  ASSERT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest("the-one"))).status.ok());
  EXPECT_EQ(Call(MakeCommand(kSession, "Touch", GetRequest("other"))).status.code(),
            absl::StatusCode::kInvalidArgument);
  Command addressed = MakeCommand(kSession, "Touch", GetRequest(""));
  addressed.metadata.emplace_back("massa-entity-key", "other");
  CommandResult other = Call(std::move(addressed));
  EXPECT_EQ(other.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(MessageOf(other), HasSubstr("named actor 'the-one'"));
  for (const testing::FakeFunction::Call& call : function_.calls()) {
    EXPECT_EQ(call.command.entity_key, "the-one");
  }
}

TEST_F(ActorTest, APoolRefusesCommandsBeyondItsConcurrency) {
  Start([](FunctionSpec& spec) { Find(spec, kEcho).max_concurrency = 2; });
  function_.OnAction(kEcho, [](const Command& command) { return ReplyOutcome(command.payload); });
  function_.Hold(kEcho);
  ResultCatcher first = Send(MakeCommand(kEcho, "Say", Ping("1")));
  ResultCatcher second = Send(MakeCommand(kEcho, "Say", Ping("2")));
  ASSERT_TRUE(function_.AwaitParked(2));
  CommandResult third = Call(MakeCommand(kEcho, "Say", Ping("3")));
  EXPECT_EQ(third.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(MessageOf(third), HasSubstr("maximum of 2"));
  function_.Release();
  EXPECT_TRUE(first.Await().has_value());
  EXPECT_TRUE(second.Await().has_value());
  EXPECT_TRUE(Call(MakeCommand(kEcho, "Say", Ping("4"))).status.ok()) << "room again";
}

TEST_F(ActorTest, ABroadcastReachesEachSubscriberOfItsTypeOnce) {
  Start([](FunctionSpec& spec) {
    Find(spec, kCounter).subscriptions = {{"counts", "Increment"}};  // keyed by the message
    Find(spec, kSink).subscriptions = {{"counts", "Put"}};           // takes a Ping: not for it
  });
  std::atomic<int> sink_calls{0};
  function_.OnAction(kSink, [&sink_calls](const Command& command) {
    ++sink_calls;
    return ReplyOutcome(command.payload);
  });
  function_.OnAction(kEcho, [](const Command&) {
    Outcome outcome;
    outcome.result = Reply{Ping("published"), {}};
    outcome.broadcasts.push_back(
        Broadcast{"counts", TypedValue{"massa.test.IncrementRequest", IncrementRequest("c-9", 5)},
                  {}});
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  Command publish = MakeCommand(kEcho, "Say", Ping("go"));
  publish.metadata.emplace_back("idempotency-key", "pub-1");
  ASSERT_TRUE(Call(publish).status.ok());
  ASSERT_TRUE(Eventually([this] { return Stored("c-9") == 5; }));
  // The same publication again (a retried action): the same records, applied once.
  ASSERT_TRUE(Call(publish).status.ok());
  ASSERT_TRUE(Eventually([this] { return runtime_->outbox().stats().expanded >= 2; }));
  ASSERT_TRUE(Eventually([this] { return runtime_->outbox().stats().in_flight == 0; }));
  EXPECT_EQ(Stored("c-9"), 5);
  EXPECT_EQ(sink_calls.load(), 0);
}

TEST_F(ActorTest, ABroadcastReachesEverySpawnedActorPageByPage) {
  Start([](FunctionSpec& spec) {
    Find(spec, kSession).spawned = true;
    Find(spec, kSession).subscriptions = {{"all", "Touch"}};
  });
  absl::Mutex mu;
  absl::flat_hash_map<std::string, int> touched;
  function_.OnValueEntity(kSession, [&](const Command& command, const std::optional<TypedValue>&) {
    absl::MutexLock lock(&mu);
    ++touched[command.entity_key];
    return ReplyOutcome(CounterValue(1));
  });
  constexpr int kActors = 1005;  // more than one page of the spawn registry
  for (int i = 0; i < kActors; ++i) ASSERT_TRUE(Spawn(kSession, "s" + std::to_string(i)).status.ok());
  function_.OnAction(kEcho, [](const Command&) {
    Outcome outcome;
    outcome.result = Reply{Ping("published"), {}};
    // The request names no key: each spawned actor gets it under its own address.
    outcome.broadcasts.push_back(
        Broadcast{"all", TypedValue{"massa.test.GetRequest", GetRequest("")}, {}});
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  ASSERT_TRUE(Call(MakeCommand(kEcho, "Say", Ping("go"))).status.ok());
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&mu);
    return touched.size() == kActors;
  }));
  ASSERT_TRUE(Eventually([this] { return runtime_->outbox().stats().in_flight == 0; }));
  absl::MutexLock lock(&mu);
  for (const auto& [key, times] : touched) EXPECT_EQ(times, 1) << key;
}

// CRDT entities: the runtime applies the handler's operation to the stored value.
class CrdtRuntimeTest : public ActorTest {
 protected:
  void SetUp() override {
    Start([](FunctionSpec& spec) {
      ServiceSpec& session = Find(spec, kSession);
      session.kind = EntityKind::kCrdt;
      session.crdt_type = crdt::Type::kPNCounter;
    });
  }

  // Each command of kSession answers with `change` (a reply of an empty Ping).
  void Answer(std::shared_ptr<const CrdtChange> change) {
    function_.OnValueEntity(kSession, [change](const Command&, const std::optional<TypedValue>&) {
      Outcome outcome;
      outcome.result = Reply{Ping(""), {}};
      outcome.crdt = change;
      return absl::StatusOr<Outcome>(std::move(outcome));
    });
  }

  // The stored value of entity `id`, nullopt when there is none.
  std::optional<crdt::Value> StoredValue(const std::string& id) {
    absl::StatusOr<std::optional<std::string>> stored = store_.GetValue(kSession, id);
    EXPECT_TRUE(stored.ok());
    if (!stored.ok() || !stored->has_value()) return std::nullopt;
    absl::StatusOr<TypedValue> state = DecodeState(**stored);
    EXPECT_TRUE(state.ok());
    absl::StatusOr<crdt::Crdt> value = crdt::Crdt::Parse(state->bytes);
    EXPECT_TRUE(value.ok()) << value.status();
    if (!value.ok()) return std::nullopt;
    return value->value();
  }

  static std::shared_ptr<const CrdtChange> Change(crdt::Operation op, crdt::Type type) {
    auto change = std::make_shared<CrdtChange>();
    change->operation = std::move(op);
    change->operation_type = type;
    return change;
  }
};

TEST_F(CrdtRuntimeTest, AnOperationIsAppliedToTheStoredValue) {
  Answer(Change(crdt::Increment{5}, crdt::Type::kPNCounter));
  ASSERT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest("k"))).status.ok());
  ASSERT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest("k"))).status.ok());
  std::optional<crdt::Value> value = StoredValue("k");
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->counter, 10);
}

TEST_F(CrdtRuntimeTest, AnOperationForAnotherTypeIsInvalidArgumentNamingBothAndWritesNothing) {
  Answer(Change(crdt::SetChange{false, {}, {"x"}}, crdt::Type::kORSet));
  CommandResult result = Call(MakeCommand(kSession, "Touch", GetRequest("k")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("ORSet"), HasSubstr("PNCounter")));
  EXPECT_FALSE(StoredValue("k").has_value());
}

TEST_F(CrdtRuntimeTest, DeleteRemovesTheValue) {
  Answer(Change(crdt::Increment{3}, crdt::Type::kPNCounter));
  ASSERT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest("k"))).status.ok());
  auto remove = std::make_shared<CrdtChange>();
  remove->remove = true;
  Answer(remove);
  ASSERT_TRUE(Call(MakeCommand(kSession, "Touch", GetRequest("k"))).status.ok());
  EXPECT_FALSE(StoredValue("k").has_value());
}

// In a cluster a CRDT entity has a replica on every node (RuntimeOptions::replicate_crdt):
// each node runs its commands on its own copy, writes its value joined with the stored one
// (never over another node's write), and sends each change's delta to the other replicas.
// Two runtimes over one store play two nodes here.
class ReplicatedCrdtTest : public CrdtRuntimeTest {
 protected:
  struct Sent {
    std::string key;
    std::string delta;
    WriteConsistency consistency;
  };

  void SetUp() override {
    FunctionSpec spec = ValidSpec();
    ServiceSpec& session = Find(spec, kSession);
    session.kind = EntityKind::kCrdt;
    session.crdt_type = crdt::Type::kPNCounter;
    RuntimeOptions options = Options();
    options.replica_id = "n1";
    options.crdt_refresh = std::chrono::hours(1);  // the tests move on by writes and deltas
    options.replicate_crdt = [this](const Command& like, std::string delta,
                                    WriteConsistency consistency,
                                    absl::AnyInvocable<void(absl::Status) &&> done) {
      absl::Status answer;
      {
        absl::MutexLock lock(&mu_);
        sent_.push_back(Sent{like.entity_key, std::move(delta), consistency});
        answer = replicas_answer_;
      }
      std::move(done)(answer);
    };
    RuntimeHarness::Start(options, spec);
    RuntimeOptions other = options;
    other.replica_id = "n2";
    other.replicate_crdt = [](const Command&, std::string, WriteConsistency,
                              absl::AnyInvocable<void(absl::Status) &&> done) {
      std::move(done)(absl::OkStatus());
    };
    other_ = std::make_unique<EntityRuntime>(other, function_, store_, clock_);
    other_router_ = std::make_unique<Router>(*catalog_, *other_);
    other_->SetDispatcher(other_router_.get());
    other_->StartBackground();
    // Every command adds `add_` and replies with the counter it was given (before the add).
    function_.OnValueEntity(kSession, [this](const Command&,
                                             const std::optional<TypedValue>& state) {
      Outcome outcome;
      outcome.result = Reply{Ping(state.has_value() ? state->bytes : "none"), {}};
      absl::MutexLock lock(&mu_);
      if (add_ != 0) {
        auto change = std::make_shared<CrdtChange>();
        change->operation = crdt::Increment{add_};
        change->operation_type = crdt::Type::kPNCounter;
        change->consistency = consistency_;
        outcome.crdt = change;
      }
      return absl::StatusOr<Outcome>(std::move(outcome));
    });
  }
  void TearDown() override {
    EXPECT_TRUE(other_->Drain(std::chrono::seconds(30)));
    CrdtRuntimeTest::TearDown();
  }

  // Runs a command on `router` adding `add` to entity "k"; returns the counter it was given
  // (-1 when the command failed).
  int64_t Add(Router& router, int64_t add, CommandResult* result = nullptr) {
    {
      absl::MutexLock lock(&mu_);
      add_ = add;
    }
    ResultCatcher catcher;
    router.Dispatch(MakeCommand(kSession, "Touch", GetRequest("k")), catcher.Callback());
    std::optional<CommandResult> got = catcher.Await();
    if (!got.has_value()) return -1;
    if (result != nullptr) *result = *got;
    if (!got->status.ok()) return -1;
    const std::string seen = ParsePing(got->payload);
    return seen == "none" ? 0 : std::stoll(seen);
  }
  int64_t Seen(Router& router) { return Add(router, 0); }

  absl::Mutex mu_;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  absl::Status replicas_answer_ ABSL_GUARDED_BY(mu_);
  int64_t add_ ABSL_GUARDED_BY(mu_) = 0;
  WriteConsistency consistency_ ABSL_GUARDED_BY(mu_) = WriteConsistency::kLocal;
  std::unique_ptr<EntityRuntime> other_;
  std::unique_ptr<Router> other_router_;
};

TEST_F(ReplicatedCrdtTest, TwoReplicasWritingOneEntityLoseNothing) {
  EXPECT_EQ(Add(*router_, 5), 0);         // n1: {n1: 5}
  EXPECT_EQ(Add(*other_router_, 3), 5);   // n2 loads it: {n1: 5, n2: 3}
  EXPECT_EQ(Add(*router_, 2), 5) << "n1's copy had not seen n2's change yet";
  std::optional<crdt::Value> stored = StoredValue("k");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->counter, 10) << "n1's write found n2's and joined it";
  EXPECT_EQ(Seen(*router_), 10) << "and n1's copy holds the joined value";
  EXPECT_EQ(Add(*other_router_, 1), 8) << "n2's copy has not seen n1's second change";
  EXPECT_EQ(StoredValue("k")->counter, 11);
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(sent_.size(), 2u) << "n1 sent a delta per change";
  EXPECT_EQ(sent_[0].key, "k");
}

TEST_F(ReplicatedCrdtTest, ADeltaFromAnotherReplicaJoinsTheCopyInMemoryOnly) {
  Command merge = MakeCommand(kSession, "Touch", "");
  merge.entity_key = "k";
  merge.addressed = true;
  crdt::Crdt elsewhere(crdt::Type::kPNCounter);
  absl::StatusOr<crdt::Crdt> delta = elsewhere.Apply(crdt::Increment{7}, "n9", 0);
  ASSERT_TRUE(delta.ok());
  merge.crdt_merge = delta->Serialize();
  EXPECT_TRUE(Call(merge).status.ok()) << "not in memory: nothing to do";
  EXPECT_FALSE(StoredValue("k").has_value());
  EXPECT_EQ(Add(*router_, 5), 0);
  EXPECT_TRUE(Call(merge).status.ok());
  EXPECT_EQ(Seen(*router_), 12) << "joined in memory";
  EXPECT_EQ(StoredValue("k")->counter, 5) << "not written: its sender wrote it";
  EXPECT_EQ(Add(*router_, 1), 12);
  EXPECT_EQ(StoredValue("k")->counter, 13) << "the next write carries it";
  Command bad = merge;
  bad.crdt_merge = "not a value";
  EXPECT_EQ(Call(bad).status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Seen(*router_), 13);
}

TEST_F(ReplicatedCrdtTest, MajorityAndAllWaitForTheReplicasAndSayWhenTheyFallShort) {
  {
    absl::MutexLock lock(&mu_);
    consistency_ = WriteConsistency::kAll;
    replicas_answer_ = absl::UnavailableError("only 2 of 3 replicas confirmed it");
  }
  CommandResult result;
  EXPECT_EQ(Add(*router_, 4, &result), -1);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("durable and applied on this node"),
                                       HasSubstr("only 2 of 3 replicas")));
  EXPECT_EQ(StoredValue("k")->counter, 4);
  {
    absl::MutexLock lock(&mu_);
    consistency_ = WriteConsistency::kMajority;
    replicas_answer_ = absl::OkStatus();
  }
  EXPECT_EQ(Add(*router_, 1), 4);
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].consistency, WriteConsistency::kAll);
  EXPECT_EQ(sent_[1].consistency, WriteConsistency::kMajority);
}

// A replica's copy joins the store's value again once it is older than crdt_refresh, so that
// what another node wrote shows here even when its delta never arrived.
TEST_F(ReplicatedCrdtTest, ACopyJoinsTheStoreOnceItIsOlderThanTheRefresh) {
  EXPECT_EQ(Add(*router_, 5), 0);
  EXPECT_EQ(Add(*other_router_, 3), 5);
  EXPECT_EQ(Seen(*router_), 5) << "within the refresh period n1 answers from its copy";
  // A third runtime with a short refresh plays n1 again.
  RuntimeOptions options = Options();
  options.replica_id = "n3";
  options.crdt_refresh = std::chrono::milliseconds(10);
  options.replicate_crdt = [](const Command&, std::string, WriteConsistency,
                              absl::AnyInvocable<void(absl::Status) &&> done) {
    std::move(done)(absl::OkStatus());
  };
  EntityRuntime third(options, function_, store_, clock_);
  Router third_router(*catalog_, third);
  third.SetDispatcher(&third_router);
  third.StartBackground();
  EXPECT_EQ(Seen(third_router), 8);
  EXPECT_EQ(Add(*other_router_, 1), 8);
  EXPECT_EQ(Seen(third_router), 8) << "not yet";
  clock_.Advance(std::chrono::milliseconds(10));
  EXPECT_EQ(Seen(third_router), 9) << "joined with the store";
  EXPECT_TRUE(third.Drain(std::chrono::seconds(30)));
}

TEST_F(ActorTest, ABroadcastWithoutAChannelFailsTheCommand) {
  Start([](FunctionSpec&) {});
  function_.OnAction(kEcho, [](const Command&) {
    Outcome outcome;
    outcome.result = Reply{Ping("x"), {}};
    outcome.broadcasts.push_back(Broadcast{"", TypedValue{"massa.test.Ping", Ping("x")}, {}});
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  CommandResult result = Call(MakeCommand(kEcho, "Say", Ping("go")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(result), HasSubstr("channel name"));
}

}  // namespace
}  // namespace massa::entity_test
