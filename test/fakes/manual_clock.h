// A clock that moves only when told to: steady and wall time advance together. For tests of
// timeouts, timers, TTL and retention.
#pragma once

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "massa/common/clock.h"

namespace massa::testing {

// Thread-safe.
class ManualClock final : public Clock {
 public:
  // Starts at an arbitrary steady time and at wall time `wall_start`.
  explicit ManualClock(std::chrono::system_clock::time_point wall_start =
                           std::chrono::system_clock::time_point(std::chrono::hours(24 * 20000)))
      : wall_(wall_start) {}

  std::chrono::steady_clock::time_point Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  std::chrono::system_clock::time_point WallNow() const override {
    absl::MutexLock lock(&mu_);
    return wall_;
  }

  void Advance(std::chrono::milliseconds by) {
    absl::MutexLock lock(&mu_);
    now_ += by;
    wall_ += by;
  }

  // Moves wall time only (as a clock adjustment or a stop of the machine would).
  void SetWall(std::chrono::system_clock::time_point wall) {
    absl::MutexLock lock(&mu_);
    wall_ = wall;
  }

 private:
  mutable absl::Mutex mu_;
  std::chrono::steady_clock::time_point now_ ABSL_GUARDED_BY(mu_) =
      std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  std::chrono::system_clock::time_point wall_ ABSL_GUARDED_BY(mu_);
};

}  // namespace massa::testing
