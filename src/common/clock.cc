#include "massa/common/clock.h"

namespace massa {
namespace {

class SystemClocks final : public Clock {
 public:
  std::chrono::steady_clock::time_point Now() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point WallNow() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace

Clock& RealClock() {
  static SystemClocks* clock = new SystemClocks();
  return *clock;
}

}  // namespace massa
