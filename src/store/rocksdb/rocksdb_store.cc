// The RocksDB Store. The only file that includes RocksDB headers; the key layout and the
// record formats are in records.h.
//
// Group commit: Write() checks an append's shape and encodes its records on the caller's
// thread, appends the write to a queue and wakes the single flusher thread. The flusher takes
// everything queued and builds one rocksdb::WriteBatch from it, in write order: for each
// write it checks the fences of the entities it writes, its mutations' expected versions and
// its appends' expected sequences against the entities as they will be after the group's
// earlier writes (a write that fails a check is dropped from the batch with a save point and
// fails alone), assigns stream offsets and adds the write's records: value records with
// their versions, events, and the head record of every entity whose journal head or fence
// it changed. It then writes the batch
// (one WAL record, one fsync when options.sync) and hands the group with each write's status
// to the completer thread, which calls the callbacks in write order while the flusher
// writes the next group.
//
// Timers, outbox records and idempotency records are written by the flusher too, in the same
// group checks: their current state (a timer's due time, whether an outbox record or an
// idempotency record exists) comes from the group's overlay or, the first time, from disk, so
// their due and expiry index entries are replaced in the same batch as the record. SweepExpired
// reads candidates from the expiry index and hands them to the flusher, which re-checks each
// against what the group and the disk hold before it clears a value or deletes a record.
//
// The flusher caches what it knows of entities (journal heads, fences, value versions) and
// the last offsets of what is durable, so a value write checks its version and fence without
// a read, and writes one record. Changes
// made while building a group live in a per-group overlay and reach the caches only once the
// group is written; a failed write drops the overlay and clears the caches, so they never run
// ahead of disk.

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "massa/store/store.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/status.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"
#include "store/journal_checks.h"
#include "store/rocksdb/records.h"
#include "store/rocksdb/rocksdb_store_testing.h"

namespace massa::store {
namespace {

using records::Head;

// Entities cached by the flusher before the cache is cleared (~120 bytes each).
constexpr size_t kMaxCachedEntities = 1 << 16;
constexpr size_t kMaxCachedOffsets = 1 << 12;

std::string_view View(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

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
  table.cache_index_and_filter_blocks_with_high_priority = true;
  // Most reads at activation are for entities that may not exist yet (and every new timer or
  // idempotency key is looked up before it is written): a Bloom filter answers those without
  // touching data blocks. Filters and indexes are partitioned (4 KiB pieces, found through a
  // small pinned top level): with whole-file filters a store of a million entities has
  // filter blocks of megabytes that an 8 MiB cache cannot keep, and each miss read one back
  // from disk (measured: placing orders fell from 7,000/s to 1,100/s by the 400,000th).
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.partition_filters = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.metadata_block_size = 4096;
  table.pin_top_level_index_and_filter = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, const RocksDbOptions& options,
               internal::RocksDbTestHooks hooks)
      : db_(std::move(db)), path_(options.path.string()), hooks_(std::move(hooks)) {
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

  absl::StatusOr<VersionedValue> ReadValue(std::string_view entity_type,
                                           std::string_view key) override {
    EntityRecords read;
    absl::Status status = ReadEntityRecords(entity_type, key, /*head_id=*/std::nullopt, &read);
    if (!status.ok()) return status;
    VersionedValue out;
    std::optional<std::string_view> value;
    uint64_t expires = 0;
    status = DecodeValueRecords(entity_type, key, read, &out.version, &value, &expires);
    if (!status.ok()) return status;
    if (value.has_value()) {
      out.value.emplace(*value);
      out.expires_ms = static_cast<int64_t>(expires);
    }
    return out;
  }

  absl::StatusOr<std::optional<IdempotencyRecord>> ReadIdempotency(
      std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) override {
    return *ReadIdempotencyWith(rocksdb::ReadOptions(), entity_type, key, idempotency_key);
  }

  absl::StatusOr<bool> HasIdempotencyRecords(std::string_view entity_type,
                                             std::string_view key) override {
    const std::string prefix = records::IdempotencyPrefix(records::EntityId(entity_type, key));
    const std::string upper = records::PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions options;
    options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
    it->Seek(prefix);
    if (it->Valid()) return true;
    if (!it->status().ok()) {
      return FromRocksDb(it->status(), absl::StrCat("store: looking for idempotency records of ",
                                                    internal::EntityName(entity_type, key),
                                                    " in ", path_));
    }
    return false;
  }

  std::optional<absl::StatusOr<std::optional<IdempotencyRecord>>> TryReadIdempotency(
      std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) override {
    rocksdb::ReadOptions options;
    options.read_tier = rocksdb::kBlockCacheTier;  // memtables and cache only: Incomplete else
    return ReadIdempotencyWith(options, entity_type, key, idempotency_key);
  }

  // nullopt when `options` allow no I/O and the read needed some.
  std::optional<absl::StatusOr<std::optional<IdempotencyRecord>>> ReadIdempotencyWith(
      const rocksdb::ReadOptions& options, std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) {
    std::string encoded;
    rocksdb::Status s = db_->Get(
        options, records::IdempotencyKey(records::EntityId(entity_type, key), idempotency_key),
        &encoded);
    if (s.IsNotFound()) return std::optional<IdempotencyRecord>();
    if (s.IsIncomplete()) return std::nullopt;
    if (!s.ok()) {
      return FromRocksDb(s, absl::StrCat("store: reading an idempotency record of ",
                                         internal::EntityName(entity_type, key), " from ", path_));
    }
    uint64_t expires = 0;
    std::string_view record;
    if (!records::DecodeIdempotency(encoded, &expires, &record)) {
      return absl::DataLossError(absl::StrCat("store: an idempotency record of ",
                                              internal::EntityName(entity_type, key), " in ", path_,
                                              " is unreadable"));
    }
    return IdempotencyRecord{std::string(entity_type), std::string(key),
                             std::string(idempotency_key), std::string(record),
                             static_cast<int64_t>(expires)};
  }

  absl::StatusOr<std::vector<TimerRecord>> ReadTimers(std::string_view entity_type,
                                                      std::string_view key) override {
    std::vector<TimerRecord> out;
    const std::string prefix = records::TimerPrefix(records::EntityId(entity_type, key));
    const std::string upper = records::PrefixSuccessor(prefix);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      std::string_view name_part = View(it->key()).substr(prefix.size());
      std::string name;
      if (!TakeName(name_part, &name)) return CorruptTimer(entity_type, key);
      absl::StatusOr<TimerRecord> timer =
          DecodeTimer(entity_type, key, std::move(name), View(it->value()));
      if (!timer.ok()) return timer.status();
      out.push_back(*std::move(timer));
    }
    if (!it->status().ok()) {
      return FromRocksDb(it->status(), "store: reading timers from " + path_);
    }
    return out;
  }

  absl::StatusOr<std::vector<TimerRecord>> ReadDueTimers(uint32_t partition, int64_t before_ms,
                                                         size_t limit) override {
    std::vector<TimerRecord> out;
    std::string record;
    absl::Status status = ScanDueIndex(
        records::TimerDuePrefix(partition), before_ms, limit, "due timers",
        [&](std::string_view index_key, const rocksdb::ReadOptions& get_options) -> absl::Status {
          uint64_t due = 0;
          std::string_view id, name;
          std::string_view type, key;
          if (!records::DecodeTimerDueKey(index_key, &due, &id, &name) ||
              !records::DecodeEntityId(id, &type, &key)) {
            return absl::DataLossError("store: a timer due index entry in " + path_ +
                                       " is unreadable");
          }
          rocksdb::Status s = db_->Get(get_options, records::TimerKey(id, name), &record);
          if (!s.ok()) {
            if (s.IsNotFound()) return CorruptTimer(type, key);
            return FromRocksDb(s, "store: reading a due timer from " + path_);
          }
          absl::StatusOr<TimerRecord> timer = DecodeTimer(type, key, std::string(name), record);
          if (!timer.ok()) return timer.status();
          out.push_back(*std::move(timer));
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    return out;
  }

  absl::StatusOr<std::vector<OutboxRecord>> ReadOutbox(uint32_t partition, int64_t before_ms,
                                                       size_t limit) override {
    std::vector<OutboxRecord> out;
    std::string encoded;
    const std::string prefix = records::OutboxDuePrefix(partition);
    absl::Status status = ScanDueIndex(
        prefix, before_ms, limit, "the outbox",
        [&](std::string_view index_key, const rocksdb::ReadOptions& get_options) -> absl::Status {
          if (index_key.size() < prefix.size() + 8) {
            return absl::DataLossError("store: an outbox index entry in " + path_ +
                                       " is unreadable");
          }
          OutboxRecord record;
          record.id = std::string(index_key.substr(prefix.size() + 8));
          rocksdb::Status s = db_->Get(get_options, records::OutboxKey(record.id), &encoded);
          uint64_t due = 0;
          std::string_view payload;
          if (!s.ok() && !s.IsNotFound()) {
            return FromRocksDb(s, "store: reading the outbox of " + path_);
          }
          if (s.IsNotFound() ||
              !records::DecodeScheduled(encoded, &due, &record.partition, &payload)) {
            return absl::DataLossError(absl::StrCat("store: outbox record '",
                                                    internal::EscapedName(record.id), "' in ",
                                                    path_, " is missing or unreadable"));
          }
          record.due_ms = static_cast<int64_t>(due);
          record.record = std::string(payload);
          out.push_back(std::move(record));
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    return out;
  }

  // Walks the due index under `prefix` (keys: prefix, be64(due), ...) in due order, up to
  // `before_ms` and at most `limit` entries, on one snapshot: `visit` gets each index key and
  // the read options of that snapshot, for reading the record the entry points at.
  template <typename Visit>
  absl::Status ScanDueIndex(const std::string& prefix, int64_t before_ms, size_t limit,
                            const char* what, Visit visit) {
    if (limit == 0 || before_ms <= 0) return absl::OkStatus();
    rocksdb::ManagedSnapshot snapshot(db_.get());
    std::string upper = prefix;
    records::AppendBigEndian64(&upper, static_cast<uint64_t>(before_ms));
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot.snapshot();
    read_options.iterate_upper_bound = &upper_slice;
    rocksdb::ReadOptions get_options;
    get_options.snapshot = snapshot.snapshot();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    size_t visited = 0;
    for (it->Seek(prefix); it->Valid() && visited < limit; it->Next(), ++visited) {
      absl::Status status = visit(View(it->key()), get_options);
      if (!status.ok()) return status;
    }
    if (!it->status().ok()) {
      return FromRocksDb(it->status(), absl::StrCat("store: reading ", what, " from ", path_));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> SweepExpired(int64_t now_ms, size_t limit) override {
    if (now_ms <= 0 || limit == 0) return 0;
    // Candidates from the expiry index; the flusher re-checks each (it is the only writer).
    std::string upper(1, records::kExpiryKind);
    records::AppendBigEndian64(&upper, static_cast<uint64_t>(now_ms) + 1);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    Pending pending;
    pending.sweep = std::make_shared<Sweep>();
    for (it->Seek(std::string(1, records::kExpiryKind)); it->Valid() &&
                                                          pending.sweep->entries.size() < limit;
         it->Next()) {
      pending.sweep->entries.emplace_back(View(it->key()));
    }
    if (!it->status().ok()) {
      return FromRocksDb(it->status(), "store: reading the expiry index of " + path_);
    }
    if (pending.sweep->entries.empty()) return 0;
    pending.sweep->now = static_cast<uint64_t>(now_ms);
    absl::Notification done;
    absl::Status status;
    std::shared_ptr<Sweep> sweep = pending.sweep;
    pending.done = [&](absl::Status s) {
      status = std::move(s);
      done.Notify();
    };
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(pending));
    }
    done.WaitForNotification();
    if (!status.ok()) return status;
    return sweep->swept;
  }

  absl::StatusOr<std::vector<Event>> ReadEvents(std::string_view entity_type, std::string_view key,
                                                uint64_t from_sequence, size_t limit) override {
    std::vector<Event> events;
    if (limit == 0) return events;
    const std::string prefix = records::JournalPrefix(records::EntityId(entity_type, key));
    const std::string upper = records::PrefixSuccessor(prefix);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    std::string start = prefix;
    records::AppendBigEndian64(&start, from_sequence);
    for (it->Seek(start); it->Valid() && events.size() < limit; it->Next()) {
      const std::string_view k = View(it->key());
      Event event;
      uint64_t offset = 0;
      if (k.size() != prefix.size() + 8 ||
          !records::DecodeEvent(View(it->value()), &event, &offset) ||
          event.sequence != records::GetBigEndian64(k.data() + prefix.size())) {
        return absl::DataLossError(
            absl::StrCat("store: the journal of ", internal::EntityName(entity_type, key), " in ",
                         path_, " has an unreadable event record after sequence ",
                         events.empty() ? from_sequence : events.back().sequence));
      }
      events.push_back(std::move(event));
    }
    if (!it->status().ok()) {
      return FromRocksDb(it->status(),
                         absl::StrCat("store: reading the journal of ",
                                      internal::EntityName(entity_type, key), " from ", path_));
    }
    return events;
  }

  absl::StatusOr<uint64_t> ReadLastSequence(std::string_view entity_type,
                                            std::string_view key) override {
    absl::StatusOr<Head> head = ReadHead(records::EntityId(entity_type, key));
    if (!head.ok()) return head.status();
    return head->last;
  }

  absl::StatusOr<std::optional<Snapshot>> ReadSnapshot(std::string_view entity_type,
                                                       std::string_view key) override {
    std::string record;
    rocksdb::Status s = db_->Get(
        rocksdb::ReadOptions(), records::SnapshotKey(records::EntityId(entity_type, key)), &record);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) {
      return FromRocksDb(s, absl::StrCat("store: reading the snapshot of ",
                                         internal::EntityName(entity_type, key), " from ", path_));
    }
    Snapshot snapshot;
    if (!records::DecodeSnapshot(record, &snapshot)) {
      return absl::DataLossError(absl::StrCat("store: the snapshot record of ",
                                              internal::EntityName(entity_type, key), " in ", path_,
                                              " is unreadable"));
    }
    return snapshot;
  }

  absl::StatusOr<std::vector<StreamEvent>> ReadStream(std::string_view entity_type,
                                                      uint64_t from_offset, size_t limit) override {
    std::vector<StreamEvent> out;
    if (limit == 0) return out;
    // One snapshot for the stream and the journals it points into: a concurrent retention
    // cannot delete an event between reading its stream entry and reading the event.
    rocksdb::ManagedSnapshot snapshot(db_.get());
    const std::string prefix = records::StreamPrefix(entity_type);
    const std::string upper = records::PrefixSuccessor(prefix);
    const rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot.snapshot();
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    rocksdb::ReadOptions get_options;
    get_options.snapshot = snapshot.snapshot();
    std::string start = prefix;
    records::AppendBigEndian64(&start, from_offset);
    std::string record;
    for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
      const std::string_view k = View(it->key());
      auto corrupt = [&](uint64_t offset, std::string_view what) {
        return absl::DataLossError(absl::StrCat(
            "store: the stream of ", internal::EscapedName(entity_type), " in ", path_, " at ",
            offset == 0 ? std::string("an unreadable offset") : absl::StrCat("offset ", offset),
            ": ", std::string(what)));
      };
      if (k.size() != prefix.size() + 8) return corrupt(0, "malformed stream key");
      StreamEvent event;
      event.offset = records::GetBigEndian64(k.data() + prefix.size());
      uint64_t sequence = 0;
      if (!records::DecodeStreamPointer(View(it->value()), &event.key, &sequence)) {
        return corrupt(event.offset, "unreadable stream record");
      }
      rocksdb::Status s = db_->Get(
          get_options, records::JournalKey(records::EntityId(entity_type, event.key), sequence),
          &record);
      if (s.IsNotFound()) {
        return corrupt(event.offset, absl::StrCat("its event ", sequence, " of key ",
                                                  internal::EscapedName(event.key),
                                                  " is missing from the journal"));
      }
      if (!s.ok()) {
        return FromRocksDb(s, absl::StrCat("store: reading the stream of ",
                                           internal::EscapedName(entity_type), " from ", path_));
      }
      uint64_t offset = 0;
      if (!records::DecodeEvent(record, &event.event, &offset) ||
          event.event.sequence != sequence || offset != event.offset) {
        return corrupt(event.offset, absl::StrCat("the event record ", sequence, " of key ",
                                                  internal::EscapedName(event.key),
                                                  " is unreadable or belongs elsewhere"));
      }
      out.push_back(std::move(event));
    }
    if (!it->status().ok()) {
      return FromRocksDb(it->status(),
                         absl::StrCat("store: reading the stream of ",
                                      internal::EscapedName(entity_type), " from ", path_));
    }
    return out;
  }

  void Write(WriteBatch batch, WriteCallback done) override {
    Pending pending;
    pending.done = std::move(done);
    pending.fence = batch.fence;
    for (const JournalAppend& append : batch.appends) {
      pending.rejected = internal::CheckAppendShape(append);
      if (!pending.rejected.ok()) break;
    }
    // A rejected write still goes through the queue, so that callbacks keep write order.
    if (pending.rejected.ok()) {
      pending.ops.reserve(batch.mutations.size());
      for (WriteBatch::Mutation& m : batch.mutations) {
        Op& op = pending.ops.emplace_back();
        op.id = records::EntityId(m.entity_type, m.key);
        op.value_key = records::VersionedValueKey(m.entity_type, m.key);
        op.entity_type = std::move(m.entity_type);
        op.key = std::move(m.key);
        op.value = std::move(m.value);
        op.expected_version = m.expected_version;
      }
      pending.appends.reserve(batch.appends.size());
      for (JournalAppend& append : batch.appends) pending.appends.push_back(Encode(append));
      for (size_t i = 0; i < pending.ops.size(); ++i) {
        pending.ops[i].expires = static_cast<uint64_t>(std::max<int64_t>(0, batch.mutations[i].expires_ms));
      }
      pending.idempotency = std::move(batch.idempotency);
      pending.timers = std::move(batch.timers);
      pending.outbox = std::move(batch.outbox);
      pending.outbox_done = std::move(batch.outbox_done);
      pending.fenced = std::move(batch.fenced);
    }
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(pending));
  }

  StoreStats stats() const override {
    return {writes_.load(std::memory_order_relaxed), flushes_.load(std::memory_order_relaxed)};
  }

 private:
  struct Op {
    std::string entity_type;
    std::string key;
    std::string id;                    // records::EntityId(entity_type, key)
    std::string value_key;             // records::VersionedValueKey(entity_type, key)
    std::optional<std::string> value;  // nullopt = delete
    std::optional<uint64_t> expected_version;
    uint64_t expires = 0;
  };
  // Expiry index entries for the flusher to re-check and, when still expired, reclaim.
  struct Sweep {
    std::vector<std::string> entries;  // 'x' keys
    uint64_t now = 0;
    size_t swept = 0;                  // set by the flusher
  };
  struct EncodedEvent {
    uint64_t sequence = 0;
    std::string key;     // journal key
    std::string record;  // event record, stream offset still 0
  };
  struct EncodedAppend {
    std::string entity_type;
    std::string key;
    std::string id;  // records::EntityId(entity_type, key)
    uint64_t expected = 0;
    std::vector<EncodedEvent> events;
    std::optional<uint64_t> snapshot_sequence;
    std::string snapshot_record;
    bool delete_covered = false;
  };
  struct Pending {
    std::vector<Op> ops;
    std::vector<EncodedAppend> appends;
    std::vector<IdempotencyRecord> idempotency;
    std::vector<TimerChange> timers;
    std::vector<OutboxRecord> outbox;
    std::vector<std::string> outbox_done;
    std::vector<std::pair<std::string, std::string>> fenced;  // only their fence raised
    std::shared_ptr<Sweep> sweep;  // a sweep, not a write of the runtime's
    uint64_t fence = 0;
    absl::Status rejected;  // not OK: failed the shape checks in Write; nothing to apply
    WriteCallback done;
  };
  struct Completed {
    std::vector<Pending> group;
    std::vector<absl::Status> statuses;  // one per write of `group`
  };

  // What the flusher knows of an entity: its head record and its value's version.
  struct Entity {
    Head head;
    uint64_t value_version = 0;
    bool legacy_value = false;  // a 'v' record, to delete with the next value write
  };
  // An entity as the group being built leaves it, and the events the group's batch puts into
  // the journal (a later retention in the same group must delete their stream entries).
  struct GroupEntity {
    Entity entity;
    std::vector<std::pair<uint64_t, uint64_t>> batched;  // (sequence, offset)
    uint64_t touched_by = 0;  // the number of the last write of the group that touched it
  };
  using EntityMap = std::unordered_map<std::string, GroupEntity>;  // by entity id
  // Where a timer or outbox record is in its due index: (partition, due); nullopt = none.
  using Scheduled = std::optional<std::pair<uint32_t, uint64_t>>;
  // What the group being built changes, on top of the caches (and the disk).
  struct GroupState {
    EntityMap entities;
    std::unordered_map<std::string, uint64_t> last_offsets;  // by entity type
    uint64_t writes = 0;                                     // numbers the group's writes
    std::unordered_map<std::string, Scheduled> timers;       // by timer key
    std::unordered_map<std::string, Scheduled> outbox;       // by outbox key
    // Expiries of the values and idempotency records the group wrote (by record key; 0 = no
    // expiry, nullopt = deleted), for the sweep's re-check.
    std::unordered_map<std::string, std::optional<uint64_t>> expiries;
  };
  // An entity one write touches, and its overlay entry as it was before the write. Pointers
  // into EntityMap stay valid while entries are added.
  struct Touched {
    EntityMap::value_type* entry;
    GroupEntity saved;
  };

  static EncodedAppend Encode(JournalAppend& append) {
    EncodedAppend out;
    out.id = records::EntityId(append.entity_type, append.key);
    out.expected = append.expected_sequence;
    out.events.reserve(append.events.size());
    for (const Event& event : append.events) {
      out.events.push_back({event.sequence, records::JournalKey(out.id, event.sequence),
                            records::EncodeEvent(event)});
    }
    if (append.snapshot.has_value()) {
      out.snapshot_sequence = append.snapshot->sequence;
      out.snapshot_record = records::EncodeSnapshot(*append.snapshot);
      out.delete_covered = append.delete_events_covered_by_snapshot;
    }
    out.entity_type = std::move(append.entity_type);
    out.key = std::move(append.key);
    return out;
  }

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
      std::vector<absl::Status> statuses = WriteGroup(group);
      // Counted before the callbacks so that a caller who saw OK also sees the count.
      const auto ok = std::count_if(statuses.begin(), statuses.end(),
                                    [](const absl::Status& s) { return s.ok(); });
      writes_.fetch_add(static_cast<uint64_t>(ok), std::memory_order_relaxed);
      absl::MutexLock lock(&mu_);
      completing_ += group.size();
      completed_.push_back({std::move(group), std::move(statuses)});
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
        for (size_t i = 0; i < c.group.size(); ++i) std::move(c.group[i].done)(c.statuses[i]);
        done += c.group.size();
      }
      batch.clear();
      absl::MutexLock lock(&mu_);
      completing_ -= done;
    }
  }

  // Builds one rocksdb::WriteBatch of the group's writes that pass their checks, writes it,
  // and returns each write's status.
  std::vector<absl::Status> WriteGroup(std::vector<Pending>& group) {
    std::vector<absl::Status> statuses(group.size());
    size_t bytes = 0;
    for (const Pending& p : group) {
      for (const Op& op : p.ops) {
        bytes += op.value_key.size() + (op.value ? op.value->size() : 0) + op.id.size() + 64;
      }
      for (const EncodedAppend& a : p.appends) {
        for (const EncodedEvent& e : a.events) {
          bytes += e.key.size() + e.record.size() + 2 * a.id.size() + a.key.size() + 64;
        }
        bytes += 2 * a.id.size() + a.snapshot_record.size() + 64;
      }
    }
    rocksdb::WriteBatch wb(bytes);
    GroupState state;
    for (size_t i = 0; i < group.size(); ++i) {
      Pending& p = group[i];
      if (!p.rejected.ok()) {
        statuses[i] = p.rejected;
        continue;
      }
      statuses[i] = AddToBatch(p, &state, &wb);
    }
    if (wb.Count() == 0) return statuses;  // nothing to write: reads only (or rejections)

    absl::Status written = hooks_.before_write ? hooks_.before_write() : absl::OkStatus();
    if (written.ok()) {
      written = FromRocksDb(db_->Write(write_options_, &wb), "store: writing to " + path_);
    }
    if (!written.ok()) {
      size_t failed = 0;
      for (absl::Status& status : statuses) {
        if (!status.ok()) continue;
        status = written;
        ++failed;
      }
      spdlog::error("{} ({} writes failed)", written.ToString(), failed);
      // Nothing of the group is on disk. The caches never held the group's changes; clear
      // them all the same, in case the failure left the disk other than it was.
      entity_cache_.clear();
      offset_cache_.clear();
      return statuses;
    }
    flushes_.fetch_add(1, std::memory_order_relaxed);
    for (auto& [id, group_entity] : state.entities) {
      if (entity_cache_.size() >= kMaxCachedEntities && !entity_cache_.contains(id))
        entity_cache_.clear();
      entity_cache_[id] = group_entity.entity;
    }
    for (auto& [type, offset] : state.last_offsets) {
      if (offset_cache_.size() >= kMaxCachedOffsets && !offset_cache_.contains(type)) {
        offset_cache_.clear();
      }
      offset_cache_[type] = offset;
    }
    return statuses;
  }

  // Adds one write to `wb` and its effects to `state`, or, when it fails a check (or a read it
  // needs fails), leaves both as they were and returns the error.
  absl::Status AddToBatch(Pending& p, GroupState* state, rocksdb::WriteBatch* wb) {
    ++state->writes;
    // Undo log: the overlay entries this write may change, as they were before it.
    std::vector<Touched> touched;
    std::vector<std::pair<std::string, std::optional<uint64_t>>> saved_offsets;
    for (const EncodedAppend& a : p.appends) {
      auto o = state->last_offsets.find(a.entity_type);
      saved_offsets.emplace_back(
          a.entity_type, o == state->last_offsets.end() ? std::nullopt : std::optional(o->second));
    }
    // The timer, outbox and expiry overlays as they were (restored in reverse on failure).
    std::vector<std::function<void()>> undo;
    wb->SetSavePoint();
    absl::Status status = AddToBatchUnchecked(p, state, &touched, &undo, wb);
    if (status.ok()) {
      rocksdb::Status popped = wb->PopSavePoint();
      if (popped.ok()) return absl::OkStatus();
      status = FromRocksDb(popped, "store: building a write batch for " + path_);
    }
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
    // An entry loaded by this write goes back to what was loaded: the state on disk.
    for (Touched& t : touched) t.entry->second = std::move(t.saved);
    // Restored in reverse, so an entry saved twice ends as it was first.
    for (auto it = saved_offsets.rbegin(); it != saved_offsets.rend(); ++it) {
      if (it->second) {
        state->last_offsets[it->first] = *it->second;
      } else {
        state->last_offsets.erase(it->first);
      }
    }
    rocksdb::Status rolled_back = wb->RollbackToSavePoint();
    // Only fails without a save point, and one was set above.
    if (!rolled_back.ok()) {
      spdlog::critical("store: rolling back a write batch failed: {}", rolled_back.ToString());
      std::abort();
    }
    return status;
  }

  // The overlay entry of an entity the write `p` writes, loaded first and recorded in
  // `touched` the first time the write touches it; FAILED_PRECONDITION when p is fenced.
  absl::StatusOr<GroupEntity*> Touch(const Pending& p, const std::string& id,
                                     std::string_view entity_type, std::string_view key,
                                     GroupState* state, std::vector<Touched>* touched) {
    absl::StatusOr<EntityMap::value_type*> entry = EntityFor(id, entity_type, key, state);
    if (!entry.ok()) return entry.status();
    GroupEntity& h = (*entry)->second;
    if (h.touched_by != state->writes) {
      touched->push_back({*entry, h});
      h.touched_by = state->writes;
    }
    if (p.fence < h.entity.head.fence) {
      return internal::Fenced(entity_type, key, p.fence, h.entity.head.fence);
    }
    return &h;
  }

  // Sets `map[key] = value` and records how to undo it.
  template <typename Map>
  static void SetUndoable(Map& map, const std::string& key, typename Map::mapped_type value,
                          std::vector<std::function<void()>>* undo) {
    auto it = map.find(key);
    if (it == map.end()) {
      undo->push_back([&map, key] { map.erase(key); });
    } else {
      undo->push_back([&map, key, old = it->second] { map[key] = old; });
    }
    map[key] = std::move(value);
  }

  // Where the timer or outbox record under `record_key` is scheduled: from the group's overlay,
  // else from disk.
  absl::StatusOr<Scheduled> ScheduledOf(
      const std::string& record_key, const std::unordered_map<std::string, Scheduled>& overlay) {
    if (auto it = overlay.find(record_key); it != overlay.end()) return it->second;
    std::string encoded;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), record_key, &encoded);
    if (s.IsNotFound()) return Scheduled();
    if (!s.ok()) return FromRocksDb(s, "store: reading a timer or outbox record from " + path_);
    uint64_t due = 0;
    uint32_t partition = 0;
    std::string_view rest;
    if (!records::DecodeScheduled(encoded, &due, &partition, &rest)) {
      return absl::DataLossError("store: a timer or outbox record in " + path_ +
                                 " is unreadable");
    }
    return Scheduled(std::make_pair(partition, due));
  }

  absl::Status AddToBatchUnchecked(Pending& p, GroupState* state, std::vector<Touched>* touched,
                                   std::vector<std::function<void()>>* undo,
                                   rocksdb::WriteBatch* wb) {
    auto check = [this](const rocksdb::Status& s) {
      return FromRocksDb(s, "store: building a write batch for " + path_);
    };
    if (p.sweep != nullptr) return AddSweep(*p.sweep, state, undo, wb);
    // Fences first (journal_checks.h): every entity the write touches, loaded into the overlay.
    std::vector<GroupEntity*> op_entities;
    op_entities.reserve(p.ops.size());
    for (const Op& op : p.ops) {
      absl::StatusOr<GroupEntity*> h = Touch(p, op.id, op.entity_type, op.key, state, touched);
      if (!h.ok()) return h.status();
      op_entities.push_back(*h);
    }
    std::vector<GroupEntity*> append_entities;
    append_entities.reserve(p.appends.size());
    for (const EncodedAppend& a : p.appends) {
      absl::StatusOr<GroupEntity*> h = Touch(p, a.id, a.entity_type, a.key, state, touched);
      if (!h.ok()) return h.status();
      append_entities.push_back(*h);
    }
    for (const IdempotencyRecord& r : p.idempotency) {
      absl::StatusOr<GroupEntity*> h =
          Touch(p, records::EntityId(r.entity_type, r.key), r.entity_type, r.key, state, touched);
      if (!h.ok()) return h.status();
    }
    for (const TimerChange& c : p.timers) {
      const TimerRecord& t = c.timer;
      absl::StatusOr<GroupEntity*> h =
          Touch(p, records::EntityId(t.entity_type, t.key), t.entity_type, t.key, state, touched);
      if (!h.ok()) return h.status();
    }
    for (const auto& [type, key] : p.fenced) {
      absl::StatusOr<GroupEntity*> h =
          Touch(p, records::EntityId(type, key), type, key, state, touched);
      if (!h.ok()) return h.status();
    }
    for (size_t i = 0; i < p.ops.size(); ++i) {
      const Op& op = p.ops[i];
      Entity& e = op_entities[i]->entity;
      if (op.expected_version.has_value() && *op.expected_version != e.value_version) {
        return internal::StaleVersion(op.entity_type, op.key, *op.expected_version,
                                      e.value_version);
      }
      ++e.value_version;
      const uint64_t expires = op.value.has_value() ? op.expires : 0;
      // The header and the value go into the batch as they are: the value is not copied.
      const std::string header =
          records::EncodeValueHeader(e.value_version, op.value.has_value(), expires);
      if (expires != 0) {
        absl::Status indexed = check(wb->Put(records::ExpiryKey(expires, op.value_key), ""));
        if (!indexed.ok()) return indexed;
      }
      SetUndoable(state->expiries, op.value_key,
                  op.value.has_value() ? std::optional<uint64_t>(expires) : std::nullopt, undo);
      const rocksdb::Slice key_part(op.value_key);
      rocksdb::Slice value_parts[2] = {header, rocksdb::Slice()};
      if (op.value) value_parts[1] = *op.value;
      absl::Status s =
          check(wb->Put(rocksdb::SliceParts(&key_part, 1), rocksdb::SliceParts(value_parts, 2)));
      if (s.ok() && e.legacy_value) {
        s = check(wb->Delete(records::ValueKey(op.entity_type, op.key)));
        e.legacy_value = false;
      }
      if (!s.ok()) return s;
    }
    for (size_t i = 0; i < p.appends.size(); ++i) {
      EncodedAppend& a = p.appends[i];
      GroupEntity& h = *append_entities[i];
      if (h.entity.head.last != a.expected) {
        return internal::StaleExpectation(a.entity_type, a.key, a.expected, h.entity.head.last);
      }
      // Retention in this append: its own covered events are never written.
      const uint64_t covered = a.delete_covered ? a.snapshot_sequence.value_or(0) : 0;
      if (!a.events.empty()) {
        absl::StatusOr<uint64_t*> last_offset = LastOffsetFor(a.entity_type, state);
        if (!last_offset.ok()) return last_offset.status();
        for (EncodedEvent& e : a.events) {
          const uint64_t offset = ++**last_offset;
          if (e.sequence <= covered) continue;
          records::SetEventOffset(&e.record, offset);
          absl::Status s = check(wb->Put(e.key, e.record));
          if (s.ok()) {
            s = check(wb->Put(records::StreamKey(a.entity_type, offset),
                              records::EncodeStreamPointer(a.key, e.sequence)));
          }
          if (!s.ok()) return s;
          h.batched.emplace_back(e.sequence, offset);
        }
        absl::Status s =
            check(wb->Put(records::OffsetKey(a.entity_type), records::EncodeOffset(**last_offset)));
        if (!s.ok()) return s;
        h.entity.head.last = a.events.back().sequence;
      }
      if (a.snapshot_sequence.has_value()) {
        absl::Status s = check(wb->Put(records::SnapshotKey(a.id), a.snapshot_record));
        if (!s.ok()) return s;
      }
      if (covered > h.entity.head.deleted_through) {
        absl::Status s = DeleteCovered(a, covered, &h, wb);
        if (!s.ok()) return s;
      }
    }
    for (const IdempotencyRecord& r : p.idempotency) {
      const std::string k =
          records::IdempotencyKey(records::EntityId(r.entity_type, r.key), r.idempotency_key);
      const uint64_t expires = static_cast<uint64_t>(std::max<int64_t>(0, r.expires_ms));
      absl::Status s = check(wb->Put(k, records::EncodeIdempotency(expires, r.record)));
      if (s.ok() && expires != 0) s = check(wb->Put(records::ExpiryKey(expires, k), ""));
      if (!s.ok()) return s;
      SetUndoable(state->expiries, k, std::optional<uint64_t>(expires), undo);
    }
    for (const TimerChange& c : p.timers) {
      const TimerRecord& t = c.timer;
      const std::string id = records::EntityId(t.entity_type, t.key);
      const std::string k = records::TimerKey(id, t.name);
      absl::StatusOr<Scheduled> current = ScheduledOf(k, state->timers);
      if (!current.ok()) return current.status();
      const int64_t current_due = *current ? static_cast<int64_t>((*current)->second) : 0;
      if (c.expected_due_ms.has_value() && *c.expected_due_ms != current_due) {
        return internal::StaleTimer(t.entity_type, t.key, t.name, *c.expected_due_ms,
                                    current_due);
      }
      absl::Status s;
      if (*current) {
        s = check(wb->Delete(records::TimerDueKey((*current)->first, (*current)->second, id,
                                                  t.name)));
      }
      if (!s.ok()) return s;
      if (c.remove) {
        s = check(wb->Delete(k));
        if (!s.ok()) return s;
        SetUndoable(state->timers, k, Scheduled(), undo);
        continue;
      }
      const uint64_t due = static_cast<uint64_t>(std::max<int64_t>(0, t.due_ms));
      s = check(wb->Put(k, records::EncodeTimer(due, t.partition, t.record)));
      if (s.ok()) s = check(wb->Put(records::TimerDueKey(t.partition, due, id, t.name), ""));
      if (!s.ok()) return s;
      SetUndoable(state->timers, k, Scheduled(std::make_pair(t.partition, due)), undo);
    }
    for (const std::string& done : p.outbox_done) {
      const std::string k = records::OutboxKey(done);
      absl::StatusOr<Scheduled> current = ScheduledOf(k, state->outbox);
      if (!current.ok()) return current.status();
      if (!*current) continue;
      absl::Status s = check(wb->Delete(k));
      if (s.ok()) {
        s = check(wb->Delete(records::OutboxDueKey((*current)->first, (*current)->second, done)));
      }
      if (!s.ok()) return s;
      SetUndoable(state->outbox, k, Scheduled(), undo);
    }
    for (const OutboxRecord& r : p.outbox) {
      const std::string k = records::OutboxKey(r.id);
      absl::StatusOr<Scheduled> current = ScheduledOf(k, state->outbox);
      if (!current.ok()) return current.status();
      absl::Status s;
      if (*current) {
        s = check(wb->Delete(records::OutboxDueKey((*current)->first, (*current)->second, r.id)));
      }
      const uint64_t due = static_cast<uint64_t>(std::max<int64_t>(0, r.due_ms));
      if (s.ok()) s = check(wb->Put(k, records::EncodeOutbox(due, r.partition, r.record)));
      if (s.ok()) s = check(wb->Put(records::OutboxDueKey(r.partition, due, r.id), ""));
      if (!s.ok()) return s;
      SetUndoable(state->outbox, k, Scheduled(std::make_pair(r.partition, due)), undo);
    }
    // One head record per entity whose journal head or fence the write changed.
    for (Touched& t : *touched) {
      Head& head = t.entry->second.entity.head;
      head.fence = std::max(head.fence, p.fence);
      if (head == t.saved.entity.head) continue;
      absl::Status s = check(wb->Put(records::HeadKey(t.entry->first), records::EncodeHead(head)));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // The sweep: for each expiry index entry, the record it names is reclaimed if it still
  // expires then (a value rewritten or an idempotency record written again since has an entry
  // of its own); the entry is deleted either way.
  absl::Status AddSweep(Sweep& sweep, GroupState* state, std::vector<std::function<void()>>* undo,
                        rocksdb::WriteBatch* wb) {
    auto check = [this](const rocksdb::Status& s) {
      return FromRocksDb(s, "store: building a sweep for " + path_);
    };
    sweep.swept = 0;
    for (const std::string& entry : sweep.entries) {
      if (entry.size() < 10) continue;
      const uint64_t expires = records::GetBigEndian64(entry.data() + 1);
      const std::string record_key = entry.substr(9);
      if (expires > sweep.now) continue;
      // The record's expiry now: as this group left it, else as on disk (nullopt: gone).
      std::optional<uint64_t> current;
      std::optional<uint64_t> version;  // values: their version
      std::string encoded;
      bool in_group = false;
      if (auto it = state->expiries.find(record_key); it != state->expiries.end()) {
        current = it->second;
        in_group = true;
      }
      if (record_key[0] == records::kVersionedValueKind) {
        rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), record_key, &encoded);
        if (!s.ok() && !s.IsNotFound()) return check(s);
        uint64_t v = 0;
        uint64_t disk_expires = 0;
        std::optional<std::string_view> value;
        if (s.ok() && records::DecodeValue(encoded, &v, &value, &disk_expires)) {
          version = v;
          if (!in_group) current = value.has_value() ? std::optional(disk_expires) : std::nullopt;
        }
        if (in_group) version.reset();  // rewritten in this group: leave it
        if (version.has_value() && current == expires) {
          absl::Status s2 = check(wb->Put(record_key, records::EncodeValueHeader(*version, false)));
          if (!s2.ok()) return s2;
          SetUndoable(state->expiries, record_key, std::nullopt, undo);
          ++sweep.swept;
        }
      } else if (record_key[0] == records::kIdempotencyKind) {
        if (!in_group) {
          rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), record_key, &encoded);
          if (!s.ok() && !s.IsNotFound()) return check(s);
          uint64_t disk_expires = 0;
          std::string_view rest;
          if (s.ok() && records::DecodeIdempotency(encoded, &disk_expires, &rest)) {
            current = disk_expires;
          }
        }
        if (current == expires) {
          absl::Status s2 = check(wb->Delete(record_key));
          if (!s2.ok()) return s2;
          SetUndoable(state->expiries, record_key, std::nullopt, undo);
          ++sweep.swept;
        }
      }
      absl::Status s = check(wb->Delete(entry));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Retention: deletes the entity's events after h->entity.head.deleted_through up to `covered`
  // from the journal and the stream: those on disk (their records say where they are in the
  // stream) and those this group's batch put in.
  absl::Status DeleteCovered(const EncodedAppend& a, uint64_t covered, GroupEntity* h,
                             rocksdb::WriteBatch* wb) {
    auto check = [this](const rocksdb::Status& s) {
      return FromRocksDb(s, "store: building a write batch for " + path_);
    };
    const std::string begin = records::JournalKey(a.id, h->entity.head.deleted_through + 1);
    const std::string end = covered == UINT64_MAX
                                ? records::PrefixSuccessor(records::JournalPrefix(a.id))
                                : records::JournalKey(a.id, covered + 1);
    const rocksdb::Slice end_slice(end);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &end_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      uint64_t offset = 0;
      if (!records::DecodeEventOffset(View(it->value()), &offset)) {
        return absl::DataLossError(absl::StrCat("store: retention on the journal of ",
                                                internal::EntityName(a.entity_type, a.key), " in ",
                                                path_, " found an unreadable event record"));
      }
      absl::Status s = check(wb->Delete(records::StreamKey(a.entity_type, offset)));
      if (!s.ok()) return s;
    }
    if (!it->status().ok()) {
      return FromRocksDb(it->status(),
                         absl::StrCat("store: retention on the journal of ",
                                      internal::EntityName(a.entity_type, a.key), " in ", path_));
    }
    auto& batched = h->batched;
    for (const auto& [sequence, offset] : batched) {
      if (sequence > covered) continue;
      absl::Status s = check(wb->Delete(records::StreamKey(a.entity_type, offset)));
      if (!s.ok()) return s;
    }
    batched.erase(std::remove_if(batched.begin(), batched.end(),
                                 [covered](const auto& e) { return e.first <= covered; }),
                  batched.end());
    // One range tombstone covers the events on disk and those earlier in this batch.
    absl::Status s = check(wb->DeleteRange(begin, end));
    if (!s.ok()) return s;
    h->entity.head.deleted_through = covered;
    return absl::OkStatus();
  }

  // The overlay entry of entity `id`, loaded from the cache or disk first.
  absl::StatusOr<EntityMap::value_type*> EntityFor(const std::string& id,
                                                   std::string_view entity_type,
                                                   std::string_view key, GroupState* state) {
    auto it = state->entities.find(id);
    if (it != state->entities.end()) return &*it;
    GroupEntity loaded;
    if (auto cached = entity_cache_.find(id); cached != entity_cache_.end()) {
      loaded.entity = cached->second;
    } else {
      absl::StatusOr<Entity> entity = LoadEntity(id, entity_type, key);
      if (!entity.ok()) return entity.status();
      loaded.entity = *entity;
    }
    return &*state->entities.emplace(id, std::move(loaded)).first;
  }

  // Entity `id` from disk: its head record and its value's version. On a cache miss only: the
  // version is in the value record, so this reads the value (usually in the block cache, as
  // the runtime has just read it to activate the entity).
  absl::StatusOr<Entity> LoadEntity(std::string_view id, std::string_view entity_type,
                                    std::string_view key) {
    EntityRecords read;
    absl::Status status = ReadEntityRecords(entity_type, key, id, &read);
    if (!status.ok()) return status;
    Entity entity;
    if (read.present[kHeadRecord] &&
        !records::DecodeHead(View(read.found[kHeadRecord]), &entity.head)) {
      return absl::DataLossError(absl::StrCat("store: the head record of ",
                                              internal::EntityName(entity_type, key), " in ", path_,
                                              " is unreadable"));
    }
    std::optional<std::string_view> value;
    status = DecodeValueRecords(entity_type, key, read, &entity.value_version, &value);
    if (!status.ok()) return status;
    entity.legacy_value = read.present[kLegacyValue];
    return entity;
  }

  // An entity's records, as read at one sequence number (records.h).
  enum EntityRecord { kValueRecord, kLegacyValue, kHeadRecord };
  struct EntityRecords {
    rocksdb::PinnableSlice found[3];  // by EntityRecord; pinned, not copied, when cached
    bool present[3] = {false, false, false};
  };

  // Reads the value records of (entity_type, key), and its head record when `head_id` is set,
  // in one MultiGet, so at one sequence number: a reader never misses a legacy value being
  // replaced by its value record, and the flusher sees a head and a value of one moment.
  absl::Status ReadEntityRecords(std::string_view entity_type, std::string_view key,
                                 std::optional<std::string_view> head_id, EntityRecords* out) {
    const std::string keys[3] = {records::VersionedValueKey(entity_type, key),
                                 records::ValueKey(entity_type, key),
                                 head_id ? records::HeadKey(*head_id) : std::string()};
    const rocksdb::Slice slices[3] = {keys[0], keys[1], keys[2]};
    rocksdb::Status statuses[3];
    const size_t n = head_id ? 3 : 2;
    db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), n, slices, out->found,
                  statuses);
    for (size_t i = 0; i < n; ++i) {
      if (!statuses[i].ok() && !statuses[i].IsNotFound()) {
        return FromRocksDb(statuses[i],
                           absl::StrCat("store: reading ", internal::EntityName(entity_type, key),
                                        " from ", path_));
      }
      out->present[i] = statuses[i].ok();
    }
    return absl::OkStatus();
  }

  // The version and value (pointing into `read`) that an entity's value records hold.
  absl::Status DecodeValueRecords(std::string_view entity_type, std::string_view key,
                                  const EntityRecords& read, uint64_t* version,
                                  std::optional<std::string_view>* value,
                                  uint64_t* expires = nullptr) const {
    *version = 0;
    *value = std::nullopt;
    if (expires != nullptr) *expires = 0;
    if (read.present[kValueRecord]) {
      if (!records::DecodeValue(View(read.found[kValueRecord]), version, value, expires)) {
        return absl::DataLossError(absl::StrCat("store: the value record of ",
                                                internal::EntityName(entity_type, key), " in ",
                                                path_, " is unreadable"));
      }
    } else if (read.present[kLegacyValue]) {
      *version = records::kUnversionedValueVersion;
      *value = View(read.found[kLegacyValue]);
    }
    return absl::OkStatus();
  }

  // The last offset of the type's stream in the group's overlay, loaded first.
  absl::StatusOr<uint64_t*> LastOffsetFor(const std::string& entity_type, GroupState* state) {
    auto it = state->last_offsets.find(entity_type);
    if (it != state->last_offsets.end()) return &it->second;
    uint64_t offset = 0;
    if (auto cached = offset_cache_.find(entity_type); cached != offset_cache_.end()) {
      offset = cached->second;
    } else {
      std::string record;
      rocksdb::Status s =
          db_->Get(rocksdb::ReadOptions(), records::OffsetKey(entity_type), &record);
      if (!s.ok() && !s.IsNotFound()) {
        return FromRocksDb(s, absl::StrCat("store: reading the stream offset of ",
                                           internal::EscapedName(entity_type), " from ", path_));
      }
      if (s.ok() && !records::DecodeOffset(record, &offset)) {
        return absl::DataLossError(absl::StrCat("store: the stream offset record of ",
                                                internal::EscapedName(entity_type), " in ", path_,
                                                " is unreadable"));
      }
    }
    return &state->last_offsets.emplace(entity_type, offset).first->second;
  }

  // A timer name at the front of `in` (str(name), all of `in`).
  static bool TakeName(std::string_view in, std::string* name) {
    uint64_t size = 0;
    size_t i = 0;
    for (int shift = 0; i < in.size() && shift <= 63; ++i, shift += 7) {
      size |= static_cast<uint64_t>(static_cast<unsigned char>(in[i]) & 0x7f) << shift;
      if ((static_cast<unsigned char>(in[i]) & 0x80) == 0) break;
    }
    if (i >= in.size() || in.size() - i - 1 != size) return false;
    name->assign(in.substr(i + 1));
    return true;
  }

  absl::Status CorruptTimer(std::string_view entity_type, std::string_view key) const {
    return absl::DataLossError(absl::StrCat("store: a timer of ",
                                            internal::EntityName(entity_type, key), " in ", path_,
                                            " is unreadable"));
  }

  absl::StatusOr<TimerRecord> DecodeTimer(std::string_view entity_type, std::string_view key,
                                          std::string name, std::string_view encoded) const {
    uint64_t due = 0;
    uint32_t partition = 0;
    std::string_view record;
    if (!records::DecodeScheduled(encoded, &due, &partition, &record)) {
      return CorruptTimer(entity_type, key);
    }
    return TimerRecord{std::string(entity_type), std::string(key), std::move(name),
                       static_cast<int64_t>(due), partition, std::string(record)};
  }

  // The head record of entity `id` (a missing one reads as an empty head).
  absl::StatusOr<Head> ReadHead(std::string_view id) {
    std::string record;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), records::HeadKey(id), &record);
    Head head;
    if (s.IsNotFound()) return head;
    if (!s.ok()) return FromRocksDb(s, "store: reading a head record from " + path_);
    if (!records::DecodeHead(record, &head)) {
      return absl::DataLossError("store: a head record in " + path_ + " is unreadable");
    }
    return head;
  }

  const std::unique_ptr<rocksdb::DB> db_;
  const std::string path_;
  const internal::RocksDbTestHooks hooks_;
  rocksdb::WriteOptions write_options_;

  absl::Mutex mu_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Completed> completed_ ABSL_GUARDED_BY(mu_);  // written, not yet called back
  size_t completing_ ABSL_GUARDED_BY(mu_) = 0;            // callbacks not yet returned
  bool completer_stop_ ABSL_GUARDED_BY(mu_) = false;

  // Used by the flusher thread only: entities (by entity id) and last stream offsets (by
  // type) as they are on disk. Bounded: cleared when full, then reloaded from disk.
  std::unordered_map<std::string, Entity> entity_cache_;
  std::unordered_map<std::string, uint64_t> offset_cache_;

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> flushes_{0};
  std::thread completer_;
  std::thread flusher_;  // last: started once everything above is initialized
};

}  // namespace

namespace internal {

absl::StatusOr<StorePtr> OpenRocksDbStoreForTest(const RocksDbOptions& options,
                                                 RocksDbTestHooks hooks) {
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
  return std::make_unique<RocksDbStore>(std::move(db), options, std::move(hooks));
}

}  // namespace internal

absl::StatusOr<StorePtr> OpenRocksDbStore(const RocksDbOptions& options) {
  return internal::OpenRocksDbStoreForTest(options, {});
}

}  // namespace massa::store
