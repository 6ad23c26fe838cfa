// File: massa/common/clock.h
//
// Time comes in through a Clock so that tests can move it by hand: steady time for deadlines,
// timeouts and intervals, wall time for what is stored (event timestamps, timer due times,
// expiry of state and of idempotency records). Every read of time in the runtime goes through
// one Clock; a manual clock (test/fakes/manual_clock.h) moves both together.
#pragma once

#include <chrono>
#include <cstdint>

namespace massa {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for durations and deadlines.
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  // Wall time, for what is stored and compared across restarts.
  virtual std::chrono::system_clock::time_point WallNow() const = 0;

  // WallNow() in Unix milliseconds.
  int64_t WallMillis() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(WallNow().time_since_epoch())
        .count();
  }
};

// The process-wide real clock. Thread-safe; never destroyed.
Clock& RealClock();

}  // namespace massa
