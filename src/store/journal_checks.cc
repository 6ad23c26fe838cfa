#include "store/journal_checks.h"

#include <cstddef>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace massa::store::internal {

std::string EscapedName(std::string_view text) {
  return absl::CEscape(absl::string_view(text.data(), text.size()));
}

std::string EntityName(std::string_view entity_type, std::string_view key) {
  return absl::StrCat(EscapedName(entity_type), "/", EscapedName(key));
}

absl::Status CheckAppendShape(const JournalAppend& append) {
  if (append.events.size() > UINT64_MAX - append.expected_sequence) {
    return absl::InvalidArgumentError(absl::StrCat("store: append to ",
                                                   EntityName(append.entity_type, append.key),
                                                   ": sequence numbers past 2^64 - 1"));
  }
  for (size_t i = 0; i < append.events.size(); ++i) {
    const uint64_t want = append.expected_sequence + 1 + i;
    if (append.events[i].sequence != want) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: append to ", EntityName(append.entity_type, append.key), ": event #",
                       i, " has sequence ", append.events[i].sequence, ", expected ", want,
                       " (expected_sequence ", append.expected_sequence, " + ", i + 1, ")"));
    }
  }
  const uint64_t last = append.expected_sequence + append.events.size();
  if (append.snapshot.has_value() && append.snapshot->sequence > last) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: append to ", EntityName(append.entity_type, append.key),
                     ": the snapshot at sequence ", append.snapshot->sequence,
                     " is past the journal's last sequence ", last, " after the append"));
  }
  return absl::OkStatus();
}

absl::Status StaleExpectation(std::string_view entity_type, std::string_view key, uint64_t expected,
                              uint64_t actual) {
  return absl::AbortedError(absl::StrCat("store: append to ", EntityName(entity_type, key),
                                         " expected last sequence ", expected,
                                         ", but the journal's last sequence is ", actual));
}

absl::Status StaleVersion(std::string_view entity_type, std::string_view key, uint64_t expected,
                          uint64_t actual) {
  return absl::AbortedError(absl::StrCat("store: write of ", EntityName(entity_type, key),
                                         " expected value version ", expected,
                                         ", but the value's version is ", actual));
}

absl::Status StaleTimer(std::string_view entity_type, std::string_view key, std::string_view name,
                        int64_t expected, int64_t actual) {
  auto due = [](int64_t ms) {
    return ms == 0 ? std::string("no such timer") : absl::StrCat("due at ", ms);
  };
  return absl::AbortedError(absl::StrCat("store: change of timer '", EscapedName(name), "' of ",
                                         EntityName(entity_type, key), " expected ",
                                         due(expected), ", but it is ", due(actual)));
}

absl::Status Fenced(std::string_view entity_type, std::string_view key, uint64_t fence,
                    uint64_t token) {
  return absl::FailedPreconditionError(absl::StrCat(
      "store: write of ", EntityName(entity_type, key), " fenced: the batch's fence ", fence,
      " is lower than the entity's fence ", token, " (another owner has written it)"));
}

}  // namespace massa::store::internal
