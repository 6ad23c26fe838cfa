// The durable outbox: delivers the messages that commands wrote into the store (asynchronous
// side effects; later messages between actors and broadcasts), at least once, each under its
// own idempotency key so that an entity target applies it once.
//
// A command's records are written in the same batch as its state change (store.h,
// OutboxRecord), so an acknowledged command's effects are never lost. Once that batch is
// durable the runtime hands them to Deliver (the fast path, no store read). A scan finds the
// rest: records left by a previous run (massa was killed before delivering them) and retries
// whose time has come. A delivery that succeeds, or that its target refuses for good (an
// application error such as INVALID_ARGUMENT or NOT_FOUND, the hop limit), deletes the record;
// one that fails for a reason that may pass (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
// ABORTED, INTERNAL, UNKNOWN, UNIMPLEMENTED: a target not deployed yet) is written back with its
// attempt count, the error and a later due time (backoff from 100 ms doubling to a cap), and
// tried again, forever: a target that keeps failing shows in the metrics and on the admin
// endpoint, and is never silently dropped.
//
// Broadcasts: a message published to a channel is one record, which the outbox expands (on the
// blocking executor, reading the store) into one record per subscriber, in one batch that also
// deletes the broadcast; the spawned actors of an unnamed-actor subscriber are expanded the
// same way, a page at a time. Each per-subscriber record's key is derived from the broadcast's
// and the subscriber (service and entity), so expanding again after a crash writes the same
// records, and each subscriber applies the message once.
//
// No order is promised between records, and a record may be delivered more than once (massa
// killed after delivering it, before deleting it); its key makes the second time a no-op for
// an entity target. Actions are not deduplicated (they keep no state).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "massa/common/clock.h"
#include "massa/entity/command.h"
#include "massa/entity/dispatcher.h"
#include "massa/store/store.h"

namespace massa {
namespace internal::v1 {
class OutboxEntry;
}

struct OutboxOptions {
  size_t max_in_flight = 256;                     // deliveries waiting for their result
  std::chrono::milliseconds scan_interval{1000};  // 0 = no thread (tests call Scan)
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{60'000};
  std::chrono::milliseconds delivery_timeout{30'000};  // the deadline of one delivery
  uint64_t fence = 0;                                  // of the outbox's own writes
  // The partition of the records this outbox delivers; in a cluster, `partitions` instead: the
  // partitions this node owns now, asked at every scan (a partition gained is scanned at the
  // next one; records just written here are delivered at once as always).
  uint32_t partition = 0;
  std::function<std::vector<uint32_t>()> partitions;
};

// A method subscribed to a channel, as the outbox delivers to it.
struct ChannelSubscriber {
  std::string service;
  std::string method;
  std::string request_type;    // messages of other types are not delivered to it
  std::string actor_name;      // a named actor: its one entity; else empty
  std::string spawn_registry;  // spawned actors: the entity type of their spawn records
};

// The subscribers of a channel (from the catalog).
using SubscriberLookup = std::function<std::vector<ChannelSubscriber>(std::string_view channel)>;
// Runs blocking work (store reads) off the caller's thread.
using BlockingExecutor = std::function<void(absl::AnyInvocable<void() &&> work)>;

// One record as the admin endpoint shows it.
struct OutboxItem {
  std::string id;
  std::string service;
  std::string method;
  std::string source;
  uint32_t attempts = 0;
  std::string last_error;
  int64_t due_ms = 0;
  int64_t created_ms = 0;
};

struct OutboxStats {
  uint64_t delivered = 0;  // deleted after a delivery (including refused ones)
  uint64_t refused = 0;    // of which the target refused for good
  uint64_t retries = 0;    // failed attempts written back
  uint64_t expanded = 0;   // broadcast records expanded into per-subscriber records
  size_t in_flight = 0;
  size_t queued = 0;       // known and waiting for a delivery slot
  size_t failing = 0;      // records known to have failed at least once and not delivered yet
};

// The records for the asynchronous side effects and the broadcasts of a command of entity
// (entity_type, key) (`cause` is the command; its idempotency key, if any, derives each
// record's id and key, so that a retried command writes the same records again).
std::vector<store::OutboxRecord> OutboxRecordsFor(const Command& cause,
                                                  std::string_view entity_type,
                                                  std::string_view key,
                                                  const std::vector<SideEffect>& effects,
                                                  const std::vector<Broadcast>& broadcasts,
                                                  int64_t now_ms, uint32_t partition);

// The entity type under which the spawn records of `entity_type`'s unnamed actors are kept
// (a journal per actor whose one event records the spawn; the type's stream lists them all).
std::string SpawnRegistry(std::string_view entity_type);

// Thread-safe.
class Outbox {
 public:
  Outbox(OutboxOptions options, store::Store& store, Clock& clock);
  ~Outbox();  // Stop(), then waits for the deliveries in flight
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Must be called before Start.
  void SetDispatcher(Dispatcher* dispatcher) { dispatcher_ = dispatcher; }
  // Must be called before Start for broadcasts to be delivered (until then they wait).
  void SetSubscribers(SubscriberLookup lookup) { subscribers_ = std::move(lookup); }
  void SetExecutor(BlockingExecutor executor) { executor_ = std::move(executor); }
  // Scans every waiting record once, then starts the scan thread (unless scan_interval is 0).
  void Start();
  // No new deliveries from now on; the scan thread stops. Deliveries in flight go on.
  void Stop();
  // Waits until no delivery (or its store write) is in flight, up to `timeout`.
  bool WaitIdle(std::chrono::milliseconds timeout);

  // Records just made durable: delivered now (those already known are skipped).
  void Deliver(std::vector<store::OutboxRecord> records);
  // Reads the due records from the store and delivers those not known yet; returns how many.
  // (Start scans once for every record, backing off or not: a restart retries at once.)
  size_t Scan();

  // The records waiting in the store (soonest first), for the admin endpoint.
  absl::StatusOr<std::vector<OutboxItem>> List(size_t limit) const;
  OutboxStats stats() const;

 private:
  void Loop();
  std::vector<uint32_t> Partitions() const;
  // The records of `partitions` due before `due_before`, at most `page` of each, soonest
  // first; `full` tells whether a partition had more.
  absl::StatusOr<std::vector<store::OutboxRecord>> Read(const std::vector<uint32_t>& partitions,
                                                        int64_t due_before, size_t page,
                                                        bool* full) const;
  size_t ScanBefore(int64_t due_before);
  bool HasRoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Pump();
  void Send(store::OutboxRecord record);
  // A broadcast record: replaced by its per-subscriber records.
  void Expand(store::OutboxRecord record, std::shared_ptr<internal::v1::OutboxEntry> entry);
  // Writes a record back for a later attempt (it could not be delivered or expanded now).
  void Retry(store::OutboxRecord record, internal::v1::OutboxEntry& entry,
             const absl::Status& error);
  void Finish(const std::string& id, bool failed);

  const OutboxOptions options_;
  store::Store& store_;
  Clock& clock_;
  Dispatcher* dispatcher_ = nullptr;
  SubscriberLookup subscribers_;
  BlockingExecutor executor_;

  mutable absl::Mutex mu_;
  std::deque<store::OutboxRecord> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> known_ ABSL_GUARDED_BY(mu_);    // queued or in flight
  absl::flat_hash_set<std::string> failing_ ABSL_GUARDED_BY(mu_);
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool more_due_ ABSL_GUARDED_BY(mu_) = false;  // the last scan read a full page
  // Scans reading the store now, and the deliveries that finished meanwhile (their records
  // may be on a page read before the delivery's write).
  int scans_reading_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<std::string> finished_while_scanning_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> expanded_{0};
  std::thread thread_;
};

}  // namespace massa
