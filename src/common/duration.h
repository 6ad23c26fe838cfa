// Parsing and printing of durations in configuration: "250ms", "30s", "5m", "1h", or a plain
// number of milliseconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace massa {

// Errors: INVALID_ARGUMENT with a message that shows the accepted forms.
[[nodiscard]] absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

// As ParseDuration, with microseconds too ("100us") and microsecond precision; for settings
// below a millisecond. A plain number is still milliseconds.
[[nodiscard]] absl::StatusOr<std::chrono::microseconds> ParseFineDuration(std::string_view text);

// "30s", "250ms", "5m": the shortest exact form.
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace massa
