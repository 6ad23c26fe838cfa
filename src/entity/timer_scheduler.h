// Fires the timers that are due. Timers live in the store with a due-time index per partition
// (store.h, TimerRecord); the scheduler holds only the next window of them in memory (those
// due before `horizon`, at most `window` of them) and reads the next window when this one runs
// low, so a million scheduled timers cost store space, not memory.
//
// Firing a tick:
// - a timer on its own entity (StoredTimer::self) becomes a command to that entity, addressed
//   by key, carrying Command::timer: the entity checks that the timer is still due at that time
//   (not cancelled, replaced or fired meanwhile) and moves or removes it in the same write as
//   the command's state change, so each tick changes the state exactly once;
// - any other timer is delivered like an outbox record, under a key derived from the timer and
//   its due time (idempotency.h), then moved or removed with a write conditional on that due
//   time.
// A tick's command carries the metadata `massa-timer` (the timer's name) and `massa-timer-due`
// (the Unix ms it was due at), so that a handler knows which tick it handles.
// A tick whose delivery fails for a reason that may pass (the function unreachable, a timeout)
// is retried with backoff, in memory (the store still has it due, so a restart fires it too).
// A handler's own failure counts as handled: the timer moves on.
//
// Writes of timers by commands reach the window through OnWritten, once durable; a refill that
// raced with them is corrected by replaying the notifications that arrived during its read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "entity/timers.h"
#include "massa/common/clock.h"
#include "massa/entity/dispatcher.h"
#include "massa/store/store.h"

namespace massa {

class Histogram;

struct TimerSchedulerOptions {
  std::chrono::milliseconds lookahead{2000};  // the window: timers due before now + this
  size_t window = 20'000;                     // at most this many held in memory
  size_t max_in_flight = 2048;                // ticks waiting for their result
  // How often the thread looks for due timers when nothing wakes it sooner; 0 = no thread
  // (tests call FireDue).
  std::chrono::milliseconds tick{250};
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{60'000};
  std::chrono::milliseconds delivery_timeout{30'000};
  std::chrono::milliseconds misfire_grace{1000};
  uint64_t fence = 0;
  // In a cluster: the token of a write of entity (type, key)'s timers on this node (0 when
  // another node owns the entity, whose scheduler then moves the timer on); unset = `fence`.
  std::function<uint64_t(std::string_view entity_type, std::string_view key)> fence_of;
  // The partition of the timers this scheduler fires; in a cluster, `partitions` instead: the
  // partitions this node owns now (sorted). It is asked at every round: the timers of a
  // partition gained are read at once, those of a partition lost are dropped from memory (its
  // new owner fires them).
  uint32_t partition = 0;
  std::function<std::vector<uint32_t>()> partitions;
};

struct TimerSchedulerStats {
  uint64_t fired = 0;     // ticks delivered (or skipped) and moved on
  uint64_t skipped = 0;   // missed ticks skipped under MissedTicks::kSkip
  uint64_t retries = 0;   // deliveries that failed and wait for another attempt
  size_t in_window = 0;   // timers held in memory
  size_t in_flight = 0;
};

// Thread-safe.
class TimerScheduler {
 public:
  TimerScheduler(TimerSchedulerOptions options, store::Store& store, Clock& clock);
  ~TimerScheduler();  // Stop(), then waits for the ticks in flight
  TimerScheduler(const TimerScheduler&) = delete;
  TimerScheduler& operator=(const TimerScheduler&) = delete;

  // Must be called before Start.
  void SetDispatcher(Dispatcher* dispatcher) { dispatcher_ = dispatcher; }
  // Where tick lateness is observed (seconds from the due time until the tick's command has
  // run and its write is durable; ticks that are skipped or retried later are not); may be null.
  void SetLatenessHistogram(Histogram* histogram) { lateness_ = histogram; }
  void Start();
  // No new ticks from now on; the thread stops. Ticks in flight go on.
  void Stop();
  bool WaitIdle(std::chrono::milliseconds timeout);

  // Timer changes a command made durable.
  void OnWritten(const std::vector<store::TimerChange>& changes);

  // Reads the next window if this one runs low, then fires every timer due now; returns how
  // many ticks it started.
  size_t FireDue();

  TimerSchedulerStats stats() const;
  // The timers waiting in the store for the partitions this scheduler fires, soonest first
  // (the admin endpoint).
  absl::StatusOr<std::vector<store::TimerRecord>> List(size_t limit) const;

 private:
  using Id = std::tuple<std::string, std::string, std::string>;  // (type, key, name)
  struct Held {
    int64_t due_ms = 0;     // its due time in the store
    int64_t fire_ms = 0;    // when to fire it: due_ms, or later after a failed attempt
    uint32_t attempts = 0;  // failed attempts of this tick
    store::TimerRecord timer;
  };

  void Loop();
  std::vector<uint32_t> Partitions() const;
  // Follows a change of the partitions fired here: drops the timers of those lost, and makes
  // the next round read again if one was gained.
  void FollowPartitions(std::vector<uint32_t> partitions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Refill(const std::vector<uint32_t>& partitions) ABSL_LOCKS_EXCLUDED(mu_);
  void Hold(store::TimerRecord timer, int64_t fire_ms, uint32_t attempts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drop(const Id& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Apply(const store::TimerChange& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Fire(Held held);
  void Retry(Held held, const absl::Status& why);
  void ObserveLateness(int64_t due_ms);
  void Done(const Id& id, std::optional<store::TimerRecord> next);

  const TimerSchedulerOptions options_;
  store::Store& store_;
  Clock& clock_;
  Dispatcher* dispatcher_ = nullptr;
  Histogram* lateness_ = nullptr;

  mutable absl::Mutex mu_;
  std::map<std::pair<int64_t, Id>, Held> by_time_ ABSL_GUARDED_BY(mu_);  // by fire time
  absl::flat_hash_map<Id, int64_t> fire_time_ ABSL_GUARDED_BY(mu_);     // id -> key in by_time_
  absl::flat_hash_set<Id> in_flight_ ABSL_GUARDED_BY(mu_);
  // Everything due before this is in memory (or in flight, or fired).
  int64_t horizon_ms_ ABSL_GUARDED_BY(mu_) = INT64_MIN;
  std::vector<uint32_t> partitions_ ABSL_GUARDED_BY(mu_);  // fired here, as of the last round
  bool refilling_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<store::TimerChange> during_refill_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> fired_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> retries_{0};
  std::thread thread_;
};

}  // namespace massa
