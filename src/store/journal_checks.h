// File: store/journal_checks.h
//
// The checks on a JournalAppend that every backend makes, and the errors they report, so
// that all backends reject the same appends with the same codes and messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "massa/store/store.h"

namespace massa::store::internal {

// "type/key" for error messages, with unprintable bytes C-escaped.
std::string EntityName(std::string_view entity_type, std::string_view key);

// `text` C-escaped, for error messages.
std::string EscapedName(std::string_view text);

// The checks that need no stored state: the events are numbered expected_sequence + 1,
// + 2, ..., and the snapshot does not go past the last of them. INVALID_ARGUMENT otherwise.
[[nodiscard]] absl::Status CheckAppendShape(const JournalAppend& append);

// The ABORTED error for an append to (entity_type, key) that expected the journal's last
// sequence to be `expected` where it is `actual`.
[[nodiscard]] absl::Status StaleExpectation(std::string_view entity_type, std::string_view key,
                                            uint64_t expected, uint64_t actual);

}  // namespace massa::store::internal
