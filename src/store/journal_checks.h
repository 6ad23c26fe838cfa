// File: store/journal_checks.h
//
// The checks on a WriteBatch that every backend makes (the shape of its appends, expected
// sequences and versions, fences), and the errors they report, so that all backends reject
// the same batches with the same codes and messages.
//
// Order of the checks, the same on every backend, so that a batch with several kinds of error
// fails the same way everywhere: malformed appends (INVALID_ARGUMENT), then fences
// (FAILED_PRECONDITION, for every entity the batch writes: its mutations', appends',
// idempotency records' and timers'), then the mutations' expected versions, then the appends'
// expected sequences, then the timer changes' expected due times (all ABORTED), each in batch
// order.
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

// The ABORTED error for a mutation of (entity_type, key) that expected the value's version to
// be `expected` where it is `actual`.
[[nodiscard]] absl::Status StaleVersion(std::string_view entity_type, std::string_view key,
                                        uint64_t expected, uint64_t actual);

// The ABORTED error for a change of timer `name` of (entity_type, key) that expected its due
// time to be `expected` (0: no such timer) where it is `actual` (0: there is none).
[[nodiscard]] absl::Status StaleTimer(std::string_view entity_type, std::string_view key,
                                      std::string_view name, int64_t expected, int64_t actual);

// The FAILED_PRECONDITION error for a batch with fencing token `fence` that writes
// (entity_type, key), which was written with the higher token `token`. Its message contains
// "fenced", the entity's name and both tokens.
[[nodiscard]] absl::Status Fenced(std::string_view entity_type, std::string_view key,
                                  uint64_t fence, uint64_t token);

}  // namespace massa::store::internal
