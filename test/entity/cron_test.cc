// Cron schedules: parsing (errors name the field) and the next matching time across minute,
// hour, day, month, year and leap-day boundaries.
#include "entity/cron.h"

#include <chrono>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Unix ms of a UTC time.
int64_t Ms(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
  using namespace std::chrono;
  const sys_days day = year_month_day{year{y}, month{mo}, std::chrono::day{d}};
  return duration_cast<milliseconds>(day.time_since_epoch()).count() +
         ((h * 60 + mi) * 60 + s) * 1000 + ms;
}

int64_t Next(const std::string& expression, int64_t after) {
  absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(expression);
  EXPECT_TRUE(cron.ok()) << cron.status();
  if (!cron.ok()) return -1;
  return cron->Next(after).value_or(-1);
}

TEST(CronTest, EverySecondIsTheNextWholeSecond) {
  EXPECT_EQ(Next("* * * * * *", Ms(2026, 1, 1, 0, 0, 0, 0)), Ms(2026, 1, 1, 0, 0, 1));
  EXPECT_EQ(Next("* * * * * *", Ms(2026, 1, 1, 0, 0, 0, 999)), Ms(2026, 1, 1, 0, 0, 1));
  EXPECT_EQ(Next("* * * * * *", Ms(2026, 12, 31, 23, 59, 59, 500)), Ms(2027, 1, 1));
}

TEST(CronTest, StepsRangesListsAndRollovers) {
  EXPECT_EQ(Next("*/15 * * * * *", Ms(2026, 3, 1, 10, 0, 14)), Ms(2026, 3, 1, 10, 0, 15));
  EXPECT_EQ(Next("*/15 * * * * *", Ms(2026, 3, 1, 10, 0, 45)), Ms(2026, 3, 1, 10, 1, 0));
  EXPECT_EQ(Next("0 30 9-17/4 * * *", Ms(2026, 3, 1, 9, 30)), Ms(2026, 3, 1, 13, 30));
  EXPECT_EQ(Next("0 30 9-17/4 * * *", Ms(2026, 3, 1, 17, 31)), Ms(2026, 3, 2, 9, 30));
  EXPECT_EQ(Next("5,10 0 0 * * *", Ms(2026, 3, 1, 0, 0, 5)), Ms(2026, 3, 1, 0, 0, 10));
  EXPECT_EQ(Next("0 0 0 1 * *", Ms(2026, 1, 31, 12)), Ms(2026, 2, 1));  // month end
  EXPECT_EQ(Next("0 0 0 31 * *", Ms(2026, 2, 1)), Ms(2026, 3, 31));    // no Feb 31st, Apr 31st
  EXPECT_EQ(Next("0 0 12 * * *", Ms(2026, 12, 31, 12)), Ms(2027, 1, 1, 12));  // year end
}

TEST(CronTest, FiveFieldsMeanSecondZero) {
  EXPECT_EQ(Next("*/5 * * * *", Ms(2026, 3, 1, 10, 0, 1)), Ms(2026, 3, 1, 10, 5, 0));
}

TEST(CronTest, LeapDayWaitsForALeapYear) {
  EXPECT_EQ(Next("0 0 0 29 2 *", Ms(2026, 3, 1)), Ms(2028, 2, 29));
  EXPECT_EQ(Next("0 0 0 29 FEB ?", Ms(2096, 3, 1)), Ms(2104, 2, 29));  // 2100 is not leap
}

TEST(CronTest, NamesAndSundayAsSeven) {
  // 2026-03-02 is a Monday.
  EXPECT_EQ(Next("0 0 9 * * MON-FRI", Ms(2026, 2, 27, 10)), Ms(2026, 3, 2, 9));
  EXPECT_EQ(Next("0 0 9 * * sat", Ms(2026, 3, 2)), Ms(2026, 3, 7, 9));
  EXPECT_EQ(Next("0 0 9 * * 7", Ms(2026, 3, 2)), Ms(2026, 3, 8, 9));
  EXPECT_EQ(Next("0 0 9 * * 0", Ms(2026, 3, 2)), Ms(2026, 3, 8, 9));
  EXPECT_EQ(Next("0 0 0 1 jun *", Ms(2026, 3, 2)), Ms(2026, 6, 1));
}

TEST(CronTest, BothDayFieldsRestrictedMatchEither) {
  // The 15th, or any Friday: from Monday 2026-03-02, Friday the 6th comes first.
  EXPECT_EQ(Next("0 0 0 15 * FRI", Ms(2026, 3, 2)), Ms(2026, 3, 6));
  EXPECT_EQ(Next("0 0 0 15 * FRI", Ms(2026, 3, 13, 1)), Ms(2026, 3, 15));
  // Only one restricted: both must hold (every day is a '*' day).
  EXPECT_EQ(Next("0 0 0 * * FRI", Ms(2026, 3, 7)), Ms(2026, 3, 13));
}

TEST(CronTest, Macros) {
  EXPECT_EQ(Next("@daily", Ms(2026, 3, 2, 0, 0, 1)), Ms(2026, 3, 3));
  EXPECT_EQ(Next("@hourly", Ms(2026, 3, 2, 5, 59, 59)), Ms(2026, 3, 2, 6));
  EXPECT_EQ(Next("@weekly", Ms(2026, 3, 2)), Ms(2026, 3, 8));
  EXPECT_EQ(Next("@monthly", Ms(2026, 3, 2)), Ms(2026, 4, 1));
  EXPECT_EQ(Next("@yearly", Ms(2026, 3, 2)), Ms(2027, 1, 1));
}

TEST(CronTest, AScheduleThatNeverMatchesHasNoNext) {
  absl::StatusOr<CronSchedule> cron = CronSchedule::Parse("0 0 0 30 2 *");
  ASSERT_TRUE(cron.ok()) << cron.status();
  EXPECT_EQ(cron->Next(Ms(2026, 1, 1)), std::nullopt);
}

TEST(CronTest, ErrorsNameTheFieldAndTheValue) {
  struct Case {
    const char* expression;
    const char* expected;
  } cases[] = {
      {"* * * *", "has 4 fields"},
      {"60 * * * * *", "second 60 is out of range 0-59"},
      {"* 99 * * * *", "minute 99 is out of range 0-59"},
      {"* * 24 * * *", "hour 24"},
      {"* * * 0 * *", "day-of-month 0 is out of range 1-31"},
      {"* * * * 13 *", "month 13"},
      {"* * * * FOO *", "month 'FOO' is not a value"},
      {"* * * * * 8", "day-of-week 8"},
      {"*/0 * * * * *", "second step '0'"},
      {"* 30-10 * * * *", "minute range '30-10' ends before it starts"},
      {"* 1,,2 * * * *", "minute has an empty item"},
      {"", "has 0 fields"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(c.expression);
    ASSERT_FALSE(cron.ok()) << c.expression;
    EXPECT_EQ(cron.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(cron.status().message()),
                AllOf(HasSubstr(c.expected), HasSubstr("cron expression")))
        << c.expression;
  }
}

}  // namespace
}  // namespace massa
