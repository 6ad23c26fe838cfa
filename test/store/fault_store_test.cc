// FaultInjectingStore (test/fakes/fault_store.h), over the memory store.

#include "fakes/fault_store.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "massa/store/store.h"
#include "store_contract/effects_contract_test.h"
#include "store_contract/store_contract_test.h"

namespace massa::testing {
namespace {

using store::WriteBatch;
using store_contract::CallbackTracker;
using store_contract::Iota;
using store_contract::MakeAppend;
using store_contract::SequencesOf;

// With no fault configured the wrapper is a plain store: it passes the contract too.
struct FaultFreeBackend {
  static constexpr bool kDurable = false;
  store::StorePtr Open() { return std::make_unique<FaultInjectingStore>(store::NewMemoryStore()); }
};

WriteBatch PutBatch(std::string key, std::string value) {
  WriteBatch batch;
  batch.Put("t", std::move(key), std::move(value));
  return batch;
}

// The status of an inline write, or nullopt when its callback has not run.
std::optional<absl::Status> WriteInline(store::Store& store, WriteBatch batch) {
  std::optional<absl::Status> result;
  store.Write(std::move(batch), [&](absl::Status status) { result = std::move(status); });
  return result;
}

std::optional<std::string> Get(store::Store& store, std::string_view key) {
  absl::StatusOr<std::optional<std::string>> value = store.GetValue("t", key);
  if (!value.ok()) return "<error: " + value.status().ToString() + ">";
  return *value;
}

TEST(FaultInjectingStoreTest, FailWritesUntilHealed) {
  FaultInjectingStore faults(store::NewMemoryStore());
  faults.FailWrites(absl::UnavailableError("disk gone"));
  for (int i = 0; i < 3; ++i) {
    std::optional<absl::Status> status = WriteInline(faults, PutBatch("k", "v"));
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(status->message(), "disk gone");
  }
  EXPECT_EQ(Get(faults, "k"), std::nullopt);  // nothing of a failed write is applied
  EXPECT_EQ(faults.failed_writes(), 3u);
  EXPECT_EQ(faults.stats().writes, 0u);

  faults.Heal();
  std::optional<absl::Status> status = WriteInline(faults, PutBatch("k", "v"));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(Get(faults, "k"), "v");
  EXPECT_EQ(faults.stats().writes, 1u);
}

TEST(FaultInjectingStoreTest, FailNextWritesCountsDown) {
  FaultInjectingStore faults(store::NewMemoryStore());
  faults.FailNextWrites(2, absl::DataLossError("bad sector"));
  std::vector<absl::StatusCode> codes;
  for (int i = 0; i < 4; ++i) {
    std::optional<absl::Status> status = WriteInline(faults, PutBatch(std::to_string(i), "v"));
    ASSERT_TRUE(status.has_value());
    codes.push_back(status->code());
  }
  EXPECT_EQ(codes,
            (std::vector<absl::StatusCode>{absl::StatusCode::kDataLoss, absl::StatusCode::kDataLoss,
                                           absl::StatusCode::kOk, absl::StatusCode::kOk}));
  EXPECT_EQ(Get(faults, "1"), std::nullopt);
  EXPECT_EQ(Get(faults, "2"), "v");
}

TEST(FaultInjectingStoreTest, FailReadsUntilHealed) {
  FaultInjectingStore faults(store::NewMemoryStore());
  ASSERT_EQ(WriteInline(faults, PutBatch("k", "v")), absl::OkStatus());
  faults.FailReads(absl::UnavailableError("read error"));
  absl::StatusOr<std::optional<std::string>> value = faults.GetValue("t", "k");
  EXPECT_EQ(value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(faults.ReadValue("t", "k").status().code(), absl::StatusCode::kUnavailable);
  faults.Heal();
  EXPECT_EQ(Get(faults, "k"), "v");
  EXPECT_EQ(faults.ReadValue("t", "k").value_or(store::VersionedValue{}),
            (store::VersionedValue{"v", 1}));
}

// A failed write never reaches the wrapped store: no version, no fence.
TEST(FaultInjectingStoreTest, FailedWriteAdvancesNoVersionOrFence) {
  FaultInjectingStore faults(store::NewMemoryStore());
  faults.FailNextWrites(1, absl::UnavailableError("disk gone"));
  WriteBatch batch;
  batch.Put("t", "k", "lost", 0);
  batch.fence = 9;
  std::optional<absl::Status> status = WriteInline(faults, std::move(batch));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(faults.ReadValue("t", "k").value_or(store::VersionedValue{"<error>", 99}),
            store::VersionedValue{});
  WriteBatch retry;
  retry.Put("t", "k", "mine", 0);
  retry.fence = 1;
  EXPECT_EQ(WriteInline(faults, std::move(retry)), absl::OkStatus());
  EXPECT_EQ(faults.ReadValue("t", "k").value_or(store::VersionedValue{}),
            (store::VersionedValue{"mine", 1}));
}

TEST(FaultInjectingStoreTest, HeldWriteIsNotDurableUntilReleased) {
  FaultInjectingStore faults(store::NewMemoryStore());
  ASSERT_EQ(WriteInline(faults, PutBatch("k", "old")), absl::OkStatus());
  faults.HoldWrites();
  CallbackTracker tracker(2);
  faults.Write(PutBatch("k", "new"), tracker.Callback(0));
  faults.Write(PutBatch("k", "newer"), tracker.Callback(1));
  EXPECT_EQ(faults.held_writes(), 2u);
  EXPECT_EQ(tracker.calls(0), 0);
  EXPECT_EQ(Get(faults, "k"), "old");

  faults.ReleaseWrites();
  EXPECT_EQ(faults.held_writes(), 0u);
  EXPECT_EQ(tracker.ok_once(), 2u);
  EXPECT_EQ(Get(faults, "k"), "newer");  // released in order
  // No longer holding: writes go straight through.
  EXPECT_EQ(WriteInline(faults, PutBatch("k", "direct")), absl::OkStatus());
}

TEST(FaultInjectingStoreTest, HeldWritesFailIfFailingAtRelease) {
  FaultInjectingStore faults(store::NewMemoryStore());
  faults.HoldWrites();
  CallbackTracker tracker(1);
  faults.Write(PutBatch("k", "v"), tracker.Callback(0));
  faults.FailWrites(absl::UnavailableError("disk gone"));
  faults.ReleaseWrites();
  EXPECT_EQ(tracker.calls(0), 1);
  EXPECT_EQ(tracker.status(0).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Get(faults, "k"), std::nullopt);
}

TEST(FaultInjectingStoreTest, DestructionReleasesHeldWrites) {
  auto base = store::NewMemoryStore();
  CallbackTracker tracker(1);
  {
    FaultInjectingStore faults(base.get());
    faults.HoldWrites();
    faults.Write(PutBatch("k", "v"), tracker.Callback(0));
    EXPECT_EQ(tracker.calls(0), 0);
  }
  EXPECT_EQ(tracker.ok_once(), 1u);
  EXPECT_EQ(Get(*base, "k"), "v");
}

TEST(FaultInjectingStoreTest, AwaitHeldWritesSeesWritesFromOtherThreads) {
  FaultInjectingStore faults(store::NewMemoryStore());
  faults.HoldWrites();
  constexpr size_t kWriters = 16;
  CallbackTracker tracker(kWriters);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kWriters; ++i) {
    threads.emplace_back(
        [&, i] { faults.Write(PutBatch(std::to_string(i), "v"), tracker.Callback(i)); });
  }
  ASSERT_TRUE(faults.AwaitHeldWrites(kWriters));
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(tracker.ok_once(), 0u);
  faults.ReleaseWrites();
  EXPECT_EQ(tracker.ok_once(), kWriters);
  for (size_t i = 0; i < kWriters; ++i) EXPECT_EQ(Get(faults, std::to_string(i)), "v");
}

// Toggling faults while 16 threads write: every callback runs exactly once, and exactly the
// writes that were acknowledged OK are readable.
TEST(FaultInjectingStoreTest, ConcurrentTogglingKeepsCallbacksExactlyOnce) {
  FaultInjectingStore faults(store::NewMemoryStore());
  constexpr size_t kThreads = 16;
  constexpr size_t kWritesPerThread = 200;
  CallbackTracker tracker(kThreads * kWritesPerThread);
  std::atomic<bool> done{false};
  std::thread toggler([&] {
    for (int round = 0; !done.load(); ++round) {
      switch (round % 4) {
        case 0:
          faults.FailWrites(absl::UnavailableError("x"));
          break;
        case 1:
          faults.Heal();
          break;
        case 2:
          faults.HoldWrites();
          break;
        default:
          faults.ReleaseWrites();
          break;
      }
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < kWritesPerThread; ++i) {
        const size_t id = t * kWritesPerThread + i;
        faults.Write(PutBatch(std::to_string(id), "v"), tracker.Callback(id));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  done.store(true);
  toggler.join();
  faults.Heal();
  faults.ReleaseWrites();
  ASSERT_TRUE(tracker.WaitAll());
  size_t ok = 0;
  for (size_t id = 0; id < kThreads * kWritesPerThread; ++id) {
    ASSERT_EQ(tracker.calls(id), 1) << id;
    const bool acknowledged = tracker.status(id).ok();
    ok += acknowledged;
    EXPECT_EQ(Get(faults, std::to_string(id)).has_value(), acknowledged) << id;
  }
  EXPECT_EQ(faults.stats().writes, ok);
  EXPECT_EQ(faults.failed_writes(), kThreads * kWritesPerThread - ok);
}

TEST(FaultInjectingStoreTest, FailReadsCoversJournalReads) {
  FaultInjectingStore faults(store::NewMemoryStore());
  store::JournalAppend append = MakeAppend("t", "k", 0, 2);
  append.snapshot = store::Snapshot{2, "s"};
  ASSERT_EQ(WriteInline(faults, store_contract::BatchOf(std::move(append))), absl::OkStatus());
  faults.FailReads(absl::UnavailableError("read error"));
  EXPECT_EQ(faults.ReadEvents("t", "k", 1, 10).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(faults.ReadLastSequence("t", "k").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(faults.ReadSnapshot("t", "k").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(faults.ReadStream("t", 1, 10).status().code(), absl::StatusCode::kUnavailable);
  faults.Heal();
  absl::StatusOr<std::vector<Event>> events = faults.ReadEvents("t", "k", 1, 10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(SequencesOf(*events), Iota(1, 2));
  EXPECT_EQ(faults.ReadLastSequence("t", "k").value_or(0), 2u);
  EXPECT_EQ(faults.ReadSnapshot("t", "k").value_or(std::nullopt), (store::Snapshot{2, "s"}));
  EXPECT_EQ(faults.ReadStream("t", 1, 10).value_or(std::vector<store::StreamEvent>{}).size(), 2u);
}

TEST(FaultInjectingStoreTest, FailedAppendAppliesNothing) {
  FaultInjectingStore faults(store::NewMemoryStore());
  auto batch = [] {
    store::JournalAppend append = MakeAppend("t", "k", 0, 3);
    append.snapshot = store::Snapshot{3, "s"};
    WriteBatch b = store_contract::BatchOf(std::move(append));
    b.Put("t", "k", "state");
    return b;
  };
  faults.FailNextWrites(1, absl::UnavailableError("disk gone"));
  std::optional<absl::Status> status = WriteInline(faults, batch());
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Get(faults, "k"), std::nullopt);
  EXPECT_EQ(faults.ReadLastSequence("t", "k").value_or(99), 0u);
  EXPECT_EQ(faults.ReadSnapshot("t", "k").value_or(store::Snapshot{}), std::nullopt);
  EXPECT_TRUE(faults.ReadEvents("t", "k", 1, 10).value_or(std::vector<Event>(1)).empty());
  EXPECT_TRUE(faults.ReadStream("t", 1, 10).value_or(std::vector<store::StreamEvent>(1)).empty());
  // The wrapped store never saw it: the same append (expected 0) now succeeds.
  EXPECT_EQ(WriteInline(faults, batch()), absl::OkStatus());
  EXPECT_EQ(faults.ReadLastSequence("t", "k").value_or(0), 3u);
}

TEST(FaultInjectingStoreTest, HeldAppendsAreReleasedInOrder) {
  FaultInjectingStore faults(store::NewMemoryStore());
  faults.HoldWrites();
  CallbackTracker tracker(2);
  faults.Write(store_contract::BatchOf(MakeAppend("t", "k", 0, 2)), tracker.Callback(0));
  faults.Write(store_contract::BatchOf(MakeAppend("t", "k", 2, 1)), tracker.Callback(1));
  EXPECT_EQ(faults.ReadLastSequence("t", "k").value_or(99), 0u);
  EXPECT_EQ(tracker.calls(0), 0);
  faults.ReleaseWrites();
  EXPECT_EQ(tracker.ok_once(), 2u);
  absl::StatusOr<std::vector<Event>> events = faults.ReadEvents("t", "k", 1, 10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(SequencesOf(*events), Iota(1, 3));
}

}  // namespace
}  // namespace massa::testing

// The suite's macros need its unqualified name, hence its namespace.
namespace massa::store_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(FaultFree, StoreContractTest,
                               ::testing::Types<massa::testing::FaultFreeBackend>);
INSTANTIATE_TYPED_TEST_SUITE_P(FaultFree, EffectsContractTest,
                               ::testing::Types<massa::testing::FaultFreeBackend>);
}  // namespace massa::store_contract
