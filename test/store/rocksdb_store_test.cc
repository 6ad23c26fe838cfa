// The RocksDB store: the contract suite, then what only a disk backend has (reopening,
// group commit, the directory lock, draining on close, path errors, damaged records, failed
// writes).

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "massa/store/store.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "store/rocksdb/records.h"
#include "store/rocksdb/rocksdb_store_testing.h"
#include "store_contract/effects_contract_test.h"
#include "store_contract/store_contract_test.h"

namespace massa::store {
namespace {

using std::string_literals::operator""s;
using store_contract::CallbackTracker;
using store_contract::Iota;
using store_contract::IsFenced;
using store_contract::MakeAppend;
using store_contract::MakeEvent;
using store_contract::OffsetsOf;
using store_contract::SequencesOf;

// A fresh directory under the test temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / "massa_store_XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

StorePtr OpenOrFail(const RocksDbOptions& options) {
  absl::StatusOr<StorePtr> store = OpenRocksDbStore(options);
  if (!store.ok()) {
    ADD_FAILURE() << "OpenRocksDbStore(" << options.path << "): " << store.status();
    return nullptr;
  }
  return *std::move(store);
}

struct RocksDbBackend {
  static constexpr bool kDurable = true;
  // A directory that does not exist yet: Open must create it.
  StorePtr Open() { return OpenOrFail({.path = dir.path() / "db" / "nested", .sync = true}); }
  TempDir dir;
};

absl::Status WriteAndWait(Store& store, WriteBatch batch) {
  absl::Notification done;
  absl::Status result;
  store.Write(std::move(batch), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(store_contract::kCallbackWait)) {
    return absl::DeadlineExceededError("write not called back");
  }
  return result;
}

std::optional<std::string> GetOrError(Store& store, std::string_view type, std::string_view key) {
  absl::StatusOr<std::optional<std::string>> value = store.GetValue(type, key);
  if (!value.ok()) return "<error: " + value.status().ToString() + ">";
  return *value;
}

TEST(RocksDbStoreTest, ConcurrentWritersShareFlushes) {
  TempDir dir;
  StorePtr store = OpenOrFail({.path = dir.path(), .sync = true});
  ASSERT_NE(store, nullptr);
  constexpr size_t kThreads = 64;
  constexpr size_t kWritesPerThread = 8;
  CallbackTracker tracker(kThreads * kWritesPerThread);
  std::atomic<size_t> ready{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (size_t i = 0; i < kWritesPerThread; ++i) {
        WriteBatch batch;
        batch.Put("group", std::to_string(t) + "/" + std::to_string(i), "v");
        store->Write(std::move(batch), tracker.Callback(t * kWritesPerThread + i));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(tracker.ok_once(), kThreads * kWritesPerThread);
  const StoreStats stats = store->stats();
  EXPECT_EQ(stats.writes, kThreads * kWritesPerThread);
  EXPECT_GE(stats.flushes, 1u);
  EXPECT_LT(stats.flushes, stats.writes);
}

TEST(RocksDbStoreTest, SecondOpenOfSameDirectoryFails) {
  TempDir dir;
  StorePtr first = OpenOrFail({.path = dir.path()});
  ASSERT_NE(first, nullptr);
  WriteBatch batch;
  batch.Put("t", "k", "v");
  ASSERT_TRUE(WriteAndWait(*first, std::move(batch)).ok());

  absl::StatusOr<StorePtr> second = OpenRocksDbStore({.path = dir.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_NE(second.status().message().find(dir.path().string()), std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("another massa"), std::string::npos) << second.status();
  // The first store is unaffected, and once it is closed the directory can be opened.
  EXPECT_EQ(GetOrError(*first, "t", "k"), "v");
  first.reset();
  StorePtr third = OpenOrFail({.path = dir.path()});
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(GetOrError(*third, "t", "k"), "v");
}

// Another process holding the directory's LOCK file (as a running massa would) is reported
// the same way. The child only takes the fcntl lock RocksDB uses, with async-signal-safe calls.
TEST(RocksDbStoreTest, DirectoryLockedByAnotherProcessFails) {
  TempDir dir;
  { ASSERT_NE(OpenOrFail({.path = dir.path()}), nullptr); }  // creates the LOCK file
  const std::string lock_path = (dir.path() / "LOCK").string();
  int to_child[2];
  int to_parent[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(to_parent), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = open(lock_path.c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    char result = (fd >= 0 && fcntl(fd, F_SETLK, &lock) == 0) ? 'y' : 'n';
    (void)!write(to_parent[1], &result, 1);
    (void)!read(to_child[0], &result, 1);  // hold the lock until the parent is done
    _exit(0);
  }
  char locked = 0;
  ASSERT_EQ(read(to_parent[0], &locked, 1), 1);
  absl::StatusOr<StorePtr> store;
  if (locked == 'y') store = OpenRocksDbStore({.path = dir.path()});
  char done = 'x';
  (void)!write(to_child[1], &done, 1);
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) close(fd);
  ASSERT_EQ(locked, 'y') << "the child could not lock " << lock_path;
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(dir.path().string()), std::string::npos)
      << store.status();
  // Released by the child's exit: opening works again.
  EXPECT_NE(OpenOrFail({.path = dir.path()}), nullptr);
}

// Closing the store writes everything still queued; all of it is there after reopening.
TEST(RocksDbStoreTest, CloseDrainsPendingWrites) {
  TempDir dir;
  constexpr size_t kWrites = 2000;
  CallbackTracker tracker(kWrites);
  {
    StorePtr store = OpenOrFail({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    for (size_t i = 0; i < kWrites; ++i) {
      WriteBatch batch;
      batch.Put("drain", std::to_string(i), std::to_string(i * i));
      store->Write(std::move(batch), tracker.Callback(i));
    }
  }  // destroyed with writes still queued
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(tracker.ok_once(), kWrites);
  StorePtr reopened = OpenOrFail({.path = dir.path()});
  ASSERT_NE(reopened, nullptr);
  size_t present = 0;
  for (size_t i = 0; i < kWrites; ++i) {
    present += GetOrError(*reopened, "drain", std::to_string(i)) == std::to_string(i * i);
  }
  EXPECT_EQ(present, kWrites);
}

TEST(RocksDbStoreTest, UnsyncedModeKeepsDataAcrossCleanClose) {
  TempDir dir;
  {
    StorePtr store = OpenOrFail({.path = dir.path(), .sync = false});
    ASSERT_NE(store, nullptr);
    WriteBatch batch;
    batch.Put("fast", "k", "v");
    ASSERT_TRUE(WriteAndWait(*store, std::move(batch)).ok());
    EXPECT_EQ(GetOrError(*store, "fast", "k"), "v");
  }
  StorePtr reopened = OpenOrFail({.path = dir.path(), .sync = true});
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(GetOrError(*reopened, "fast", "k"), "v");
}

TEST(RocksDbStoreTest, EmptyPathIsInvalid) {
  absl::StatusOr<StorePtr> store = OpenRocksDbStore({.path = ""});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
}

TEST(RocksDbStoreTest, PathThatIsAFileFails) {
  TempDir dir;
  const std::filesystem::path file = dir.path() / "not-a-dir";
  std::ofstream(file) << "x";
  absl::StatusOr<StorePtr> store = OpenRocksDbStore({.path = file});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find(file.string()), std::string::npos) << store.status();

  absl::StatusOr<StorePtr> below = OpenRocksDbStore({.path = file / "db"});
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.status().message().find(file.string()), std::string::npos) << below.status();
}

TEST(RocksDbStoreTest, CorruptCurrentFileIsDataLoss) {
  TempDir dir;
  {
    StorePtr store = OpenOrFail({.path = dir.path()});
    ASSERT_NE(store, nullptr);
  }
  // CURRENT names the live MANIFEST; point it at garbage.
  std::ofstream(dir.path() / "CURRENT", std::ios::trunc) << "garbage";
  absl::StatusOr<StorePtr> store = OpenRocksDbStore({.path = dir.path()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
}

// The record under `key` in the RocksDB directory of a closed store, or nullopt.
std::optional<std::string> GetRaw(const std::filesystem::path& path, const std::string& key) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(rocksdb::Options(), path.string(), &raw);
  if (!s.ok()) return "<error: " + s.ToString() + ">";
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return "<error: " + s.ToString() + ">";
  return value;
}

// Writes `records` straight into the RocksDB directory of a closed store.
void PutRaw(const std::filesystem::path& path,
            const std::vector<std::pair<std::string, std::string>>& records) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::Options(), path.string(), &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  for (const auto& [key, value] : records) {
    s = db->Put(rocksdb::WriteOptions(), key, value);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  s = db->Close();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

absl::Status Append(Store& store, JournalAppend append, uint64_t fence = 0) {
  WriteBatch batch;
  batch.appends.push_back(std::move(append));
  batch.fence = fence;
  return WriteAndWait(store, std::move(batch));
}

// A batch of one put, conditional when `expected` is set, with fence `fence`.
WriteBatch PutBatch(std::string type, std::string key, std::string value,
                    std::optional<uint64_t> expected, uint64_t fence = 0) {
  WriteBatch batch;
  batch.Put(std::move(type), std::move(key), std::move(value), expected);
  batch.fence = fence;
  return batch;
}

VersionedValue ReadOrError(Store& store, std::string_view type, std::string_view key) {
  absl::StatusOr<VersionedValue> read = store.ReadValue(type, key);
  if (!read.ok()) return {"<error: " + read.status().ToString() + ">", UINT64_MAX};
  return *read;
}

// Damaged records are reported as DATA_LOSS by the reads (and writes) that meet them; the
// store neither crashes nor returns made-up data, and the rest of it stays usable.
TEST(RocksDbStoreTest, DamagedJournalRecordsAreDataLoss) {
  TempDir dir;
  {
    StorePtr store = OpenOrFail({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Append(*store, MakeAppend("t", "k", 0, 3)).ok());      // offsets 1..3
    ASSERT_TRUE(Append(*store, MakeAppend("t", "other", 0, 2)).ok());  // offsets 4, 5
    ASSERT_TRUE(Append(*store, MakeAppend("t", "head", 0, 1)).ok());   // offset 6
    ASSERT_TRUE(Append(*store, MakeAppend("t", "trunc", 0, 1)).ok());  // offset 7
  }
  using namespace records;  // NOLINT: the key and record builders
  std::string truncated = EncodeEvent(MakeEvent(1));
  SetEventOffset(&truncated, 7);
  truncated.pop_back();
  PutRaw(dir.path(),
         {
             {JournalKey(EntityId("t", "k"), 2), "garbage\xff"},
             {JournalKey(EntityId("t", "trunc"), 1), truncated},
             {JournalPrefix(EntityId("t", "badkey")) + "abc", EncodeEvent(MakeEvent(1))},
             {HeadKey(EntityId("t", "head")), "\x01\xff"},
             {SnapshotKey(EntityId("t", "snap")), "\x02state"},
             {StreamKey("t", 4), "\x01\x7f"},
             {StreamKey("u", 1), EncodeStreamPointer("missing", 1)},
             {OffsetKey("v"), "\x01"},
         });
  StorePtr store = OpenOrFail({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  auto code = [](const auto& result) { return result.status().code(); };
  EXPECT_EQ(code(store->ReadEvents("t", "k", 1, 10)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(store->ReadEvents("t", "trunc", 1, 10)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(store->ReadEvents("t", "badkey", 1, 10)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(store->ReadLastSequence("t", "head")), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(store->ReadSnapshot("t", "snap")), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(store->ReadStream("t", 1, 10)), absl::StatusCode::kDataLoss);
  EXPECT_EQ(code(store->ReadStream("u", 1, 10)), absl::StatusCode::kDataLoss);
  // Writes that would need a damaged record fail alone, applying nothing.
  absl::Status status = Append(*store, MakeAppend("t", "head", 1, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  status = Append(*store, MakeAppend("v", "k", 0, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  JournalAppend retain = MakeAppend("t", "k", 3, 0);
  retain.snapshot = Snapshot{3, "at 3"};
  retain.delete_events_covered_by_snapshot = true;
  status = Append(*store, std::move(retain));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  absl::StatusOr<std::optional<Snapshot>> snapshot = store->ReadSnapshot("t", "k");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(*snapshot, std::nullopt);
  // What is intact reads as before, and other entities take writes.
  absl::StatusOr<std::vector<Event>> events = store->ReadEvents("t", "k", 3, 10);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(*events, std::vector<Event>{MakeEvent(3)});
  absl::StatusOr<std::vector<StreamEvent>> stream = store->ReadStream("t", 5, 2);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(OffsetsOf(*stream), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(code(store->ReadStream("t", 7, 10)), absl::StatusCode::kDataLoss);  // "trunc"
  ASSERT_TRUE(Append(*store, MakeAppend("t", "k", 3, 1)).ok());
  ASSERT_TRUE(Append(*store, MakeAppend("t", "fresh", 0, 1)).ok());
  stream = store->ReadStream("t", 8, 10);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(OffsetsOf(*stream), (std::vector<uint64_t>{8, 9}));
  ASSERT_EQ(stream->size(), 2u);
  EXPECT_EQ((*stream)[0].event, MakeEvent(4));
  EXPECT_EQ((*stream)[1].key, "fresh");
}

// A group whose write fails leaves no trace: neither on disk nor in the flusher's caches of
// heads and stream offsets, which later checks and offsets are based on.
TEST(RocksDbStoreTest, FailedWriteDoesNotAdvanceHeadsOrOffsets) {
  TempDir dir;
  std::atomic<bool> failing{false};
  std::atomic<int> failed{0};
  internal::RocksDbTestHooks hooks;
  hooks.before_write = [&]() -> absl::Status {
    if (!failing.load()) return absl::OkStatus();
    failed.fetch_add(1);
    return absl::UnavailableError("injected write failure");
  };
  absl::StatusOr<StorePtr> opened = internal::OpenRocksDbStoreForTest({.path = dir.path()}, hooks);
  ASSERT_TRUE(opened.ok()) << opened.status();
  StorePtr store = *std::move(opened);
  ASSERT_TRUE(Append(*store, MakeAppend("t", "k", 0, 2)).ok());  // offsets 1, 2

  failing.store(true);
  JournalAppend retain = MakeAppend("t", "k", 2, 3);
  retain.snapshot = Snapshot{4, "at 4"};
  retain.delete_events_covered_by_snapshot = true;
  WriteBatch batch;
  batch.appends.push_back(std::move(retain));
  batch.Put("t", "k", "state");
  absl::Status status = WriteAndWait(*store, std::move(batch));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  // Pipelined behind it: fails too, as part of the failed group or as stale after it.
  CallbackTracker tracker(2);
  store->Write(
      [] {
        WriteBatch b;
        b.appends.push_back(MakeAppend("t", "k", 2, 1));
        return b;
      }(),
      tracker.Callback(0));
  store->Write(
      [] {
        WriteBatch b;
        b.appends.push_back(MakeAppend("t", "k", 3, 1));
        return b;
      }(),
      tracker.Callback(1));
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(tracker.status(0).code(), absl::StatusCode::kUnavailable) << tracker.status(0);
  EXPECT_FALSE(tracker.status(1).ok());
  EXPECT_GE(failed.load(), 2);
  failing.store(false);

  absl::StatusOr<uint64_t> last = store->ReadLastSequence("t", "k");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(GetOrError(*store, "t", "k"), std::nullopt);
  absl::StatusOr<std::optional<Snapshot>> snapshot = store->ReadSnapshot("t", "k");
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(*snapshot, std::nullopt);
  // The failed appends did not advance the cached head: only expected = 2 fits.
  status = Append(*store, MakeAppend("t", "k", 5, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  status = Append(*store, MakeAppend("t", "k", 3, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  ASSERT_TRUE(Append(*store, MakeAppend("t", "k", 2, 1, "after")).ok());
  absl::StatusOr<std::vector<Event>> events = store->ReadEvents("t", "k", 1, 10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(SequencesOf(*events), Iota(1, 3));
  EXPECT_EQ(events->back(), MakeEvent(3, "after"));
  // Nor the cached stream offset: the next event takes offset 3.
  absl::StatusOr<std::vector<StreamEvent>> stream = store->ReadStream("t", 1, 10);
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ(OffsetsOf(*stream), Iota(1, 3));
  // Unchanged after reopening, too.
  store.reset();
  store = OpenOrFail({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Append(*store, MakeAppend("t", "k", 3, 1)).ok());
  stream = store->ReadStream("t", 1, 10);
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ(OffsetsOf(*stream), Iota(1, 4));
}

// Group commit with appends: many pipelined writes to few entities share flushes, the stale
// ones among them fail alone and the rest apply in write order.
TEST(RocksDbStoreTest, StaleWritesFailAloneWithinAGroup) {
  TempDir dir;
  StorePtr store = OpenOrFail({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  constexpr size_t kWrites = 400;
  CallbackTracker tracker(kWrites);
  // Even writes append the next event of "k"; odd writes repeat the previous expectation.
  for (size_t i = 0; i < kWrites; ++i) {
    WriteBatch batch;
    batch.appends.push_back(MakeAppend("t", "k", i / 2, 1, i % 2 == 0 ? "good" : "stale"));
    batch.Put("t", std::to_string(i), "v");
    store->Write(std::move(batch), tracker.Callback(i));
  }
  ASSERT_TRUE(tracker.WaitAll());
  size_t as_expected = 0;
  for (size_t i = 0; i < kWrites; ++i) {
    const absl::StatusCode want = i % 2 == 0 ? absl::StatusCode::kOk : absl::StatusCode::kAborted;
    as_expected += tracker.status(i).code() == want &&
                   GetOrError(*store, "t", std::to_string(i)) ==
                       (i % 2 == 0 ? std::optional<std::string>("v") : std::nullopt);
  }
  EXPECT_EQ(as_expected, kWrites);
  absl::StatusOr<std::vector<Event>> events = store->ReadEvents("t", "k", 1, kWrites);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(SequencesOf(*events), Iota(1, kWrites / 2));
  size_t good = 0;
  for (const Event& e : *events) good += e == MakeEvent(e.sequence, "good");
  EXPECT_EQ(good, kWrites / 2);
  const StoreStats stats = store->stats();
  EXPECT_EQ(stats.writes, kWrites / 2);
}

// A store whose flusher stops before writing its first group until `release` is notified,
// so that the writes queued meanwhile form the next group. `store` is null if it failed to
// open (a test failure is recorded).
struct HeldFirstGroup {
  explicit HeldFirstGroup(const std::filesystem::path& path) {
    internal::RocksDbTestHooks hooks;
    hooks.before_write = [this]() -> absl::Status {
      if (groups.fetch_add(1) == 0) {
        entered.Notify();
        release.WaitForNotification();
      }
      return absl::OkStatus();
    };
    absl::StatusOr<StorePtr> opened = internal::OpenRocksDbStoreForTest({.path = path}, hooks);
    if (opened.ok()) {
      store = *std::move(opened);
    } else {
      ADD_FAILURE() << opened.status();
    }
  }
  ~HeldFirstGroup() {
    if (!release.HasBeenNotified()) release.Notify();  // never leave the flusher blocked
    store.reset();
  }

  absl::Notification entered;  // the flusher is in its first group
  absl::Notification release;
  std::atomic<int> groups{0};
  StorePtr store;  // last: destroyed (drained) while the fields above still exist
};

// A write that fails its checks inside a group is taken out of the group's batch and leaves
// nothing behind for the group's later writes: not its heads, not its stream offsets. The
// flusher is held in its first group, so the writes queued meanwhile form the next one.
TEST(RocksDbStoreTest, RejectedWriteInAGroupLeavesNoTrace) {
  TempDir dir;
  HeldFirstGroup held(dir.path());
  ASSERT_NE(held.store, nullptr);
  StorePtr& store = held.store;

  CallbackTracker tracker(5);
  WriteBatch first;
  first.Put("v", "first", "x");
  store->Write(std::move(first), tracker.Callback(0));
  ASSERT_TRUE(held.entered.WaitForNotificationWithTimeout(store_contract::kCallbackWait));
  // Fine for "a", stale for "b": the whole write fails.
  WriteBatch mixed;
  mixed.appends.push_back(MakeAppend("t", "a", 0, 2, "rejected"));
  mixed.appends.push_back(MakeAppend("t", "b", 5, 1, "rejected"));
  mixed.Put("v", "mixed", "x");
  store->Write(std::move(mixed), tracker.Callback(1));
  store->Write(store_contract::BatchOf(MakeAppend("t", "a", 0, 1)), tracker.Callback(2));
  store->Write(store_contract::BatchOf(MakeAppend("t", "b", 0, 1)), tracker.Callback(3));
  // Misnumbered: rejected before the flusher sees it.
  JournalAppend misnumbered = MakeAppend("t", "a", 1, 1, "rejected");
  misnumbered.events[0].sequence = 7;
  store->Write(store_contract::BatchOf(std::move(misnumbered)), tracker.Callback(4));
  held.release.Notify();
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(held.groups.load(), 2);
  EXPECT_TRUE(tracker.status(0).ok()) << tracker.status(0);
  EXPECT_EQ(tracker.status(1).code(), absl::StatusCode::kAborted) << tracker.status(1);
  EXPECT_TRUE(tracker.status(2).ok()) << tracker.status(2);
  EXPECT_TRUE(tracker.status(3).ok()) << tracker.status(3);
  EXPECT_EQ(tracker.status(4).code(), absl::StatusCode::kInvalidArgument) << tracker.status(4);
  EXPECT_EQ(GetOrError(*store, "v", "mixed"), std::nullopt);

  absl::StatusOr<std::vector<StreamEvent>> stream = store->ReadStream("t", 1, 10);
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_EQ(OffsetsOf(*stream), Iota(1, 2));
  EXPECT_EQ((*stream)[0].key, "a");
  EXPECT_EQ((*stream)[0].event, MakeEvent(1));
  EXPECT_EQ((*stream)[1].key, "b");
  // The heads the flusher goes on with are the applied ones.
  EXPECT_EQ(Append(*store, MakeAppend("t", "a", 2, 1)).code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(Append(*store, MakeAppend("t", "a", 1, 1)).ok());
  stream = store->ReadStream("t", 1, 10);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(OffsetsOf(*stream), Iota(1, 3));
}

// Data dirs written before values had versions: 'v' records with no head record, and heads of
// format 1. Such a value reads as version 1 (0 when absent), takes conditional and fenced
// writes from there, and is stored with versions from its first write on.
TEST(RocksDbStoreTest, ValuesWrittenBeforeVersionsReadAsVersionOne) {
  TempDir dir;
  {
    StorePtr store = OpenOrFail({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Append(*store, MakeAppend("t", "both", 0, 2)).ok());
    ASSERT_TRUE(Append(*store, MakeAppend("t", "journal-only", 0, 1)).ok());
  }
  // What a massa from before versions leaves: raw values, and format 1 heads.
  using namespace records;  // NOLINT: the key and record builders
  PutRaw(dir.path(), {
                         {ValueKey("t", "legacy"), "old bytes"},
                         {ValueKey("t", "legacy-del"), "doomed"},
                         {ValueKey("t", "both"), "old too"},
                         {HeadKey(EntityId("t", "both")), "\x01\x02\x00"s},
                         {HeadKey(EntityId("t", "journal-only")), "\x01\x01\x00"s},
                     });
  {
    StorePtr store = OpenOrFail({.path = dir.path()});
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(ReadOrError(*store, "t", "legacy"), (VersionedValue{"old bytes", 1}));
    EXPECT_EQ(ReadOrError(*store, "t", "both"), (VersionedValue{"old too", 1}));
    EXPECT_EQ(ReadOrError(*store, "t", "journal-only"), VersionedValue{});
    EXPECT_EQ(ReadOrError(*store, "t", "never"), VersionedValue{});
    EXPECT_EQ(store->ReadLastSequence("t", "both").value_or(0), 2u);
    // The flusher sees the same versions.
    EXPECT_EQ(WriteAndWait(*store, PutBatch("t", "legacy", "lost", 0)).code(),
              absl::StatusCode::kAborted);
    ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "legacy", "new", 1)).ok());
    EXPECT_EQ(ReadOrError(*store, "t", "legacy"), (VersionedValue{"new", 2}));
    WriteBatch del;
    del.Delete("t", "legacy-del", 1);
    ASSERT_TRUE(WriteAndWait(*store, std::move(del)).ok());
    EXPECT_EQ(ReadOrError(*store, "t", "legacy-del"), (VersionedValue{std::nullopt, 2}));
    ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "journal-only", "first", 0)).ok());
    // A format 1 head goes on with its journal, and takes a fence.
    ASSERT_TRUE(Append(*store, MakeAppend("t", "both", 2, 1), 3).ok());
    EXPECT_EQ(ReadOrError(*store, "t", "both"), (VersionedValue{"old too", 1}));
    EXPECT_EQ(WriteAndWait(*store, PutBatch("t", "both", "lost", 0, 3)).code(),
              absl::StatusCode::kAborted);
    ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "both", "new too", 1, 3)).ok());
  }
  StorePtr store = OpenOrFail({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(ReadOrError(*store, "t", "legacy"), (VersionedValue{"new", 2}));
  EXPECT_EQ(ReadOrError(*store, "t", "legacy-del"), (VersionedValue{std::nullopt, 2}));
  EXPECT_EQ(ReadOrError(*store, "t", "journal-only"), (VersionedValue{"first", 1}));
  EXPECT_EQ(ReadOrError(*store, "t", "both"), (VersionedValue{"new too", 2}));
  absl::StatusOr<std::vector<Event>> events = store->ReadEvents("t", "both", 1, 10);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(SequencesOf(*events), Iota(1, 3));
  const absl::Status fenced = WriteAndWait(*store, PutBatch("t", "both", "lost", 2, 2));
  EXPECT_TRUE(IsFenced(fenced)) << fenced;
  // The legacy records of the values written since are gone.
  store.reset();
  for (const char* key : {"legacy", "legacy-del", "both"}) {
    EXPECT_EQ(GetRaw(dir.path(), records::ValueKey("t", key)), std::nullopt) << key;
  }
  EXPECT_NE(GetRaw(dir.path(), records::VersionedValueKey("t", "legacy")), std::nullopt);
}

// A damaged value record fails the reads and writes of that value alone; a damaged head
// record fails the writes of its entity (whose fence it holds).
TEST(RocksDbStoreTest, DamagedValueAndHeadRecordsAreDataLoss) {
  TempDir dir;
  { ASSERT_NE(OpenOrFail({.path = dir.path()}), nullptr); }
  PutRaw(dir.path(), {{records::VersionedValueKey("t", "k"), "\x01\x01\x02v"s},
                      {records::VersionedValueKey("t", "cut"), "\x01"s},
                      {records::HeadKey(records::EntityId("t", "head")), "\x02\x01"s}});
  StorePtr store = OpenOrFail({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  for (const char* key : {"k", "cut"}) {
    EXPECT_EQ(store->ReadValue("t", key).status().code(), absl::StatusCode::kDataLoss) << key;
    EXPECT_EQ(store->GetValue("t", key).status().code(), absl::StatusCode::kDataLoss) << key;
    const absl::Status status = WriteAndWait(*store, PutBatch("t", key, "x", std::nullopt));
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << key << ": " << status;
  }
  EXPECT_EQ(ReadOrError(*store, "t", "head"), VersionedValue{});
  absl::Status status = WriteAndWait(*store, PutBatch("t", "head", "x", std::nullopt));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  status = Append(*store, MakeAppend("t", "head", 0, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "k2", "x", 0)).ok());
  EXPECT_EQ(ReadOrError(*store, "t", "k2"), (VersionedValue{"x", 1}));
}

// A group whose write fails advances neither the cached versions nor the cached fences.
TEST(RocksDbStoreTest, FailedWriteDoesNotAdvanceVersionsOrFences) {
  TempDir dir;
  std::atomic<bool> failing{false};
  internal::RocksDbTestHooks hooks;
  hooks.before_write = [&]() -> absl::Status {
    return failing.load() ? absl::UnavailableError("injected write failure") : absl::OkStatus();
  };
  absl::StatusOr<StorePtr> opened = internal::OpenRocksDbStoreForTest({.path = dir.path()}, hooks);
  ASSERT_TRUE(opened.ok()) << opened.status();
  StorePtr store = *std::move(opened);
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "k", "a", 0, 2)).ok());  // cached: 1, fence 2

  failing.store(true);
  absl::Status status = WriteAndWait(*store, PutBatch("t", "k", "lost", 1, 7));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  WriteBatch fresh = PutBatch("t", "fresh", "lost", 0, 7);
  fresh.appends.push_back(MakeAppend("t", "fresh", 0, 1));
  status = WriteAndWait(*store, std::move(fresh));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  failing.store(false);

  EXPECT_EQ(ReadOrError(*store, "t", "k"), (VersionedValue{"a", 1}));
  status = WriteAndWait(*store, PutBatch("t", "k", "lost", 2, 2));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "k", "b", 1, 2)).ok());
  EXPECT_EQ(ReadOrError(*store, "t", "k"), (VersionedValue{"b", 2}));
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("t", "fresh", "mine", 0, 1)).ok());
  ASSERT_TRUE(Append(*store, MakeAppend("t", "fresh", 0, 1), 1).ok());
}

// A write rejected inside a group (stale version, stale sequence or fenced) leaves no version
// or fence in the group's overlay for the group's later writes; a write of the group that
// raises a fence fences the later writes of the same group.
TEST(RocksDbStoreTest, RejectedWriteInAGroupLeavesNoVersionOrFence) {
  TempDir dir;
  HeldFirstGroup held(dir.path());
  ASSERT_NE(held.store, nullptr);
  StorePtr& store = held.store;

  CallbackTracker tracker(9);
  store->Write(PutBatch("v", "first", "x", std::nullopt), tracker.Callback(0));
  ASSERT_TRUE(held.entered.WaitForNotificationWithTimeout(store_contract::kCallbackWait));
  // Fits for "x", stale for "y": rejected, with fence 9.
  WriteBatch stale_version = PutBatch("v", "x", "lost", 0, 9);
  stale_version.Put("v", "y", "lost", 5);
  store->Write(std::move(stale_version), tracker.Callback(1));
  store->Write(PutBatch("v", "x", "mine", 0, 1), tracker.Callback(2));
  // A value write, then a stale append.
  WriteBatch stale_sequence = PutBatch("v", "z", "lost", std::nullopt, 9);
  stale_sequence.appends.push_back(MakeAppend("v", "z", 3, 1));
  store->Write(std::move(stale_sequence), tracker.Callback(3));
  store->Write(PutBatch("v", "z", "mine", 0, 2), tracker.Callback(4));
  // A new owner, then the old one, then the new one again, all in the group.
  store->Write(PutBatch("v", "w", "new owner", 0, 5), tracker.Callback(5));
  WriteBatch old_owner = PutBatch("v", "w2", "lost", 0, 4);  // fine for "w2", fenced for "w"
  old_owner.Put("v", "w", "old owner", std::nullopt);
  store->Write(std::move(old_owner), tracker.Callback(6));
  store->Write(PutBatch("v", "w", "new owner again", 1, 5), tracker.Callback(7));
  store->Write(PutBatch("v", "w2", "mine", 0, 3), tracker.Callback(8));
  held.release.Notify();
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(held.groups.load(), 2);
  using Code = absl::StatusCode;
  const std::vector<Code> want = {Code::kOk,
                                  Code::kAborted,
                                  Code::kOk,
                                  Code::kAborted,
                                  Code::kOk,
                                  Code::kOk,
                                  Code::kFailedPrecondition,
                                  Code::kOk,
                                  Code::kOk};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(tracker.status(i).code(), want[i]) << i << ": " << tracker.status(i);
  }
  EXPECT_TRUE(IsFenced(tracker.status(6))) << tracker.status(6);
  EXPECT_EQ(ReadOrError(*store, "v", "x"), (VersionedValue{"mine", 1}));
  EXPECT_EQ(ReadOrError(*store, "v", "y"), VersionedValue{});
  EXPECT_EQ(ReadOrError(*store, "v", "z"), (VersionedValue{"mine", 1}));
  EXPECT_EQ(ReadOrError(*store, "v", "w"), (VersionedValue{"new owner again", 2}));
  EXPECT_EQ(ReadOrError(*store, "v", "w2"), (VersionedValue{"mine", 1}));
  // And so on disk: the tokens the flusher goes on with are the applied ones.
  store.reset();
  store = OpenOrFail({.path = dir.path()});
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("v", "x", "again", 1, 1)).ok());
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("v", "z", "again", 1, 2)).ok());
  ASSERT_TRUE(WriteAndWait(*store, PutBatch("v", "w2", "again", 1, 3)).ok());
  const absl::Status fenced = WriteAndWait(*store, PutBatch("v", "w", "old owner", 2, 4));
  EXPECT_TRUE(IsFenced(fenced)) << fenced;
}

}  // namespace
}  // namespace massa::store

// The suite's macros need its unqualified name, hence its namespace.
namespace massa::store_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(RocksDb, StoreContractTest,
                               ::testing::Types<massa::store::RocksDbBackend>);
INSTANTIATE_TYPED_TEST_SUITE_P(RocksDb, EffectsContractTest,
                               ::testing::Types<massa::store::RocksDbBackend>);
}  // namespace massa::store_contract
