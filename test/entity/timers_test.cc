// Timer specs: what a handler may ask for (each mistake an INVALID_ARGUMENT naming the field),
// the first due time, and what firing a tick means (grid without drift, missed ticks).
#include "entity/timers.h"

#include <chrono>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;

constexpr int64_t kNow = 1'800'000'000'000;  // 2027-01-15T08:00:00Z

TimerEffect Effect(std::string name = "t") {
  TimerEffect effect;
  effect.name = std::move(name);
  effect.method = "Tick";
  effect.payload = TypedValue{"massa.test.Ping", "p"};
  return effect;
}

absl::StatusOr<store::TimerRecord> Make(const TimerEffect& effect, bool owner_is_entity = true) {
  return MakeTimer(effect, "massa.test.Counter", owner_is_entity, "counter", "c1",
                   /*partition=*/0, kNow, TimerLimits{});
}

std::string ErrorOf(const TimerEffect& effect) {
  absl::StatusOr<store::TimerRecord> timer = Make(effect);
  EXPECT_FALSE(timer.ok());
  if (timer.ok()) return "";
  EXPECT_EQ(timer.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(timer.status().message());
}

TEST(TimersTest, FirstDueTimes) {
  TimerEffect once = Effect();
  EXPECT_EQ(Make(once)->due_ms, kNow) << "no delay: at once";
  once.delay_ms = 900'000;
  EXPECT_EQ(Make(once)->due_ms, kNow + 900'000);
  TimerEffect at = Effect();
  at.at_ms = kNow + 5;
  EXPECT_EQ(Make(at)->due_ms, kNow + 5);
  at.at_ms = 1;  // in the past: due at once
  EXPECT_EQ(Make(at)->due_ms, 1);
  TimerEffect every = Effect();
  every.interval_ms = 60'000;
  EXPECT_EQ(Make(every)->due_ms, kNow + 60'000) << "an interval starts one interval away";
  every.delay_ms = 10;
  EXPECT_EQ(Make(every)->due_ms, kNow + 10);
  TimerEffect cron = Effect();
  cron.cron = "0 0 12 * * *";
  EXPECT_EQ(Make(cron)->due_ms, kNow + 4 * 3600 * 1000);
}

TEST(TimersTest, TheRecordNamesTargetAndRecurrence) {
  TimerEffect effect = Effect("deadline");
  effect.interval_ms = 5000;
  effect.missed = MissedTicks::kSkip;
  absl::StatusOr<store::TimerRecord> record = Make(effect);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->entity_type, "counter");
  EXPECT_EQ(record->key, "c1");
  EXPECT_EQ(record->name, "deadline");
  absl::StatusOr<StoredTimer> timer = DecodeTimer(record->record);
  ASSERT_TRUE(timer.ok());
  EXPECT_TRUE(timer->self) << "no service: this entity";
  EXPECT_EQ(timer->service, "massa.test.Counter");
  EXPECT_EQ(timer->method, "Tick");
  EXPECT_EQ(timer->payload, (TypedValue{"massa.test.Ping", "p"}));
  EXPECT_EQ(timer->interval_ms, 5000);
  EXPECT_EQ(timer->missed, MissedTicks::kSkip);
  // Another service's method, or an action's timer: not on this entity.
  effect.service = "massa.test.Sink";
  EXPECT_FALSE(DecodeTimer(Make(effect)->record)->self);
  effect.service.clear();
  EXPECT_FALSE(DecodeTimer(Make(effect, /*owner_is_entity=*/false)->record)->self);
  EXPECT_EQ(DecodeTimer("not a record").status().code(), absl::StatusCode::kInternal);
}

TEST(TimersTest, BadSpecsAreInvalidArgumentNamingTheField) {
  TimerEffect e = Effect();
  e.delay_ms = -5;
  EXPECT_THAT(ErrorOf(e), HasSubstr("timer 't': delay_ms is negative (-5)"));
  e = Effect();
  e.interval_ms = 999;
  EXPECT_THAT(ErrorOf(e), HasSubstr("interval_ms 999 is under the minimum of 1000 ms"));
  e = Effect();
  e.interval_ms = -1;
  EXPECT_THAT(ErrorOf(e), HasSubstr("interval_ms is negative"));
  e = Effect();
  e.cron = "61 * * * * *";
  EXPECT_THAT(ErrorOf(e), HasSubstr("timer 't': cron: cron expression '61 * * * * *': second 61"));
  e = Effect();
  e.cron = "0 0 0 30 2 *";
  EXPECT_THAT(ErrorOf(e), HasSubstr("never matches"));
  e = Effect();
  e.cron = "@daily";
  e.interval_ms = 5000;
  EXPECT_THAT(ErrorOf(e), HasSubstr("set interval_ms or cron, not both"));
  e = Effect();
  e.cron = "@daily";
  e.delay_ms = 5;
  EXPECT_THAT(ErrorOf(e), HasSubstr("cron sets its own times"));
  e = Effect();
  e.at_ms = kNow;
  e.delay_ms = 5;
  EXPECT_THAT(ErrorOf(e), HasSubstr("set delay_ms or at_ms, not both"));
  e = Effect();
  e.at_ms = -1;
  EXPECT_THAT(ErrorOf(e), HasSubstr("at_ms is negative"));
  e = Effect("");
  EXPECT_THAT(ErrorOf(e), HasSubstr("timer: name is empty"));
  e = Effect(std::string(300, 'n'));
  EXPECT_THAT(ErrorOf(e), HasSubstr("name is 300 bytes long"));
  e = Effect();
  e.method.clear();
  EXPECT_THAT(ErrorOf(e), HasSubstr("method is empty"));
  e = Effect();
  e.delay_ms = int64_t{1} << 62;
  EXPECT_THAT(ErrorOf(e), HasSubstr("delay_ms"));
}

StoredTimer Interval(int64_t interval_ms, MissedTicks missed = MissedTicks::kCatchUpOnce) {
  StoredTimer timer;
  timer.method = "Tick";
  timer.interval_ms = interval_ms;
  timer.missed = missed;
  return timer;
}

TEST(TimersTest, IntervalTicksStayOnTheirGrid) {
  const milliseconds grace(1000);
  // On time, or a little late: the next tick is one interval after the due time, not after
  // the firing.
  EXPECT_EQ(PlanTick(Interval(10'000), kNow, kNow, grace).next_due, kNow + 10'000);
  EXPECT_EQ(PlanTick(Interval(10'000), kNow, kNow + 300, grace).next_due, kNow + 10'000);
  // Fired early (a clock step backwards): still the grid.
  EXPECT_EQ(PlanTick(Interval(10'000), kNow, kNow - 50, grace).next_due, kNow + 10'000);
}

TEST(TimersTest, MissedTicksFireOnceOrAreSkipped) {
  const milliseconds grace(1000);
  // Down for 55 s with a 10 s interval: five ticks missed.
  Tick catch_up = PlanTick(Interval(10'000), kNow, kNow + 55'000, grace);
  EXPECT_FALSE(catch_up.skip) << "catch up: fire once";
  EXPECT_EQ(catch_up.next_due, kNow + 60'000) << "then the next tick on the grid";
  Tick skip = PlanTick(Interval(10'000, MissedTicks::kSkip), kNow, kNow + 55'000, grace);
  EXPECT_TRUE(skip.skip);
  EXPECT_EQ(skip.next_due, kNow + 60'000);
  // Within the grace a tick is not missed, even under skip.
  EXPECT_FALSE(PlanTick(Interval(10'000, MissedTicks::kSkip), kNow, kNow + 900, grace).skip);
}

TEST(TimersTest, OneShotTimersFireOnceAndAreRemoved) {
  StoredTimer once;
  once.method = "Tick";
  once.missed = MissedTicks::kSkip;
  Tick tick = PlanTick(once, kNow, kNow + 3'600'000, milliseconds(1000));
  EXPECT_FALSE(tick.skip) << "a one-shot timer always fires, however late";
  EXPECT_EQ(tick.next_due, std::nullopt);
}

TEST(TimersTest, CronTicksFollowTheSchedule) {
  StoredTimer cron;
  cron.method = "Tick";
  cron.cron = "0 0 * * * *";  // hourly
  const int64_t due = kNow;   // 08:00
  EXPECT_EQ(PlanTick(cron, due, due + 20, milliseconds(1000)).next_due, due + 3'600'000);
  // Down from 08:00 to 10:30: one catch-up tick, next at 11:00.
  Tick late = PlanTick(cron, due, due + 9'000'000, milliseconds(1000));
  EXPECT_FALSE(late.skip);
  EXPECT_EQ(late.next_due, due + 3 * 3'600'000);
}

TEST(TimersTest, TickKeysNameTheTimerAndItsDueTime) {
  const std::string a = TickKey("t", "k", "n", 1000);
  EXPECT_EQ(a, TickKey("t", "k", "n", 1000));
  EXPECT_NE(a, TickKey("t", "k", "n", 2000));
  EXPECT_NE(a, TickKey("t", "k2", "n", 1000));
  EXPECT_NE(a, TickKey("t", "k", "n2", 1000));
}

}  // namespace
}  // namespace massa
