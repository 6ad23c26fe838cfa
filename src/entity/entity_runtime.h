// The entity runtime: the live entities of this node. It activates an entity on its first
// command (loading state from the store), runs one command at a time per entity in arrival
// order, keeps the state cached while the entity is active, makes state changes durable
// before replying, and passivates entities that stay idle. Actions run here too, without a
// mailbox. Effects (forwards, pipes, side effects) go back out through the Dispatcher.
//
// Effectively-once and durable time (docs/effects.md). What a command produces is written in
// one atomic batch: its state change (with the state's expiry, for a time to live), the
// record of its idempotency key, the timers it set or cancelled (and, for a timer's tick, the
// timer's move to its next due time, conditional on the tick's due time) and the outbox
// records of its asynchronous side effects. Once the batch is durable the outbox delivers
// those (outbox.h) and the timer scheduler learns of the timers (timer_scheduler.h).
// A command whose idempotency key the entity has seen is answered from the record, in its
// turn in the mailbox (so a duplicate of a command still running waits for it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "entity/outbox.h"
#include "entity/timer_scheduler.h"
#include "entity/timers.h"
#include "massa/common/clock.h"
#include "massa/entity/dispatcher.h"
#include "massa/protocol/user_function.h"
#include "massa/store/store.h"

namespace massa {

enum class WriteConsistency;  // crdt/change.h
struct MethodInfo;
struct ServiceInfo;
class Counter;
class Histogram;
class ThreadPool;

// Where the runtime records what it measures; any may be null.
struct RuntimeMetrics {
  Histogram* function_latency = nullptr;     // one call to the user function
  Counter* function_errors = nullptr;        // calls that did not reach or answer the function
  Histogram* store_write_latency = nullptr;  // from Write to durable
  Counter* idempotent_replays = nullptr;     // commands answered from an idempotency record
  Histogram* timer_lateness = nullptr;       // from a tick's due time to its firing
};

struct RuntimeOptions {
  // Used for entity types whose spec sets no timeout.
  std::chrono::milliseconds default_passivation_timeout{30'000};
  // Commands waiting per entity beyond the one running; more gives RESOURCE_EXHAUSTED.
  size_t mailbox_capacity = 1024;
  // Threads for work that may block (state loads on activation). Commands to active
  // entities run on the thread that delivered them, since they do no blocking I/O.
  int blocking_threads = 4;
  // How often idle entities are looked for; 0 = never (tests call PassivateIdle).
  std::chrono::milliseconds sweep_interval{1000};
  // Event sourced: snapshot every N events for entity types whose spec sets no frequency;
  // 0 = no snapshots.
  uint32_t default_snapshot_every = 100;
  // Event sourced: events read from the store and sent to the function per Fold call when an
  // entity is activated.
  size_t replay_batch = 1000;
  // Fencing token of this node's writes (the owner epoch, once entities have owners in a
  // cluster); a store shared with a node holding a higher token refuses them. 0 = none.
  uint64_t fence = 0;
  // In a cluster: the fencing token of a write of entity (entity type, key), the owner epoch of
  // its partition on this node (0 when this node does not own it: the store then refuses the
  // write if anyone owned it since). Unset = `fence` for every entity.
  std::function<uint64_t(std::string_view entity_type, std::string_view key)> fence_of;
  // In a cluster: the partition of entity (entity type, key), under which its timers and outbox
  // records are kept (an action's: (service, "")), and the partitions this node owns now (whose
  // timers and outbox it fires). Unset = partition 0 for everything, fired here.
  std::function<uint32_t(std::string_view entity_type, std::string_view key)> partition_of;
  std::function<std::vector<uint32_t>()> partitions;
  // How long idempotency records are kept where the service's spec sets no retention.
  std::chrono::milliseconds idempotency_retention{std::chrono::hours(24)};
  // How often expired state and idempotency records are reclaimed from the store; 0 = never
  // (tests call SweepExpired).
  std::chrono::milliseconds expiry_sweep_interval{60'000};
  // This node's replica id in CRDT values (its counters, dots and votes). Stable across
  // restarts; unique per node in a cluster.
  std::string replica_id = "massa";
  // In a cluster: CRDT entities are replicated rather than owned. Every node runs a CRDT's
  // commands on its own replica, writes the value joined with what the store holds (never
  // over another node's write: a write that finds a newer value reads it, joins it and writes
  // again), and then calls this with the change's delta (a serialized crdt::Crdt) to send it
  // to the other nodes' replicas, calling `done` once as many of them as `consistency` needs
  // hold it (at once for LOCAL), or with the reason they do not. `like` is the command that
  // made the change (its service, method, key and deadline). Unset = one node.
  std::function<void(const Command& like, std::string delta, WriteConsistency consistency,
                     absl::AnyInvocable<void(absl::Status) &&> done)>
      replicate_crdt;
  // A replica's copy of a CRDT joins the store's value before a command once it was last in
  // step with the store (loaded, written, joined) this long ago: a delta lost on the way (a
  // node unreachable for a while) is made up by then.
  std::chrono::milliseconds crdt_refresh{1000};
  TimerLimits timer_limits;
  OutboxOptions outbox;            // its fence is set from `fence`
  // Its fence and misfire grace are set from the above, and its fence_of from `fence_of`
  // unless set (a cluster exempts replicated CRDTs there).
  TimerSchedulerOptions timers;
};

// Checks that `method` of `service` exists and takes a `payload_type` request (the type may be
// empty: not checked); INVALID_ARGUMENT naming what is wrong.
using TargetCheck = std::function<absl::Status(std::string_view service, std::string_view method,
                                               std::string_view payload_type)>;

// Thread-safe. The user function, store, clock and dispatcher must outlive the runtime.
class EntityRuntime {
 public:
  EntityRuntime(RuntimeOptions options, UserFunction& function, store::Store& store,
                Clock& clock = RealClock());
  ~EntityRuntime();
  EntityRuntime(const EntityRuntime&) = delete;
  EntityRuntime& operator=(const EntityRuntime&) = delete;

  // Where effects go. Must be set before the first Submit.
  void SetDispatcher(Dispatcher* dispatcher);
  // How timers' targets are checked when a handler sets them; unset = not checked.
  void SetTargetCheck(TargetCheck check) { target_check_ = std::move(check); }
  // Must be set before the first Submit, if at all.
  void SetMetrics(RuntimeMetrics metrics) { metrics_ = metrics; }

  // Runs `command` (already routed: method resolved, entity key extracted) and calls `done`
  // once. Errors: RESOURCE_EXHAUSTED when the entity's mailbox is full; UNAVAILABLE when the
  // user function or the store cannot be reached (nothing changed); DEADLINE_EXCEEDED when
  // the caller's deadline passed before the command ran; the function's own failure.
  void Submit(const MethodInfo& method, Command command, ResultCallback done);

  // Spawns the unnamed actor `name` of `service` (whose spec sets `spawned`): writes its spawn
  // record, durably, unless it has one (spawning is idempotent), then calls `done` (OK, or
  // UNAVAILABLE when the store failed). Commands to an actor never spawned fail with NOT_FOUND.
  void Spawn(const ServiceInfo& service, std::string name, ResultCallback done);

  // Drops every entity that is idle (no command running or waiting) for longer than its
  // passivation timeout. Returns how many were passivated.
  size_t PassivateIdle();

  // For entities moving to another owner (a cluster's partition handoff): drops the cached
  // entities that `which` selects and that are idle (no command running or waiting, no write
  // in flight), and marks the others to reload from the store on their next command. Returns
  // how many selected entities are still busy (0: none of them runs or writes here any more).
  size_t Release(const std::function<bool(std::string_view entity_type, std::string_view key)>&
                     which);

  // Entities currently active (state cached or a command queued).
  size_t active_entities() const;
  // The same, per entity type.
  std::vector<std::pair<std::string, size_t>> ActiveByType() const;
  // Commands waiting in mailboxes (not counting those running).
  size_t waiting_commands() const;

  // The fencing token of a write of entity (entity_type, key) (RuntimeOptions::fence_of).
  uint64_t FenceFor(std::string_view entity_type, std::string_view key) const {
    return options_.fence_of ? options_.fence_of(entity_type, key) : options_.fence;
  }
  // The partition of entity (entity_type, key)'s timers and outbox records
  // (RuntimeOptions::partition_of).
  uint32_t PartitionFor(std::string_view entity_type, std::string_view key) const {
    return options_.partition_of ? options_.partition_of(entity_type, key) : 0;
  }

  // Commands accepted and not yet answered.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // Waits until no command is in flight, or until `timeout` passes. Returns true if drained.
  bool Drain(std::chrono::milliseconds timeout);

  // Starts delivering the outbox and firing timers (after SetDispatcher).
  void StartBackground();
  // Stops starting deliveries and ticks (those in flight go on); commands still run.
  void StopEffects();
  // StopEffects, stops the sweeps, and waits (a bounded time) for the deliveries and ticks in
  // flight to finish their writes. Commands still run. Idempotent.
  void StopBackground();

  // One pass of the expiry sweep: reclaims expired state and idempotency records from the
  // store. Returns how many it reclaimed.
  size_t SweepExpired();

  Outbox& outbox() { return *outbox_; }
  TimerScheduler& timers() { return *timers_; }

 public:
  struct Pending;  // a command and its callback (internal)

 private:
  struct Entity;
  struct Shard;
  static constexpr size_t kShards = 16;

  Shard& ShardOf(const Entity& entity) const;
  // Runs `pending` on `entity`, which it owns (running is set): inline when the entity is
  // active, else on the blocking pool after activation.
  void Start(const std::shared_ptr<Entity>& entity, std::unique_ptr<Pending> pending);
  // A reentrant read (Command::reentrant): the stored state, the function, a reply; no mailbox.
  void RunReentrant(std::unique_ptr<Pending> pending);
  // Loads the entity's state; on failure answers `pending` and returns false.
  bool Activate(Entity& entity, Pending& pending);
  // With RuntimeOptions::fence_of: writes the entity's token (a batch that only fences it) and
  // waits for the store; OK at once without one.
  absl::Status RaiseFence(const std::string& entity_type, const std::string& key);
  // Whether `pending` needs a store read before it runs (its idempotency key's record, its
  // timer's due time), and that read; on failure it answers `pending` and returns false.
  static bool NeedsRead(const Entity& entity, const Pending& pending);
  bool ReadForCommand(Entity& entity, Pending& pending);
  // ReadForCommand on this thread, when the store can answer without blocking (an idempotency
  // key it has at hand): kDone, kFailed (answered), or kBlocking (use the blocking pool).
  enum class InlineRead { kDone, kFailed, kBlocking };
  InlineRead ReadInline(Entity& entity, Pending& pending);
  // Takes the store's answer for the command's idempotency record into the entity's memory;
  // on failure answers `pending` and returns false.
  bool TakeIdempotencyRecord(
      Entity& entity, Pending& pending,
      absl::StatusOr<std::optional<store::IdempotencyRecord>> record);
  // Event sourced: the newest snapshot plus the events after it, folded by the function.
  absl::Status Replay(Entity& entity, const ServiceSpec& spec);
  // The journal append (events, maybe a snapshot) for an event-sourced command's outcome;
  // moves the events out of `outcome`.
  store::JournalAppend AppendFor(const Entity& entity, const Pending& pending,
                                 Outcome& outcome) const;
  void Execute(const std::shared_ptr<Entity>& entity, std::unique_ptr<Pending> pending);
  // Called with the shard mutex held when `pending` becomes the entity's running command.
  static void TakeOwnership(Entity& entity, Pending& pending);
  // Answers with a failure, or applies the effects and replies.
  void Answer(std::unique_ptr<Pending> pending, Outcome outcome);
  void OnEntityOutcome(const std::shared_ptr<Entity>& entity, std::unique_ptr<Pending> pending,
                       absl::StatusOr<Outcome> outcome);
  // CRDT entities: applies the outcome's change to the entity's value, as the state update the
  // commit writes. INVALID_ARGUMENT for an operation that does not fit the entity's type.
  absl::Status ApplyCrdtChange(const Entity& entity, Pending& pending, Outcome& outcome) const;
  // Writes what `outcome` changes (state, idempotency record, timers, outbox), pipelined, and
  // replies once it is durable. `from_function`: the outcome is new (not a replay).
  void Commit(const std::shared_ptr<Entity>& entity, std::unique_ptr<Pending> pending,
              Outcome outcome, bool from_function);
  // Whether `entity`'s commands run on a replica of a replicated CRDT (RuntimeOptions::
  // replicate_crdt): not fenced, not pipelined, written joined with the stored value.
  bool Replicated(const ServiceSpec& spec) const;
  // Writes `batch` for replicated CRDT `entity` (its value is the last mutation): on a newer
  // stored value, reads it, joins it into the entity's value and writes again; then `done`.
  void WriteJoined(const std::shared_ptr<Entity>& entity, store::WriteBatch batch,
                   absl::AnyInvocable<void(absl::Status) &&> done, int attempt);
  // Whether a replicated CRDT's copy is to join the store's value before `pending` runs
  // (RuntimeOptions::crdt_refresh); Refresh does it (blocking).
  bool Stale(const Entity& entity, const Pending& pending) const;
  bool Refresh(Entity& entity, Pending& pending);
  // A delta from another replica (Command::crdt_merge): joined into the entity's value.
  void MergeDelta(const std::shared_ptr<Entity>& entity, std::unique_ptr<Pending> pending);
  // After a replicated CRDT change is durable: sends its delta to the other replicas, then
  // answers (at once for LOCAL, once enough replicas hold it for MAJORITY and ALL).
  void ReplicateAndAnswer(std::unique_ptr<Pending> pending, Outcome outcome);
  // The timer changes `effects` ask for, checked; INVALID_ARGUMENT naming the timer.
  absl::Status TimerChangesFor(const Pending& pending, std::string_view entity_type,
                               std::string_view key, const std::vector<TimerEffect>& effects,
                               int64_t now_ms, std::vector<store::TimerChange>* out) const;
  void AfterCommand(const std::shared_ptr<Entity>& entity);
  void RunAction(std::unique_ptr<Pending> pending);
  void CommitAction(std::unique_ptr<Pending> pending, Outcome outcome);
  void ApplyEffectsAndReply(std::unique_ptr<Pending> pending, Outcome outcome);
  // After a write is durable: hands its outbox records and timer changes on.
  void Published(std::vector<store::OutboxRecord> outbox,
                 const std::vector<store::TimerChange>& timers);
  void SweepLoop();
  void ObserveFunctionCall(std::chrono::steady_clock::time_point started, bool reached);

  const RuntimeOptions options_;
  UserFunction& function_;
  store::Store& store_;
  Clock& clock_;
  Dispatcher* dispatcher_ = nullptr;
  TargetCheck target_check_;
  RuntimeMetrics metrics_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<TimerScheduler> timers_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<int64_t> in_flight_{0};
  std::unique_ptr<ThreadPool> blocking_pool_;
  // Pooled actions: commands running per service (ServiceSpec::max_concurrency).
  absl::Mutex pools_mu_;
  absl::flat_hash_map<const ServiceSpec*, std::unique_ptr<std::atomic<uint32_t>>> pools_
      ABSL_GUARDED_BY(pools_mu_);

  absl::Mutex sweep_mu_;
  bool stopping_ ABSL_GUARDED_BY(sweep_mu_) = false;
  std::thread sweeper_;
};

}  // namespace massa
