// Effectively-once and durable time in the runtime, on a manual clock: idempotency keys, the
// outbox, timers (one-shot, interval, cron, cancel, replace, missed ticks) and state TTL.
// Commands enter through the real router; the store is the fault-injecting memory store.
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "entity/idempotency.h"
#include "entity/outbox.h"
#include "entity/runtime_harness.h"
#include "entity/timers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::entity_test {
namespace {

using ::testing::HasSubstr;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

Command Keyed(Command command, std::string key) {
  command.metadata.emplace_back("idempotency-key", std::move(key));
  return command;
}

Command IncrementCommand(const std::string& id, int64_t by) {
  return MakeCommand(kCounter, "Increment", IncrementRequest(id, by));
}

bool Replayed(const CommandResult& result) {
  for (const auto& [key, value] : result.metadata) {
    if (key == idempotency::kReplayedMetadata && value == "true") return true;
  }
  return false;
}

std::optional<std::string> MetadataOf(const Command& command, const std::string& key) {
  for (const auto& [k, v] : command.metadata) {
    if (k == key) return v;
  }
  return std::nullopt;
}

class EffectsTest : public RuntimeHarness {
 protected:
  void SetUp() override { Start(); }

  // The Counter: CounterHandler, plus the timers of `next_timers_` on commands that are not
  // timer ticks, plus `next_effects_`.
  void InstallCounterWithEffects() {
    function_.OnValueEntity(kCounter, [this](const Command& command,
                                             const std::optional<TypedValue>& state) {
      absl::StatusOr<Outcome> outcome = CounterHandler(command, state);
      absl::MutexLock lock(&mu_);
      if (outcome.ok() && !MetadataOf(command, "massa-timer").has_value()) {
        outcome->timers = std::move(next_timers_);
        next_timers_.clear();
        outcome->side_effects = std::move(next_effects_);
        next_effects_.clear();
      }
      if (outcome.ok() && ttl_ms_ > 0 && outcome->state_update.has_value()) {
        outcome->state_update->ttl_ms = ttl_ms_;
      }
      return outcome;
    });
  }

  // Counter "a" sets timer "notify", due in 1 s, on the Sink's Put (which echoes its payload).
  void SetANotifyTimerOnTheSink() {
    InstallCounterWithEffects();
    function_.OnAction(kSink, [](const Command& command) {
      return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
    });
    TimerEffect timer;
    timer.name = "notify";
    timer.service = kSink;
    timer.method = "Put";
    timer.payload = TypedValue{"massa.test.Ping", Ping("tick")};
    timer.delay_ms = 1'000;
    SetNextTimers({timer});
    ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  }

  void SetNextTimers(std::vector<TimerEffect> timers) {
    absl::MutexLock lock(&mu_);
    next_timers_ = std::move(timers);
  }
  void SetNextEffects(std::vector<SideEffect> effects) {
    absl::MutexLock lock(&mu_);
    next_effects_ = std::move(effects);
  }

  // A timer on the counter itself that increments it by `by`.
  static TimerEffect SelfTimer(const std::string& id, std::string name, int64_t by) {
    TimerEffect timer;
    timer.name = std::move(name);
    timer.method = "Increment";
    timer.payload = TypedValue{"massa.test.IncrementRequest", IncrementRequest(id, by)};
    return timer;
  }

  // Fires what is due now and waits until those ticks are done.
  size_t Fire() {
    const size_t fired = runtime_->timers().FireDue();
    EXPECT_TRUE(runtime_->timers().WaitIdle(seconds(30)));
    return fired;
  }

  std::vector<store::TimerRecord> TimersOf(const std::string& id) {
    absl::StatusOr<std::vector<store::TimerRecord>> timers = store_.ReadTimers(kCounter, id);
    EXPECT_TRUE(timers.ok()) << timers.status();
    return timers.ok() ? *timers : std::vector<store::TimerRecord>{};
  }

  std::vector<store::OutboxRecord> StoredOutbox() {
    absl::StatusOr<std::vector<store::OutboxRecord>> records =
        store_.ReadOutbox(0, INT64_MAX, 100);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<store::OutboxRecord>{};
  }

  absl::Mutex mu_;
  std::vector<TimerEffect> next_timers_ ABSL_GUARDED_BY(mu_);
  std::vector<SideEffect> next_effects_ ABSL_GUARDED_BY(mu_);
  int64_t ttl_ms_ = 0;
};

// ---- Idempotency keys ------------------------------------------------------------------

TEST_F(EffectsTest, ARetryIsAnsweredFromTheRecordWithoutCallingTheFunction) {
  CommandResult first = Call(Keyed(IncrementCommand("a", 5), "k1"));
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_FALSE(Replayed(first));
  for (int i = 0; i < 3; ++i) {
    CommandResult again = Call(Keyed(IncrementCommand("a", 5), "k1"));
    ASSERT_TRUE(again.status.ok()) << again.status;
    EXPECT_EQ(ParseCounterValue(again.payload), 5);
    EXPECT_TRUE(Replayed(again));
  }
  EXPECT_EQ(function_.call_count(), 1u);
  EXPECT_EQ(Stored("a"), 5);
  // Another key is another request.
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 5), "k2")).status.ok());
  EXPECT_EQ(Stored("a"), 10);
  // The function saw the key; the metadata did not carry it.
  const auto calls = function_.CallsTo(kCounter);
  EXPECT_EQ(calls[0].command.idempotency_key, "k1");
  EXPECT_EQ(MetadataOf(calls[0].command, "idempotency-key"), std::nullopt);
}

TEST_F(EffectsTest, TheSameKeyWithAnotherRequestIsInvalidArgument) {
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 5), "k1")).status.ok());
  CommandResult other = Call(Keyed(IncrementCommand("a", 6), "k1"));
  EXPECT_EQ(other.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(other.status.message()),
              HasSubstr("idempotency-key 'k1' was already used for a different request"));
  EXPECT_EQ(Stored("a"), 5);
  // Keys are per entity: the same key on another entity is a new request.
  ASSERT_TRUE(Call(Keyed(IncrementCommand("b", 6), "k1")).status.ok());
  EXPECT_EQ(Stored("b"), 6);
}

TEST_F(EffectsTest, ADuplicateArrivingWhileTheFirstRunsWaitsForItsReply) {
  function_.Hold(kCounter);
  ResultCatcher first = Send(Keyed(IncrementCommand("a", 5), "k1"));
  ASSERT_TRUE(function_.AwaitParked(1));
  ResultCatcher second = Send(Keyed(IncrementCommand("a", 5), "k1"));
  ResultCatcher third = Send(Keyed(IncrementCommand("a", 5), "k1"));
  EXPECT_FALSE(second.has_result());
  function_.Release();
  for (ResultCatcher* catcher : {&first, &second, &third}) {
    std::optional<CommandResult> result = catcher->Await();
    ASSERT_TRUE(result.has_value());
    ASSERT_TRUE(result->status.ok()) << result->status;
    EXPECT_EQ(ParseCounterValue(result->payload), 5);
  }
  EXPECT_EQ(function_.call_count(), 1u);
  EXPECT_EQ(Stored("a"), 5);
}

TEST_F(EffectsTest, FailuresAreRecordedAndReplayedWithTheirStatus) {
  int calls = 0;
  function_.OnValueEntity(kCounter, [&calls](const Command&, const std::optional<TypedValue>&) {
    ++calls;
    return absl::StatusOr<Outcome>(
        FailureOutcome(absl::FailedPreconditionError("insufficient funds")));
  });
  for (int i = 0; i < 3; ++i) {
    CommandResult result = Call(Keyed(IncrementCommand("a", 5), "k1"));
    EXPECT_EQ(result.status, absl::FailedPreconditionError("insufficient funds"));
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Stored("a"), std::nullopt) << "a failure changes no state";
}

TEST_F(EffectsTest, AnUnreachableFunctionIsNotRecorded) {
  int calls = 0;
  function_.OnValueEntity(kCounter, [&calls](const Command& command,
                                             const std::optional<TypedValue>& state) {
    if (++calls == 1) return absl::StatusOr<Outcome>(absl::UnavailableError("down"));
    return CounterHandler(command, state);
  });
  EXPECT_EQ(Call(Keyed(IncrementCommand("a", 5), "k1")).status.code(),
            absl::StatusCode::kUnavailable);
  CommandResult retry = Call(Keyed(IncrementCommand("a", 5), "k1"));
  ASSERT_TRUE(retry.status.ok()) << retry.status;
  EXPECT_FALSE(Replayed(retry)) << "nothing was applied the first time";
  EXPECT_EQ(Stored("a"), 5);
}

TEST_F(EffectsTest, ATransientFailureOfTheHandlerIsNotRecorded) {
  // The handler itself says "try again" (its dependency is down): a retry must run it again,
  // or an outbox delivery under a derived key could never succeed.
  int calls = 0;
  function_.OnValueEntity(kCounter, [&calls](const Command& command,
                                             const std::optional<TypedValue>& state) {
    if (++calls == 1) {
      return absl::StatusOr<Outcome>(FailureOutcome(absl::UnavailableError("try later")));
    }
    return CounterHandler(command, state);
  });
  EXPECT_EQ(Call(Keyed(IncrementCommand("a", 5), "k1")).status.code(),
            absl::StatusCode::kUnavailable);
  CommandResult retry = Call(Keyed(IncrementCommand("a", 5), "k1"));
  ASSERT_TRUE(retry.status.ok()) << retry.status;
  EXPECT_FALSE(Replayed(retry));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(Stored("a"), 5);
}

TEST_F(EffectsTest, RecordsOutliveTheEntityInMemory) {
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 5), "k1")).status.ok());
  clock_.Advance(minutes(1));
  ASSERT_EQ(runtime_->PassivateIdle(), 1u);
  CommandResult retry = Call(Keyed(IncrementCommand("a", 5), "k1"));
  ASSERT_TRUE(retry.status.ok()) << retry.status;
  EXPECT_TRUE(Replayed(retry)) << "read back from the store";
  EXPECT_EQ(function_.call_count(), 1u);
  EXPECT_EQ(Call(Keyed(IncrementCommand("a", 6), "k1")).status.code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EffectsTest, AnActiveEntityKnowsANewKeyWithoutReadingTheStore) {
  // The first keyed command learns that the entity has no records in the store; from then on
  // a new key needs no read (reads fail here, and the commands still run).
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 1), "k0")).status.ok());
  store_.FailReads(absl::UnavailableError("disk gone"));
  for (int i = 1; i < 100; ++i) {
    CommandResult result = Call(Keyed(IncrementCommand("a", 1), "k" + std::to_string(i)));
    ASSERT_TRUE(result.status.ok()) << i << ": " << result.status;
  }
  // A key whose record left memory (the oldest of 100) is read from the store.
  EXPECT_EQ(Call(Keyed(IncrementCommand("a", 1), "k1")).status.code(),
            absl::StatusCode::kUnavailable);
  store_.Heal();
  CommandResult retry = Call(Keyed(IncrementCommand("a", 1), "k1"));
  ASSERT_TRUE(retry.status.ok()) << retry.status;
  EXPECT_TRUE(Replayed(retry));
  EXPECT_EQ(Stored("a"), 100);
}

TEST_F(EffectsTest, AnEntityWithOlderRecordsReadsTheStoreForNewKeys) {
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 1), "k0")).status.ok());
  clock_.Advance(minutes(1));
  ASSERT_EQ(runtime_->PassivateIdle(), 1u);
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 1), "k1")).status.ok());
  store_.FailReads(absl::UnavailableError("disk gone"));
  EXPECT_EQ(Call(Keyed(IncrementCommand("a", 1), "k2")).status.code(),
            absl::StatusCode::kUnavailable)
      << "k0 was written before this activation: a new key must be looked up";
  store_.Heal();
  EXPECT_TRUE(Replayed(Call(Keyed(IncrementCommand("a", 1), "k0"))));
  EXPECT_EQ(Stored("a"), 2);
}

TEST_F(EffectsTest, ManyKeysOnOneEntityAreAllRemembered) {
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 1), "k" + std::to_string(i))).status.ok());
  }
  // Beyond what the entity keeps in memory, the store answers.
  for (int i = 0; i < 150; i += 7) {
    CommandResult retry = Call(Keyed(IncrementCommand("a", 1), "k" + std::to_string(i)));
    ASSERT_TRUE(retry.status.ok());
    EXPECT_TRUE(Replayed(retry)) << i;
  }
  EXPECT_EQ(Stored("a"), 150);
  EXPECT_EQ(function_.call_count(), 150u);
}

TEST_F(EffectsTest, RecordsExpireAfterTheRetentionAndAreSwept) {
  runtime_.reset();
  RuntimeOptions options = Options();
  options.idempotency_retention = hours(1);
  Start(options);
  ASSERT_TRUE(Call(Keyed(IncrementCommand("a", 5), "k1")).status.ok());
  clock_.Advance(minutes(59));
  EXPECT_TRUE(Replayed(Call(Keyed(IncrementCommand("a", 5), "k1"))));
  clock_.Advance(minutes(2));
  ASSERT_EQ(runtime_->PassivateIdle(), 1u);
  // Expired, even before the sweep: the same key applies again.
  CommandResult later = Call(Keyed(IncrementCommand("a", 5), "k1"));
  ASSERT_TRUE(later.status.ok());
  EXPECT_FALSE(Replayed(later));
  EXPECT_EQ(Stored("a"), 10);
  clock_.Advance(hours(2));
  EXPECT_GE(runtime_->SweepExpired(), 1u);
  EXPECT_EQ(*store_.ReadIdempotency(kCounter, "a", "k1"), std::nullopt);
}

TEST_F(EffectsTest, EffectsCarryDerivedKeysNeverTheCallersKey) {
  function_.OnAction(kEcho, [](const Command&) {
    Outcome outcome = ReplyOutcome(Ping("done"));
    outcome.side_effects = {SideEffect{kSink, "Put", Ping("sync"), true, {}},
                            SideEffect{kSink, "Put", Ping("async"), false, {}}};
    return absl::StatusOr<Outcome>(outcome);
  });
  function_.OnAction(kSink, [](const Command& command) {
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  ASSERT_TRUE(Call(Keyed(MakeCommand(kEcho, "Say", Ping("hi")), "client-key")).status.ok());
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  ASSERT_TRUE(function_.AwaitCompleted(3));
  std::vector<std::string> keys;
  for (const auto& call : function_.CallsTo(kSink)) {
    keys.push_back(call.command.idempotency_key);
    EXPECT_EQ(MetadataOf(call.command, "idempotency-key"), std::nullopt);
    EXPECT_EQ(call.command.idempotency_key.find("client-key"), std::string::npos);
    EXPECT_FALSE(call.command.idempotency_key.empty());
  }
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_NE(keys[0], keys[1]);
  // The action runs again on a retry (actions are not deduplicated), but its effects carry
  // the same keys, so that an entity target would apply them once.
  ASSERT_TRUE(Call(Keyed(MakeCommand(kEcho, "Say", Ping("hi")), "client-key")).status.ok());
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  ASSERT_TRUE(function_.AwaitCompleted(6));
  std::vector<std::string> again;
  for (const auto& call : function_.CallsTo(kSink)) again.push_back(call.command.idempotency_key);
  ASSERT_EQ(again.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(again.begin() + 2, again.end()), keys);
}

// ---- The outbox ---------------------------------------------------------------------------

TEST_F(EffectsTest, AsyncEffectsAreWrittenWithTheStateAndDeletedOnceDelivered) {
  InstallCounterWithEffects();
  function_.OnAction(kSink, [](const Command& command) {
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  function_.Hold(kSink);
  SetNextEffects({SideEffect{kSink, "Put", Ping("after-durable"), false, {}}});
  ASSERT_TRUE(Call(IncrementCommand("a", 1)).status.ok());
  ASSERT_TRUE(function_.AwaitParked(1));
  std::vector<store::OutboxRecord> pending = StoredOutbox();
  ASSERT_EQ(pending.size(), 1u) << "written in the command's batch, before delivery";
  EXPECT_FALSE(pending[0].id.empty());
  function_.Release();
  ASSERT_TRUE(function_.AwaitCompleted(2));
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  EXPECT_TRUE(StoredOutbox().empty());
  EXPECT_EQ(runtime_->outbox().stats().delivered, 1u);
  EXPECT_EQ(ParsePing(function_.CallsTo(kSink)[0].command.payload), "after-durable");
}

TEST_F(EffectsTest, AsyncEffectsOfAFailedCommandAreNotWritten) {
  function_.OnValueEntity(kCounter, [](const Command&, const std::optional<TypedValue>&) {
    Outcome outcome = FailureOutcome(absl::InvalidArgumentError("no"));
    outcome.side_effects = {SideEffect{kSink, "Put", Ping("x"), false, {}}};
    return absl::StatusOr<Outcome>(outcome);
  });
  EXPECT_EQ(Call(IncrementCommand("a", 1)).status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(StoredOutbox().empty());
}

TEST_F(EffectsTest, FailedDeliveriesAreRetriedWithBackoffAndVisible) {
  InstallCounterWithEffects();
  int attempts = 0;
  function_.OnAction(kSink, [&attempts](const Command& command) {
    if (++attempts <= 2) return absl::StatusOr<Outcome>(absl::UnavailableError("sink down"));
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  SetNextEffects({SideEffect{kSink, "Put", Ping("retry me"), false, {}}});
  ASSERT_TRUE(Call(IncrementCommand("a", 1)).status.ok());
  ASSERT_TRUE(function_.AwaitCompleted(2));
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  // Written back with its attempt, its error and a later time.
  absl::StatusOr<std::vector<OutboxItem>> items = runtime_->outbox().List(10);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].attempts, 1u);
  EXPECT_THAT((*items)[0].last_error, HasSubstr("sink down"));
  EXPECT_EQ((*items)[0].due_ms, clock_.WallMillis() + 100);
  EXPECT_EQ(runtime_->outbox().stats().failing, 1u);
  EXPECT_EQ(runtime_->outbox().Scan(), 0u) << "not before its time";
  clock_.Advance(milliseconds(100));
  EXPECT_EQ(runtime_->outbox().Scan(), 1u);
  ASSERT_TRUE(function_.AwaitCompleted(3));
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  EXPECT_EQ(runtime_->outbox().List(10)->at(0).attempts, 2u);
  EXPECT_EQ(runtime_->outbox().List(10)->at(0).due_ms, clock_.WallMillis() + 200);
  clock_.Advance(milliseconds(200));
  EXPECT_EQ(runtime_->outbox().Scan(), 1u);
  ASSERT_TRUE(function_.AwaitCompleted(4));
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  EXPECT_TRUE(StoredOutbox().empty());
  const OutboxStats stats = runtime_->outbox().stats();
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_EQ(stats.retries, 2u);
  EXPECT_EQ(stats.failing, 0u);
  // All three attempts carried the same key.
  const auto calls = function_.CallsTo(kSink);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].command.idempotency_key, calls[2].command.idempotency_key);
}

TEST_F(EffectsTest, ATargetRefusalIsFinal) {
  InstallCounterWithEffects();
  function_.OnAction(kSink, [](const Command&) {
    return absl::StatusOr<Outcome>(FailureOutcome(absl::InvalidArgumentError("bad message")));
  });
  SetNextEffects({SideEffect{kSink, "Put", Ping("x"), false, {}}});
  ASSERT_TRUE(Call(IncrementCommand("a", 1)).status.ok());
  ASSERT_TRUE(function_.AwaitCompleted(2));
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  EXPECT_TRUE(StoredOutbox().empty());
  EXPECT_EQ(runtime_->outbox().stats().refused, 1u);
}

TEST_F(EffectsTest, RecordsLeftInTheStoreAreFoundByTheScan) {
  // As after a crash: records in the store that this runtime never handed to the outbox.
  function_.OnAction(kSink, [](const Command& command) {
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  std::vector<SideEffect> effects = {SideEffect{kSink, "Put", Ping("left over"), false, {}}};
  Command cause = MakeCommand(kCounter, "Increment", IncrementRequest("a", 1));
  store::WriteBatch batch;
  batch.outbox = OutboxRecordsFor(cause, kCounter, "a", effects, {}, clock_.WallMillis(), 0);
  store_.Write(std::move(batch), [](absl::Status status) { ASSERT_TRUE(status.ok()); });
  EXPECT_EQ(runtime_->outbox().Scan(), 1u);
  ASSERT_TRUE(function_.AwaitCompleted(1));
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  EXPECT_TRUE(StoredOutbox().empty());
  EXPECT_EQ(ParsePing(function_.CallsTo(kSink)[0].command.payload), "left over");
}

TEST_F(EffectsTest, ANewRunRetriesAtOnceWhatAnEarlierRunLeftBackingOff) {
  function_.OnAction(kSink, [](const Command& command) {
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  std::vector<SideEffect> effects = {SideEffect{kSink, "Put", Ping("backing off"), false, {}}};
  Command cause = MakeCommand(kCounter, "Increment", IncrementRequest("a", 1));
  store::WriteBatch batch;
  batch.outbox = OutboxRecordsFor(cause, kCounter, "a", effects, {}, clock_.WallMillis(), 0);
  batch.outbox[0].due_ms = clock_.WallMillis() + 60'000;  // an earlier run's backoff
  store_.Write(std::move(batch), [](absl::Status status) { ASSERT_TRUE(status.ok()); });
  EXPECT_EQ(runtime_->outbox().Scan(), 0u) << "a scan honours the backoff";
  OutboxOptions options;
  options.scan_interval = milliseconds(0);
  Outbox next_run(options, store_, clock_);
  next_run.SetDispatcher(router_.get());
  next_run.Start();
  ASSERT_TRUE(function_.AwaitCompleted(1));
  ASSERT_TRUE(next_run.WaitIdle(seconds(30)));
  EXPECT_TRUE(StoredOutbox().empty());
  EXPECT_EQ(next_run.stats().delivered, 1u);
}

// ---- Timers -----------------------------------------------------------------------------

TEST_F(EffectsTest, AOneShotTimerFiresAtItsTimeAndChangesTheStateOnce) {
  InstallCounterWithEffects();
  TimerEffect timer = SelfTimer("a", "bonus", 100);
  timer.delay_ms = 10'000;
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 1)).status.ok());
  ASSERT_EQ(TimersOf("a").size(), 1u);
  EXPECT_EQ(TimersOf("a")[0].due_ms, clock_.WallMillis() + 10'000);
  clock_.Advance(milliseconds(9'999));
  EXPECT_EQ(Fire(), 0u);
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Stored("a"), 101);
  EXPECT_TRUE(TimersOf("a").empty()) << "removed in the tick's own write";
  clock_.Advance(seconds(60));
  EXPECT_EQ(Fire(), 0u);
  EXPECT_EQ(Stored("a"), 101);
  EXPECT_EQ(runtime_->timers().stats().fired, 1u);
  // The tick was a command of the entity, marked as a tick.
  const auto calls = function_.CallsTo(kCounter);
  EXPECT_EQ(MetadataOf(calls.back().command, "massa-timer"), "bonus");
}

TEST_F(EffectsTest, IntervalTimersTickOnTheirGridWithoutDrift) {
  InstallCounterWithEffects();
  const int64_t start = clock_.WallMillis();
  TimerEffect timer = SelfTimer("a", "every-10s", 1);
  timer.interval_ms = 10'000;
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  for (int tick = 1; tick <= 3; ++tick) {
    clock_.Advance(milliseconds(tick == 1 ? 10'300 : 10'000));  // the first one 300 ms late
    EXPECT_EQ(Fire(), 1u) << tick;
    EXPECT_EQ(Stored("a"), tick);
    ASSERT_EQ(TimersOf("a").size(), 1u);
    EXPECT_EQ(TimersOf("a")[0].due_ms, start + (tick + 1) * 10'000) << "no drift";
  }
}

TEST_F(EffectsTest, MissedTicksFireOnceToCatchUp) {
  InstallCounterWithEffects();
  const int64_t start = clock_.WallMillis();
  TimerEffect timer = SelfTimer("a", "every-10s", 1);
  timer.interval_ms = 10'000;
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  clock_.Advance(seconds(55));  // down: five ticks missed
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Fire(), 0u);
  EXPECT_EQ(Stored("a"), 1) << "one tick for all of the missed ones";
  EXPECT_EQ(TimersOf("a")[0].due_ms, start + 60'000);
}

TEST_F(EffectsTest, MissedTicksAreSkippedUnderSkip) {
  InstallCounterWithEffects();
  const int64_t start = clock_.WallMillis();
  TimerEffect timer = SelfTimer("a", "every-10s", 1);
  timer.interval_ms = 10'000;
  timer.missed = MissedTicks::kSkip;
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  clock_.Advance(seconds(55));
  Fire();
  EXPECT_EQ(Stored("a"), 0) << "no tick for the missed ones";
  EXPECT_EQ(TimersOf("a")[0].due_ms, start + 60'000);
  EXPECT_EQ(runtime_->timers().stats().skipped, 1u);
  clock_.Advance(seconds(5));  // on time again
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Stored("a"), 1);
}

TEST_F(EffectsTest, CronTimersFireOnTheirBoundaries) {
  InstallCounterWithEffects();
  // The manual clock starts at midnight UTC.
  TimerEffect timer = SelfTimer("a", "quarter-hourly", 1);
  timer.cron = "0 */15 * * * *";
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  const int64_t start = clock_.WallMillis();
  ASSERT_EQ(start % 900'000, 0) << "the test assumes a start on a quarter hour";
  EXPECT_EQ(TimersOf("a")[0].due_ms, start + 900'000);
  clock_.Advance(milliseconds(899'999));
  EXPECT_EQ(Fire(), 0u);
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(TimersOf("a")[0].due_ms, start + 1'800'000);
  clock_.Advance(minutes(15));
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Stored("a"), 2);
}

TEST_F(EffectsTest, TimersAreCancelledAndReplacedByName) {
  InstallCounterWithEffects();
  TimerEffect first = SelfTimer("a", "t", 1);
  first.delay_ms = 10'000;
  SetNextTimers({first});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  TimerEffect cancel;
  cancel.name = "t";
  cancel.cancel = true;
  SetNextTimers({cancel});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  EXPECT_TRUE(TimersOf("a").empty());
  clock_.Advance(seconds(11));
  EXPECT_EQ(Fire(), 0u);
  EXPECT_EQ(Stored("a"), 0);

  TimerEffect soon = SelfTimer("a", "t", 1);
  soon.delay_ms = 1'000;
  SetNextTimers({soon});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  TimerEffect later = SelfTimer("a", "t", 10);
  later.delay_ms = 5'000;
  SetNextTimers({later});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  clock_.Advance(seconds(2));
  EXPECT_EQ(Fire(), 0u) << "replaced before it was due";
  clock_.Advance(seconds(3));
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Stored("a"), 10);
}

TEST_F(EffectsTest, AStaleTickDoesNothing) {
  InstallCounterWithEffects();
  TimerEffect timer = SelfTimer("a", "t", 1);
  timer.delay_ms = 10'000;
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  // A tick for a due time the timer no longer has (fired already, or replaced).
  Command tick = IncrementCommand("a", 1);
  tick.entity_key = "a";
  tick.addressed = true;
  tick.timer = TimerFire{"t", clock_.WallMillis() + 5'000, std::nullopt, "", 0, false};
  CommandResult result = Call(std::move(tick));
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(Stored("a"), 0);
  EXPECT_EQ(function_.call_count(), 1u) << "the function was not called for it";
  EXPECT_EQ(TimersOf("a").size(), 1u);
}

TEST_F(EffectsTest, ATickWhoseWriteFailsFiresAgainAndChangesTheStateOnce) {
  InstallCounterWithEffects();
  TimerEffect timer = SelfTimer("a", "t", 7);
  timer.delay_ms = 1'000;
  SetNextTimers({timer});
  ASSERT_TRUE(Call(IncrementCommand("a", 0)).status.ok());
  clock_.Advance(seconds(1));
  store_.FailNextWrites(1, absl::UnavailableError("disk gone"));
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Stored("a"), 0);
  ASSERT_EQ(TimersOf("a").size(), 1u) << "still due in the store";
  EXPECT_EQ(runtime_->timers().stats().retries, 1u);
  clock_.Advance(milliseconds(100));  // the retry's backoff
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Stored("a"), 7);
  EXPECT_TRUE(TimersOf("a").empty());
}

TEST_F(EffectsTest, ATimerOnAnotherServiceIsDeliveredUnderItsTickKey) {
  ASSERT_NO_FATAL_FAILURE(SetANotifyTimerOnTheSink());
  const int64_t due = TimersOf("a")[0].due_ms;
  clock_.Advance(seconds(1));
  EXPECT_EQ(Fire(), 1u);
  ASSERT_TRUE(function_.AwaitCompleted(2));
  const auto calls = function_.CallsTo(kSink);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(ParsePing(calls[0].command.payload), "tick");
  EXPECT_EQ(calls[0].command.idempotency_key, TickKey(kCounter, "a", "notify", due));
  EXPECT_TRUE(TimersOf("a").empty());
}

// In a cluster a timer may fire on a node just as its entity's partition moves away (the
// scheduler held it): it is delivered (under its tick key, so it applies once) but moved on by
// the owner only: here the move is fenced, and the timer leaves this node's window without
// retries.
class ClusterEffectsTest : public EffectsTest {
 protected:
  void SetUp() override {
    RuntimeOptions options = Options();
    options.fence_of = [this](std::string_view, std::string_view) { return token_.load(); };
    Start(options);
  }
  std::atomic<uint64_t> token_{5};
};

TEST_F(ClusterEffectsTest, ATimerOfAnEntityOwnedElsewhereIsLeftToItsOwner) {
  ASSERT_NO_FATAL_FAILURE(SetANotifyTimerOnTheSink());  // written under token 5
  token_ = 0;  // the entity's partition moved to another node
  clock_.Advance(seconds(1));
  EXPECT_EQ(Fire(), 1u);
  ASSERT_TRUE(function_.AwaitCompleted(2));
  EXPECT_EQ(function_.CallsTo(kSink).size(), 1u);
  EXPECT_EQ(TimersOf("a").size(), 1u) << "this node may not move it: the owner does";
  EXPECT_EQ(runtime_->timers().stats().retries, 0u);
  EXPECT_EQ(runtime_->timers().stats().in_window, 0u);
}

// In a cluster an entity's timers and outbox records are kept under its partition, and a node
// fires those of the partitions it owns now: a partition gained is read at the next round, the
// timers of one lost are left (in the store) to its new owner.
class PartitionedEffectsTest : public EffectsTest {
 protected:
  void SetUp() override {
    RuntimeOptions options = Options();
    options.partition_of = [](std::string_view, std::string_view key) -> uint32_t {
      return key == "a" ? 3 : 7;
    };
    options.partitions = [this] {
      absl::MutexLock lock(&owned_mu_);
      return owned_;
    };
    Start(options);
  }
  void Own(std::vector<uint32_t> partitions) {
    absl::MutexLock lock(&owned_mu_);
    owned_ = std::move(partitions);
  }

  absl::Mutex owned_mu_;
  std::vector<uint32_t> owned_ ABSL_GUARDED_BY(owned_mu_) = {3};
};

TEST_F(PartitionedEffectsTest, ANodeFiresTheTimersOfThePartitionsItOwnsNow) {
  InstallCounterWithEffects();
  SetNextTimers({SelfTimer("a", "t", 10)});
  ASSERT_TRUE(Call(IncrementCommand("a", 1)).status.ok());
  SetNextTimers({SelfTimer("b", "t", 10)});
  ASSERT_TRUE(Call(IncrementCommand("b", 1)).status.ok());
  ASSERT_EQ(TimersOf("a").size(), 1u);
  EXPECT_EQ(TimersOf("a")[0].partition, 3u);
  ASSERT_EQ(store_.ReadTimers(kCounter, "b")->size(), 1u);
  EXPECT_EQ((*store_.ReadTimers(kCounter, "b"))[0].partition, 7u);

  EXPECT_EQ(Fire(), 1u) << "only a's: this node does not own b's partition";
  EXPECT_EQ(Get("a"), 11);
  EXPECT_EQ(Get("b"), 1);
  Own({3, 7});  // b's partition comes here
  EXPECT_EQ(Fire(), 1u);
  EXPECT_EQ(Get("b"), 11);

  SetNextTimers({SelfTimer("a", "again", 100)});
  ASSERT_TRUE(Call(IncrementCommand("a", 1)).status.ok());
  Own({7});  // a's partition goes
  EXPECT_EQ(Fire(), 0u);
  EXPECT_EQ(Get("a"), 12);
  EXPECT_EQ(TimersOf("a").size(), 1u) << "left in the store to a's new owner";
  EXPECT_EQ(runtime_->timers().stats().in_window, 0u);
}

TEST_F(PartitionedEffectsTest, AnOutboxRecordIsDeliveredByItsPartitionsOwner) {
  function_.OnAction(kSink, [](const Command& command) {
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  // A record another node wrote for entity b (partition 7) and did not deliver.
  Command cause = IncrementCommand("b", 1);
  cause.idempotency_key = "from-elsewhere";
  store::WriteBatch batch;
  batch.outbox = OutboxRecordsFor(cause, kCounter, "b",
                                  {SideEffect{kSink, "Put", Ping("left"), false, {}}}, {},
                                  clock_.WallMillis(), 7);
  ASSERT_EQ(batch.outbox.size(), 1u);
  store_.Write(std::move(batch), [](absl::Status status) { ASSERT_TRUE(status.ok()); });
  EXPECT_EQ(runtime_->outbox().Scan(), 0u) << "partition 7 is not this node's";
  EXPECT_TRUE(function_.CallsTo(kSink).empty());
  Own({3, 7});
  EXPECT_EQ(runtime_->outbox().Scan(), 1u);
  ASSERT_TRUE(runtime_->outbox().WaitIdle(seconds(30)));
  ASSERT_EQ(function_.CallsTo(kSink).size(), 1u);
  EXPECT_EQ(ParsePing(function_.CallsTo(kSink)[0].command.payload), "left");
  EXPECT_TRUE(store_.ReadOutbox(7, INT64_MAX, 10)->empty());
}

TEST_F(EffectsTest, BadTimersFailTheCommandWithInvalidArgumentAndApplyNothing) {
  InstallCounterWithEffects();
  struct Case {
    std::function<void(TimerEffect&)> change;
    const char* expected;
  } cases[] = {
      {[](TimerEffect& t) { t.delay_ms = -1; }, "timer 't': delay_ms is negative (-1)"},
      {[](TimerEffect& t) { t.interval_ms = 10; }, "interval_ms 10 is under the minimum"},
      {[](TimerEffect& t) { t.cron = "* * * * * * *"; }, "timer 't': cron: cron expression"},
      {[](TimerEffect& t) { t.method = "Nope"; }, "unknown method 'Nope'"},
      {[](TimerEffect& t) { t.payload.type = "massa.test.Ping"; }, "the payload is a massa.test.Ping"},
  };
  for (const Case& c : cases) {
    TimerEffect timer = SelfTimer("a", "t", 1);
    c.change(timer);
    SetNextTimers({timer});
    CommandResult result = Call(IncrementCommand("a", 5));
    EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument) << c.expected;
    EXPECT_THAT(std::string(result.status.message()), HasSubstr(c.expected));
  }
  EXPECT_EQ(Stored("a"), std::nullopt) << "nothing of the command was applied";
  EXPECT_TRUE(TimersOf("a").empty());
}

TEST_F(EffectsTest, AnActionsTimerLivesUnderItsService) {
  function_.OnAction(kEcho, [](const Command&) {
    Outcome outcome = ReplyOutcome(Ping("ok"));
    TimerEffect timer;
    timer.name = "later";
    timer.service = kSink;
    timer.method = "Put";
    timer.payload = TypedValue{"massa.test.Ping", Ping("from an action")};
    timer.delay_ms = 1'000;
    outcome.timers = {timer};
    return absl::StatusOr<Outcome>(outcome);
  });
  function_.OnAction(kSink, [](const Command& command) {
    return absl::StatusOr<Outcome>(ReplyOutcome(command.payload));
  });
  ASSERT_TRUE(Call(MakeCommand(kEcho, "Say", Ping("hi"))).status.ok());
  ASSERT_EQ(store_.ReadTimers(kEcho, "")->size(), 1u);
  clock_.Advance(seconds(1));
  EXPECT_EQ(Fire(), 1u);
  ASSERT_TRUE(function_.AwaitCompleted(2));
  EXPECT_EQ(ParsePing(function_.CallsTo(kSink)[0].command.payload), "from an action");
}

// ---- State TTL ----------------------------------------------------------------------------

FunctionSpec SpecWithCounterTtl(std::chrono::milliseconds ttl) {
  FunctionSpec spec = ValidSpec();
  for (ServiceSpec& service : spec.services) {
    if (service.name == kCounter) service.state_ttl = ttl;
  }
  return spec;
}

TEST_F(EffectsTest, ExpiredStateReadsAsAbsentAtOnceAndIsSweptKeepingItsVersion) {
  runtime_.reset();
  Start(Options(), SpecWithCounterTtl(hours(1)));
  ASSERT_TRUE(Increment("a", 5).status.ok());
  clock_.Advance(minutes(59));
  EXPECT_EQ(Get("a"), 5);
  ASSERT_TRUE(Increment("a", 1).status.ok());  // a write restarts the time to live
  clock_.Advance(minutes(59));
  EXPECT_EQ(Get("a"), 6);
  clock_.Advance(minutes(2));
  EXPECT_EQ(Get("a"), 0) << "expired: absent in the cache, before any sweep";
  EXPECT_EQ(Stored("a"), 6) << "still in the store until the sweep";
  EXPECT_EQ(runtime_->SweepExpired(), 1u);
  EXPECT_EQ(Stored("a"), std::nullopt);
  EXPECT_EQ(store_.ReadValue(kCounter, "a")->version, 2u) << "the sweep keeps the version";
  // The entity writes on from there.
  ASSERT_TRUE(Increment("a", 3).status.ok());
  EXPECT_EQ(Stored("a"), 3);
}

TEST_F(EffectsTest, ExpiredStateIsAbsentOnActivation) {
  runtime_.reset();
  Start(Options(), SpecWithCounterTtl(hours(1)));
  ASSERT_TRUE(Increment("a", 5).status.ok());
  clock_.Advance(minutes(61));
  ASSERT_EQ(runtime_->PassivateIdle(), 1u);
  EXPECT_EQ(Get("a"), 0);
  EXPECT_EQ(function_.CallsTo(kCounter).back().state, std::nullopt);
}

TEST_F(EffectsTest, AWriteMayGiveItsOwnTimeToLive) {
  InstallCounterWithEffects();
  ttl_ms_ = 60'000;
  ASSERT_TRUE(Call(IncrementCommand("a", 5)).status.ok());
  EXPECT_EQ(store_.ReadValue(kCounter, "a")->expires_ms, clock_.WallMillis() + 60'000);
  clock_.Advance(seconds(61));
  EXPECT_EQ(Get("a"), 0);
  ttl_ms_ = 0;
  ASSERT_TRUE(Call(IncrementCommand("a", 2)).status.ok());
  EXPECT_EQ(store_.ReadValue(kCounter, "a")->expires_ms, 0) << "no TTL: never expires";
  clock_.Advance(hours(24 * 400));
  EXPECT_EQ(Get("a"), 2);
}

TEST_F(EffectsTest, OnlyValueEntitiesMayHaveATimeToLive) {
  FunctionSpec spec = ValidSpec();
  spec.services.push_back(Service("massa.test.Ledger", EntityKind::kEventSourced, kCounterState));
  spec.services.back().state_ttl = hours(1);
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(spec);
  ASSERT_FALSE(catalog.ok());
  EXPECT_THAT(std::string(catalog.status().message()),
              HasSubstr("only value entities' state can expire"));
}

}  // namespace
}  // namespace massa::entity_test
