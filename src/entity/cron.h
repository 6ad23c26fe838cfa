// Cron schedules for recurring timers, in UTC, with seconds.
//
// An expression has six fields, "second minute hour day-of-month month day-of-week", or the
// usual five (the second is then 0). Each field is `*` (or `?`), a value, a range `a-b`, a step
// `*/n`, `a/n` or `a-b/n`, or a comma-separated list of these. Months and days of the week may
// be named (JAN-DEC, SUN-SAT, any case); day-of-week 0 and 7 are both Sunday. As in Vixie cron,
// when both day fields are restricted a day matching either one matches. The macros @yearly
// (@annually), @monthly, @weekly, @daily (@midnight) and @hourly stand for their schedules.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace massa {

class CronSchedule {
 public:
  // INVALID_ARGUMENT naming the field and the value at fault.
  [[nodiscard]] static absl::StatusOr<CronSchedule> Parse(std::string_view expression);

  // The first matching time strictly after `after_ms` (Unix ms), a whole second; nullopt when
  // nothing matches in the next ten years (e.g. February 30th).
  std::optional<int64_t> Next(int64_t after_ms) const;

  const std::string& expression() const { return expression_; }

 private:
  CronSchedule() = default;
  bool DayMatches(int64_t days_since_epoch) const;

  std::string expression_;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0 = Sunday
  bool day_of_month_restricted_ = false;
  bool day_of_week_restricted_ = false;
};

}  // namespace massa
