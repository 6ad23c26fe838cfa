// Timers: checking what a handler asked for, the record Massa stores, and what firing one means.
//
// A timer is stored once per (entity type, entity key, name) with its due time (store.h,
// TimerRecord). Its record says what to call and how it recurs. A recurring timer's ticks stay
// on their grid: an interval timer due at D fires next at the first D + k * interval after the
// moment it fired (so a late tick does not shift the later ones), a cron timer at the
// schedule's first time after it. A tick that fires later than the misfire grace is a missed
// tick: under MissedTicks::kCatchUpOnce it fires once (however many were missed), under kSkip
// it does not fire and the timer moves to its next time. A one-shot timer always fires.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "massa/entity/command.h"
#include "massa/store/store.h"

namespace massa {

struct TimerLimits {
  std::chrono::milliseconds min_interval{1000};  // shortest interval_ms allowed
  std::chrono::milliseconds misfire_grace{1000};
};

// A timer's stored record, decoded.
struct StoredTimer {
  std::string owner_service;  // the service whose entity (or action) set it
  bool self = false;          // fires on the owning entity, in its mailbox
  std::string service;        // the target
  std::string method;
  TypedValue payload;
  int64_t interval_ms = 0;
  std::string cron;
  MissedTicks missed = MissedTicks::kCatchUpOnce;
  int64_t created_ms = 0;
};

std::string EncodeTimer(const StoredTimer& timer);
// INTERNAL for a record that does not decode.
[[nodiscard]] absl::StatusOr<StoredTimer> DecodeTimer(std::string_view record);

// Checks `effect` (not a cancel), set by a command of `owner_service` on entity
// (entity_type, key) at `now_ms`, and returns the timer to store. `owner_is_entity` is false
// for actions (whose timers live under (service, "") and never join an entity's write).
// INVALID_ARGUMENT naming the timer and the field at fault.
[[nodiscard]] absl::StatusOr<store::TimerRecord> MakeTimer(
    const TimerEffect& effect, std::string_view owner_service, bool owner_is_entity,
    std::string_view entity_type, std::string_view key, uint32_t partition, int64_t now_ms,
    const TimerLimits& limits);

// What firing `timer`, due at `due_ms`, at `now_ms` means.
struct Tick {
  bool skip = false;                // a missed tick under kSkip: do not call, only advance
  std::optional<int64_t> next_due;  // when it fires next; nullopt: remove it
};
Tick PlanTick(const StoredTimer& timer, int64_t due_ms, int64_t now_ms,
              std::chrono::milliseconds misfire_grace);

// The key a tick is delivered under, so that its target applies it once.
std::string TickKey(std::string_view entity_type, std::string_view key, std::string_view name,
                    int64_t due_ms);

}  // namespace massa
