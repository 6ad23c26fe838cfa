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
#pragma once

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

namespace massa::store {

// Mutations applied together, atomically.
struct WriteBatch {
  struct Mutation {
    std::string entity_type;
    std::string key;
    std::optional<std::string> value;  // nullopt = delete
  };
  std::vector<Mutation> mutations;

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

  // Applies `batch` atomically and durably, then calls `done`. Does not block on I/O.
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
