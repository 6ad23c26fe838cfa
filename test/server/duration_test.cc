// ParseDuration / FormatDuration (src/common/duration.h), as used for duration options.

#include "common/duration.h"

#include <chrono>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(ParseDurationTest, AcceptedForms) {
  struct Case {
    const char* text;
    int64_t ms;
  };
  const Case cases[] = {
      {"0", 0},           {"42", 42},          {"250ms", 250},         {"0ms", 0},
      {"1s", 1000},       {"30s", 30'000},     {"5m", 300'000},        {"1h", 3'600'000},
      {"90s", 90'000},    {"007s", 7000},      {"1099511627776ms", int64_t{1} << 40},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<milliseconds> parsed = ParseDuration(c.text);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->count(), c.ms);
  }
}

TEST(ParseDurationTest, RejectedForms) {
  const char* cases[] = {
      "",      "ms",   "s",     "-1s",   "+1s",  "1.5s", "1 s",  " 1s",
      "1s ",   "10d",  "1S",    "1sec",  "1ms5", "abc",  "1h1m",
      "1099511627777ms",       // beyond the sanity bound
      "99999999999999999999",  // does not fit in 64 bits
  };
  for (const char* text : cases) {
    SCOPED_TRACE(text);
    absl::StatusOr<milliseconds> parsed = ParseDuration(text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()),
                ::testing::AllOf(HasSubstr("'" + std::string(text) + "'"), HasSubstr("250ms")));
  }
}

TEST(ParseFineDurationTest, AcceptsMicroseconds) {
  struct Case {
    const char* text;
    int64_t us;
  };
  const Case cases[] = {{"100us", 100}, {"0us", 0}, {"1ms", 1000}, {"5", 5000}, {"2s", 2'000'000}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<std::chrono::microseconds> parsed = ParseFineDuration(c.text);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->count(), c.us);
  }
  for (const char* text : {"us", "1.5us", "10 us", "1099511627776h"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<std::chrono::microseconds> parsed = ParseFineDuration(text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("100us"));
  }
  // ParseDuration keeps milliseconds only.
  EXPECT_EQ(ParseDuration("100us").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FormatDurationTest, ShortestExactForm) {
  struct Case {
    int64_t ms;
    const char* text;
  };
  const Case cases[] = {
      {0, "0ms"},         {1, "1ms"},         {250, "250ms"},       {999, "999ms"},
      {1000, "1s"},       {1500, "1500ms"},   {30'000, "30s"},      {60'000, "1m"},
      {90'000, "90s"},    {300'000, "5m"},    {3'600'000, "1h"},    {5'400'000, "90m"},
      {86'400'000, "24h"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ms);
    EXPECT_EQ(FormatDuration(milliseconds(c.ms)), c.text);
  }
}

TEST(FormatDurationTest, ParsesBack) {
  for (int64_t ms : {0, 1, 999, 1000, 1001, 59'999, 60'000, 61'000, 3'600'000, 3'600'001,
                     7'200'000}) {
    SCOPED_TRACE(ms);
    absl::StatusOr<milliseconds> parsed = ParseDuration(FormatDuration(milliseconds(ms)));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->count(), ms);
  }
}

}  // namespace
}  // namespace massa
