#include "entity/timer_scheduler.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "entity/idempotency.h"
#include "spdlog/spdlog.h"

namespace massa {

TimerScheduler::TimerScheduler(TimerSchedulerOptions options, store::Store& store, Clock& clock)
    : options_(options), store_(store), clock_(clock) {}

TimerScheduler::~TimerScheduler() {
  Stop();
  WaitIdle(options_.delivery_timeout + std::chrono::seconds(5));
}

void TimerScheduler::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) return;
    started_ = true;
  }
  if (options_.tick.count() > 0) thread_ = std::thread([this] { Loop(); });
}

void TimerScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool TimerScheduler::WaitIdle(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](absl::flat_hash_set<Id>* ids) { return ids->empty(); }, &in_flight_),
      absl::FromChrono(timeout));
}

void TimerScheduler::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    FireDue();
    mu_.Lock();
    int64_t wait_ms = options_.tick.count();
    if (!by_time_.empty()) {
      wait_ms = std::clamp<int64_t>(by_time_.begin()->first.first - clock_.WallMillis(), 0,
                                    wait_ms);
    }
    if (wait_ms == 0 && in_flight_.size() >= options_.max_in_flight) wait_ms = 1;
    wake_ = false;
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](TimerScheduler* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                               return self->wake_ || self->stopping_;
                             },
                             this),
                         absl::Milliseconds(wait_ms));
  }
}

void TimerScheduler::Hold(store::TimerRecord timer, int64_t fire_ms, uint32_t attempts) {
  Id id(timer.entity_type, timer.key, timer.name);
  Drop(id);
  const bool first = by_time_.empty() || fire_ms < by_time_.begin()->first.first;
  fire_time_[id] = fire_ms;
  const int64_t due = timer.due_ms;
  by_time_.emplace(std::make_pair(fire_ms, std::move(id)),
                   Held{due, fire_ms, attempts, std::move(timer)});
  if (first) wake_ = true;
}

void TimerScheduler::Drop(const Id& id) {
  auto it = fire_time_.find(id);
  if (it == fire_time_.end()) return;
  by_time_.erase(std::make_pair(it->second, id));
  fire_time_.erase(it);
}

void TimerScheduler::Apply(const store::TimerChange& change) {
  if (refilling_) during_refill_.push_back(change);
  const Id id(change.timer.entity_type, change.timer.key, change.timer.name);
  if (change.remove || change.timer.due_ms >= horizon_ms_) {
    Drop(id);  // beyond the window: the next refill reads it
    return;
  }
  Hold(change.timer, change.timer.due_ms, 0);
}

void TimerScheduler::OnWritten(const std::vector<store::TimerChange>& changes) {
  absl::MutexLock lock(&mu_);
  for (const store::TimerChange& change : changes) Apply(change);
}

std::vector<uint32_t> TimerScheduler::Partitions() const {
  if (!options_.partitions) return {options_.partition};
  std::vector<uint32_t> partitions = options_.partitions();
  std::sort(partitions.begin(), partitions.end());
  return partitions;
}

void TimerScheduler::FollowPartitions(std::vector<uint32_t> partitions) {
  if (partitions == partitions_) return;
  const bool gained = !std::includes(partitions_.begin(), partitions_.end(), partitions.begin(),
                                     partitions.end());
  for (auto it = by_time_.begin(); it != by_time_.end();) {
    if (std::binary_search(partitions.begin(), partitions.end(), it->second.timer.partition)) {
      ++it;
    } else {
      fire_time_.erase(it->first.second);
      it = by_time_.erase(it);
    }
  }
  if (gained) horizon_ms_ = INT64_MIN;  // nothing of the new ones is in memory yet
  partitions_ = std::move(partitions);
}

void TimerScheduler::Refill(const std::vector<uint32_t>& partitions) {
  {
    absl::MutexLock lock(&mu_);
    if (refilling_ || stopping_) return;
    refilling_ = true;
    during_refill_.clear();
  }
  const int64_t before = clock_.WallMillis() + options_.lookahead.count();
  // The window is shared between the partitions; a full read of one may have cut a due time in
  // two: only what is due before its last is complete.
  const size_t limit =
      std::max<size_t>(64, options_.window / std::max<size_t>(1, partitions.size()));
  int64_t horizon = before;
  absl::StatusOr<std::vector<store::TimerRecord>> read = std::vector<store::TimerRecord>();
  for (uint32_t partition : partitions) {
    absl::StatusOr<std::vector<store::TimerRecord>> part =
        store_.ReadDueTimers(partition, before, limit);
    if (!part.ok()) {
      read = part.status();
      break;
    }
    if (part->size() == limit) horizon = std::min(horizon, part->back().due_ms);
    std::move(part->begin(), part->end(), std::back_inserter(*read));
  }
  absl::MutexLock lock(&mu_);
  refilling_ = false;
  if (!read.ok()) {
    spdlog::warn("timers: reading the due timers failed: {}", read.status().ToString());
    return;
  }
  for (store::TimerRecord& timer : *read) {
    Id id(timer.entity_type, timer.key, timer.name);
    if (in_flight_.contains(id) || fire_time_.contains(id)) continue;
    const int64_t due = timer.due_ms;
    Hold(std::move(timer), due, 0);
  }
  horizon_ms_ = std::max(horizon_ms_, horizon);
  // Changes made durable while the read ran are newer than what it returned.
  std::vector<store::TimerChange> newer = std::move(during_refill_);
  during_refill_.clear();
  for (const store::TimerChange& change : newer) Apply(change);
}

size_t TimerScheduler::FireDue() {
  const int64_t now = clock_.WallMillis();
  std::vector<uint32_t> partitions = Partitions();
  bool refill = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !started_) return 0;
    FollowPartitions(partitions);
    refill = now + options_.lookahead.count() / 2 >= horizon_ms_ &&
             by_time_.size() < options_.window / 2;
  }
  if (refill) Refill(partitions);
  std::vector<Held> due;
  {
    absl::MutexLock lock(&mu_);
    while (!by_time_.empty() && by_time_.begin()->first.first <= now &&
           in_flight_.size() < options_.max_in_flight && !stopping_) {
      auto node = by_time_.extract(by_time_.begin());
      fire_time_.erase(node.key().second);
      in_flight_.insert(node.key().second);
      due.push_back(std::move(node.mapped()));
    }
  }
  for (Held& held : due) Fire(std::move(held));
  return due.size();
}

void TimerScheduler::Fire(Held held) {
  const int64_t now = clock_.WallMillis();
  absl::StatusOr<StoredTimer> timer = DecodeTimer(held.timer.record);
  if (!timer.ok()) {
    Retry(std::move(held), absl::InternalError(absl::StrCat(
                               "the stored record of timer '", held.timer.name, "' of ",
                               held.timer.entity_type, "/", held.timer.key, " is unreadable")));
    return;
  }
  const Tick tick = PlanTick(*timer, held.due_ms, now, options_.misfire_grace);
  std::optional<store::TimerRecord> next;
  if (tick.next_due.has_value()) {
    next = held.timer;
    next->due_ms = *tick.next_due;
  }
  Command command;
  command.method = timer->method;
  command.payload = timer->payload.bytes;
  command.idempotency_key =
      TickKey(held.timer.entity_type, held.timer.key, held.timer.name, held.due_ms);
  command.metadata.emplace_back("massa-timer", held.timer.name);
  command.metadata.emplace_back("massa-timer-due", absl::StrCat(held.due_ms));
  command.deadline = clock_.Now() + options_.delivery_timeout;
  auto shared = std::make_shared<Held>(std::move(held));
  if (timer->self) {
    command.service = timer->owner_service;
    command.entity_key = shared->timer.key;
    command.addressed = true;
    command.timer = TimerFire{shared->timer.name, shared->due_ms, tick.next_due,
                              shared->timer.record, shared->timer.partition, tick.skip};
    const bool skip = tick.skip;
    dispatcher_->Dispatch(std::move(command), [this, shared, skip](CommandResult result) {
      if (!result.status.ok() && idempotency::Transient(result.status.code())) {
        Retry(std::move(*shared), result.status);
        return;
      }
      (skip ? skipped_ : fired_).fetch_add(1, std::memory_order_relaxed);
      if (!skip) ObserveLateness(shared->due_ms);
      Done(Id(shared->timer.entity_type, shared->timer.key, shared->timer.name), std::nullopt);
    });
    return;
  }
  // Moves the timer on once its tick is delivered (or skipped), if it is still the same timer.
  auto advance = [this, shared, next](bool skipped) {
    store::WriteBatch batch;
    batch.fence = options_.fence_of
                      ? options_.fence_of(shared->timer.entity_type, shared->timer.key)
                      : options_.fence;
    store::TimerChange change;
    change.timer = next.value_or(shared->timer);
    change.remove = !next.has_value();
    change.expected_due_ms = shared->due_ms;
    batch.timers.push_back(std::move(change));
    store_.Write(std::move(batch), [this, shared, next, skipped](absl::Status status) {
      const Id id(shared->timer.entity_type, shared->timer.key, shared->timer.name);
      if (status.ok() || status.code() == absl::StatusCode::kAborted) {
        (skipped ? skipped_ : fired_).fetch_add(1, std::memory_order_relaxed);
        Done(id, status.ok() ? next : std::nullopt);  // ABORTED: changed meanwhile
        return;
      }
      if (options_.fence_of && status.code() == absl::StatusCode::kFailedPrecondition) {
        // Fenced: another node owns the entity, and its scheduler moves the timer on (the
        // tick delivered here too carried the same idempotency key, so it applied once).
        Done(id, std::nullopt);
        return;
      }
      Retry(std::move(*shared), status);
    });
  };
  if (tick.skip) {
    advance(true);
    return;
  }
  command.service = timer->service;
  dispatcher_->Dispatch(std::move(command), [this, shared, advance](CommandResult result) {
    if (!result.status.ok() && idempotency::Transient(result.status.code())) {
      Retry(std::move(*shared), result.status);
      return;
    }
    if (!result.status.ok()) {
      spdlog::warn("timers: {}/{}'s timer '{}' was refused by its target: {}",
                   shared->timer.entity_type, shared->timer.key, shared->timer.name,
                   result.status.ToString());
    }
    ObserveLateness(shared->due_ms);
    advance(false);
  });
}

void TimerScheduler::ObserveLateness(int64_t due_ms) {
  if (lateness_ == nullptr) return;
  const auto due = std::chrono::system_clock::time_point(std::chrono::milliseconds(due_ms));
  lateness_->Observe(std::max(0.0, std::chrono::duration<double>(clock_.WallNow() - due).count()));
}

void TimerScheduler::Retry(Held held, const absl::Status& why) {
  const uint32_t attempts = held.attempts + 1;
  const int64_t backoff = std::min<int64_t>(
      options_.max_backoff.count(), options_.first_backoff.count()
                                        << std::min<uint32_t>(attempts - 1, 20));
  if ((attempts & (attempts - 1)) == 0) {
    spdlog::warn("timers: firing timer '{}' of {}/{} failed ({} attempts): {}; retrying in {} ms",
                 held.timer.name, held.timer.entity_type, held.timer.key, attempts,
                 why.ToString(), backoff);
  }
  retries_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  Id id(held.timer.entity_type, held.timer.key, held.timer.name);
  in_flight_.erase(id);
  if (fire_time_.contains(id) || stopping_) return;  // changed meanwhile, or stopping
  Hold(std::move(held.timer), clock_.WallMillis() + backoff, attempts);
}

void TimerScheduler::Done(const Id& id, std::optional<store::TimerRecord> next) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(id);
  if (next.has_value()) Apply(store::TimerChange{*std::move(next), false, std::nullopt});
}

absl::StatusOr<std::vector<store::TimerRecord>> TimerScheduler::List(size_t limit) const {
  std::vector<store::TimerRecord> out;
  for (uint32_t partition : Partitions()) {
    absl::StatusOr<std::vector<store::TimerRecord>> part =
        store_.ReadDueTimers(partition, INT64_MAX, limit);
    if (!part.ok()) return part.status();
    std::move(part->begin(), part->end(), std::back_inserter(out));
  }
  std::stable_sort(out.begin(), out.end(), [](const store::TimerRecord& a,
                                              const store::TimerRecord& b) {
    return a.due_ms < b.due_ms;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

TimerSchedulerStats TimerScheduler::stats() const {
  TimerSchedulerStats out;
  out.fired = fired_.load(std::memory_order_relaxed);
  out.skipped = skipped_.load(std::memory_order_relaxed);
  out.retries = retries_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  out.in_window = by_time_.size();
  out.in_flight = in_flight_.size();
  return out;
}

}  // namespace massa
