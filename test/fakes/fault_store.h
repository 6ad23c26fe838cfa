// File: fakes/fault_store.h
//
// FaultInjectingStore wraps any Store and lets a test make writes (and reads) fail, or hold
// writes back so that a not-yet-durable write can be observed.
//
// Example:
//   auto fault = std::make_unique<massa::testing::FaultInjectingStore>(
//       massa::store::NewMemoryStore());
//   massa::testing::FaultInjectingStore* faults = fault.get();
//   Runtime runtime(std::move(fault));                      // takes a StorePtr
//   faults->FailNextWrites(1, absl::UnavailableError("disk gone"));
//   ...                                                     // the next write fails
//   faults->HoldWrites();
//   ...                                                     // a command is not acknowledged yet
//   faults->ReleaseWrites();                                // now it is
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "massa/entity/command.h"
#include "massa/store/store.h"

namespace massa::testing {

// Thread-safe. A write that is failed never reaches the wrapped store (nothing of it is
// applied) and its callback runs inline in Write (or in ReleaseWrites, for a held write).
// The fault decision is taken when a write leaves this wrapper: at Write time, or at
// ReleaseWrites time for a held write. Callbacks never run with the wrapper's lock held.
class FaultInjectingStore final : public store::Store {
 public:
  // Wraps and owns `base`.
  explicit FaultInjectingStore(store::StorePtr base)
      : owned_(std::move(base)), base_(owned_.get()) {}
  // Wraps `base`, which must outlive this wrapper.
  explicit FaultInjectingStore(store::Store* base) : base_(base) {}

  FaultInjectingStore(const FaultInjectingStore&) = delete;
  FaultInjectingStore& operator=(const FaultInjectingStore&) = delete;

  // Writes still held at destruction are released to the wrapped store first, so every
  // callback is called exactly once.
  ~FaultInjectingStore() override { ReleaseWrites(); }

  // Fails every write with `status` (not OK) until Heal().
  void FailWrites(absl::Status status) {
    absl::MutexLock lock(&mu_);
    write_error_ = std::move(status);
    writes_to_fail_ = -1;
  }

  // Fails the next `n` writes with `status` (not OK), then lets writes through again.
  void FailNextWrites(int n, absl::Status status) {
    absl::MutexLock lock(&mu_);
    write_error_ = std::move(status);
    writes_to_fail_ = n;
  }

  // Fails every read (ReadValue and so GetValue, ReadEvents, ReadLastSequence, ReadSnapshot,
  // ReadStream) with `status` (not OK) until Heal().
  void FailReads(absl::Status status) {
    absl::MutexLock lock(&mu_);
    read_error_ = std::move(status);
  }

  // Stops failing reads and writes. Held writes stay held.
  void Heal() {
    absl::MutexLock lock(&mu_);
    write_error_ = absl::OkStatus();
    writes_to_fail_ = 0;
    read_error_ = absl::OkStatus();
  }

  // Queues later writes here, unacknowledged and invisible to reads, until ReleaseWrites().
  void HoldWrites() {
    absl::MutexLock lock(&mu_);
    holding_ = true;
  }

  // Stops holding and passes the held writes on, in order (failing them if writes are
  // failing now). Writes made concurrently are ordered after the held ones.
  void ReleaseWrites() {
    {
      absl::MutexLock lock(&mu_);
      holding_ = false;
      if (draining_) return;  // another thread is passing the queue on
      draining_ = true;
    }
    while (true) {
      Held next;
      {
        absl::MutexLock lock(&mu_);
        if (holding_ || held_.empty()) {
          draining_ = false;
          return;
        }
        next = std::move(held_.front());
        held_.pop_front();
      }
      Dispatch(std::move(next.batch), std::move(next.done));
    }
  }

  // Number of writes currently held.
  size_t held_writes() const {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }

  // Waits until at least `n` writes are held; false if `timeout` passed first.
  bool AwaitHeldWrites(size_t n, absl::Duration timeout = absl::Seconds(30)) const {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  // Number of writes failed so far by this wrapper.
  size_t failed_writes() const {
    absl::MutexLock lock(&mu_);
    return failed_writes_;
  }

  absl::StatusOr<store::VersionedValue> ReadValue(std::string_view entity_type,
                                                  std::string_view key) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadValue(entity_type, key);
  }

  absl::StatusOr<std::vector<Event>> ReadEvents(std::string_view entity_type, std::string_view key,
                                                uint64_t from_sequence, size_t limit) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadEvents(entity_type, key, from_sequence, limit);
  }

  absl::StatusOr<uint64_t> ReadLastSequence(std::string_view entity_type,
                                            std::string_view key) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadLastSequence(entity_type, key);
  }

  absl::StatusOr<std::optional<store::Snapshot>> ReadSnapshot(std::string_view entity_type,
                                                              std::string_view key) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadSnapshot(entity_type, key);
  }

  absl::StatusOr<std::vector<store::StreamEvent>> ReadStream(std::string_view entity_type,
                                                             uint64_t from_offset,
                                                             size_t limit) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadStream(entity_type, from_offset, limit);
  }

  absl::StatusOr<std::optional<store::IdempotencyRecord>> ReadIdempotency(
      std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadIdempotency(entity_type, key, idempotency_key);
  }

  absl::StatusOr<bool> HasIdempotencyRecords(std::string_view entity_type,
                                             std::string_view key) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->HasIdempotencyRecords(entity_type, key);
  }

  absl::StatusOr<std::vector<store::TimerRecord>> ReadTimers(std::string_view entity_type,
                                                             std::string_view key) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadTimers(entity_type, key);
  }

  absl::StatusOr<std::vector<store::TimerRecord>> ReadDueTimers(uint32_t partition,
                                                                int64_t before_ms,
                                                                size_t limit) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadDueTimers(partition, before_ms, limit);
  }

  absl::StatusOr<std::vector<store::OutboxRecord>> ReadOutbox(uint32_t partition,
                                                              int64_t before_ms,
                                                              size_t limit) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->ReadOutbox(partition, before_ms, limit);
  }

  absl::StatusOr<size_t> SweepExpired(int64_t now_ms, size_t limit) override {
    if (absl::Status error = ReadError(); !error.ok()) return error;
    return base_->SweepExpired(now_ms, limit);
  }

  void Write(store::WriteBatch batch, store::WriteCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      if (holding_ || draining_) {
        held_.push_back({std::move(batch), std::move(done)});
        return;
      }
    }
    Dispatch(std::move(batch), std::move(done));
  }

  store::StoreStats stats() const override { return base_->stats(); }

  absl::Status Health() const override { return base_->Health(); }

 private:
  struct Held {
    store::WriteBatch batch;
    store::WriteCallback done;
  };

  absl::Status ReadError() const {
    absl::MutexLock lock(&mu_);
    return read_error_;
  }

  void Dispatch(store::WriteBatch batch, store::WriteCallback done) {
    absl::Status error;
    {
      absl::MutexLock lock(&mu_);
      if (writes_to_fail_ != 0 && !write_error_.ok()) {
        error = write_error_;
        if (writes_to_fail_ > 0) --writes_to_fail_;
        ++failed_writes_;
      }
    }
    if (!error.ok()) {
      std::move(done)(std::move(error));
      return;
    }
    base_->Write(std::move(batch), std::move(done));
  }

  store::StorePtr owned_;
  store::Store* const base_;

  mutable absl::Mutex mu_;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  int writes_to_fail_ ABSL_GUARDED_BY(mu_) = 0;  // -1 = all
  size_t failed_writes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status read_error_ ABSL_GUARDED_BY(mu_);
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace massa::testing
