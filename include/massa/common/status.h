// File: massa/common/status.h
//
// Error handling helpers on top of absl::Status. Debian 12's Abseil (20220623) has no
// status_macros.h, so Massa carries its own RETURN_IF_ERROR / ASSIGN_OR_RETURN.
//
// Example:
//   absl::StatusOr<Config> Load(std::string_view path) {
//     MASSA_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     MASSA_RETURN_IF_ERROR(Validate(text));
//     return Parse(text);
//   }
#pragma once

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MASSA_INTERNAL_CONCAT2(a, b) a##b
#define MASSA_INTERNAL_CONCAT(a, b) MASSA_INTERNAL_CONCAT2(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define MASSA_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    if (auto _massa_status = (expr); !_massa_status.ok()) { \
      return _massa_status;                         \
    }                                               \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, else moves the value
// into `lhs` (a declaration such as `auto x` or an existing variable).
#define MASSA_ASSIGN_OR_RETURN(lhs, rexpr) \
  MASSA_INTERNAL_ASSIGN_OR_RETURN(MASSA_INTERNAL_CONCAT(_massa_statusor_, __LINE__), lhs, rexpr)

#define MASSA_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                    \
  if (!tmp.ok()) return std::move(tmp).status();         \
  lhs = std::move(tmp).value()

// Crashes with a message when an invariant does not hold. For "impossible" states only;
// input from the network, disk, user function or config is handled with a Status.
#define MASSA_CHECK(cond)                                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: MASSA_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                \
    }                                                                              \
  } while (false)
