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
#pragma once

#include <cstddef>
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

// Mutations applied together, atomically.
struct WriteBatch {
  struct Mutation {
    std::string entity_type;
    std::string key;
    std::optional<std::string> value;  // nullopt = delete
  };
  std::vector<Mutation> mutations;
  std::vector<JournalAppend> appends;

  bool empty() const { return mutations.empty() && appends.empty(); }
  void Put(std::string entity_type, std::string key, std::string value) {
    mutations.push_back({std::move(entity_type), std::move(key), std::move(value)});
  }
  void Delete(std::string entity_type, std::string key) {
    mutations.push_back({std::move(entity_type), std::move(key), std::nullopt});
  }
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

  // Returns the value stored under (entity_type, key), or std::nullopt when there is none.
  // May block on disk: call it from a blocking-pool thread, never from an ingress thread.
  // Errors: UNAVAILABLE or INTERNAL when the backend cannot read.
  [[nodiscard]] virtual absl::StatusOr<std::optional<std::string>> GetValue(
      std::string_view entity_type, std::string_view key) = 0;

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
  // Writes are applied in the order Write was called. Errors: ABORTED when an append's
  // expected sequence is stale, INVALID_ARGUMENT for a malformed append, UNAVAILABLE or
  // INTERNAL when the backend failed; in every case nothing of the batch is applied.
  virtual void Write(WriteBatch batch, WriteCallback done) = 0;

  virtual StoreStats stats() const = 0;
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

}  // namespace massa::store
