// The RocksDB store: the contract suite, then what only a disk backend has (reopening,
// group commit, the directory lock, draining on close, path errors).

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
#include "store_contract/store_contract_test.h"

namespace massa::store {
namespace {

using store_contract::CallbackTracker;

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

}  // namespace
}  // namespace massa::store

// The suite's macros need its unqualified name, hence its namespace.
namespace massa::store_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(RocksDb, StoreContractTest,
                               ::testing::Types<massa::store::RocksDbBackend>);
}  // namespace massa::store_contract
