#include "entity/outbox.h"

#include <algorithm>
#include <iterator>
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

namespace {

void AddMetadata(const Metadata& metadata, v1::Target& target) {
  for (const auto& [k, v] : metadata) {
    v1::MetadataPair* pair = target.add_metadata();
    pair->set_key(k);
    pair->set_value(v);
  }
}

}  // namespace

std::vector<store::OutboxRecord> OutboxRecordsFor(const Command& cause,
                                                  std::string_view entity_type,
                                                  std::string_view key,
                                                  const std::vector<SideEffect>& effects,
                                                  const std::vector<Broadcast>& broadcasts,
                                                  int64_t now_ms, uint32_t partition) {
  std::vector<store::OutboxRecord> out;
  std::string base;
  const auto add = [&](v1::OutboxEntry& entry, std::string what) {
    if (base.empty()) base = cause.idempotency_key.empty() ? UniqueBase() : cause.idempotency_key;
    std::string id = idempotency::Derive(entity_type, key, base, what);
    entry.set_idempotency_key(id);
    entry.set_hops(cause.hops + 1);
    entry.set_created_ms(now_ms);
    entry.set_source(absl::StrCat(std::string(entity_type), "/", std::string(key)));
    out.push_back(store::OutboxRecord{std::move(id), now_ms, partition, entry.SerializeAsString()});
  };
  size_t index = 0;
  for (const SideEffect& effect : effects) {
    if (effect.synchronous) continue;
    v1::OutboxEntry entry;
    v1::Target& target = *entry.mutable_target();
    target.set_service(effect.service);
    target.set_method(effect.method);
    target.set_payload(effect.payload);
    AddMetadata(cause.metadata, target);
    AddMetadata(effect.metadata, target);
    add(entry, absl::StrCat("o", index++));
  }
  index = 0;
  for (const Broadcast& broadcast : broadcasts) {
    v1::OutboxEntry entry;
    entry.set_channel(broadcast.channel);
    entry.set_payload_type(broadcast.payload.type);
    v1::Target& target = *entry.mutable_target();
    target.set_payload(broadcast.payload.bytes);
    AddMetadata(cause.metadata, target);
    AddMetadata(broadcast.metadata, target);
    add(entry, absl::StrCat("p", index++));
  }
  return out;
}

std::string SpawnRegistry(std::string_view entity_type) {
  return absl::StrCat("$spawned:", std::string(entity_type));
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

std::vector<uint32_t> Outbox::Partitions() const {
  return options_.partitions ? options_.partitions() : std::vector<uint32_t>{options_.partition};
}

absl::StatusOr<std::vector<store::OutboxRecord>> Outbox::Read(
    const std::vector<uint32_t>& partitions, int64_t due_before, size_t page, bool* full) const {
  std::vector<store::OutboxRecord> out;
  bool any_full = false;
  for (uint32_t partition : partitions) {
    absl::StatusOr<std::vector<store::OutboxRecord>> part =
        store_.ReadOutbox(partition, due_before, page);
    if (!part.ok()) return part.status();
    any_full = any_full || part->size() == page;
    std::move(part->begin(), part->end(), std::back_inserter(out));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const store::OutboxRecord& a, const store::OutboxRecord& b) {
                     return a.due_ms < b.due_ms;
                   });
  if (full != nullptr) *full = any_full;
  return out;
}

size_t Outbox::ScanBefore(int64_t due_before) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= options_.max_in_flight) return 0;
    ++scans_reading_;
  }
  // A page shared between the partitions (memory stays bounded however many this node owns).
  const std::vector<uint32_t> partitions = Partitions();
  const size_t page =
      std::max<size_t>(16, options_.max_in_flight * 4 / std::max<size_t>(1, partitions.size()));
  bool full = false;
  absl::StatusOr<std::vector<store::OutboxRecord>> due =
      Read(partitions, due_before, page, &full);
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
    more_due_ = full;
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
  const bool parsed = entry->ParseFromString(record.record);
  if (parsed && (!entry->channel().empty() || !entry->instances_of().empty())) {
    Expand(std::move(record), std::move(entry));
    return;
  }
  if (!parsed || entry->target().service().empty()) {
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
  if (!entry->entity_key().empty()) {
    command.entity_key = entry->entity_key();
    command.addressed = true;
  }
  command.idempotency_key = entry->idempotency_key();
  command.hops = entry->hops();
  command.deadline = clock_.Now() + options_.delivery_timeout;
  dispatcher_->Dispatch(std::move(command), [this, entry, record = std::move(record)](
                                                CommandResult result) mutable {
    if (!result.status.ok() && idempotency::Transient(result.status.code())) {
      Retry(std::move(record), *entry, result.status);
      return;
    }
    if (!result.status.ok()) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("outbox: {}/{} from {} refused the message for good: {}",
                   entry->target().service(), entry->target().method(), entry->source(),
                   result.status.ToString());
    }
    store::WriteBatch batch;
    batch.fence = options_.fence;
    const std::string id = record.id;
    batch.outbox_done.push_back(id);
    store_.Write(std::move(batch), [this, id](absl::Status status) {
      if (!status.ok()) {
        // The record stays as it was: the scan delivers it again.
        spdlog::warn("outbox: recording the delivery of {} failed: {}", id, status.ToString());
      } else {
        delivered_.fetch_add(1, std::memory_order_relaxed);
      }
      Finish(id, /*failed=*/false);
    });
  });
}

void Outbox::Retry(store::OutboxRecord record, v1::OutboxEntry& entry, const absl::Status& error) {
  const uint32_t attempts = entry.attempts() + 1;
  entry.set_attempts(attempts);
  entry.set_last_error(error.ToString());
  const auto backoff = std::min<int64_t>(
      options_.max_backoff.count(),
      options_.first_backoff.count() << std::min<uint32_t>(attempts - 1, 20));
  record.due_ms = clock_.WallMillis() + backoff;
  record.record = entry.SerializeAsString();
  const std::string what = entry.channel().empty()
                               ? absl::StrCat(entry.target().service(), "/", entry.target().method())
                               : absl::StrCat("the broadcast to channel ", entry.channel());
  if ((attempts & (attempts - 1)) == 0) {  // 1, 2, 4, 8, ...: visible, not flooding
    spdlog::warn("outbox: delivering {} from {} failed ({} attempts so far): {}; retrying in {} ms",
                 what, entry.source(), attempts, error.ToString(), backoff);
  }
  retries_.fetch_add(1, std::memory_order_relaxed);
  store::WriteBatch batch;
  batch.fence = options_.fence;
  const std::string id = record.id;
  batch.outbox.push_back(std::move(record));
  store_.Write(std::move(batch), [this, id](absl::Status status) {
    if (!status.ok()) {
      spdlog::warn("outbox: recording a failed delivery of {} failed: {}", id, status.ToString());
    }
    Finish(id, /*failed=*/true);
  });
}

void Outbox::Expand(store::OutboxRecord record, std::shared_ptr<v1::OutboxEntry> entry) {
  if (!subscribers_ || !executor_) {
    Retry(std::move(record), *entry, absl::UnavailableError("broadcasts are not served yet"));
    return;
  }
  executor_([this, record = std::move(record), entry = std::move(entry)]() mutable {
    // Each new record: the broadcast's payload and origin, to one subscriber (an entity, or
    // all the spawned actors of a service), under a key derived from the broadcast's.
    const auto to = [&](std::string_view service, std::string_view method,
                        std::string_view entity_key, std::string_view instances_of) {
      v1::OutboxEntry sub;
      *sub.mutable_target() = entry->target();
      sub.mutable_target()->set_service(std::string(service));
      sub.mutable_target()->set_method(std::string(method));
      sub.set_entity_key(std::string(entity_key));
      sub.set_instances_of(std::string(instances_of));
      sub.set_hops(entry->hops());
      sub.set_created_ms(entry->created_ms());
      sub.set_source(entry->source());
      std::string id = idempotency::Derive(service, instances_of.empty() ? entity_key : "*",
                                           entry->idempotency_key(), "b");
      sub.set_idempotency_key(id);
      return store::OutboxRecord{std::move(id), record.due_ms, record.partition,
                                 sub.SerializeAsString()};
    };
    std::vector<store::OutboxRecord> out;
    bool more = false;
    if (!entry->channel().empty()) {
      for (const ChannelSubscriber& subscriber : subscribers_(entry->channel())) {
        if (subscriber.request_type != entry->payload_type()) continue;  // not for it
        out.push_back(to(subscriber.service, subscriber.method, subscriber.actor_name,
                         subscriber.spawn_registry));
      }
    } else {
      constexpr size_t kPage = 1000;
      absl::StatusOr<std::vector<store::StreamEvent>> spawned =
          store_.ReadStream(entry->instances_of(), entry->after_offset() + 1, kPage);
      if (!spawned.ok()) {
        Retry(std::move(record), *entry, spawned.status());
        return;
      }
      for (const store::StreamEvent& actor : *spawned) {
        out.push_back(to(entry->target().service(), entry->target().method(), actor.key, ""));
      }
      if (spawned->size() == kPage) {  // the rest from the next page on, in a later round
        more = true;
        entry->set_after_offset(spawned->back().offset);
      }
    }
    store::WriteBatch batch;
    batch.fence = options_.fence;
    batch.outbox = out;
    const std::string id = record.id;
    if (more) {
      record.record = entry->SerializeAsString();
      batch.outbox.push_back(record);
      out.push_back(std::move(record));
    } else {
      batch.outbox_done.push_back(id);
    }
    store_.Write(std::move(batch), [this, id, out = std::move(out)](absl::Status status) mutable {
      if (!status.ok()) {
        spdlog::warn("outbox: expanding broadcast {} failed: {}", id, status.ToString());
        Finish(id, /*failed=*/true);
        return;
      }
      expanded_.fetch_add(1, std::memory_order_relaxed);
      Finish(id, /*failed=*/false);
      Deliver(std::move(out));
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
      Read(Partitions(), INT64_MAX, limit, nullptr);
  if (!records.ok()) return records.status();
  if (records->size() > limit) records->resize(limit);
  std::vector<OutboxItem> out;
  for (const store::OutboxRecord& record : *records) {
    OutboxItem item;
    item.id = record.id;
    item.due_ms = record.due_ms;
    v1::OutboxEntry entry;
    if (entry.ParseFromString(record.record)) {
      item.service = entry.channel().empty() ? entry.target().service()
                                             : absl::StrCat("channel:", entry.channel());
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
  out.expanded = expanded_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  out.in_flight = in_flight_;
  out.queued = queue_.size();
  out.failing = failing_.size();
  return out;
}

}  // namespace massa
