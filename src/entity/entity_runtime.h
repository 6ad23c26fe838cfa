// The entity runtime: the live entities of this node. It activates an entity on its first
// command (loading state from the store), runs one command at a time per entity in arrival
// order, keeps the state cached while the entity is active, makes state changes durable
// before replying, and passivates entities that stay idle. Actions run here too, without a
// mailbox. Effects (forwards, pipes, side effects) go back out through the Dispatcher.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "massa/common/clock.h"
#include "massa/entity/dispatcher.h"
#include "massa/protocol/user_function.h"
#include "massa/store/store.h"

namespace massa {

struct MethodInfo;
class Counter;
class Histogram;
class ThreadPool;

// Where the runtime records what it measures; any may be null.
struct RuntimeMetrics {
  Histogram* function_latency = nullptr;     // one call to the user function
  Counter* function_errors = nullptr;        // calls that did not reach or answer the function
  Histogram* store_write_latency = nullptr;  // from Write to durable
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
};

// Thread-safe. The user function, store, clock and dispatcher must outlive the runtime.
class EntityRuntime {
 public:
  EntityRuntime(RuntimeOptions options, UserFunction& function, store::Store& store,
                Clock& clock = RealClock());
  ~EntityRuntime();
  EntityRuntime(const EntityRuntime&) = delete;
  EntityRuntime& operator=(const EntityRuntime&) = delete;

  // Where effects go. Must be set before the first Submit.
  void SetDispatcher(Dispatcher* dispatcher) { dispatcher_ = dispatcher; }
  // Must be set before the first Submit, if at all.
  void SetMetrics(RuntimeMetrics metrics) { metrics_ = metrics; }

  // Runs `command` (already routed: method resolved, entity key extracted) and calls `done`
  // once. Errors: RESOURCE_EXHAUSTED when the entity's mailbox is full; UNAVAILABLE when the
  // user function or the store cannot be reached (nothing changed); DEADLINE_EXCEEDED when
  // the caller's deadline passed before the command ran; the function's own failure.
  void Submit(const MethodInfo& method, Command command, ResultCallback done);

  // Drops every entity that is idle (no command running or waiting) for longer than its
  // passivation timeout. Returns how many were passivated.
  size_t PassivateIdle();

  // Entities currently active (state cached or a command queued).
  size_t active_entities() const;
  // The same, per entity type.
  std::vector<std::pair<std::string, size_t>> ActiveByType() const;
  // Commands waiting in mailboxes (not counting those running).
  size_t waiting_commands() const;

  // Commands accepted and not yet answered.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // Waits until no command is in flight, or until `timeout` passes. Returns true if drained.
  bool Drain(std::chrono::milliseconds timeout);

  // Stops background work (the passivation sweep); commands still run. Idempotent.
  void StopBackground();

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
  // Loads the entity's state; on failure answers `pending` and returns false.
  bool Activate(Entity& entity, Pending& pending);
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
  void AfterCommand(const std::shared_ptr<Entity>& entity);
  void RunAction(std::unique_ptr<Pending> pending);
  void ApplyEffectsAndReply(std::unique_ptr<Pending> pending, Outcome outcome);
  void SweepLoop();
  void ObserveFunctionCall(std::chrono::steady_clock::time_point started, bool reached);

  const RuntimeOptions options_;
  UserFunction& function_;
  store::Store& store_;
  Clock& clock_;
  Dispatcher* dispatcher_ = nullptr;
  RuntimeMetrics metrics_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<int64_t> in_flight_{0};
  std::unique_ptr<ThreadPool> blocking_pool_;

  absl::Mutex sweep_mu_;
  bool stopping_ ABSL_GUARDED_BY(sweep_mu_) = false;
  std::thread sweeper_;
};

}  // namespace massa
