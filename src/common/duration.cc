#include "common/duration.h"

#include <charconv>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace massa {

namespace {

// The duration in microseconds; `fine` accepts the "us" unit.
absl::StatusOr<uint64_t> ParseMicros(std::string_view text, bool fine) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        "'" + std::string(text) + "' is not a duration (use e.g. " + (fine ? "100us, " : "") +
        "250ms, 30s, 5m, 1h)");
  };
  uint64_t number = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [rest, error] = std::from_chars(begin, end, number);
  if (error != std::errc() || rest == begin) return invalid();
  std::string_view unit(rest, end - rest);
  uint64_t scale = 0;
  if (fine && unit == "us") {
    scale = 1;
  } else if (unit.empty() || unit == "ms") {
    scale = 1000;
  } else if (unit == "s") {
    scale = 1'000'000;
  } else if (unit == "m") {
    scale = 60'000'000;
  } else if (unit == "h") {
    scale = 3'600'000'000;
  } else {
    return invalid();
  }
  // Far beyond any sensible setting (and keeps number * scale in 64 bits).
  if (number > UINT64_C(1) << 40 || number > UINT64_MAX / scale) return invalid();
  return number * scale;
}

}  // namespace

absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  absl::StatusOr<uint64_t> micros = ParseMicros(text, /*fine=*/false);
  if (!micros.ok()) return micros.status();
  return std::chrono::milliseconds(*micros / 1000);
}

absl::StatusOr<std::chrono::microseconds> ParseFineDuration(std::string_view text) {
  absl::StatusOr<uint64_t> micros = ParseMicros(text, /*fine=*/true);
  if (!micros.ok()) return micros.status();
  return std::chrono::microseconds(*micros);
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return absl::StrCat(ms / 3'600'000, "h");
  if (ms != 0 && ms % 60'000 == 0) return absl::StrCat(ms / 60'000, "m");
  if (ms != 0 && ms % 1000 == 0) return absl::StrCat(ms / 1000, "s");
  return absl::StrCat(ms, "ms");
}

}  // namespace massa
