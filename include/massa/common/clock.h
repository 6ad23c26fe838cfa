// File: massa/common/clock.h
//
// Time comes in through a Clock so that tests can move it by hand.
#pragma once

#include <chrono>

namespace massa {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;
};

// The process-wide steady clock. Thread-safe; never destroyed.
Clock& RealClock();

}  // namespace massa
