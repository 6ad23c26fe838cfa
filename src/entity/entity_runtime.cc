#include "entity/entity_runtime.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/metrics.h"
#include "common/thread_pool.h"
#include "entity/catalog.h"
#include "entity/state_codec.h"
#include "spdlog/spdlog.h"

namespace massa {

struct EntityRuntime::Pending {
  const MethodInfo* method;
  Command command;
  ResultCallback done;
  uint64_t epoch = 0;              // the entity's epoch when the command started (entities only)
  std::unique_ptr<Pending> next;  // the mailbox is an intrusive FIFO of waiting commands
};

namespace {

// Commands waiting for their entity, oldest first. Empty costs two pointers and a count, which
// matters with 100,000s of idle entities (std::deque allocates on construction).
class Mailbox {
 public:
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }
  void Push(std::unique_ptr<EntityRuntime::Pending> pending);
  std::unique_ptr<EntityRuntime::Pending> Pop();

 private:
  std::unique_ptr<EntityRuntime::Pending> head_;
  EntityRuntime::Pending* tail_ = nullptr;
  uint32_t size_ = 0;
};

}  // namespace

struct EntityRuntime::Entity {
  Entity(const std::string& type_in, std::string key_in, uint32_t shard_in,
         std::chrono::milliseconds timeout)
      : type(type_in), key(std::move(key_in)), shard(shard_in), passivation_timeout(timeout) {}

  const std::string& type;  // the service spec's entity type, in the catalog
  const std::string key;
  const uint32_t shard;
  const std::chrono::milliseconds passivation_timeout;

  // Guarded by the shard's mutex.
  Mailbox mailbox;
  bool running = false;
  bool needs_reload = false;  // set with an epoch bump; the next command reloads from the store
  // Writes (and reply barriers) handed to the store and not yet called back. While there
  // are any, the cached state is ahead of the store: replies wait for the store, and the
  // entity is not passivated.
  int writes_in_flight = 0;
  // Bumped when a write fails: every command started in an older epoch ran on state that
  // never became durable, so its outcome is reported as unknown (UNAVAILABLE).
  uint64_t epoch = 0;
  std::chrono::steady_clock::time_point last_used;

  // Owned by the command that is running (handed from one to the next under the mutex).
  bool activated = false;
  std::optional<TypedValue> state;
  // Event sourced: events folded into `state`; value entity: the state's version. Both count
  // the writes sent to the store (durable or in flight), which name it as their expectation.
  uint64_t sequence = 0;
};

namespace {

void Mailbox::Push(std::unique_ptr<EntityRuntime::Pending> pending) {
  EntityRuntime::Pending* raw = pending.get();
  if (tail_ == nullptr) {
    head_ = std::move(pending);
  } else {
    tail_->next = std::move(pending);
  }
  tail_ = raw;
  ++size_;
}

std::unique_ptr<EntityRuntime::Pending> Mailbox::Pop() {
  std::unique_ptr<EntityRuntime::Pending> first = std::move(head_);
  head_ = std::move(first->next);
  if (head_ == nullptr) tail_ = nullptr;
  --size_;
  return first;
}

// Entities are told apart by their type (the catalog's string, compared by address) and key.
struct EntityKey {
  const std::string* type;
  std::string key;

  template <typename H>
  friend H AbslHashValue(H h, const EntityKey& k) {
    return H::combine(std::move(h), k.type, k.key);
  }
  friend bool operator==(const EntityKey& a, const EntityKey& b) {
    return a.type == b.type && a.key == b.key;
  }
};

}  // namespace

struct EntityRuntime::Shard {
  mutable absl::Mutex mu;
  absl::flat_hash_map<EntityKey, std::shared_ptr<Entity>> entities ABSL_GUARDED_BY(mu);
};

namespace {

CommandResult Error(absl::Status status) { return CommandResult{std::move(status), {}, {}}; }

// Two parties (the store's callback, which sets `reply`, and the command's thread, which
// releases the entity) each call Arrive once; the second one sends the reply.
struct ReplyHandoff {
  std::atomic<int> arrivals{0};
  absl::AnyInvocable<void() &&> reply;

  void Arrive() {
    if (arrivals.fetch_add(1, std::memory_order_acq_rel) == 1) std::move(reply)();
  }
};

bool Expired(const Command& command, const Clock& clock) {
  return command.deadline != std::chrono::steady_clock::time_point::max() &&
         clock.Now() >= command.deadline;
}

}  // namespace

EntityRuntime::EntityRuntime(RuntimeOptions options, UserFunction& function, store::Store& store,
                             Clock& clock)
    : options_(options),
      function_(function),
      store_(store),
      clock_(clock),
      shards_(new Shard[kShards]),
      blocking_pool_(std::make_unique<ThreadPool>(options.blocking_threads, "massa-load")) {
  if (options_.sweep_interval.count() > 0) sweeper_ = std::thread([this] { SweepLoop(); });
}

EntityRuntime::~EntityRuntime() {
  StopBackground();
  blocking_pool_.reset();
}

void EntityRuntime::StopBackground() {
  {
    absl::MutexLock lock(&sweep_mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();
}

EntityRuntime::Shard& EntityRuntime::ShardOf(const Entity& entity) const {
  return shards_[entity.shard];
}

void EntityRuntime::Submit(const MethodInfo& method, Command command, ResultCallback done) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  auto pending = std::make_unique<Pending>(Pending{
      &method, std::move(command),
      [this, done = std::move(done)](CommandResult result) mutable {
        std::move(done)(std::move(result));
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
      },
      0, nullptr});

  const ServiceSpec& spec = method.service->spec;
  if (spec.kind == EntityKind::kAction) {
    RunAction(std::move(pending));
    return;
  }

  EntityKey id{&spec.entity_type, pending->command.entity_key};
  const auto shard_index = static_cast<uint32_t>(absl::HashOf(id) % kShards);
  Shard& shard = shards_[shard_index];
  std::shared_ptr<Entity> entity;  // set when this command is to run now
  absl::Status full;
  {
    absl::MutexLock lock(&shard.mu);
    auto& slot = shard.entities[std::move(id)];
    if (slot == nullptr) {
      auto timeout = spec.passivation_timeout.count() > 0 ? spec.passivation_timeout
                                                          : options_.default_passivation_timeout;
      slot = std::make_shared<Entity>(spec.entity_type, pending->command.entity_key, shard_index,
                                      timeout);
      slot->last_used = clock_.Now();
    }
    if (!slot->running) {
      slot->running = true;  // this command now owns the entity
      TakeOwnership(*slot, *pending);
      entity = slot;
    } else if (slot->mailbox.size() >= options_.mailbox_capacity) {
      full = absl::ResourceExhaustedError(
          absl::StrCat("mailbox of entity ", spec.entity_type, "/", slot->key, " is full (",
                       options_.mailbox_capacity, " commands waiting)"));
    } else {
      slot->mailbox.Push(std::move(pending));
    }
  }
  if (!full.ok()) {
    std::move(pending->done)(Error(std::move(full)));
    return;
  }
  if (entity != nullptr) Start(entity, std::move(pending));
}

void EntityRuntime::TakeOwnership(Entity& entity, Pending& pending) {
  if (entity.needs_reload) {
    entity.needs_reload = false;
    entity.activated = false;
    entity.state.reset();
    entity.sequence = 0;
  }
  pending.epoch = entity.epoch;
}

namespace {
// How deeply Start calls nest on this thread: a function that answers inline (fakes do)
// would otherwise recurse once per queued command.
thread_local int start_depth = 0;
constexpr int kMaxStartDepth = 8;
}  // namespace

void EntityRuntime::Start(const std::shared_ptr<Entity>& entity,
                          std::unique_ptr<Pending> pending) {
  // An active entity needs no I/O before the function call, so it runs on this thread; an
  // entity that must load its state first goes to the blocking pool.
  if (entity->activated && start_depth < kMaxStartDepth) {
    ++start_depth;
    Execute(entity, std::move(pending));
    --start_depth;
    return;
  }
  blocking_pool_->Post([this, entity, pending = std::move(pending)]() mutable {
    if (!entity->activated && !Activate(*entity, *pending)) {
      AfterCommand(entity);
      return;
    }
    Execute(entity, std::move(pending));
  });
}

bool EntityRuntime::Activate(Entity& entity, Pending& pending) {
  const ServiceSpec& spec = pending.method->service->spec;
  if (spec.kind == EntityKind::kEventSourced) {
    absl::Status replayed = Replay(entity, spec);
    if (!replayed.ok()) {
      spdlog::error("entity {}/{}: {}", entity.type, entity.key, replayed.ToString());
      std::move(pending.done)(Error(std::move(replayed)));
      return false;
    }
    entity.activated = true;
    return true;
  }
  absl::StatusOr<store::VersionedValue> stored = store_.ReadValue(entity.type, entity.key);
  if (!stored.ok()) {
    std::move(pending.done)(Error(absl::UnavailableError(absl::StrCat(
        "could not load entity ", entity.type, "/", entity.key, ": ",
        stored.status().message()))));
    return false;
  }
  entity.state.reset();
  entity.sequence = stored->version;
  if (stored->value.has_value()) {
    absl::StatusOr<TypedValue> state = DecodeState(*stored->value);
    if (!state.ok()) {
      spdlog::error("entity {}/{}: {}", entity.type, entity.key, state.status().ToString());
      std::move(pending.done)(Error(absl::InternalError(absl::StrCat(
          "stored state of entity ", entity.type, "/", entity.key, " is unreadable"))));
      return false;
    }
    entity.state = *std::move(state);
  }
  entity.activated = true;
  return true;
}

absl::Status EntityRuntime::Replay(Entity& entity, const ServiceSpec& spec) {
  const std::string name = absl::StrCat(entity.type, "/", entity.key);
  auto unavailable = [&name](const absl::Status& status) {
    return absl::Status(status.code() == absl::StatusCode::kDataLoss
                            ? absl::StatusCode::kInternal
                            : absl::StatusCode::kUnavailable,
                        absl::StrCat("could not load entity ", name, ": ", status.message()));
  };
  std::optional<TypedValue> state;
  uint64_t sequence = 0;
  absl::StatusOr<std::optional<store::Snapshot>> snapshot =
      store_.ReadSnapshot(entity.type, entity.key);
  if (!snapshot.ok()) return unavailable(snapshot.status());
  if (snapshot->has_value()) {
    absl::StatusOr<TypedValue> decoded = DecodeState((*snapshot)->state);
    if (decoded.ok() && (spec.state_type.empty() || decoded->type == spec.state_type)) {
      state = *std::move(decoded);
      sequence = (*snapshot)->sequence;
    } else {
      // Never trust a damaged snapshot: the journal is the truth, fold all of it.
      spdlog::warn("entity {}: the snapshot at event {} is unusable ({}); replaying the journal",
                   name, (*snapshot)->sequence,
                   decoded.ok() ? absl::StrCat("its type is ", decoded->type, ", expected ",
                                               spec.state_type)
                                : decoded.status().ToString());
    }
  }
  absl::StatusOr<uint64_t> last = store_.ReadLastSequence(entity.type, entity.key);
  if (!last.ok()) return unavailable(last.status());
  while (sequence < *last) {
    absl::StatusOr<std::vector<Event>> events =
        store_.ReadEvents(entity.type, entity.key, sequence + 1, options_.replay_batch);
    if (!events.ok()) return unavailable(events.status());
    uint64_t expected = sequence + 1;
    for (const Event& event : *events) {
      if (event.sequence != expected) break;
      ++expected;
    }
    if (events->empty() || expected != events->back().sequence + 1) {
      // Retention deletes the events a snapshot covers; without a usable snapshot they are
      // needed again. Refuse rather than build state from part of the history.
      return absl::InternalError(absl::StrCat(
          "the journal of entity ", name, " has no event ", expected, " though it ends at ", *last,
          " (events covered by a snapshot are deleted when retention is on, and the snapshot "
          "is unusable)"));
    }
    absl::Notification folded_signal;
    absl::StatusOr<std::optional<TypedValue>> folded;
    const auto started = clock_.Now();
    function_.Fold(spec.name, entity.key, state, *events,
                   [&](absl::StatusOr<std::optional<TypedValue>> result) {
                     folded = std::move(result);
                     folded_signal.Notify();
                   });
    folded_signal.WaitForNotification();
    const bool reached = folded.ok() || folded.status().code() != absl::StatusCode::kUnavailable;
    ObserveFunctionCall(started, reached);
    if (!folded.ok()) {
      return absl::Status(reached ? absl::StatusCode::kInternal : absl::StatusCode::kUnavailable,
                          absl::StrCat("could not rebuild entity ", name, " from events ",
                                       sequence + 1, "..", events->back().sequence, ": ",
                                       folded.status().message()));
    }
    state = *std::move(folded);
    sequence = events->back().sequence;
  }
  entity.state = std::move(state);
  entity.sequence = sequence;
  return absl::OkStatus();
}

void EntityRuntime::Execute(const std::shared_ptr<Entity>& entity,
                            std::unique_ptr<Pending> pending) {
  if (Expired(pending->command, clock_)) {
    std::move(pending->done)(Error(absl::DeadlineExceededError(
        "deadline passed while the command waited for its entity")));
    AfterCommand(entity);
    return;
  }
  const Command& command = pending->command;
  const bool event_sourced = pending->method->service->spec.kind == EntityKind::kEventSourced;
  const auto started = clock_.Now();
  auto on_outcome = [this, entity, started,
                     pending = std::move(pending)](absl::StatusOr<Outcome> outcome) mutable {
    ObserveFunctionCall(started, outcome.ok());
    OnEntityOutcome(entity, std::move(pending), std::move(outcome));
  };
  if (event_sourced) {
    function_.HandleEventSourced(command, entity->state, entity->sequence, std::move(on_outcome));
  } else {
    function_.HandleValueEntity(command, entity->state, std::move(on_outcome));
  }
}

store::JournalAppend EntityRuntime::AppendFor(const Entity& entity, const Pending& pending,
                                              Outcome& outcome) const {
  const ServiceSpec& spec = pending.method->service->spec;
  store::JournalAppend append;
  append.entity_type = entity.type;
  append.key = entity.key;
  append.expected_sequence = entity.sequence;
  const int64_t now_ms = clock_.WallMillis();
  uint64_t sequence = entity.sequence;
  append.events.reserve(outcome.events.size());
  for (TypedValue& payload : outcome.events) {
    append.events.push_back(Event{++sequence, std::move(payload.type), std::move(payload.bytes),
                                  now_ms, Metadata{{"massa-command", pending.method->path}}});
  }
  outcome.events.clear();
  const uint32_t every =
      spec.snapshot_every > 0 ? spec.snapshot_every : options_.default_snapshot_every;
  if (every > 0 && sequence / every != entity.sequence / every) {
    append.snapshot = store::Snapshot{sequence, EncodeState(*outcome.state_update->value)};
    append.delete_events_covered_by_snapshot = spec.delete_events_on_snapshot;
  }
  return append;
}

void EntityRuntime::OnEntityOutcome(const std::shared_ptr<Entity>& entity,
                                    std::unique_ptr<Pending> pending,
                                    absl::StatusOr<Outcome> outcome) {
  if (!outcome.ok()) {  // the function was not reached: nothing to apply
    std::move(pending->done)(Error(std::move(outcome).status()));
    AfterCommand(entity);
    return;
  }
  const bool event_sourced = pending->method->service->spec.kind == EntityKind::kEventSourced;
  if (event_sourced && !outcome->failed() && !outcome->events.empty() &&
      (!outcome->state_update.has_value() || !outcome->state_update->value.has_value())) {
    std::move(pending->done)(Error(absl::InternalError(
        "the user function returned events without the state after them; nothing was persisted")));
    AfterCommand(entity);
    return;
  }
  const bool writes = !outcome->failed() && (event_sourced ? !outcome->events.empty()
                                                           : outcome->state_update.has_value());
  bool stale = false;
  bool behind_writes = false;
  {
    absl::MutexLock lock(&ShardOf(*entity).mu);
    stale = entity->epoch != pending->epoch;
    behind_writes = entity->writes_in_flight > 0;
    if (!stale && (writes || behind_writes)) ++entity->writes_in_flight;
  }
  if (stale) {
    std::move(pending->done)(Error(absl::UnavailableError(
        absl::StrCat("an earlier write of entity ", entity->type, "/", entity->key,
                     " failed, so this command's outcome is unknown; retry it"))));
    AfterCommand(entity);
    return;
  }
  if (!writes && !behind_writes) {
    AfterCommand(entity);
    Answer(std::move(pending), *std::move(outcome));
    return;
  }
  // Pipelining: the write goes to the store and the next command runs at once on the new
  // state, so commands queued on one entity share the store's next flush. Replies (even of
  // commands that wrote nothing) go through the store too, as barriers, so that nobody sees
  // state before it is durable; the store calls back in order.
  store::WriteBatch batch;
  batch.fence = options_.fence;
  if (writes && event_sourced) {
    batch.appends.push_back(AppendFor(*entity, *pending, *outcome));
    entity->sequence = batch.appends.back().events.back().sequence;
    entity->state = std::move(outcome->state_update->value);
  } else if (writes) {
    // Conditional on the version this entity last wrote: another writer of the same database
    // (a node that took the entity over) makes it fail, and the entity reloads.
    const std::optional<TypedValue>& value = outcome->state_update->value;
    if (value.has_value()) {
      batch.Put(entity->type, entity->key, EncodeState(*value), entity->sequence);
    } else {
      batch.Delete(entity->type, entity->key, entity->sequence);
    }
    ++entity->sequence;
    entity->state = outcome->state_update->value;
  }
  // A store that calls back inline (the memory store) must not reply before the entity is
  // released below, so the reply is handed over: whoever comes second sends it.
  auto handoff = std::make_shared<ReplyHandoff>();
  const uint64_t epoch = pending->epoch;
  const auto write_started = clock_.Now();
  store_.Write(std::move(batch), [this, entity, epoch, handoff, write_started,
                                  pending = std::move(pending),
                                  outcome = *std::move(outcome)](absl::Status status) mutable {
    if (metrics_.store_write_latency != nullptr) {
      metrics_.store_write_latency->Observe(
          std::chrono::duration<double>(clock_.Now() - write_started).count());
    }
    bool confirmed = false;
    {
      absl::MutexLock lock(&ShardOf(*entity).mu);
      --entity->writes_in_flight;
      if (!status.ok() && epoch == entity->epoch) {
        ++entity->epoch;
        entity->needs_reload = true;
      }
      confirmed = status.ok() && epoch == entity->epoch;
      entity->last_used = clock_.Now();
    }
    handoff->reply = [this, entity, confirmed, status = std::move(status),
                      pending = std::move(pending), outcome = std::move(outcome)]() mutable {
      if (confirmed) {
        Answer(std::move(pending), std::move(outcome));
        return;
      }
      std::move(pending->done)(Error(absl::UnavailableError(
          !status.ok() ? absl::StrCat("state of entity ", entity->type, "/", entity->key,
                                      " could not be made durable: ", status.message())
                       : absl::StrCat("an earlier write of entity ", entity->type, "/",
                                      entity->key,
                                      " failed, so this command's outcome is unknown; retry it"))));
    };
    handoff->Arrive();
  });
  AfterCommand(entity);
  handoff->Arrive();
}

void EntityRuntime::Answer(std::unique_ptr<Pending> pending, Outcome outcome) {
  if (outcome.failed()) {
    std::move(pending->done)(Error(std::get<absl::Status>(std::move(outcome.result))));
    return;
  }
  ApplyEffectsAndReply(std::move(pending), std::move(outcome));
}

void EntityRuntime::AfterCommand(const std::shared_ptr<Entity>& entity) {
  std::unique_ptr<Pending> next;
  {
    Shard& shard = ShardOf(*entity);
    absl::MutexLock lock(&shard.mu);
    entity->last_used = clock_.Now();
    if (entity->mailbox.empty()) {
      entity->running = false;
      return;
    }
    next = entity->mailbox.Pop();
    TakeOwnership(*entity, *next);
  }
  Start(entity, std::move(next));
}

void EntityRuntime::RunAction(std::unique_ptr<Pending> pending) {
  if (Expired(pending->command, clock_)) {
    std::move(pending->done)(Error(absl::DeadlineExceededError("deadline passed")));
    return;
  }
  const Command& command = pending->command;
  const auto started = clock_.Now();
  function_.HandleAction(command, [this, started, pending = std::move(pending)](
                                      absl::StatusOr<Outcome> outcome) mutable {
    ObserveFunctionCall(started, outcome.ok());
    if (!outcome.ok()) {
      std::move(pending->done)(Error(std::move(outcome).status()));
    } else if (outcome->failed()) {
      std::move(pending->done)(Error(std::get<absl::Status>(outcome->result)));
    } else {
      ApplyEffectsAndReply(std::move(pending), *std::move(outcome));
    }
  });
}

namespace {

// Runs synchronous side effects one after another, then `then` with the first error (or OK).
struct SyncEffects {
  Dispatcher* dispatcher;
  std::vector<Command> commands;
  size_t next = 0;
  absl::AnyInvocable<void(absl::Status) &&> then;

  static void Run(std::shared_ptr<SyncEffects> self) {
    if (self->next == self->commands.size()) {
      std::move(self->then)(absl::OkStatus());
      return;
    }
    Command command = std::move(self->commands[self->next++]);
    std::string target = absl::StrCat(command.service, "/", command.method);
    self->dispatcher->Dispatch(std::move(command), [self, target](CommandResult result) mutable {
      if (!result.status.ok()) {
        std::move(self->then)(absl::Status(
            result.status.code(),
            absl::StrCat("side effect ", target, " failed: ", result.status.message())));
        return;
      }
      Run(std::move(self));
    });
  }
};

Command EffectCommand(const Command& cause, std::string service, std::string method,
                      std::string payload, const Metadata& metadata) {
  Command command;
  command.service = std::move(service);
  command.method = std::move(method);
  command.payload = std::move(payload);
  command.metadata = cause.metadata;
  command.metadata.insert(command.metadata.end(), metadata.begin(), metadata.end());
  command.hops = cause.hops + 1;
  return command;
}

}  // namespace

void EntityRuntime::ApplyEffectsAndReply(std::unique_ptr<Pending> pending, Outcome outcome) {
  const Command& cause = pending->command;
  auto sync = std::make_shared<SyncEffects>();
  sync->dispatcher = dispatcher_;
  for (SideEffect& effect : outcome.side_effects) {
    Command command = EffectCommand(cause, std::move(effect.service), std::move(effect.method),
                                    std::move(effect.payload), effect.metadata);
    if (effect.synchronous) {
      command.deadline = cause.deadline;
      sync->commands.push_back(std::move(command));
      continue;
    }
    std::string target = absl::StrCat(command.service, "/", command.method);
    dispatcher_->Dispatch(std::move(command), [target](CommandResult result) {
      if (!result.status.ok()) {
        spdlog::warn("asynchronous side effect {} failed: {}", target, result.status.ToString());
      }
    });
  }
  sync->then = [this, pending = std::move(pending),
                result = std::move(outcome.result)](absl::Status effects) mutable {
    if (!effects.ok()) {
      std::move(pending->done)(Error(std::move(effects)));
      return;
    }
    const Command& origin = pending->command;
    if (auto* reply = std::get_if<Reply>(&result)) {
      std::move(pending->done)(
          CommandResult{absl::OkStatus(), std::move(reply->payload), std::move(reply->metadata)});
    } else if (auto* forward = std::get_if<Forward>(&result)) {
      Command command = EffectCommand(origin, std::move(forward->service),
                                      std::move(forward->method), std::move(forward->payload),
                                      forward->metadata);
      command.deadline = origin.deadline;
      dispatcher_->Dispatch(std::move(command), std::move(pending->done));
    } else if (auto* pipe = std::get_if<Pipe>(&result)) {
      Command command = EffectCommand(origin, std::move(pipe->service), std::move(pipe->method),
                                      std::move(pipe->payload), pipe->metadata);
      command.deadline = origin.deadline;
      dispatcher_->Dispatch(std::move(command), std::move(pending->done));
    }
  };
  SyncEffects::Run(std::move(sync));
}

size_t EntityRuntime::PassivateIdle() {
  const auto now = clock_.Now();
  size_t passivated = 0;
  for (size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    absl::MutexLock lock(&shard.mu);
    passivated += absl::erase_if(shard.entities, [&](const auto& entry) {
      const Entity& e = *entry.second;
      return !e.running && e.mailbox.empty() && e.writes_in_flight == 0 &&
             now - e.last_used >= e.passivation_timeout;
    });
  }
  return passivated;
}

void EntityRuntime::ObserveFunctionCall(std::chrono::steady_clock::time_point started,
                                        bool reached) {
  if (metrics_.function_latency != nullptr) {
    metrics_.function_latency->Observe(
        std::chrono::duration<double>(clock_.Now() - started).count());
  }
  if (!reached && metrics_.function_errors != nullptr) metrics_.function_errors->Add();
}

std::vector<std::pair<std::string, size_t>> EntityRuntime::ActiveByType() const {
  absl::flat_hash_map<const std::string*, size_t> counts;
  for (size_t i = 0; i < kShards; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    for (const auto& [id, entity] : shards_[i].entities) ++counts[id.type];
  }
  std::vector<std::pair<std::string, size_t>> out;
  for (const auto& [type, count] : counts) out.emplace_back(*type, count);
  return out;
}

size_t EntityRuntime::waiting_commands() const {
  size_t waiting = 0;
  for (size_t i = 0; i < kShards; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    for (const auto& [id, entity] : shards_[i].entities) waiting += entity->mailbox.size();
  }
  return waiting;
}

size_t EntityRuntime::active_entities() const {
  size_t count = 0;
  for (size_t i = 0; i < kShards; ++i) {
    absl::MutexLock lock(&shards_[i].mu);
    count += shards_[i].entities.size();
  }
  return count;
}

bool EntityRuntime::Drain(std::chrono::milliseconds timeout) {
  // Real time: a wait of the caller's, not something the runtime schedules.
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (in_flight() > 0) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void EntityRuntime::SweepLoop() {
  absl::MutexLock lock(&sweep_mu_);
  while (!stopping_) {
    sweep_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                               absl::Milliseconds(options_.sweep_interval.count()));
    if (stopping_) break;
    sweep_mu_.Unlock();
    size_t passivated = PassivateIdle();
    if (passivated > 0) spdlog::debug("passivated {} idle entities", passivated);
    sweep_mu_.Lock();
  }
}

}  // namespace massa
