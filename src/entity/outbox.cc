#include "entity/outbox.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "entity/idempotency.h"
#include "massa/internal/v1/records.pb.h"
#include "spdlog/spdlog.h"

namespace massa {
namespace {

namespace v1 = internal::v1;

// Unique across runs: a random prefix chosen at start, then a counter.
std::string UniqueBase() {
  static const uint64_t prefix = [] {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ device() ^
           static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }();
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(absl::Hex(prefix, absl::kZeroPad16), "-", counter.fetch_add(1));
}

}  // namespace

std::vector<store::OutboxRecord> OutboxRecordsFor(const Command& cause,
                                                  std::string_view entity_type,
                                                  std::string_view key,
                                                  const std::vector<SideEffect>& effects,
                                                  int64_t now_ms, uint32_t partition) {
  std::vector<store::OutboxRecord> out;
  std::string base;
  size_t index = 0;
  for (const SideEffect& effect : effects) {
    if (effect.synchronous) continue;
    if (base.empty()) base = cause.idempotency_key.empty() ? UniqueBase() : cause.idempotency_key;
    v1::OutboxEntry entry;
    v1::Target& target = *entry.mutable_target();
    target.set_service(effect.service);
    target.set_method(effect.method);
    target.set_payload(effect.payload);
    for (const Metadata* metadata : {&cause.metadata, &effect.metadata}) {
      for (const auto& [k, v] : *metadata) {
        v1::MetadataPair* pair = target.add_metadata();
        pair->set_key(k);
        pair->set_value(v);
      }
    }
    std::string id = idempotency::Derive(entity_type, key, base, absl::StrCat("o", index++));
    entry.set_idempotency_key(id);
    entry.set_hops(cause.hops + 1);
    entry.set_created_ms(now_ms);
    entry.set_source(absl::StrCat(std::string(entity_type), "/", std::string(key)));
    out.push_back(store::OutboxRecord{std::move(id), now_ms, partition, entry.SerializeAsString()});
  }
  return out;
}

Outbox::Outbox(OutboxOptions options, store::Store& store, Clock& clock)
    : options_(options), store_(store), clock_(clock) {}

Outbox::~Outbox() {
  Stop();
  WaitIdle(options_.delivery_timeout + std::chrono::seconds(5));
}

void Outbox::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) return;
    started_ = true;
  }
  // A new run retries at once what an earlier run left backing off: the restart was often the
  // fix for the failing target. Later scans honour each record's backoff.
  ScanBefore(INT64_MAX);
  if (options_.scan_interval.count() > 0) thread_ = std::thread([this] { Loop(); });
}

void Outbox::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    queue_.clear();  // still in the store: delivered by the next run
  }
  if (thread_.joinable()) thread_.join();
}

bool Outbox::WaitIdle(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(+[](size_t* n) { return *n == 0; }, &in_flight_),
      absl::FromChrono(timeout));
}

void Outbox::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    Scan();
    mu_.Lock();
    if (more_due_) {
      // A backlog (after downtime, or behind a slow target): the next page as soon as half of
      // this one is delivered, not a page per scan interval.
      mu_.AwaitWithTimeout(absl::Condition(this, &Outbox::HasRoomLocked),
                           absl::FromChrono(options_.scan_interval));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(options_.scan_interval));
    }
  }
}

bool Outbox::HasRoomLocked() const {
  return stopping_ || queue_.size() + in_flight_ <= options_.max_in_flight / 2;
}

void Outbox::Deliver(std::vector<store::OutboxRecord> records) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !started_) return;  // the scan finds them
    for (store::OutboxRecord& record : records) {
      // Bounded memory: past the bound the scan finds them later.
      if (queue_.size() >= options_.max_in_flight * 16) break;
      if (!known_.insert(record.id).second) continue;
      queue_.push_back(std::move(record));
    }
  }
  Pump();
}

size_t Outbox::Scan() { return ScanBefore(clock_.WallMillis() + 1); }

size_t Outbox::ScanBefore(int64_t due_before) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= options_.max_in_flight) return 0;
    ++scans_reading_;
  }
  const size_t page = options_.max_in_flight * 4;
  absl::StatusOr<std::vector<store::OutboxRecord>> due =
      store_.ReadOutbox(options_.partition, due_before, page);
  size_t added = 0;
  {
    absl::MutexLock lock(&mu_);
    // What finished while the store was read may be on the page as it was before: skip it.
    absl::flat_hash_set<std::string> finished;
    if (--scans_reading_ == 0) {
      finished.swap(finished_while_scanning_);
    } else {
      finished = finished_while_scanning_;
    }
    if (!due.ok()) {
      spdlog::warn("outbox: reading the due records failed: {}", due.status().ToString());
      return 0;
    }
    more_due_ = due->size() == page;
    if (stopping_) return 0;
    for (store::OutboxRecord& record : *due) {
      if (finished.contains(record.id) || !known_.insert(record.id).second) continue;
      v1::OutboxEntry entry;
      if (entry.ParseFromString(record.record) && entry.attempts() > 0) failing_.insert(record.id);
      queue_.push_back(std::move(record));
      ++added;
    }
  }
  Pump();
  return added;
}

void Outbox::Pump() {
  for (;;) {
    store::OutboxRecord record;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || queue_.empty() || in_flight_ >= options_.max_in_flight) return;
      record = std::move(queue_.front());
      queue_.pop_front();
      ++in_flight_;
    }
    Send(std::move(record));
  }
}

void Outbox::Send(store::OutboxRecord record) {
  auto entry = std::make_shared<v1::OutboxEntry>();
  const int64_t now = clock_.WallMillis();
  if (!entry->ParseFromString(record.record) || entry->target().service().empty()) {
    // Not deliverable, but not ours to drop: keep it, out of the way, and say so.
    spdlog::error("outbox: record {} is unreadable; it stays in the store", record.id);
    record.due_ms = now + options_.max_backoff.count();
    store::WriteBatch batch;
    batch.fence = options_.fence;
    batch.outbox.push_back(std::move(record));
    const std::string id = batch.outbox.back().id;
    store_.Write(std::move(batch), [this, id](absl::Status) { Finish(id, /*failed=*/true); });
    return;
  }
  Command command;
  command.service = entry->target().service();
  command.method = entry->target().method();
  command.payload = entry->target().payload();
  for (const v1::MetadataPair& pair : entry->target().metadata()) {
    command.metadata.emplace_back(pair.key(), pair.value());
  }
  command.idempotency_key = entry->idempotency_key();
  command.hops = entry->hops();
  command.deadline = clock_.Now() + options_.delivery_timeout;
  dispatcher_->Dispatch(std::move(command), [this, entry, record = std::move(record)](
                                                CommandResult result) mutable {
    store::WriteBatch batch;
    batch.fence = options_.fence;
    const bool retry = !result.status.ok() && idempotency::Transient(result.status.code());
    const std::string id = record.id;
    if (retry) {
      const uint32_t attempts = entry->attempts() + 1;
      entry->set_attempts(attempts);
      entry->set_last_error(result.status.ToString());
      const auto backoff = std::min<int64_t>(
          options_.max_backoff.count(),
          options_.first_backoff.count() << std::min<uint32_t>(attempts - 1, 20));
      record.due_ms = clock_.WallMillis() + backoff;
      record.record = entry->SerializeAsString();
      if ((attempts & (attempts - 1)) == 0) {  // 1, 2, 4, 8, ...: visible, not flooding
        spdlog::warn("outbox: delivering {}/{} from {} failed ({} attempts so far): {}; retrying "
                     "in {} ms",
                     entry->target().service(), entry->target().method(), entry->source(),
                     attempts, result.status.ToString(), backoff);
      }
      retries_.fetch_add(1, std::memory_order_relaxed);
      batch.outbox.push_back(std::move(record));
    } else {
      if (!result.status.ok()) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("outbox: {}/{} from {} refused the message for good: {}",
                     entry->target().service(), entry->target().method(), entry->source(),
                     result.status.ToString());
      }
      batch.outbox_done.push_back(id);
    }
    store_.Write(std::move(batch), [this, id, retry](absl::Status status) {
      if (!status.ok()) {
        // The record stays as it was: the scan delivers it again.
        spdlog::warn("outbox: recording the delivery of {} failed: {}", id, status.ToString());
      } else if (!retry) {
        delivered_.fetch_add(1, std::memory_order_relaxed);
      }
      Finish(id, retry);
    });
  });
}

void Outbox::Finish(const std::string& id, bool failed) {
  {
    absl::MutexLock lock(&mu_);
    known_.erase(id);
    if (scans_reading_ > 0) finished_while_scanning_.insert(id);
    if (failed) {
      failing_.insert(id);
    } else {
      failing_.erase(id);
    }
    --in_flight_;
  }
  Pump();
}

absl::StatusOr<std::vector<OutboxItem>> Outbox::List(size_t limit) const {
  absl::StatusOr<std::vector<store::OutboxRecord>> records =
      store_.ReadOutbox(options_.partition, INT64_MAX, limit);
  if (!records.ok()) return records.status();
  std::vector<OutboxItem> out;
  for (const store::OutboxRecord& record : *records) {
    OutboxItem item;
    item.id = record.id;
    item.due_ms = record.due_ms;
    v1::OutboxEntry entry;
    if (entry.ParseFromString(record.record)) {
      item.service = entry.target().service();
      item.method = entry.target().method();
      item.source = entry.source();
      item.attempts = entry.attempts();
      item.last_error = entry.last_error();
      item.created_ms = entry.created_ms();
    } else {
      item.last_error = "unreadable record";
    }
    out.push_back(std::move(item));
  }
  return out;
}

OutboxStats Outbox::stats() const {
  OutboxStats out;
  out.delivered = delivered_.load(std::memory_order_relaxed);
  out.refused = refused_.load(std::memory_order_relaxed);
  out.retries = retries_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  out.in_flight = in_flight_;
  out.queued = queue_.size();
  out.failing = failing_.size();
  return out;
}

}  // namespace massa
