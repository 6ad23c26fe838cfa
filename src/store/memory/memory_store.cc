// The in-memory Store: maps under one mutex. Writes are checked, applied and acknowledged
// inline, so a batch is visible to readers all at once or not at all.
//
// Journals: each entity keeps its events by sequence, its last sequence (kept apart from the
// events, so retention never lowers it) and its snapshot. Each entity type's stream maps
// offsets to (key, sequence) pointers into the journals; a journaled event remembers its
// offset so that retention can remove it from the stream too.
//
// Values keep their version after a delete (a deleted value is a slot with no value), so a
// version never goes back. Fencing tokens are kept per entity, apart from values and
// journals, and only once a batch with a fence above 0 has written the entity.
//
// Idempotency records, timers and outbox records are maps by their keys; timers and outbox
// records also have a due index, ordered sets of (partition, due, key).

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "massa/store/store.h"
#include "store/journal_checks.h"

namespace massa::store {
namespace {

class MemoryStore final : public Store {
 public:
  absl::StatusOr<VersionedValue> ReadValue(std::string_view entity_type,
                                           std::string_view key) override {
    absl::MutexLock lock(&mu_);
    const ValueSlot* slot = FindValue(entity_type, key);
    if (slot == nullptr) return VersionedValue{std::nullopt, 0, 0};
    return VersionedValue{slot->value, slot->version, slot->value ? slot->expires_ms : 0};
  }

  absl::StatusOr<std::optional<IdempotencyRecord>> ReadIdempotency(
      std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) override {
    absl::MutexLock lock(&mu_);
    auto it = idempotency_.find(TripleOf(entity_type, key, idempotency_key));
    if (it == idempotency_.end()) return std::nullopt;
    return it->second;
  }

  absl::StatusOr<bool> HasIdempotencyRecords(std::string_view entity_type,
                                             std::string_view key) override {
    absl::MutexLock lock(&mu_);
    auto it = idempotency_.lower_bound(TripleOf(entity_type, key, ""));
    return it != idempotency_.end() && std::get<0>(it->first) == entity_type &&
           std::get<1>(it->first) == key;
  }

  std::optional<absl::StatusOr<std::optional<IdempotencyRecord>>> TryReadIdempotency(
      std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) override {
    return ReadIdempotency(entity_type, key, idempotency_key);
  }

  absl::StatusOr<std::vector<TimerRecord>> ReadTimers(std::string_view entity_type,
                                                      std::string_view key) override {
    absl::MutexLock lock(&mu_);
    std::vector<TimerRecord> out;
    for (auto it = timers_.lower_bound(TripleOf(entity_type, key, ""));
         it != timers_.end() && std::get<0>(it->first) == entity_type &&
         std::get<1>(it->first) == key;
         ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  absl::StatusOr<std::vector<TimerRecord>> ReadDueTimers(uint32_t partition, int64_t before_ms,
                                                         size_t limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<TimerRecord> out;
    for (auto it = timer_due_.lower_bound(DueKey{partition, INT64_MIN, {}});
         it != timer_due_.end() && it->partition == partition && it->due_ms < before_ms &&
         out.size() < limit;
         ++it) {
      out.push_back(timers_.at(it->key));
    }
    return out;
  }

  absl::StatusOr<std::vector<OutboxRecord>> ReadOutbox(uint32_t partition, int64_t before_ms,
                                                       size_t limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<OutboxRecord> out;
    for (auto it = outbox_due_.lower_bound(OutboxDueKey{partition, INT64_MIN, {}});
         it != outbox_due_.end() && it->partition == partition && it->due_ms < before_ms &&
         out.size() < limit;
         ++it) {
      out.push_back(outbox_.at(it->id));
    }
    return out;
  }

  absl::StatusOr<size_t> SweepExpired(int64_t now_ms, size_t limit) override {
    absl::MutexLock lock(&mu_);
    size_t swept = 0;
    for (auto it = idempotency_.begin(); it != idempotency_.end() && swept < limit;) {
      if (it->second.expires_ms != 0 && it->second.expires_ms <= now_ms) {
        it = idempotency_.erase(it);
        ++swept;
      } else {
        ++it;
      }
    }
    for (auto& [type, by_key] : values_) {
      for (auto& [key, slot] : by_key) {
        if (swept >= limit) return swept;
        if (slot.value && slot.expires_ms != 0 && slot.expires_ms <= now_ms) {
          slot.value.reset();  // the version stays: readers already saw it as absent
          slot.expires_ms = 0;
          ++swept;
        }
      }
    }
    return swept;
  }

  absl::StatusOr<std::vector<Event>> ReadEvents(std::string_view entity_type, std::string_view key,
                                                uint64_t from_sequence, size_t limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<Event> out;
    const Journal* journal = FindJournal(entity_type, key);
    if (journal == nullptr) return out;
    for (auto it = journal->events.lower_bound(from_sequence);
         it != journal->events.end() && out.size() < limit; ++it) {
      out.push_back(it->second.event);
    }
    return out;
  }

  absl::StatusOr<uint64_t> ReadLastSequence(std::string_view entity_type,
                                            std::string_view key) override {
    absl::MutexLock lock(&mu_);
    const Journal* journal = FindJournal(entity_type, key);
    return journal == nullptr ? 0 : journal->last_sequence;
  }

  absl::StatusOr<std::optional<Snapshot>> ReadSnapshot(std::string_view entity_type,
                                                       std::string_view key) override {
    absl::MutexLock lock(&mu_);
    const Journal* journal = FindJournal(entity_type, key);
    if (journal == nullptr) return std::nullopt;
    return journal->snapshot;
  }

  absl::StatusOr<std::vector<StreamEvent>> ReadStream(std::string_view entity_type,
                                                      uint64_t from_offset, size_t limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<StreamEvent> out;
    auto stream_it = streams_.find(entity_type);
    if (stream_it == streams_.end()) return out;
    for (auto it = stream_it->second.entries.lower_bound(from_offset);
         it != stream_it->second.entries.end() && out.size() < limit; ++it) {
      const Event* event = FindEvent(entity_type, it->second.key, it->second.sequence);
      if (event == nullptr) {  // retention removes stream entries with their events
        return absl::InternalError(absl::StrCat("store: stream offset ", it->first, " of ",
                                                internal::EscapedName(entity_type),
                                                " points at a missing event"));
      }
      out.push_back({it->first, it->second.key, *event});
    }
    return out;
  }

  // Checks the whole batch first, then applies it under the lock, so readers see all of it or
  // none of it; calls `done` with no lock held (the callback may call back into the store).
  void Write(WriteBatch batch, WriteCallback done) override {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      status = Check(batch);
      if (status.ok()) {
        Apply(batch);
        // Each write is its own "flush": there is no grouping in memory.
        ++stats_.writes;
        ++stats_.flushes;
      }
    }
    std::move(done)(std::move(status));
  }

  StoreStats stats() const override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  struct StoredEvent {
    Event event;
    uint64_t offset = 0;  // in the entity type's stream
  };
  struct Journal {
    std::map<uint64_t, StoredEvent> events;  // by sequence; retention removes a prefix
    uint64_t last_sequence = 0;              // never lowered by retention
    std::optional<Snapshot> snapshot;
  };
  struct StreamEntry {
    std::string key;
    uint64_t sequence = 0;
  };
  struct Stream {
    uint64_t last_offset = 0;  // not reused even when the entries at the end are deleted
    std::map<uint64_t, StreamEntry> entries;
  };

  struct ValueSlot {
    std::optional<std::string> value;  // nullopt = deleted (the version stays)
    uint64_t version = 0;
    int64_t expires_ms = 0;
  };
  using Triple = std::tuple<std::string, std::string, std::string>;  // (type, key, name)
  static Triple TripleOf(std::string_view a, std::string_view b, std::string_view c) {
    return Triple(std::string(a), std::string(b), std::string(c));
  }
  struct DueKey {
    uint32_t partition = 0;
    int64_t due_ms = 0;
    Triple key;
    friend auto operator<=>(const DueKey&, const DueKey&) = default;
  };
  struct OutboxDueKey {
    uint32_t partition = 0;
    int64_t due_ms = 0;
    std::string id;
    friend auto operator<=>(const OutboxDueKey&, const OutboxDueKey&) = default;
  };

  // std::less<> lets lookups take string_views without building strings.
  using KeyToValue = std::map<std::string, ValueSlot, std::less<>>;
  using KeyToJournal = std::map<std::string, Journal, std::less<>>;
  using KeyToFence = std::map<std::string, uint64_t, std::less<>>;
  using EntityRef = std::pair<std::string_view, std::string_view>;  // (entity_type, key)

  // The entry of (entity_type, key) in a map of maps by type (values_, journals_, fences_),
  // or nullptr.
  template <typename ByType>
  static const typename ByType::mapped_type::mapped_type* Find(const ByType& by_type,
                                                               std::string_view entity_type,
                                                               std::string_view key) {
    auto type_it = by_type.find(entity_type);
    if (type_it == by_type.end()) return nullptr;
    auto it = type_it->second.find(key);
    return it == type_it->second.end() ? nullptr : &it->second;
  }

  const ValueSlot* FindValue(std::string_view entity_type, std::string_view key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Find(values_, entity_type, key);
  }

  uint64_t FenceOf(std::string_view entity_type, std::string_view key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const uint64_t* token = Find(fences_, entity_type, key);
    return token == nullptr ? 0 : *token;
  }

  // Every entity `batch` writes (with repetitions): its mutations', appends', idempotency
  // records', timers' and the fenced ones'.
  static std::vector<EntityRef> EntitiesOf(const WriteBatch& batch) {
    std::vector<EntityRef> out;
    out.reserve(batch.mutations.size() + batch.appends.size() + batch.idempotency.size() +
                batch.timers.size());
    for (const WriteBatch::Mutation& m : batch.mutations) out.emplace_back(m.entity_type, m.key);
    for (const JournalAppend& a : batch.appends) out.emplace_back(a.entity_type, a.key);
    for (const IdempotencyRecord& r : batch.idempotency) out.emplace_back(r.entity_type, r.key);
    for (const TimerChange& c : batch.timers) out.emplace_back(c.timer.entity_type, c.timer.key);
    for (const auto& [type, key] : batch.fenced) out.emplace_back(type, key);
    return out;
  }

  // The due time of timer (type, key, name), 0 when there is none.
  int64_t TimerDue(const Triple& id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = timers_.find(id);
    return it == timers_.end() ? 0 : it->second.due_ms;
  }

  const Journal* FindJournal(std::string_view entity_type, std::string_view key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Find(journals_, entity_type, key);
  }

  const Event* FindEvent(std::string_view entity_type, std::string_view key,
                         uint64_t sequence) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Journal* journal = FindJournal(entity_type, key);
    if (journal == nullptr) return nullptr;
    auto it = journal->events.find(sequence);
    return it == journal->events.end() ? nullptr : &it->second.event;
  }

  // OK when `batch` fits the store as it is: no entity it writes has a higher fence, and
  // every expected version and sequence matches the store plus the batch's earlier
  // mutations and appends. Changes nothing. The order of the checks is journal_checks.h's.
  absl::Status Check(const WriteBatch& batch) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const JournalAppend& append : batch.appends) {
      absl::Status shape = internal::CheckAppendShape(append);
      if (!shape.ok()) return shape;
    }
    for (const auto& [entity_type, key] : EntitiesOf(batch)) {
      const uint64_t token = FenceOf(entity_type, key);
      if (batch.fence < token) return internal::Fenced(entity_type, key, batch.fence, token);
    }
    // Versions after this batch's earlier mutations, for values it writes twice.
    std::map<EntityRef, uint64_t> versions;
    for (const WriteBatch::Mutation& m : batch.mutations) {
      const EntityRef id(m.entity_type, m.key);
      uint64_t version = 0;
      if (auto it = versions.find(id); it != versions.end()) {
        version = it->second;
      } else if (const ValueSlot* slot = FindValue(m.entity_type, m.key)) {
        version = slot->version;
      }
      if (m.expected_version.has_value() && *m.expected_version != version) {
        return internal::StaleVersion(m.entity_type, m.key, *m.expected_version, version);
      }
      versions[id] = version + 1;
    }
    // Last sequences after this batch's earlier appends, for entities it appends to twice.
    std::map<EntityRef, uint64_t> in_batch;
    for (const JournalAppend& append : batch.appends) {
      const EntityRef id(append.entity_type, append.key);
      uint64_t last = 0;
      if (auto it = in_batch.find(id); it != in_batch.end()) {
        last = it->second;
      } else if (const Journal* journal = FindJournal(append.entity_type, append.key)) {
        last = journal->last_sequence;
      }
      if (last != append.expected_sequence) {
        return internal::StaleExpectation(append.entity_type, append.key, append.expected_sequence,
                                          last);
      }
      in_batch[id] = append.expected_sequence + append.events.size();
    }
    // Due times after this batch's earlier changes, for timers it changes twice.
    std::map<Triple, int64_t> dues;
    for (const TimerChange& change : batch.timers) {
      const Triple id = TripleOf(change.timer.entity_type, change.timer.key, change.timer.name);
      auto it = dues.find(id);
      const int64_t due = it != dues.end() ? it->second : TimerDue(id);
      if (change.expected_due_ms.has_value() && *change.expected_due_ms != due) {
        return internal::StaleTimer(change.timer.entity_type, change.timer.key, change.timer.name,
                                    *change.expected_due_ms, due);
      }
      dues[id] = change.remove ? 0 : change.timer.due_ms;
    }
    return absl::OkStatus();
  }

  void Apply(WriteBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (batch.fence > 0) {
      for (const auto& [entity_type, key] : EntitiesOf(batch)) {
        uint64_t& token = fences_[std::string(entity_type)][std::string(key)];
        token = std::max(token, batch.fence);
      }
    }
    for (WriteBatch::Mutation& m : batch.mutations) {
      ValueSlot& slot = values_[std::move(m.entity_type)][std::move(m.key)];
      slot.value = std::move(m.value);
      slot.expires_ms = slot.value ? m.expires_ms : 0;
      ++slot.version;
    }
    for (IdempotencyRecord& r : batch.idempotency) {
      Triple id = TripleOf(r.entity_type, r.key, r.idempotency_key);
      idempotency_.insert_or_assign(std::move(id), std::move(r));
    }
    for (TimerChange& change : batch.timers) {
      const Triple id = TripleOf(change.timer.entity_type, change.timer.key, change.timer.name);
      if (auto it = timers_.find(id); it != timers_.end()) {
        timer_due_.erase(DueKey{it->second.partition, it->second.due_ms, id});
        timers_.erase(it);
      }
      if (change.remove) continue;
      timer_due_.insert(DueKey{change.timer.partition, change.timer.due_ms, id});
      timers_.emplace(id, std::move(change.timer));
    }
    for (const std::string& id : batch.outbox_done) {
      auto it = outbox_.find(id);
      if (it == outbox_.end()) continue;
      outbox_due_.erase(OutboxDueKey{it->second.partition, it->second.due_ms, id});
      outbox_.erase(it);
    }
    for (OutboxRecord& r : batch.outbox) {
      if (auto it = outbox_.find(r.id); it != outbox_.end()) {
        outbox_due_.erase(OutboxDueKey{it->second.partition, it->second.due_ms, r.id});
        outbox_.erase(it);
      }
      outbox_due_.insert(OutboxDueKey{r.partition, r.due_ms, r.id});
      std::string id = r.id;
      outbox_.emplace(std::move(id), std::move(r));
    }
    for (JournalAppend& append : batch.appends) {
      if (append.events.empty() && !append.snapshot.has_value()) continue;  // only a check
      Stream& stream = streams_[append.entity_type];
      Journal& journal = journals_[append.entity_type][append.key];
      for (Event& event : append.events) {
        const uint64_t offset = ++stream.last_offset;
        const uint64_t sequence = event.sequence;
        stream.entries.insert_or_assign(offset, StreamEntry{append.key, sequence});
        journal.events.insert_or_assign(sequence, StoredEvent{std::move(event), offset});
      }
      journal.last_sequence = append.expected_sequence + append.events.size();
      if (!append.snapshot.has_value()) continue;
      const uint64_t covered = append.snapshot->sequence;
      journal.snapshot = std::move(append.snapshot);
      if (!append.delete_events_covered_by_snapshot) continue;
      auto end = journal.events.upper_bound(covered);
      for (auto it = journal.events.begin(); it != end; ++it)
        stream.entries.erase(it->second.offset);
      journal.events.erase(journal.events.begin(), end);
    }
  }

  mutable absl::Mutex mu_;
  std::map<std::string, KeyToValue, std::less<>> values_ ABSL_GUARDED_BY(mu_);      // by type
  std::map<std::string, KeyToJournal, std::less<>> journals_ ABSL_GUARDED_BY(mu_);  // by type
  std::map<std::string, Stream, std::less<>> streams_ ABSL_GUARDED_BY(mu_);         // by type
  std::map<std::string, KeyToFence, std::less<>> fences_ ABSL_GUARDED_BY(mu_);      // by type
  std::map<Triple, IdempotencyRecord> idempotency_ ABSL_GUARDED_BY(mu_);
  std::map<Triple, TimerRecord> timers_ ABSL_GUARDED_BY(mu_);
  std::set<DueKey> timer_due_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, OutboxRecord> outbox_ ABSL_GUARDED_BY(mu_);
  std::set<OutboxDueKey> outbox_due_ ABSL_GUARDED_BY(mu_);
  StoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

StorePtr NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace massa::store
