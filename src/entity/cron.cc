#include "entity/cron.h"

#include <array>
#include <chrono>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace massa {
namespace {

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names for min..min+count-1, or null
  int names_count;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr FieldSpec kFields[] = {
    {"second", 0, 59, nullptr, 0},          {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},            {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, kMonthNames, 12},      {"day-of-week", 0, 7, kDayNames, 7},
};

struct Macro {
  const char* name;
  const char* expansion;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
    {"@hourly", "0 0 * * * *"},
};

// The ten years Next looks ahead (and two leap days more).
constexpr int64_t kSearchDays = 10 * 366;

absl::StatusOr<int> ParseValue(absl::string_view text, const FieldSpec& field,
                               absl::string_view expression) {
  int value = 0;
  if (absl::SimpleAtoi(text, &value)) {
    if (value < field.min || value > field.max) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cron expression '", expression, "': ", field.name, " ", value,
          " is out of range ", field.min, "-", field.max));
    }
    return value;
  }
  const std::string upper = absl::AsciiStrToUpper(std::string(text));
  for (int i = 0; i < field.names_count; ++i) {
    if (upper == field.names[i]) return field.min + i;
  }
  return absl::InvalidArgumentError(absl::StrCat("cron expression '", expression, "': ",
                                                 field.name, " '", text, "' is not a value"));
}

// Sets the values of one field in `bits` (indexed by value); whether it is unrestricted.
absl::StatusOr<bool> ParseField(absl::string_view text, const FieldSpec& field,
                                absl::string_view expression, std::vector<bool>& bits) {
  bool any = false;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::string_view range = item;
    int step = 1;
    const size_t slash = item.find('/');
    if (slash != absl::string_view::npos) {
      range = item.substr(0, slash);
      if (!absl::SimpleAtoi(item.substr(slash + 1), &step) || step < 1 ||
          step > field.max - field.min + 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("cron expression '", expression, "': ", field.name, " step '",
                         item.substr(slash + 1), "' is not a number from 1 to ",
                         field.max - field.min + 1));
      }
    }
    int low = field.min;
    int high = field.max;
    if (range == "*" || range == "?") {
      if (slash == absl::string_view::npos) any = true;
    } else if (range.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("cron expression '", expression, "': ",
                                                     field.name, " has an empty item"));
    } else {
      const size_t dash = range.find('-');
      absl::StatusOr<int> first = ParseValue(range.substr(0, dash), field, expression);
      if (!first.ok()) return first.status();
      low = *first;
      if (dash != absl::string_view::npos) {
        absl::StatusOr<int> last = ParseValue(range.substr(dash + 1), field, expression);
        if (!last.ok()) return last.status();
        high = *last;
        if (high < low) {
          return absl::InvalidArgumentError(absl::StrCat("cron expression '", expression, "': ",
                                                         field.name, " range '", range,
                                                         "' ends before it starts"));
        }
      } else if (slash == absl::string_view::npos) {
        high = low;
      }
    }
    for (int v = low; v <= high; v += step) bits[v] = true;
  }
  return any;
}

template <size_t N>
void CopyBits(const std::vector<bool>& from, int offset, std::bitset<N>& to) {
  for (size_t i = 0; i < N; ++i) to[i] = from[i + offset];
}

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(std::string_view expression_in) {
  // Debian's Abseil has its own string_view.
  const absl::string_view expression(expression_in.data(), expression_in.size());
  std::string text(absl::StripAsciiWhitespace(expression));
  for (const Macro& macro : kMacros) {
    if (absl::AsciiStrToLower(text) == macro.name) text = macro.expansion;
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(text), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() == 5) fields.insert(fields.begin(), absl::string_view("0"));
  if (fields.size() != 6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cron expression '", expression, "' has ", fields.size(),
        " fields; expected 6 (second minute hour day-of-month month day-of-week) or 5"));
  }
  CronSchedule out;
  out.expression_ = std::string(expression_in);
  std::array<std::vector<bool>, 6> bits;
  std::array<bool, 6> any{};
  for (size_t i = 0; i < 6; ++i) {
    bits[i].assign(kFields[i].max + 1, false);
    absl::StatusOr<bool> parsed = ParseField(fields[i], kFields[i], expression, bits[i]);
    if (!parsed.ok()) return parsed.status();
    any[i] = *parsed;
  }
  if (bits[5][7]) bits[5][0] = true;  // 7 = Sunday
  CopyBits(bits[0], 0, out.seconds_);
  CopyBits(bits[1], 0, out.minutes_);
  CopyBits(bits[2], 0, out.hours_);
  CopyBits(bits[3], 0, out.days_of_month_);
  CopyBits(bits[4], 0, out.months_);
  CopyBits(bits[5], 0, out.days_of_week_);
  out.day_of_month_restricted_ = !any[3];
  out.day_of_week_restricted_ = !any[5];
  return out;
}

bool CronSchedule::DayMatches(int64_t days_since_epoch) const {
  using namespace std::chrono;
  const sys_days day{days(days_since_epoch)};
  const year_month_day date(day);
  if (!months_[static_cast<unsigned>(date.month())]) return false;
  const bool dom = days_of_month_[static_cast<unsigned>(date.day())];
  const bool dow = days_of_week_[weekday(day).c_encoding()];
  if (day_of_month_restricted_ && day_of_week_restricted_) return dom || dow;
  return dom && dow;  // an unrestricted field matches every day
}

std::optional<int64_t> CronSchedule::Next(int64_t after_ms) const {
  const auto floor_div = [](int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); };
  const int64_t start = floor_div(after_ms, 1000) + 1;  // the first whole second after
  const int64_t first_day = floor_div(start, 86400);
  const int start_second_of_day = static_cast<int>(start - first_day * 86400);
  for (int64_t day = first_day; day < first_day + kSearchDays; ++day) {
    if (!DayMatches(day)) continue;
    const int from = day == first_day ? start_second_of_day : 0;
    const int h0 = from / 3600;
    const int m0 = from / 60 % 60;
    const int s0 = from % 60;
    for (int h = h0; h < 24; ++h) {
      if (!hours_[h]) continue;
      for (int m = h == h0 ? m0 : 0; m < 60; ++m) {
        if (!minutes_[m]) continue;
        for (int s = (h == h0 && m == m0) ? s0 : 0; s < 60; ++s) {
          if (seconds_[s]) return (day * 86400 + h * 3600 + m * 60 + s) * 1000;
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace massa
