#include "entity/timers.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "entity/cron.h"
#include "entity/idempotency.h"
#include "massa/internal/v1/records.pb.h"

namespace massa {
namespace {

constexpr size_t kMaxNameBytes = 256;
// Longer than any schedule anyone means; keeps due times far from overflow.
constexpr int64_t kMaxSpanMs = int64_t{100} * 366 * 24 * 3600 * 1000;

}  // namespace

std::string EncodeTimer(const StoredTimer& timer) {
  internal::v1::TimerEntry entry;
  entry.set_owner_service(timer.owner_service);
  entry.set_self(timer.self);
  entry.set_service(timer.service);
  entry.set_method(timer.method);
  entry.set_payload_type(timer.payload.type);
  entry.set_payload(timer.payload.bytes);
  entry.set_interval_ms(timer.interval_ms);
  entry.set_cron(timer.cron);
  entry.set_missed(static_cast<int32_t>(timer.missed));
  entry.set_created_ms(timer.created_ms);
  return entry.SerializeAsString();
}

absl::StatusOr<StoredTimer> DecodeTimer(std::string_view record) {
  internal::v1::TimerEntry entry;
  if (!entry.ParseFromArray(record.data(), static_cast<int>(record.size())) ||
      entry.method().empty()) {
    return absl::InternalError("stored timer record is unreadable");
  }
  StoredTimer out;
  out.owner_service = entry.owner_service();
  out.self = entry.self();
  out.service = entry.service();
  out.method = entry.method();
  out.payload = TypedValue{entry.payload_type(), entry.payload()};
  out.interval_ms = entry.interval_ms();
  out.cron = entry.cron();
  out.missed = entry.missed() == static_cast<int32_t>(MissedTicks::kSkip) ? MissedTicks::kSkip
                                                                           : MissedTicks::kCatchUpOnce;
  out.created_ms = entry.created_ms();
  return out;
}

absl::StatusOr<store::TimerRecord> MakeTimer(const TimerEffect& effect,
                                             std::string_view owner_service, bool owner_is_entity,
                                             std::string_view entity_type, std::string_view key,
                                             uint32_t partition, int64_t now_ms,
                                             const TimerLimits& limits) {
  const std::string who = absl::StrCat("timer '", effect.name, "'");
  const auto invalid = [&who](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", parts...));
  };
  if (effect.name.empty()) return absl::InvalidArgumentError("timer: name is empty");
  if (effect.name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("timer: name is ", effect.name.size(),
                                                   " bytes long; at most ", kMaxNameBytes));
  }
  if (effect.method.empty()) return invalid("method is empty");
  if (effect.delay_ms < 0) return invalid("delay_ms is negative (", effect.delay_ms, ")");
  if (effect.delay_ms > kMaxSpanMs) return invalid("delay_ms ", effect.delay_ms, " is too long");
  if (effect.at_ms < 0) return invalid("at_ms is negative (", effect.at_ms, ")");
  if (effect.at_ms > 0 && effect.delay_ms > 0) return invalid("set delay_ms or at_ms, not both");
  if (effect.interval_ms < 0) {
    return invalid("interval_ms is negative (", effect.interval_ms, ")");
  }
  if (effect.interval_ms > 0 && effect.interval_ms < limits.min_interval.count()) {
    return invalid("interval_ms ", effect.interval_ms, " is under the minimum of ",
                   limits.min_interval.count(), " ms");
  }
  if (effect.interval_ms > kMaxSpanMs) {
    return invalid("interval_ms ", effect.interval_ms, " is too long");
  }
  if (effect.at_ms > now_ms + kMaxSpanMs) return invalid("at_ms is more than 100 years ahead");
  StoredTimer timer;
  timer.owner_service = std::string(owner_service);
  timer.self = effect.service.empty() && owner_is_entity;
  timer.service = effect.service.empty() ? std::string(owner_service) : effect.service;
  timer.method = effect.method;
  timer.payload = effect.payload;
  timer.interval_ms = effect.interval_ms;
  timer.cron = effect.cron;
  timer.missed = effect.missed;
  timer.created_ms = now_ms;
  int64_t due = now_ms;
  if (!effect.cron.empty()) {
    if (effect.interval_ms > 0) return invalid("set interval_ms or cron, not both");
    if (effect.delay_ms > 0 || effect.at_ms > 0) {
      return invalid("cron sets its own times; delay_ms and at_ms must be 0");
    }
    absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(effect.cron);
    if (!cron.ok()) return invalid("cron: ", cron.status().message());
    std::optional<int64_t> next = cron->Next(now_ms);
    if (!next.has_value()) {
      return invalid("cron expression '", effect.cron, "' never matches in the next ten years");
    }
    due = *next;
  } else if (effect.at_ms > 0) {
    due = effect.at_ms;
  } else if (effect.delay_ms > 0) {
    due = now_ms + effect.delay_ms;
  } else if (effect.interval_ms > 0) {
    due = now_ms + effect.interval_ms;
  }
  return store::TimerRecord{std::string(entity_type), std::string(key), effect.name, due,
                            partition, EncodeTimer(timer)};
}

Tick PlanTick(const StoredTimer& timer, int64_t due_ms, int64_t now_ms,
              std::chrono::milliseconds misfire_grace) {
  Tick tick;
  const bool recurring = timer.interval_ms > 0 || !timer.cron.empty();
  if (!recurring) return tick;  // one-shot: fire, then remove
  const int64_t fired_at = std::max(now_ms, due_ms);
  if (timer.interval_ms > 0) {
    const int64_t periods = (fired_at - due_ms) / timer.interval_ms + 1;
    tick.next_due = due_ms + periods * timer.interval_ms;
  } else if (absl::StatusOr<CronSchedule> cron = CronSchedule::Parse(timer.cron); cron.ok()) {
    tick.next_due = cron->Next(fired_at);  // nullopt: the schedule ended; remove the timer
  }
  tick.skip = timer.missed == MissedTicks::kSkip && now_ms - due_ms > misfire_grace.count();
  return tick;
}

std::string TickKey(std::string_view entity_type, std::string_view key, std::string_view name,
                    int64_t due_ms) {
  return idempotency::Derive(entity_type, key, name, absl::StrCat("t", due_ms));
}

}  // namespace massa
