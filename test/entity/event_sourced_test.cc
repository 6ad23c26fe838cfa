// EntityRuntime with event-sourced entities: events persisted before the reply with their
// sequence, timestamp and origin; activation from snapshot + journal through the function's
// fold; snapshots every N events; retention; failed and conflicting writes; pipelined commands
// sharing flushes. The Ledger service of test/fakes/test_services.proto sums deposits.

#include <chrono>
#include <string>
#include <vector>

#include "entity/runtime_harness.h"
#include "entity/state_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/fakes/test_services.pb.h"

namespace massa::entity_test {
namespace {

using ::testing::HasSubstr;

constexpr char kLedger[] = "massa.test.Ledger";
constexpr char kDeposited[] = "massa.test.Deposited";

TypedValue DepositedEvent(int64_t amount) {
  massa::test::Deposited event;
  event.set_amount(amount);
  return TypedValue{kDeposited, event.SerializeAsString()};
}

int64_t AmountOf(const std::string& payload) {
  massa::test::Deposited event;
  EXPECT_TRUE(event.ParseFromString(payload));
  return event.amount();
}

// Deposit `by`: fails for by < 0 (no events), emits nothing for 0, one event otherwise and two
// (by - 1 and 1) for by > 100; 13 is a broken function that returns events without a state.
absl::StatusOr<Outcome> LedgerHandler(const Command& command,
                                      const std::optional<TypedValue>& state, uint64_t) {
  int64_t value = CounterValueOf(state).value_or(0);
  Outcome outcome;
  if (command.method == "Deposit") {
    massa::test::IncrementRequest request;
    if (!request.ParseFromString(command.payload)) {
      return FailureOutcome(absl::InvalidArgumentError("bad IncrementRequest"));
    }
    if (request.by() < 0) return FailureOutcome(absl::InvalidArgumentError("negative deposit"));
    if (request.by() > 100) {
      outcome.events = {DepositedEvent(request.by() - 1), DepositedEvent(1)};
    } else if (request.by() > 0) {
      outcome.events = {DepositedEvent(request.by())};
    }
    value += request.by();
    if (request.by() != 13 && !outcome.events.empty()) {
      outcome.state_update = StateUpdate{CounterState(value)};
    }
  }
  outcome.result = Reply{CounterValue(value), {}};
  return outcome;
}

absl::StatusOr<std::optional<TypedValue>> LedgerFold(const std::optional<TypedValue>& state,
                                                     const std::vector<Event>& events) {
  int64_t value = CounterValueOf(state).value_or(0);
  for (const Event& event : events) {
    if (event.type != kDeposited) return absl::InternalError("unknown event " + event.type);
    value += AmountOf(event.payload);
  }
  return std::optional<TypedValue>(CounterState(value));
}

class EventSourcedTest : public RuntimeHarness {
 protected:
  void Run(uint32_t snapshot_every = 0, bool retention = false,
           uint32_t default_snapshot_every = 0) {
    FunctionSpec spec = ValidSpec();
    ServiceSpec ledger = Service(kLedger, EntityKind::kEventSourced, kCounterState);
    ledger.snapshot_every = snapshot_every;
    ledger.delete_events_on_snapshot = retention;
    spec.services.push_back(ledger);
    RuntimeOptions options = Options();
    options.default_snapshot_every = default_snapshot_every;
    options.replay_batch = 4;  // several fold calls for longer journals
    Start(options, std::move(spec));
    function_.OnEventSourced(kLedger, LedgerHandler);
    function_.OnFold(kLedger, LedgerFold);
  }

  CommandResult Deposit(const std::string& id, int64_t by) {
    return Call(MakeCommand(kLedger, "Deposit", IncrementRequest(id, by)));
  }
  int64_t Balance(const std::string& id) {
    CommandResult result = Call(MakeCommand(kLedger, "Balance", GetRequest(id)));
    EXPECT_TRUE(result.status.ok()) << result.status;
    return result.status.ok() ? ParseCounterValue(result.payload) : -1;
  }

  std::vector<Event> Journal(const std::string& id, uint64_t from = 1) {
    absl::StatusOr<std::vector<Event>> events = store_.ReadEvents(kLedger, id, from, 100'000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<Event>{};
  }
  std::vector<uint64_t> Sequences(const std::vector<Event>& events) {
    std::vector<uint64_t> out;
    for (const Event& e : events) out.push_back(e.sequence);
    return out;
  }
  uint64_t LastSequence(const std::string& id) {
    absl::StatusOr<uint64_t> last = store_.ReadLastSequence(kLedger, id);
    EXPECT_TRUE(last.ok()) << last.status();
    return last.value_or(0);
  }

  // Makes every idle entity passivate, so the next command activates from the store.
  void PassivateAll() {
    clock_.Advance(std::chrono::hours(1));
    runtime_->PassivateIdle();
    ASSERT_EQ(runtime_->active_entities(), 0u);
  }

  // Replaces the entity's snapshot with `state` bytes, as another writer would.
  void OverwriteSnapshot(const std::string& id, uint64_t sequence, std::string state) {
    store::WriteBatch batch;
    store::JournalAppend append;
    append.entity_type = kLedger;
    append.key = id;
    append.expected_sequence = LastSequence(id);
    append.snapshot = store::Snapshot{sequence, std::move(state)};
    batch.appends.push_back(std::move(append));
    std::optional<absl::Status> written;
    store_.Write(std::move(batch), [&](absl::Status status) { written = std::move(status); });
    ASSERT_TRUE(written.has_value() && written->ok()) << written.value_or(absl::OkStatus());
  }

  std::vector<uint64_t> SequencesPassed() {
    std::vector<uint64_t> out;
    for (const auto& call : function_.CallsTo(kLedger)) out.push_back(call.sequence);
    return out;
  }
};

// ---- Command path ---------------------------------------------------------------------------

TEST_F(EventSourcedTest, EventsArePersistedInOrderWithTheirOrigin) {
  Run();
  const int64_t before_ms = clock_.WallMillis();
  CommandResult first = Deposit("a", 5);
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(ParseCounterValue(first.payload), 5);
  ASSERT_TRUE(Deposit("a", 7).status.ok());

  std::vector<Event> journal = Journal("a");
  ASSERT_EQ(journal.size(), 2u);
  EXPECT_EQ(Sequences(journal), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(journal[0].type, kDeposited);
  EXPECT_EQ(AmountOf(journal[0].payload), 5);
  EXPECT_EQ(AmountOf(journal[1].payload), 7);
  EXPECT_EQ(journal[0].timestamp_ms, before_ms) << "events carry the runtime clock's time";
  EXPECT_EQ(journal[0].metadata,
            (Metadata{{"massa-command", "/massa.test.Ledger/Deposit"}}));
  EXPECT_EQ(LastSequence("a"), 2u);
  // The function saw the sequence of the state it was given.
  EXPECT_EQ(SequencesPassed(), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(Balance("a"), 12);
}

TEST_F(EventSourcedTest, SeveralEventsOfOneCommandGetConsecutiveSequences) {
  Run();
  ASSERT_TRUE(Deposit("a", 3).status.ok());
  ASSERT_TRUE(Deposit("a", 150).status.ok());  // two events
  ASSERT_TRUE(Deposit("a", 1).status.ok());
  std::vector<Event> journal = Journal("a");
  EXPECT_EQ(Sequences(journal), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(SequencesPassed(), (std::vector<uint64_t>{0, 1, 3}));
  EXPECT_EQ(Balance("a"), 154);
}

TEST_F(EventSourcedTest, FailedCommandPersistsNoEvents) {
  Run();
  ASSERT_TRUE(Deposit("a", 4).status.ok());
  CommandResult failed = Deposit("a", -1);
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LastSequence("a"), 1u);
  EXPECT_EQ(Balance("a"), 4);
}

TEST_F(EventSourcedTest, CommandWithoutEventsWritesNothing) {
  Run();
  CommandResult result = Deposit("a", 0);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(LastSequence("a"), 0u);
  EXPECT_EQ(store_.stats().writes, 0u);
}

TEST_F(EventSourcedTest, EventsWithoutTheResultingStateAreRefused) {
  Run();
  ASSERT_TRUE(Deposit("a", 2).status.ok());
  CommandResult broken = Deposit("a", 13);
  EXPECT_EQ(broken.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(broken.status.message()), HasSubstr("without the state"));
  EXPECT_EQ(LastSequence("a"), 1u);
  EXPECT_EQ(Balance("a"), 2);
}

// ---- Activation -----------------------------------------------------------------------------

TEST_F(EventSourcedTest, ActivationFoldsTheJournal) {
  Run();  // no snapshots
  int64_t total = 0;
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(Deposit("a", i).status.ok());
    total += i;
  }
  EXPECT_TRUE(function_.fold_calls().empty());  // the command path needs no fold
  PassivateAll();
  EXPECT_EQ(Balance("a"), total);

  std::vector<testing::FakeFunction::FoldCall> folds = function_.fold_calls();
  ASSERT_EQ(folds.size(), 3u);  // replay_batch 4: events 1-4, 5-8, 9-10
  EXPECT_FALSE(folds[0].state.has_value());
  EXPECT_EQ(folds[0].service, kLedger);
  EXPECT_EQ(folds[0].entity_key, "a");
  EXPECT_EQ(Sequences(folds[0].events), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(CounterValueOf(folds[1].state), 1 + 2 + 3 + 4);
  EXPECT_EQ(Sequences(folds[2].events), (std::vector<uint64_t>{9, 10}));
  // The command after activation got the folded state and its sequence.
  EXPECT_EQ(function_.CallsTo(kLedger).back().sequence, 10u);
  EXPECT_EQ(CounterValueOf(function_.CallsTo(kLedger).back().state), total);
}

TEST_F(EventSourcedTest, SnapshotEveryNEventsAndActivationReplaysOnlyTheTail) {
  Run(/*snapshot_every=*/3);
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(Deposit("a", 10).status.ok());
  absl::StatusOr<std::optional<store::Snapshot>> snapshot = store_.ReadSnapshot(kLedger, "a");
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value()) << snapshot.status();
  EXPECT_EQ((*snapshot)->sequence, 6u);
  absl::StatusOr<TypedValue> state = DecodeState((*snapshot)->state);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(CounterValueOf(*state), 60);
  EXPECT_EQ(LastSequence("a"), 7u);  // without retention every event stays
  EXPECT_EQ(Journal("a").size(), 7u);

  PassivateAll();
  EXPECT_EQ(Balance("a"), 70);
  std::vector<testing::FakeFunction::FoldCall> folds = function_.fold_calls();
  ASSERT_EQ(folds.size(), 1u);
  EXPECT_EQ(CounterValueOf(folds[0].state), 60);
  EXPECT_EQ(Sequences(folds[0].events), (std::vector<uint64_t>{7}));
}

TEST_F(EventSourcedTest, SnapshotCrossedByAMultiEventCommandIsTaken) {
  Run(/*snapshot_every=*/3);
  ASSERT_TRUE(Deposit("a", 1).status.ok());    // 1
  ASSERT_TRUE(Deposit("a", 1).status.ok());    // 2
  ASSERT_TRUE(Deposit("a", 200).status.ok());  // 3, 4: crosses 3
  absl::StatusOr<std::optional<store::Snapshot>> snapshot = store_.ReadSnapshot(kLedger, "a");
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
  EXPECT_EQ((*snapshot)->sequence, 4u);
}

TEST_F(EventSourcedTest, MassaDefaultFrequencyAppliesWhenTheSpecSetsNone) {
  Run(/*snapshot_every=*/0, /*retention=*/false, /*default_snapshot_every=*/2);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Deposit("a", 1).status.ok());
  absl::StatusOr<std::optional<store::Snapshot>> snapshot = store_.ReadSnapshot(kLedger, "a");
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
  EXPECT_EQ((*snapshot)->sequence, 4u);
}

TEST_F(EventSourcedTest, SnapshotPlusTailEqualsFullReplay) {
  Run(/*snapshot_every=*/4);
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(Deposit("a", i * i).status.ok());
  PassivateAll();
  const int64_t from_snapshot = Balance("a");
  EXPECT_EQ(from_snapshot, 385);
  ASSERT_EQ(function_.fold_calls().size(), 1u);  // snapshot at 8, events 9-10

  // Damage the snapshot: activation must notice and fold the whole journal instead.
  OverwriteSnapshot("a", 8, "garbage that is not a state");
  PassivateAll();
  EXPECT_EQ(Balance("a"), from_snapshot);
  std::vector<testing::FakeFunction::FoldCall> folds = function_.fold_calls();
  ASSERT_EQ(folds.size(), 1u + 3u);  // 10 events in batches of 4
  EXPECT_FALSE(folds[1].state.has_value());
  EXPECT_EQ(folds[1].events.front().sequence, 1u);
}

TEST_F(EventSourcedTest, SnapshotOfAnotherStateTypeIsNotTrusted) {
  Run(/*snapshot_every=*/2);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Deposit("a", 5).status.ok());
  OverwriteSnapshot("a", 3, EncodeState(TypedValue{"massa.test.Other", "\x08\x63"}));
  PassivateAll();
  EXPECT_EQ(Balance("a"), 15);
}

TEST_F(EventSourcedTest, RetentionDeletesCoveredEventsAndStateSurvives) {
  Run(/*snapshot_every=*/3, /*retention=*/true);
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(Deposit("a", i).status.ok());
  EXPECT_EQ(Sequences(Journal("a")), (std::vector<uint64_t>{7}));
  EXPECT_EQ(LastSequence("a"), 7u);
  PassivateAll();
  EXPECT_EQ(Balance("a"), 28);
  ASSERT_TRUE(Deposit("a", 2).status.ok());
  EXPECT_EQ(Sequences(Journal("a")), (std::vector<uint64_t>{7, 8}));
}

TEST_F(EventSourcedTest, DamagedSnapshotWithRetentionRefusesToActivate) {
  Run(/*snapshot_every=*/3, /*retention=*/true);
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(Deposit("a", i).status.ok());
  OverwriteSnapshot("a", 3, "garbage");
  PassivateAll();
  CommandResult result = Call(MakeCommand(kLedger, "Balance", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status.message()), HasSubstr("has no event 1"));
}

TEST_F(EventSourcedTest, FoldFailureFailsActivationAndNothingIsServedFromWrongState) {
  Run();
  ASSERT_TRUE(Deposit("a", 5).status.ok());
  PassivateAll();
  function_.OnFold(kLedger, [](const std::optional<TypedValue>&, const std::vector<Event>&)
                                -> absl::StatusOr<std::optional<TypedValue>> {
    return absl::InternalError("no handler for massa.test.Deposited");
  });
  CommandResult result = Call(MakeCommand(kLedger, "Balance", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status.message()), HasSubstr("could not rebuild entity"));

  function_.OnFold(kLedger, LedgerFold);  // fixed: the next command activates
  EXPECT_EQ(Balance("a"), 5);
}

TEST_F(EventSourcedTest, FunctionDownDuringReplayIsUnavailable) {
  Run();
  ASSERT_TRUE(Deposit("a", 5).status.ok());
  PassivateAll();
  function_.OnFold(kLedger, [](const std::optional<TypedValue>&, const std::vector<Event>&)
                                -> absl::StatusOr<std::optional<TypedValue>> {
    return absl::UnavailableError("the user function is unavailable");
  });
  EXPECT_EQ(Call(MakeCommand(kLedger, "Balance", GetRequest("a"))).status.code(),
            absl::StatusCode::kUnavailable);
}

// ---- Durability -----------------------------------------------------------------------------

TEST_F(EventSourcedTest, FailedWriteLeavesNoGapAndTheEntityReloads) {
  Run();
  ASSERT_TRUE(Deposit("a", 1).status.ok());
  store_.FailNextWrites(1, absl::UnavailableError("disk gone"));
  CommandResult lost = Deposit("a", 50);
  EXPECT_EQ(lost.status.code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(Deposit("a", 2).status.ok());
  EXPECT_EQ(Sequences(Journal("a")), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(AmountOf(Journal("a")[1].payload), 2);
  EXPECT_EQ(Balance("a"), 3);
}

TEST_F(EventSourcedTest, QueuedCommandsRunWhileAFlushIsInProgressAndShareTheNextOne) {
  Run();
  ASSERT_TRUE(Deposit("a", 1).status.ok());  // active
  store_.HoldWrites();
  std::vector<ResultCatcher> pending;
  for (int i = 0; i < 5; ++i) pending.push_back(Send(MakeCommand(kLedger, "Deposit",
                                                                 IncrementRequest("a", 1))));
  // All five ran on the pipelined state although none is durable yet.
  ASSERT_TRUE(function_.AwaitCompleted(6));
  EXPECT_EQ(SequencesPassed(), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  for (const ResultCatcher& catcher : pending) EXPECT_FALSE(catcher.has_result());
  store_.ReleaseWrites();
  for (const ResultCatcher& catcher : pending) {
    std::optional<CommandResult> result = catcher.Await();
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->status.ok()) << result->status;
  }
  EXPECT_EQ(Sequences(Journal("a")), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(EventSourcedTest, PipelinedCommandsBehindAFailedWriteAreNotAcknowledged) {
  Run();
  ASSERT_TRUE(Deposit("a", 1).status.ok());
  store_.HoldWrites();
  std::vector<ResultCatcher> pending;
  for (int i = 0; i < 3; ++i) pending.push_back(Send(MakeCommand(kLedger, "Deposit",
                                                                 IncrementRequest("a", 10))));
  ASSERT_TRUE(function_.AwaitCompleted(4));
  store_.FailNextWrites(1, absl::UnavailableError("disk gone"));
  store_.ReleaseWrites();
  for (const ResultCatcher& catcher : pending) {
    std::optional<CommandResult> result = catcher.Await();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->status.code(), absl::StatusCode::kUnavailable);
  }
  // The first write failed; the ones behind it expected its events and were rejected too.
  EXPECT_EQ(LastSequence("a"), 1u);
  EXPECT_EQ(Balance("a"), 1);
}

TEST_F(EventSourcedTest, AnotherWritersAppendIsNeverInterleaved) {
  Run();
  ASSERT_TRUE(Deposit("a", 1).status.ok());
  // Another writer appends event 2 behind the runtime's back.
  store::WriteBatch batch;
  store::JournalAppend append;
  append.entity_type = kLedger;
  append.key = "a";
  append.expected_sequence = 1;
  append.events.push_back(Event{2, kDeposited, DepositedEvent(100).bytes, 0, {}});
  batch.appends.push_back(std::move(append));
  store_.Write(std::move(batch), [](absl::Status status) { ASSERT_TRUE(status.ok()) << status; });

  CommandResult stale = Deposit("a", 5);  // expects 1: rejected, nothing written
  EXPECT_EQ(stale.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(LastSequence("a"), 2u);
  EXPECT_EQ(Balance("a"), 101);  // reloaded, other writer's event included
  ASSERT_TRUE(Deposit("a", 5).status.ok());
  EXPECT_EQ(Sequences(Journal("a")), (std::vector<uint64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace massa::entity_test
