// The RocksDB Store. The only file that includes RocksDB headers.
//
// Key layout (one column family, shared later by journals, snapshots and timers):
//   kind byte | varint(len(entity_type)) | entity_type | key
// The kind byte keeps record families apart ('v' = value); the length prefix makes
// (entity_type, key) pairs unambiguous even when either contains '\0' or one is a prefix of
// another ("a"+"bc" vs "ab"+"c"), and keeps each entity type's keys contiguous.
//
// Group commit: Write() encodes the keys on the caller's thread, appends the write to a queue
// and wakes the single flusher thread. The flusher takes everything queued, writes it as one
// rocksdb::WriteBatch (one WAL record, one fsync when options.sync) and hands the group to the
// completer thread, which calls every callback of the group with the same result (a group is
// applied entirely or not at all), in write order, while the flusher writes the next group.

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "massa/store/store.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/status.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace massa::store {
namespace {

constexpr char kValueKind = 'v';

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

std::string EncodeKey(char kind, std::string_view entity_type, std::string_view key) {
  std::string out;
  out.reserve(1 + 10 + entity_type.size() + key.size());
  out.push_back(kind);
  AppendVarint(&out, entity_type.size());
  out.append(entity_type);
  out.append(key);
  return out;
}

// Converts a RocksDB status; `context` says what was being done and on which path.
absl::Status FromRocksDb(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string message(context);
  message += ": ";
  message += s.ToString();
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    case rocksdb::Status::kIOError:  // includes no space left on the device
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kShutdownInProgress:
      return absl::UnavailableError(message);
    case rocksdb::Status::kAborted:
      return absl::AbortedError(message);
    default:
      return absl::InternalError(message);
  }
}

// RocksDB reports a LOCK file held by someone else as an IOError: by another process
// (fcntl fails: "While lock file: <dir>/LOCK: Resource temporarily unavailable") or by
// this process ("lock hold by current process").
bool IsLockHeld(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string message = s.ToString();
  return message.find("While lock file") != std::string::npos ||
         message.find("lock hold by current process") != std::string::npos;
}

rocksdb::Options MakeOptions() {
  // Sized for a sidecar: a few tens of MiB at most, next to the user function.
  rocksdb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = 8 << 20;
  options.max_write_buffer_number = 2;
  options.max_background_jobs = 2;
  options.max_open_files = 256;
  options.keep_log_file_num = 3;
  options.max_log_file_size = 4 << 20;
  options.max_manifest_file_size = 64 << 20;
  options.level_compaction_dynamic_level_bytes = true;
  // wal_recovery_mode stays kPointInTimeRecovery: after a crash the WAL is replayed up to
  // the first torn record, which can only belong to a group that was never acknowledged.
  // (recycle_log_file_num is left at 0: RocksDB 7.8 turns it off in this mode anyway.)
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(8 << 20);
  table.cache_index_and_filter_blocks = true;  // bound memory by the cache size
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Most reads at activation are for entities that may not exist yet: a Bloom filter
  // answers those without touching data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, const RocksDbOptions& options)
      : db_(std::move(db)), path_(options.path.string()) {
    write_options_.sync = options.sync;
    completer_ = std::thread([this] { CompleteLoop(); });
    flusher_ = std::thread([this] { FlushLoop(); });
  }

  // Drains the queue (every pending write is written and called back), then closes the DB.
  ~RocksDbStore() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    flusher_.join();
    completer_.join();
    if (!write_options_.sync) {
      // Unsynced mode: make a clean shutdown durable all the same.
      rocksdb::Status s = db_->FlushWAL(/*sync=*/true);
      if (!s.ok()) spdlog::warn("store: syncing the WAL of {} failed: {}", path_, s.ToString());
    }
    rocksdb::Status s = db_->Close();
    if (!s.ok()) spdlog::warn("store: closing {} failed: {}", path_, s.ToString());
  }

  absl::StatusOr<std::optional<std::string>> GetValue(std::string_view entity_type,
                                                      std::string_view key) override {
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), EncodeKey(kValueKind, entity_type, key), &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return FromRocksDb(s, "store: reading from " + path_);
    return value;
  }

  void Write(WriteBatch batch, WriteCallback done) override {
    Pending pending{{}, std::move(done)};
    pending.ops.reserve(batch.mutations.size());
    for (WriteBatch::Mutation& m : batch.mutations) {
      pending.ops.push_back({EncodeKey(kValueKind, m.entity_type, m.key), std::move(m.value)});
    }
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(pending));

  }

  StoreStats stats() const override {
    return {writes_.load(std::memory_order_relaxed), flushes_.load(std::memory_order_relaxed)};
  }

 private:
  struct Op {
    std::string key;                   // encoded
    std::optional<std::string> value;  // nullopt = delete
  };
  struct Pending {
    std::vector<Op> ops;
    WriteCallback done;
  };
  struct Completed {
    std::vector<Pending> group;
    absl::Status status;
  };

  // Writes groups. Their callbacks go to the completer thread, so the next group's fsync
  // overlaps the work the callbacks start (replies, the next commands of the same entities).
  void FlushLoop() {
    pthread_setname_np(pthread_self(), "massa-store");
    std::vector<Pending> group;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        // Stop only once nothing is queued and no callback can queue more.
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || (stopping_ && completing_ == 0);
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) {
          completer_stop_ = true;
          return;
        }
        group.swap(queue_);
      }
      const absl::Status status = WriteGroup(group);
      // Counted before the callbacks so that a caller who saw OK also sees the count.
      if (status.ok()) writes_.fetch_add(group.size(), std::memory_order_relaxed);
      absl::MutexLock lock(&mu_);
      completing_ += group.size();
      completed_.push_back({std::move(group), status});
      group.clear();
    }
  }

  // Runs the callbacks of written groups, in the order the groups were written.
  void CompleteLoop() {
    pthread_setname_np(pthread_self(), "massa-store-cb");
    std::deque<Completed> batch;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !completed_.empty() || completer_stop_;
        };
        mu_.Await(absl::Condition(&ready));
        if (completed_.empty()) return;
        batch.swap(completed_);
      }
      size_t done = 0;
      for (Completed& c : batch) {
        for (Pending& p : c.group) std::move(p.done)(c.status);
        done += c.group.size();
      }
      batch.clear();
      absl::MutexLock lock(&mu_);
      completing_ -= done;
    }
  }

  absl::Status WriteGroup(const std::vector<Pending>& group) {
    size_t bytes = 0;
    for (const Pending& p : group) {
      for (const Op& op : p.ops) bytes += op.key.size() + (op.value ? op.value->size() : 0) + 16;
    }
    if (bytes == 0) return absl::OkStatus();  // only empty batches: nothing to write
    rocksdb::WriteBatch wb(bytes);
    rocksdb::Status s;
    for (const Pending& p : group) {
      for (const Op& op : p.ops) {
        s = op.value ? wb.Put(op.key, *op.value) : wb.Delete(op.key);
        if (!s.ok()) return FromRocksDb(s, "store: building a write batch for " + path_);
      }
    }
    s = db_->Write(write_options_, &wb);
    if (!s.ok()) {
      absl::Status status = FromRocksDb(s, "store: writing to " + path_);
      spdlog::error("{} ({} writes failed)", status.ToString(), group.size());
      return status;
    }
    flushes_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  const std::unique_ptr<rocksdb::DB> db_;
  const std::string path_;
  rocksdb::WriteOptions write_options_;

  absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Completed> completed_ ABSL_GUARDED_BY(mu_);  // written, not yet called back
  size_t completing_ ABSL_GUARDED_BY(mu_) = 0;            // callbacks not yet returned
  bool completer_stop_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> flushes_{0};
  std::thread completer_;
  std::thread flusher_;  // last: started once everything above is initialized
};

}  // namespace

absl::StatusOr<StorePtr> OpenRocksDbStore(const RocksDbOptions& options) {
  const std::string path = options.path.string();
  if (path.empty()) return absl::InvalidArgumentError("store: the RocksDB path is empty");

  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec || !std::filesystem::is_directory(options.path, ec)) {
    std::string message = "store: cannot use " + path + " as the RocksDB directory";
    if (ec) message += ": " + ec.message();
    if (ec == std::errc::permission_denied) return absl::PermissionDeniedError(message);
    return absl::FailedPreconditionError(message);
  }

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(MakeOptions(), path, &raw);
  std::unique_ptr<rocksdb::DB> db(raw);
  if (IsLockHeld(s)) {
    return absl::FailedPreconditionError("store: the RocksDB directory " + path +
                                         " is locked; another massa process may be using it (" +
                                         s.ToString() + ")");
  }
  if (!s.ok()) return FromRocksDb(s, "store: opening RocksDB at " + path);
  return std::make_unique<RocksDbStore>(std::move(db), options);
}

}  // namespace massa::store
