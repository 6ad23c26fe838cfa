// File: massa/store/store.h
//
// The store seam: everything that must survive a crash goes through a Store. Backends live in
// src/store/<name>/ and are created by the factory functions below; the runtime sees only
// this interface.
//
// Durability contract: when a Write's callback reports OK, the batch is on stable storage
// (fsync'd) and will be returned by every later read, including after a crash of the process
// or the machine. A batch is applied atomically: all of it or nothing. Concurrent Writes
// from many entities share one flush (group commit).
//
// Journals (event-sourced entities): each entity (entity_type, key) has a journal of events
// numbered 1, 2, 3... without gaps, an optional snapshot (the state folded from the events
// up to some sequence), and each entity type has a stream of all its entities' events in the
// order they were written, numbered by offset (1, 2, 3...) for projections and subscribers.
// An append names the sequence number the writer believes is the journal's last; a stale
// expectation rejects the whole batch (ABORTED), so two writers never interleave.
//
// Effectively-once and durable time: idempotency records (a request applied under a key, per
// entity), timers (per entity and name, with a due time indexed per partition) and outbox
// records (messages to deliver once their batch is durable) go into the same atomic batch as
// the state change that produced them, fenced like it (an idempotency record or a timer is
// checked against its entity's fence; an outbox record belongs to the batch). Values and
// idempotency records may expire: an expired value reads as absent (ReadValue reports the
// expiry; the runtime compares it with its clock) and SweepExpired reclaims the space without
// changing the value's version.
//
// Sharing (several massa nodes on one database): every value has a version (0 when never
// written; each put or delete adds one), and a mutation may name the version it expects
// (ABORTED otherwise), like a journal append names its sequence. Every entity also remembers
// the highest fencing token (owner epoch) that wrote it, its value or its journal; a batch whose
// `fence` is lower than that of an entity it writes is rejected (FAILED_PRECONDITION, "fenced"),
// so a node that lost an entity to a new owner can never overwrite the new owner's writes.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "massa/entity/command.h"

namespace massa::store {

// The state of an event-sourced entity after its first `sequence` events.
struct Snapshot {
  uint64_t sequence = 0;
  std::string state;  // opaque to the store

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

// Events appended to one entity's journal.
struct JournalAppend {
  std::string entity_type;
  std::string key;
  // The sequence of the journal's last event as the writer knows it (0 = empty journal).
  // Any other value in the store rejects the batch with ABORTED.
  uint64_t expected_sequence = 0;
  // Numbered expected_sequence + 1, + 2, ... (INVALID_ARGUMENT otherwise). May be empty
  // when the append only stores a snapshot.
  std::vector<Event> events;
  // Replaces the entity's snapshot; its sequence must not exceed the journal's last after
  // this append (INVALID_ARGUMENT otherwise).
  std::optional<Snapshot> snapshot;
  // Retention: with `snapshot`, also deletes the events it covers (sequence <= its sequence)
  // from the journal and from the type's stream. The journal's last sequence is kept.
  bool delete_events_covered_by_snapshot = false;
};

// An event as read from its entity type's stream.
struct StreamEvent {
  uint64_t offset = 0;  // position in the type's stream, 1-based, increasing in write order
  std::string key;      // the entity it belongs to
  Event event;
};

// A request applied under an idempotency key, for one entity. `record` is opaque to the store
// (the runtime keeps the request's hash and its reply in it).
struct IdempotencyRecord {
  std::string entity_type;
  std::string key;
  std::string idempotency_key;
  std::string record;
  int64_t expires_ms = 0;  // Unix ms: SweepExpired deletes the record from then on

  friend bool operator==(const IdempotencyRecord&, const IdempotencyRecord&) = default;
};

// A timer of an entity, by name: what to call (opaque `record`) and when it fires next.
struct TimerRecord {
  std::string entity_type;
  std::string key;
  std::string name;
  int64_t due_ms = 0;      // Unix ms
  uint32_t partition = 0;  // ReadDueTimers reads one partition's index (0 on a single node)
  std::string record;

  friend bool operator==(const TimerRecord&, const TimerRecord&) = default;
};

// Sets (replacing one of the same name) or removes one timer of an entity.
struct TimerChange {
  TimerRecord timer;    // its entity_type, key and name name the timer; the rest is the new one
  bool remove = false;  // removes the timer (nothing if there is none); the rest is ignored
  // Conditional on the timer's current due time: 0 = there must be no such timer; another
  // value = the timer must exist with this due time; nullopt = unconditional. ABORTED otherwise.
  std::optional<int64_t> expected_due_ms = std::nullopt;
};

// A message to deliver once the batch holding it is durable, at least once: it stays until a
// later batch names it in `outbox_done`.
struct OutboxRecord {
  std::string id;          // unique; a record with the id of an existing one replaces it
  int64_t due_ms = 0;      // not to be delivered before (Unix ms); a retry moves it
  uint32_t partition = 0;  // ReadOutbox reads one partition
  std::string record;      // opaque: what to deliver

  friend bool operator==(const OutboxRecord&, const OutboxRecord&) = default;
};

// Mutations applied together, atomically.
struct WriteBatch {
  struct Mutation {
    std::string entity_type;
    std::string key;
    std::optional<std::string> value;  // nullopt = delete
    // Conditional write: the version the writer read (0 = none was ever written). Any other
    // version in the store rejects the batch with ABORTED. nullopt = unconditional.
    std::optional<uint64_t> expected_version = std::nullopt;
    // The value reads as absent from then on (Unix ms; see ReadValue); 0 = never.
    int64_t expires_ms = 0;
  };
  std::vector<Mutation> mutations;
  std::vector<JournalAppend> appends;
  std::vector<IdempotencyRecord> idempotency;  // written (replacing the same key's)
  std::vector<TimerChange> timers;
  std::vector<OutboxRecord> outbox;       // written
  std::vector<std::string> outbox_done;   // outbox records deleted by id (absent ones ignored)
  // The writer's fencing token (owner epoch) for every entity the batch writes; 0 = none.
  // Rejected with FAILED_PRECONDITION, nothing applied, when an entity written has been
  // written with a higher token; otherwise the entity's token becomes max(its token, fence).
  uint64_t fence = 0;
  // Entities (type, key) whose token the batch checks and raises to `fence` like those it
  // writes, without writing anything else of them: a new owner's first act, before it reads,
  // so that a late write of the old owner can no longer land under what it read.
  std::vector<std::pair<std::string, std::string>> fenced;

  bool empty() const {
    return mutations.empty() && appends.empty() && idempotency.empty() && timers.empty() &&
           outbox.empty() && outbox_done.empty() && fenced.empty();
  }
  void Put(std::string entity_type, std::string key, std::string value,
           std::optional<uint64_t> expected_version = std::nullopt) {
    mutations.push_back(
        {std::move(entity_type), std::move(key), std::move(value), expected_version});
  }
  void Delete(std::string entity_type, std::string key,
              std::optional<uint64_t> expected_version = std::nullopt) {
    mutations.push_back({std::move(entity_type), std::move(key), std::nullopt, expected_version});
  }
};

// A value and its version (how many puts and deletes it has seen).
struct VersionedValue {
  std::optional<std::string> value;  // nullopt = never written, deleted, or swept after expiry
  uint64_t version = 0;
  // When the value expires (Unix ms; 0 = never). The store still returns an expired value until
  // SweepExpired reclaims it: its reader decides by its own clock, so that a value reads as
  // absent the moment it expires, before any sweep.
  int64_t expires_ms = 0;

  friend bool operator==(const VersionedValue&, const VersionedValue&) = default;
};

// Called once when a write is durable (OK) or has failed (nothing of the batch applied).
// Runs on a store thread or inline in Write; it must not block and must not call Write
// while holding a lock that Write's caller holds.
using WriteCallback = absl::AnyInvocable<void(absl::Status) &&>;

// Counters for metrics and benchmarks.
struct StoreStats {
  uint64_t writes = 0;   // batches acknowledged
  uint64_t flushes = 0;  // durable flushes (fsyncs) that carried them
};

// Thread-safe: every method may be called from any thread concurrently.
class Store {
 public:
  virtual ~Store() = default;

  // Returns the value stored under (entity_type, key) with its version. May block on disk or
  // the network: call it from a blocking-pool thread, never from an ingress thread.
  // Errors: UNAVAILABLE or INTERNAL when the backend cannot read.
  [[nodiscard]] virtual absl::StatusOr<VersionedValue> ReadValue(std::string_view entity_type,
                                                                 std::string_view key) = 0;

  // ReadValue without the version: the value, or std::nullopt when there is none.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> GetValue(std::string_view entity_type,
                                                                   std::string_view key) {
    absl::StatusOr<VersionedValue> read = ReadValue(entity_type, key);
    if (!read.ok()) return read.status();
    return std::move(read->value);
  }

  // The events of one entity with sequence >= `from_sequence`, in order, at most `limit`.
  // Events deleted by retention are not returned. Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::vector<Event>> ReadEvents(std::string_view entity_type,
                                                                      std::string_view key,
                                                                      uint64_t from_sequence,
                                                                      size_t limit) = 0;

  // The sequence of the entity's last event (0 when it has none); retention does not lower it.
  [[nodiscard]] virtual absl::StatusOr<uint64_t> ReadLastSequence(std::string_view entity_type,
                                                                  std::string_view key) = 0;

  // The entity's snapshot, or std::nullopt. Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::optional<Snapshot>> ReadSnapshot(
      std::string_view entity_type, std::string_view key) = 0;

  // The events of every entity of `entity_type` with offset >= `from_offset`, in write order,
  // at most `limit`. Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::vector<StreamEvent>> ReadStream(
      std::string_view entity_type, uint64_t from_offset, size_t limit) = 0;

  // Applies `batch` atomically and durably, then calls `done`. Does not block on I/O.
  // Writes to one entity are applied, and called back, in the order Write was called (writes
  // to different entities may complete in any order). Errors: ABORTED when an append's
  // expected sequence, a mutation's expected version or a timer change's expected due time is
  // stale, FAILED_PRECONDITION when the
  // batch is fenced, INVALID_ARGUMENT for a malformed append, UNAVAILABLE or INTERNAL when
  // the backend failed (UNAVAILABLE also when the outcome is unknown, e.g. the connection was
  // lost during commit: the batch may or may not be applied); in every other case nothing of
  // the batch is applied.
  virtual void Write(WriteBatch batch, WriteCallback done) = 0;

  // The idempotency record of `idempotency_key` for the entity, or nullopt (also once
  // swept; an expired one not yet swept is returned, with its expiry). Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::optional<IdempotencyRecord>> ReadIdempotency(
      std::string_view entity_type, std::string_view key, std::string_view idempotency_key) = 0;

  // Whether the entity has any idempotency record (live, or expired and not swept yet).
  // Blocking, like GetValue. An entity without any needs no lookup for a new key.
  [[nodiscard]] virtual absl::StatusOr<bool> HasIdempotencyRecords(std::string_view entity_type,
                                                                   std::string_view key) = 0;

  // ReadIdempotency without blocking: its answer when the store has it at hand (in memory or
  // its caches: a new key is usually answered by a Bloom filter), or nullopt when the read
  // would wait for I/O (then call ReadIdempotency on a thread that may block). The runtime
  // calls this on its I/O threads, so that a new key costs no hand-off. Default: nullopt.
  [[nodiscard]] virtual std::optional<absl::StatusOr<std::optional<IdempotencyRecord>>>
  TryReadIdempotency(std::string_view entity_type, std::string_view key,
                     std::string_view idempotency_key) {
    (void)entity_type, (void)key, (void)idempotency_key;
    return std::nullopt;
  }

  // The entity's timers, by name. Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::vector<TimerRecord>> ReadTimers(
      std::string_view entity_type, std::string_view key) = 0;

  // The timers of `partition` due before `before_ms`, soonest first (ties in no particular
  // order), at most `limit`. Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::vector<TimerRecord>> ReadDueTimers(
      uint32_t partition, int64_t before_ms, size_t limit) = 0;

  // The outbox records of `partition` due before `before_ms`, soonest first, at most `limit`.
  // Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<std::vector<OutboxRecord>> ReadOutbox(
      uint32_t partition, int64_t before_ms, size_t limit) = 0;

  // Reclaims what expired at or before `now_ms`: deletes idempotency records and clears the
  // value of expired values, keeping their version (a reader already treats them as absent, so
  // nothing it cached becomes stale). At most about `limit` items per call; returns how many it
  // reclaimed. Blocking, like GetValue.
  [[nodiscard]] virtual absl::StatusOr<size_t> SweepExpired(int64_t now_ms, size_t limit) = 0;

  virtual StoreStats stats() const = 0;

  // Whether the store can take writes now, as far as it knows without a round trip (for
  // readiness): UNAVAILABLE with the reason when its database connection is down. Never blocks.
  virtual absl::Status Health() const { return absl::OkStatus(); }
};

using StorePtr = std::unique_ptr<Store>;

// A store kept in memory only, for tests and `massa dev --store memory`. Writes complete
// inline. Not durable across restarts.
StorePtr NewMemoryStore();

struct RocksDbOptions {
  std::filesystem::path path;  // directory; created when missing
  bool sync = true;            // fsync each flush; false only for benchmarks that say so
};

// Opens (or creates) a RocksDB store. Writes from all threads are queued and written by one
// flusher thread in groups: one WriteBatch and one fsync per group.
// Errors: the database cannot be opened (locked by another process, bad path, corruption).
[[nodiscard]] absl::StatusOr<StorePtr> OpenRocksDbStore(const RocksDbOptions& options);

struct PostgresOptions {
  // A libpq connection URI or key=value string, e.g.
  // "postgresql://massa@db:5432/massa?sslmode=verify-full&sslrootcert=/etc/massa/ca.pem".
  // TLS and every other libpq option pass through as they are.
  std::string conninfo;
  std::string password;      // used when not empty and the conninfo has none
  int connections = 4;       // pool size: writer connections (one per write shard) + readers
  // At start: how long to keep retrying a database that cannot be reached.
  std::chrono::milliseconds connect_timeout{30'000};
};

// Connects to PostgreSQL, creates or migrates Massa's schema (recorded in a schema version
// table) and returns a store. Writes go to one of `connections` shards by entity (one
// connection each, order kept per entity); each shard commits the writes queued while its
// previous transaction ran as one transaction (group commit). A lost connection fails the
// writes in flight with UNAVAILABLE and is re-established with backoff.
// Errors: UNAVAILABLE when the database was not reachable within connect_timeout;
// FAILED_PRECONDITION when the schema is newer than this massa knows (naming both versions);
// INVALID_ARGUMENT for a conninfo libpq cannot parse.
[[nodiscard]] absl::StatusOr<StorePtr> OpenPostgresStore(const PostgresOptions& options);

}  // namespace massa::store
