#include "entity/entity_runtime.h"

#include <deque>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "common/metrics.h"
#include "common/thread_pool.h"
#include "crdt/change.h"
#include "crdt/crdt.h"
#include "entity/catalog.h"
#include "entity/effects.h"
#include "entity/idempotency.h"
#include "entity/state_codec.h"
#include "spdlog/spdlog.h"

namespace massa {

struct EntityRuntime::Pending {
  const MethodInfo* method;
  Command command;
  ResultCallback done;
  uint64_t epoch = 0;              // the entity's epoch when the command started (entities only)
  std::unique_ptr<Pending> next;  // the mailbox is an intrusive FIFO of waiting commands
  bool read_done = false;         // ReadForCommand ran for it
  std::optional<crdt::Crdt> crdt;  // CRDT entities: the value handed to the function, parsed once
  // Replicated CRDT entities: the delta of the command's change, for the other replicas, and
  // how many of them must hold it before the reply.
  std::optional<std::string> crdt_delta;
  WriteConsistency consistency = WriteConsistency::kLocal;
};

namespace {

// Idempotency records an entity keeps in memory (beyond those whose writes are in flight);
// older ones are read from the store when a retry needs them.
constexpr size_t kRememberedRequests = 64;
// Keys of dropped records an entity remembers (as hashes) so that a new key still needs no
// store read; past this many it reads the store for every key it does not hold.
constexpr size_t kForgottenKeys = 4096;

// Whether `command` is recorded under its idempotency key. A timer's tick is not: the
// conditional write of its timer already makes it happen once.
bool RecordsIdempotency(const Command& command) {
  return !command.idempotency_key.empty() && !command.timer.has_value();
}

// The label of a CRDT entity's stored state (the bytes are crdt::Crdt::Serialize()).
constexpr std::string_view kCrdtStateType = "massa.crdt";

// A CRDT entity's value from its cached state: the empty value of `type` when there is none.
absl::StatusOr<crdt::Crdt> CrdtOf(const std::optional<TypedValue>& state, crdt::Type type) {
  if (!state.has_value()) return crdt::Crdt(type);
  absl::StatusOr<crdt::Crdt> value = crdt::Crdt::Parse(state->bytes);
  if (!value.ok() || value->type() != type) {
    return absl::InternalError(absl::StrCat("the stored value is not a ", crdt::TypeName(type),
                                            value.ok() ? "" : ": ",
                                            value.ok() ? "" : value.status().message()));
  }
  return value;
}

// The state in a stored value (nullopt: none); INTERNAL when it does not decode.
absl::StatusOr<std::optional<TypedValue>> StateOf(const store::VersionedValue& stored,
                                                  std::string_view type, std::string_view key) {
  if (!stored.value.has_value()) return std::optional<TypedValue>();
  absl::StatusOr<TypedValue> state = DecodeState(*stored.value);
  if (!state.ok()) {
    spdlog::error("entity {}/{}: {}", type, key, state.status().ToString());
    return absl::InternalError(absl::StrCat("stored state of entity ", std::string(type), "/",
                                            std::string(key), " is unreadable"));
  }
  return std::optional<TypedValue>(*std::move(state));
}

// A handler's broadcasts: each names a channel and a message type.
absl::Status CheckBroadcasts(const std::vector<Broadcast>& broadcasts) {
  for (const Broadcast& broadcast : broadcasts) {
    if (broadcast.channel.empty() || broadcast.channel.size() > 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a broadcast's channel name must have 1 to 256 characters, not ",
          broadcast.channel.size(), "; nothing was applied"));
    }
    if (broadcast.payload.type.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("the broadcast to channel ",
                                                     broadcast.channel,
                                                     " has no message type; nothing was applied"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// What an active entity knows of its idempotency records and timers: written by this runtime
// since activation (maybe still in flight) or read from the store. Allocated on first use.
struct EntityMemory {
  absl::flat_hash_map<std::string, std::shared_ptr<const idempotency::StoredResult>> requests;
  std::deque<std::string> request_order;  // oldest first
  // Whether the store has no idempotency record of this entity but those in `requests` and
  // `forgotten`, so that a key in neither is new and needs no read. Learned once per
  // activation (Store::HasIdempotencyRecords) before the first keyed command runs.
  bool probed = false;
  bool complete = false;
  absl::flat_hash_set<size_t> forgotten;  // hashes of keys whose records left `requests`
  absl::flat_hash_map<std::string, int64_t> timers;  // name -> due time; 0 = none
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
  int64_t expires_ms = 0;  // value entities: when `state` expires (Unix ms); 0 = never
  // When `state` was last known to hold everything the store holds (loaded, written, or
  // joined with it): a replicated CRDT joins the store's value again once this is older than
  // RuntimeOptions::crdt_refresh.
  std::chrono::steady_clock::time_point synced;
  std::unique_ptr<EntityMemory> memory;

  EntityMemory& Memory() {
    if (memory == nullptr) memory = std::make_unique<EntityMemory>();
    return *memory;
  }
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

namespace {

RuntimeOptions Completed(RuntimeOptions options) {
  options.outbox.fence = options.fence;
  options.outbox.partitions = options.partitions;
  options.timers.fence = options.fence;
  if (!options.timers.fence_of) options.timers.fence_of = options.fence_of;
  options.timers.partitions = options.partitions;
  options.timers.misfire_grace = options.timer_limits.misfire_grace;
  return options;
}

}  // namespace

EntityRuntime::EntityRuntime(RuntimeOptions options, UserFunction& function, store::Store& store,
                             Clock& clock)
    : options_(Completed(options)),
      function_(function),
      store_(store),
      clock_(clock),
      outbox_(std::make_unique<Outbox>(options_.outbox, store, clock)),
      timers_(std::make_unique<TimerScheduler>(options_.timers, store, clock)),
      shards_(new Shard[kShards]),
      blocking_pool_(std::make_unique<ThreadPool>(options.blocking_threads, "massa-load")) {
  outbox_->SetExecutor(
      [this](absl::AnyInvocable<void() &&> work) { blocking_pool_->Post(std::move(work)); });
  if (options_.sweep_interval.count() > 0 || options_.expiry_sweep_interval.count() > 0) {
    sweeper_ = std::thread([this] { SweepLoop(); });
  }
}

EntityRuntime::~EntityRuntime() {
  StopBackground();
  outbox_.reset();
  timers_.reset();
  blocking_pool_.reset();
}

void EntityRuntime::SetDispatcher(Dispatcher* dispatcher) {
  dispatcher_ = dispatcher;
  outbox_->SetDispatcher(dispatcher);
  timers_->SetDispatcher(dispatcher);
}

void EntityRuntime::StartBackground() {
  timers_->SetLatenessHistogram(metrics_.timer_lateness);
  outbox_->Start();
  timers_->Start();
}

void EntityRuntime::StopEffects() {
  outbox_->Stop();
  timers_->Stop();
}

void EntityRuntime::StopBackground() {
  StopEffects();
  {
    absl::MutexLock lock(&sweep_mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();
  const auto wait = options_.outbox.delivery_timeout + std::chrono::seconds(5);
  if (!outbox_->WaitIdle(wait)) spdlog::warn("outbox: deliveries still in flight at shutdown");
  if (!timers_->WaitIdle(wait)) spdlog::warn("timers: ticks still in flight at shutdown");
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
      0, nullptr, false, std::nullopt, std::nullopt, WriteConsistency::kLocal});

  const ServiceSpec& spec = method.service->spec;
  if (spec.kind == EntityKind::kAction) {
    RunAction(std::move(pending));
    return;
  }
  if (pending->command.reentrant) {
    RunReentrant(std::move(pending));
    return;
  }

  EntityKey id{&spec.entity_type, pending->command.entity_key};
  const auto shard_index = static_cast<uint32_t>(absl::HashOf(id) % kShards);
  Shard& shard = shards_[shard_index];
  std::shared_ptr<Entity> entity;  // set when this command is to run now
  absl::Status full;
  if (pending->command.crdt_merge.has_value()) {
    // Another replica's delta: only a copy in memory needs it (the store has it already).
    if (spec.kind != EntityKind::kCrdt) {
      std::move(pending->done)(Error(absl::InvalidArgumentError(
          absl::StrCat("a CRDT delta for ", spec.name, ", which is not a CRDT entity"))));
      return;
    }
    bool cached = false;
    {
      absl::MutexLock lock(&shard.mu);
      cached = shard.entities.contains(id);
    }
    if (!cached) {
      std::move(pending->done)(CommandResult{absl::OkStatus(), {}, {}});
      return;
    }
  }
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
    entity.expires_ms = 0;
    entity.memory.reset();
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
  if (entity->activated && start_depth < kMaxStartDepth && !Stale(*entity, *pending)) {
    ++start_depth;
    const InlineRead read = ReadInline(*entity, *pending);
    if (read == InlineRead::kDone) Execute(entity, std::move(pending));
    if (read == InlineRead::kFailed) AfterCommand(entity);
    --start_depth;
    if (read != InlineRead::kBlocking) return;
  }
  blocking_pool_->Post([this, entity, pending = std::move(pending)]() mutable {
    if (!entity->activated ? !Activate(*entity, *pending) : !Refresh(*entity, *pending)) {
      AfterCommand(entity);
      return;
    }
    if (!ReadForCommand(*entity, *pending)) {
      AfterCommand(entity);
      return;
    }
    Execute(entity, std::move(pending));
  });
}

namespace {

// Whether `key` is known to have no record: the entity knows all of its records (probed,
// complete) and this key is none of them.
bool KnownNew(const EntityMemory* memory, const std::string& key) {
  return memory != nullptr && memory->complete && !memory->requests.contains(key) &&
         !memory->forgotten.contains(absl::Hash<std::string>{}(key));
}

}  // namespace

bool EntityRuntime::NeedsRead(const Entity& entity, const Pending& pending) {
  if (pending.read_done) return false;
  const Command& command = pending.command;
  const EntityMemory* memory = entity.memory.get();
  if (RecordsIdempotency(command) &&
      (memory == nullptr || !memory->requests.contains(command.idempotency_key)) &&
      !KnownNew(memory, command.idempotency_key)) {
    return true;
  }
  return command.timer.has_value() &&
         (memory == nullptr || !memory->timers.contains(command.timer->name));
}

bool EntityRuntime::ReadForCommand(Entity& entity, Pending& pending) {
  if (!NeedsRead(entity, pending)) return true;
  pending.read_done = true;
  const Command& command = pending.command;
  const auto fail = [&](const absl::Status& status, const char* what) {
    std::move(pending.done)(Error(absl::UnavailableError(
        absl::StrCat("could not read ", what, " of entity ", entity.type, "/", entity.key, ": ",
                     status.message()))));
    return false;
  };
  EntityMemory& memory = entity.Memory();
  if (RecordsIdempotency(command) && !memory.requests.contains(command.idempotency_key)) {
    if (!memory.probed) {
      absl::StatusOr<bool> has = store_.HasIdempotencyRecords(entity.type, entity.key);
      if (!has.ok()) return fail(has.status(), "the idempotency records");
      memory.probed = true;
      memory.complete = !*has;
    }
    if (!KnownNew(&memory, command.idempotency_key) &&
        !TakeIdempotencyRecord(
            entity, pending,
            store_.ReadIdempotency(entity.type, entity.key, command.idempotency_key))) {
      return false;
    }
  }
  if (command.timer.has_value() && !memory.timers.contains(command.timer->name)) {
    absl::StatusOr<std::vector<store::TimerRecord>> timers =
        store_.ReadTimers(entity.type, entity.key);
    if (!timers.ok()) return fail(timers.status(), "the timers");
    for (const store::TimerRecord& timer : *timers) {
      memory.timers.try_emplace(timer.name, timer.due_ms);
    }
    memory.timers.try_emplace(command.timer->name, 0);
  }
  return true;
}

EntityRuntime::InlineRead EntityRuntime::ReadInline(Entity& entity, Pending& pending) {
  if (!NeedsRead(entity, pending)) return InlineRead::kDone;
  const Command& command = pending.command;
  if (command.timer.has_value()) return InlineRead::kBlocking;  // a tick reads its timers
  if (entity.memory == nullptr || !entity.memory->probed) return InlineRead::kBlocking;
  std::optional<absl::StatusOr<std::optional<store::IdempotencyRecord>>> record =
      store_.TryReadIdempotency(entity.type, entity.key, command.idempotency_key);
  if (!record.has_value()) return InlineRead::kBlocking;
  pending.read_done = true;
  return TakeIdempotencyRecord(entity, pending, *std::move(record)) ? InlineRead::kDone
                                                                     : InlineRead::kFailed;
}

bool EntityRuntime::TakeIdempotencyRecord(
    Entity& entity, Pending& pending,
    absl::StatusOr<std::optional<store::IdempotencyRecord>> record) {
  const Command& command = pending.command;
  if (!record.ok()) {
    std::move(pending.done)(Error(absl::UnavailableError(
        absl::StrCat("could not read the idempotency record of entity ", entity.type, "/",
                     entity.key, ": ", record.status().message()))));
    return false;
  }
  const bool live = record->has_value() &&
                    ((*record)->expires_ms == 0 || (*record)->expires_ms > clock_.WallMillis());
  if (!live) return true;
  absl::StatusOr<idempotency::StoredResult> stored = idempotency::Decode((*record)->record);
  if (!stored.ok()) {
    spdlog::error("entity {}/{}: {}", entity.type, entity.key, stored.status().ToString());
    std::move(pending.done)(Error(stored.status()));
    return false;
  }
  EntityMemory& memory = entity.Memory();
  memory.requests[command.idempotency_key] =
      std::make_shared<const idempotency::StoredResult>(*std::move(stored));
  memory.request_order.push_back(command.idempotency_key);
  return true;
}

bool EntityRuntime::Activate(Entity& entity, Pending& pending) {
  const ServiceSpec& spec = pending.method->service->spec;
  // In a cluster this node may have just taken the entity over: its token goes to the store
  // before the first read, so that no later write of the previous owner can land under it.
  // (A replicated CRDT has no owner: every node writes it, joined, never fenced.)
  if (absl::Status fenced =
          Replicated(spec) ? absl::OkStatus() : RaiseFence(entity.type, entity.key);
      !fenced.ok()) {
    std::move(pending.done)(Error(absl::UnavailableError(
        absl::StrCat("could not take entity ", entity.type, "/", entity.key, " over: ",
                     fenced.message()))));
    return false;
  }
  if (spec.spawned) {
    absl::StatusOr<uint64_t> spawned =
        store_.ReadLastSequence(SpawnRegistry(entity.type), entity.key);
    if (!spawned.ok() || *spawned == 0) {
      std::move(pending.done)(Error(
          spawned.ok()
              ? absl::NotFoundError(absl::StrCat("actor ", entity.key, " of ", spec.name,
                                                 " was never spawned"))
              : absl::UnavailableError(absl::StrCat("could not look up actor ", entity.type, "/",
                                                    entity.key, ": ",
                                                    spawned.status().message()))));
      return false;
    }
  }
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
  absl::StatusOr<std::optional<TypedValue>> state = StateOf(*stored, entity.type, entity.key);
  if (!state.ok()) {
    std::move(pending.done)(Error(state.status()));
    return false;
  }
  entity.state = *std::move(state);
  entity.sequence = stored->version;
  entity.expires_ms = stored->expires_ms;
  entity.synced = clock_.Now();
  entity.activated = true;
  pending.command.activating = true;
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
  if (pending->command.crdt_merge.has_value()) {
    MergeDelta(entity, std::move(pending));
    return;
  }
  const Command& command = pending->command;
  if (entity->expires_ms != 0 && clock_.WallMillis() >= entity->expires_ms) {
    entity->state.reset();  // expired: absent from now on, whether or not swept yet
    entity->expires_ms = 0;
  }
  if (RecordsIdempotency(command) && entity->memory != nullptr) {
    auto found = entity->memory->requests.find(command.idempotency_key);
    if (found != entity->memory->requests.end()) {
      const std::shared_ptr<const idempotency::StoredResult> stored = found->second;
      if (stored->request_hash !=
          idempotency::RequestHash(command.service, command.method, command.payload)) {
        std::move(pending->done)(Error(absl::InvalidArgumentError(absl::StrCat(
            idempotency::kMetadataKey, " '", command.idempotency_key,
            "' was already used for a different request to entity ", entity->type, "/",
            entity->key, "; a new request needs a new key"))));
        AfterCommand(entity);
        return;
      }
      if (metrics_.idempotent_replays != nullptr) metrics_.idempotent_replays->Add();
      Outcome replay = stored->outcome;
      if (auto* reply = std::get_if<Reply>(&replay.result)) {
        reply->metadata.emplace_back(idempotency::kReplayedMetadata, "true");
      }
      Commit(entity, std::move(pending), std::move(replay), /*from_function=*/false);
      return;
    }
  }
  if (command.timer.has_value()) {
    const EntityMemory* memory = entity->memory.get();
    const bool current = memory != nullptr && [&] {
      auto due = memory->timers.find(command.timer->name);
      return due != memory->timers.end() && due->second == command.timer->due_ms;
    }();
    if (!current) {
      // Cancelled, replaced or already fired since the scheduler read it: nothing to do.
      std::move(pending->done)(CommandResult{absl::OkStatus(), {}, {}});
      AfterCommand(entity);
      return;
    }
    if (command.timer->skip) {  // a missed tick skipped: the timer only moves on
      Commit(entity, std::move(pending), Outcome{}, /*from_function=*/false);
      return;
    }
  }
  const ServiceSpec& spec = pending->method->service->spec;  // in the catalog: outlives pending
  if (spec.kind == EntityKind::kCrdt) {
    absl::StatusOr<crdt::Crdt> value = CrdtOf(entity->state, spec.crdt_type);
    if (!value.ok()) {
      std::move(pending->done)(Error(value.status()));
      AfterCommand(entity);
      return;
    }
    pending->crdt = *std::move(value);
  }
  const crdt::Crdt* crdt_value = pending->crdt.has_value() ? &*pending->crdt : nullptr;
  const auto started = clock_.Now();
  // While its handler runs, this entity waits in the chain of the calls the handler makes (the
  // function driver copies the chain); what follows the handler (forwards, effects) does not.
  pending->command.call_chain.push_back(absl::StrCat(entity->type, "/", entity->key));
  auto on_outcome = [this, entity, started,
                     pending = std::move(pending)](absl::StatusOr<Outcome> outcome) mutable {
    pending->command.call_chain.pop_back();
    ObserveFunctionCall(started, outcome.ok());
    OnEntityOutcome(entity, std::move(pending), std::move(outcome));
  };
  if (spec.kind == EntityKind::kEventSourced) {
    function_.HandleEventSourced(command, entity->state, entity->sequence, std::move(on_outcome));
  } else if (crdt_value != nullptr) {
    function_.HandleCrdt(command, crdt_value->value(options_.replica_id), std::move(on_outcome));
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

absl::Status EntityRuntime::TimerChangesFor(const Pending& pending, std::string_view entity_type,
                                            std::string_view key,
                                            const std::vector<TimerEffect>& effects,
                                            int64_t now_ms,
                                            std::vector<store::TimerChange>* out) const {
  const ServiceSpec& spec = pending.method->service->spec;
  const bool is_entity = spec.kind != EntityKind::kAction;
  for (const TimerEffect& effect : effects) {
    if (effect.cancel) {
      if (effect.name.empty()) {
        return absl::InvalidArgumentError("timer: name is empty (a cancel names its timer)");
      }
      out->push_back(store::TimerChange{
          store::TimerRecord{std::string(entity_type), std::string(key), effect.name, 0,
                             PartitionFor(entity_type, key), {}},
          /*remove=*/true, std::nullopt});
      continue;
    }
    absl::StatusOr<store::TimerRecord> timer =
        MakeTimer(effect, spec.name, is_entity, entity_type, key, PartitionFor(entity_type, key),
                  now_ms, options_.timer_limits);
    if (!timer.ok()) return timer.status();
    if (target_check_) {
      const std::string& service = effect.service.empty() ? spec.name : effect.service;
      absl::Status target = target_check_(service, effect.method, effect.payload.type);
      if (!target.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("timer '", effect.name, "': ", target.message()));
      }
    }
    out->push_back(store::TimerChange{*std::move(timer), false, std::nullopt});
  }
  return absl::OkStatus();
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
  if (pending->method->service->spec.kind == EntityKind::kCrdt && !outcome->failed() &&
      outcome->crdt != nullptr) {
    if (absl::Status applied = ApplyCrdtChange(*entity, *pending, *outcome); !applied.ok()) {
      std::move(pending->done)(Error(std::move(applied)));
      AfterCommand(entity);
      return;
    }
  }
  Commit(entity, std::move(pending), *std::move(outcome), /*from_function=*/true);
}

absl::Status EntityRuntime::ApplyCrdtChange(const Entity& entity, Pending& pending,
                                            Outcome& outcome) const {
  const ServiceSpec& spec = pending.method->service->spec;
  const CrdtChange& change = *outcome.crdt;
  if (change.remove) {
    outcome.state_update = StateUpdate{std::nullopt};
    return absl::OkStatus();
  }
  if (!change.operation.has_value()) return absl::OkStatus();
  if (change.operation_type != spec.crdt_type) {
    return absl::InvalidArgumentError(absl::StrCat(
        pending.method->path, ": a ", crdt::TypeName(change.operation_type),
        " operation does not apply to entity ", entity.type, "/", entity.key, ", a ",
        crdt::TypeName(spec.crdt_type), "; nothing was applied"));
  }
  crdt::Crdt& value = *pending.crdt;  // parsed by Execute
  absl::StatusOr<crdt::Crdt> delta =
      value.Apply(*change.operation, options_.replica_id, clock_.WallMillis());
  if (!delta.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(pending.method->path, ": ",
                                                   delta.status().message(),
                                                   "; nothing was applied"));
  }
  // The whole value is written; in a cluster the delta goes to the other replicas too.
  if (Replicated(spec)) {
    pending.crdt_delta = delta->Serialize();
    pending.consistency = change.consistency;
  }
  outcome.state_update = StateUpdate{TypedValue{std::string(kCrdtStateType), value.Serialize()}};
  return absl::OkStatus();
}

bool EntityRuntime::Replicated(const ServiceSpec& spec) const {
  return options_.replicate_crdt && spec.kind == EntityKind::kCrdt;
}

bool EntityRuntime::Stale(const Entity& entity, const Pending& pending) const {
  return entity.activated && !pending.command.crdt_merge.has_value() &&
         Replicated(pending.method->service->spec) &&
         clock_.Now() - entity.synced >= options_.crdt_refresh;
}

bool EntityRuntime::Refresh(Entity& entity, Pending& pending) {
  if (!Stale(entity, pending)) return true;
  const ServiceSpec& spec = pending.method->service->spec;
  absl::StatusOr<store::VersionedValue> stored = store_.ReadValue(entity.type, entity.key);
  absl::StatusOr<std::optional<TypedValue>> state =
      stored.ok() ? StateOf(*stored, entity.type, entity.key) : stored.status();
  absl::StatusOr<crdt::Crdt> value = CrdtOf(entity.state, spec.crdt_type);
  absl::StatusOr<crdt::Crdt> theirs =
      state.ok() ? CrdtOf(*state, spec.crdt_type) : absl::StatusOr<crdt::Crdt>(state.status());
  absl::Status joined = !value.ok() ? value.status() : !theirs.ok() ? theirs.status()
                                                                      : value->Merge(*theirs);
  if (!joined.ok()) {
    // This replica serves what it has (a CRDT stays available); the next command tries again.
    spdlog::warn("entity {}/{}: could not join the stored value: {}", entity.type, entity.key,
                 joined.ToString());
    return true;
  }
  entity.state = TypedValue{std::string(kCrdtStateType), value->Serialize()};
  entity.sequence = stored->version;
  entity.synced = clock_.Now();
  return true;
}

void EntityRuntime::MergeDelta(const std::shared_ptr<Entity>& entity,
                               std::unique_ptr<Pending> pending) {
  const ServiceSpec& spec = pending->method->service->spec;
  absl::StatusOr<crdt::Crdt> value = CrdtOf(entity->state, spec.crdt_type);
  absl::StatusOr<crdt::Crdt> delta = crdt::Crdt::Parse(*pending->command.crdt_merge);
  absl::Status merged = !value.ok()   ? value.status()
                        : !delta.ok() ? absl::InvalidArgumentError(absl::StrCat(
                                            "an undecodable CRDT delta for ", entity->type, "/",
                                            entity->key, ": ", delta.status().message()))
                                      : value->Merge(*delta);
  // The sender wrote its value, joined, before it sent the delta: only this copy changes.
  if (merged.ok()) {
    entity->state = TypedValue{std::string(kCrdtStateType), value->Serialize()};
  }
  std::move(pending->done)(merged.ok() ? CommandResult{absl::OkStatus(), {}, {}}
                                       : Error(std::move(merged)));
  AfterCommand(entity);
}

void EntityRuntime::WriteJoined(const std::shared_ptr<Entity>& entity, store::WriteBatch batch,
                                absl::AnyInvocable<void(absl::Status) &&> done, int attempt) {
  constexpr int kMaxAttempts = 64;  // each one lost to another node's write of the entity
  store::WriteBatch again = batch;
  store_.Write(std::move(batch), [this, entity, again = std::move(again), done = std::move(done),
                                  attempt](absl::Status status) mutable {
    if (status.code() != absl::StatusCode::kAborted || attempt + 1 >= kMaxAttempts ||
        again.mutations.empty() || !again.mutations.back().value.has_value()) {
      std::move(done)(std::move(status));
      return;
    }
    // The entity is still this command's (replicated CRDTs are not pipelined), so its value
    // can be brought up to the store's here, off the store's thread.
    blocking_pool_->Post([this, entity, again = std::move(again), done = std::move(done), attempt,
                          status = std::move(status)]() mutable {
      store::WriteBatch::Mutation& mine = again.mutations.back();
      absl::StatusOr<store::VersionedValue> stored = store_.ReadValue(entity->type, entity->key);
      if (!stored.ok()) {
        std::move(done)(stored.status());
        return;
      }
      if (stored->version == mine.expected_version.value_or(0)) {
        std::move(done)(std::move(status));  // refused for another reason than a newer value
        return;
      }
      absl::StatusOr<TypedValue> ours_state = DecodeState(*mine.value);
      absl::StatusOr<crdt::Crdt> ours = ours_state.ok() ? crdt::Crdt::Parse(ours_state->bytes)
                                                         : ours_state.status();
      absl::Status joined = ours.status();
      if (joined.ok() && stored->value.has_value()) {
        absl::StatusOr<TypedValue> theirs_state = DecodeState(*stored->value);
        absl::StatusOr<crdt::Crdt> theirs =
            theirs_state.ok() ? crdt::Crdt::Parse(theirs_state->bytes) : theirs_state.status();
        joined = theirs.ok() ? ours->Merge(*theirs) : theirs.status();
      }
      if (!joined.ok()) {
        std::move(done)(absl::InternalError(absl::StrCat(
            "could not join the stored value of ", entity->type, "/", entity->key, ": ",
            joined.message())));
        return;
      }
      TypedValue value{std::string(kCrdtStateType), ours->Serialize()};
      mine.value = EncodeState(value);
      mine.expected_version = stored->version;
      entity->state = std::move(value);
      entity->sequence = stored->version + 1;
      WriteJoined(entity, std::move(again), std::move(done), attempt + 1);
    });
  });
}

void EntityRuntime::ReplicateAndAnswer(std::unique_ptr<Pending> pending, Outcome outcome) {
  std::string delta = *std::move(pending->crdt_delta);
  pending->crdt_delta.reset();
  const WriteConsistency consistency = pending->consistency;
  if (consistency == WriteConsistency::kLocal) {
    options_.replicate_crdt(pending->command, std::move(delta), consistency, [](absl::Status) {});
    Answer(std::move(pending), std::move(outcome));
    return;
  }
  Pending* raw = pending.get();
  auto held = std::make_shared<std::pair<std::unique_ptr<Pending>, Outcome>>(std::move(pending),
                                                                            std::move(outcome));
  options_.replicate_crdt(
      raw->command, std::move(delta), consistency, [this, held](absl::Status status) mutable {
        if (status.ok()) {
          Answer(std::move(held->first), std::move(held->second));
          return;
        }
        std::move(held->first->done)(Error(absl::Status(
            status.code(), absl::StrCat("the change is durable and applied on this node, but ",
                                        status.message()))));
      });
}

void EntityRuntime::Commit(const std::shared_ptr<Entity>& entity,
                           std::unique_ptr<Pending> pending, Outcome outcome,
                           bool from_function) {
  const ServiceSpec& spec = pending->method->service->spec;
  const Command& command = pending->command;
  const bool event_sourced = spec.kind == EntityKind::kEventSourced;
  const bool failed = outcome.failed();
  const int64_t now = clock_.WallMillis();
  store::WriteBatch batch;
  const bool replicated = Replicated(spec);
  batch.fence = replicated ? 0 : FenceFor(entity->type, entity->key);
  // A tick moves its timer on first, conditional on the tick's due time, so that it changes
  // the state once; what the handler does to the same timer comes after it, and wins.
  if (command.timer.has_value()) {
    const TimerFire& fire = *command.timer;
    batch.timers.push_back(store::TimerChange{
        store::TimerRecord{entity->type, entity->key, fire.name, fire.next_due.value_or(0),
                           fire.partition, fire.next_record},
        /*remove=*/!fire.next_due.has_value(), fire.due_ms});
  }
  std::vector<store::OutboxRecord> outbox;
  if (from_function && !failed) {
    absl::Status timers =
        TimerChangesFor(*pending, entity->type, entity->key, outcome.timers, now, &batch.timers);
    if (!timers.ok()) {
      std::move(pending->done)(Error(std::move(timers)));
      AfterCommand(entity);
      return;
    }
    absl::Status broadcasts = CheckBroadcasts(outcome.broadcasts);
    if (!broadcasts.ok()) {
      std::move(pending->done)(Error(std::move(broadcasts)));
      AfterCommand(entity);
      return;
    }
    outbox = OutboxRecordsFor(command, entity->type, entity->key, outcome.side_effects,
                              outcome.broadcasts, now, PartitionFor(entity->type, entity->key));
    batch.outbox = outbox;
  }
  std::shared_ptr<idempotency::StoredResult> record;
  if (from_function && RecordsIdempotency(command) && idempotency::Recorded(outcome)) {
    record = std::make_shared<idempotency::StoredResult>();
    record->request_hash =
        idempotency::RequestHash(command.service, command.method, command.payload);
    record->outcome.result = outcome.result;
    for (const SideEffect& effect : outcome.side_effects) {
      if (effect.synchronous) record->outcome.side_effects.push_back(effect);
    }
    const std::chrono::milliseconds retention = spec.idempotency_retention.count() > 0
                                                    ? spec.idempotency_retention
                                                    : options_.idempotency_retention;
    batch.idempotency.push_back(store::IdempotencyRecord{
        entity->type, entity->key, command.idempotency_key,
        idempotency::Encode(record->request_hash, record->outcome, now),
        now + retention.count()});
  }
  const bool state_write =
      from_function && !failed &&
      (event_sourced ? !outcome.events.empty() : outcome.state_update.has_value());
  const bool writes = state_write || !batch.empty();
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
    Answer(std::move(pending), std::move(outcome));
    return;
  }
  // Pipelining: the write goes to the store and the next command runs at once on the new
  // state, so commands queued on one entity share the store's next flush. Replies (even of
  // commands that wrote nothing) go through the store too, as barriers, so that nobody sees
  // state before it is durable; the store calls back in order.
  if (state_write && event_sourced) {
    batch.appends.push_back(AppendFor(*entity, *pending, outcome));
    entity->sequence = batch.appends.back().events.back().sequence;
    entity->state = std::move(outcome.state_update->value);
  } else if (state_write) {
    // Conditional on the version this entity last wrote: another writer of the same database
    // (a node that took the entity over) makes it fail, and the entity reloads.
    const std::optional<TypedValue>& value = outcome.state_update->value;
    if (value.has_value()) {
      const int64_t ttl = outcome.state_update->ttl_ms > 0 ? outcome.state_update->ttl_ms
                                                            : spec.state_ttl.count();
      entity->expires_ms = ttl > 0 ? now + ttl : 0;
      batch.mutations.push_back(store::WriteBatch::Mutation{
          entity->type, entity->key, EncodeState(*value), entity->sequence, entity->expires_ms});
    } else {
      entity->expires_ms = 0;
      batch.Delete(entity->type, entity->key, entity->sequence);
    }
    ++entity->sequence;
    entity->state = outcome.state_update->value;
  }
  if (record != nullptr || !batch.timers.empty()) {
    EntityMemory& memory = entity->Memory();
    if (record != nullptr) {
      // Trim only when no earlier write is in flight: every record kept out of memory must be
      // durable, so that a retry reading the store finds it.
      while (!behind_writes && memory.request_order.size() >= kRememberedRequests) {
        const std::string& oldest = memory.request_order.front();
        if (memory.forgotten.size() >= kForgottenKeys) {  // from now on, read for every key
          memory.complete = false;
          memory.forgotten.clear();
        }
        if (memory.complete) memory.forgotten.insert(absl::Hash<std::string>{}(oldest));
        memory.requests.erase(oldest);
        memory.request_order.pop_front();
      }
      if (memory.requests.insert_or_assign(command.idempotency_key, record).second) {
        memory.request_order.push_back(command.idempotency_key);
      }
    }
    for (const store::TimerChange& change : batch.timers) {
      memory.timers[change.timer.name] = change.remove ? 0 : change.timer.due_ms;
    }
  }
  std::vector<store::TimerChange> timer_changes = batch.timers;
  // A store that calls back inline (the memory store) must not reply before the entity is
  // released below, so the reply is handed over: whoever comes second sends it.
  auto handoff = std::make_shared<ReplyHandoff>();
  const uint64_t epoch = pending->epoch;
  const auto write_started = clock_.Now();
  // A replicated CRDT's next command waits for this write (it may be joined and written
  // again, and a write queued behind it would name a version that is not this node's).
  const bool joined = replicated && state_write && outcome.state_update->value.has_value();
  auto written = [this, entity, epoch, handoff, write_started, joined,
                  outbox = std::move(outbox), timer_changes = std::move(timer_changes),
                  pending = std::move(pending),
                  outcome = std::move(outcome)](absl::Status status) mutable {
    if (metrics_.store_write_latency != nullptr) {
      metrics_.store_write_latency->Observe(
          std::chrono::duration<double>(clock_.Now() - write_started).count());
    }
    // Durable: its messages and timers go out whatever becomes of the reply.
    if (status.ok()) Published(std::move(outbox), timer_changes);
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
    if (joined) {
      if (status.ok()) entity->synced = clock_.Now();  // it wrote over the store's value
      AfterCommand(entity);
    }
    handoff->reply = [this, entity, confirmed, status = std::move(status),
                      pending = std::move(pending), outcome = std::move(outcome)]() mutable {
      if (confirmed && pending->crdt_delta.has_value()) {
        ReplicateAndAnswer(std::move(pending), std::move(outcome));
        return;
      }
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
  };
  if (joined) {
    WriteJoined(entity, std::move(batch), std::move(written), 0);
  } else {
    store_.Write(std::move(batch), std::move(written));
    AfterCommand(entity);
  }
  handoff->Arrive();
}

void EntityRuntime::Published(std::vector<store::OutboxRecord> outbox,
                              const std::vector<store::TimerChange>& timers) {
  if (!outbox.empty()) outbox_->Deliver(std::move(outbox));
  if (!timers.empty()) timers_->OnWritten(timers);
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

void EntityRuntime::RunReentrant(std::unique_ptr<Pending> pending) {
  blocking_pool_->Post([this, pending = std::move(pending)]() mutable {
    const Command& command = pending->command;
    const MethodInfo& method = *pending->method;
    const std::string& type = method.service->spec.entity_type;
    absl::StatusOr<store::VersionedValue> stored = store_.ReadValue(type, command.entity_key);
    if (!stored.ok()) {
      std::move(pending->done)(Error(absl::UnavailableError(
          absl::StrCat("could not read entity ", type, "/", command.entity_key, ": ",
                       stored.status().message()))));
      return;
    }
    absl::StatusOr<std::optional<TypedValue>> decoded =
        StateOf(*stored, type, command.entity_key);
    if (!decoded.ok()) {
      std::move(pending->done)(Error(decoded.status()));
      return;
    }
    std::optional<TypedValue> state = *std::move(decoded);
    if (stored->expires_ms != 0 && stored->expires_ms <= clock_.WallMillis()) state.reset();
    const auto started = clock_.Now();
    function_.HandleValueEntity(command, state, [this, started, pending = std::move(pending)](
                                                    absl::StatusOr<Outcome> outcome) mutable {
      ObserveFunctionCall(started, outcome.ok());
      if (!outcome.ok()) {
        std::move(pending->done)(Error(outcome.status()));
        return;
      }
      if (const auto* failure = std::get_if<absl::Status>(&outcome->result)) {
        std::move(pending->done)(Error(*failure));
        return;
      }
      const auto* reply = std::get_if<Reply>(&outcome->result);
      if (reply == nullptr || outcome->state_update.has_value() || !outcome->events.empty() ||
          !outcome->side_effects.empty() || !outcome->timers.empty() ||
          !outcome->broadcasts.empty()) {
        std::move(pending->done)(Error(absl::FailedPreconditionError(absl::StrCat(
            "read-only method ", pending->method->path, " re-entered by ",
            absl::StrJoin(pending->command.call_chain, " -> "),
            " changed state, made effects or forwarded; it may only reply. Nothing was "
            "applied"))));
        return;
      }
      std::move(pending->done)(CommandResult{absl::OkStatus(), reply->payload, reply->metadata});
    });
  });
}

void EntityRuntime::Spawn(const ServiceInfo& service, std::string name, ResultCallback done) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  blocking_pool_->Post([this, &service, name = std::move(name), done = std::move(done)]() mutable {
    const std::string registry = SpawnRegistry(service.spec.entity_type);
    auto answer = [this, done = std::make_shared<ResultCallback>(std::move(done))](
                      absl::Status status) {
      std::move(*done)(CommandResult{std::move(status), {}, {}});
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
    };
    absl::StatusOr<uint64_t> known = store_.ReadLastSequence(registry, name);
    if (!known.ok()) {
      answer(absl::UnavailableError(absl::StrCat("could not spawn ", service.spec.name, "/",
                                                 name, ": ", known.status().message())));
      return;
    }
    if (*known > 0) {
      answer(absl::OkStatus());  // spawned before: spawning is idempotent
      return;
    }
    store::WriteBatch batch;
    batch.fence = FenceFor(service.spec.entity_type, name);
    Event event;
    event.sequence = 1;
    event.type = "massa.internal.v1.Spawned";
    event.timestamp_ms = clock_.WallMillis();
    store::JournalAppend append;
    append.entity_type = registry;
    append.key = name;
    append.events.push_back(std::move(event));
    batch.appends.push_back(std::move(append));
    // (An entity refused before its spawn was never activated: its next command loads it.)
    store_.Write(std::move(batch), [&service, name, answer = std::move(answer)](
                                       absl::Status status) mutable {
      if (status.code() == absl::StatusCode::kAborted) status = absl::OkStatus();  // a racing spawn
      if (!status.ok()) {
        status = absl::UnavailableError(absl::StrCat("could not spawn ", service.spec.name, "/",
                                                     name, ": ", status.message()));
      }
      answer(std::move(status));
    });
  });
}

void EntityRuntime::RunAction(std::unique_ptr<Pending> pending) {
  if (Expired(pending->command, clock_)) {
    std::move(pending->done)(Error(absl::DeadlineExceededError("deadline passed")));
    return;
  }
  const ServiceSpec& spec = pending->method->service->spec;
  std::atomic<uint32_t>* pool = nullptr;
  if (spec.max_concurrency > 0) {
    {
      absl::MutexLock lock(&pools_mu_);
      auto& slot = pools_[&spec];
      if (slot == nullptr) slot = std::make_unique<std::atomic<uint32_t>>(0);
      pool = slot.get();
    }
    if (pool->fetch_add(1, std::memory_order_acq_rel) >= spec.max_concurrency) {
      pool->fetch_sub(1, std::memory_order_acq_rel);
      std::move(pending->done)(Error(absl::ResourceExhaustedError(absl::StrCat(
          "pool ", spec.name, " is running its maximum of ", spec.max_concurrency,
          " commands at once; retry later"))));
      return;
    }
  }
  const Command& command = pending->command;
  const auto started = clock_.Now();
  function_.HandleAction(command, [this, started, pool, pending = std::move(pending)](
                                      absl::StatusOr<Outcome> outcome) mutable {
    if (pool != nullptr) pool->fetch_sub(1, std::memory_order_acq_rel);
    ObserveFunctionCall(started, outcome.ok());
    if (!outcome.ok()) {
      std::move(pending->done)(Error(std::move(outcome).status()));
    } else if (outcome->failed()) {
      std::move(pending->done)(Error(std::get<absl::Status>(outcome->result)));
    } else {
      CommitAction(std::move(pending), *std::move(outcome));
    }
  });
}

void EntityRuntime::CommitAction(std::unique_ptr<Pending> pending, Outcome outcome) {
  // An action has no entity: its timers live under (service, ""), and its asynchronous side
  // effects are written alone, before the reply.
  const std::string& service = pending->method->service->spec.name;
  const int64_t now = clock_.WallMillis();
  store::WriteBatch batch;
  batch.fence = options_.fence;
  absl::Status timers = TimerChangesFor(*pending, service, "", outcome.timers, now, &batch.timers);
  if (!timers.ok()) {
    std::move(pending->done)(Error(std::move(timers)));
    return;
  }
  if (absl::Status broadcasts = CheckBroadcasts(outcome.broadcasts); !broadcasts.ok()) {
    std::move(pending->done)(Error(std::move(broadcasts)));
    return;
  }
  std::vector<store::OutboxRecord> outbox =
      OutboxRecordsFor(pending->command, service, "", outcome.side_effects, outcome.broadcasts,
                       now, PartitionFor(service, ""));
  batch.outbox = outbox;
  if (batch.empty()) {
    ApplyEffectsAndReply(std::move(pending), std::move(outcome));
    return;
  }
  std::vector<store::TimerChange> timer_changes = batch.timers;
  store_.Write(std::move(batch), [this, outbox = std::move(outbox),
                                  timer_changes = std::move(timer_changes),
                                  pending = std::move(pending),
                                  outcome = std::move(outcome)](absl::Status status) mutable {
    if (!status.ok()) {
      std::move(pending->done)(Error(absl::UnavailableError(
          absl::StrCat("the effects of ", pending->method->path,
                       " could not be made durable: ", status.message()))));
      return;
    }
    Published(std::move(outbox), timer_changes);
    ApplyEffectsAndReply(std::move(pending), std::move(outcome));
  });
}

void EntityRuntime::ApplyEffectsAndReply(std::unique_ptr<Pending> pending, Outcome outcome) {
  const ServiceSpec& spec = pending->method->service->spec;
  const bool action = spec.kind == EntityKind::kAction;
  ResultCallback done = std::move(pending->done);
  RunEffects(*dispatcher_, pending->command, action ? spec.name : spec.entity_type,
             action ? std::string_view() : std::string_view(pending->command.entity_key),
             std::move(outcome), std::move(done));
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

absl::Status EntityRuntime::RaiseFence(const std::string& entity_type, const std::string& key) {
  if (!options_.fence_of) return absl::OkStatus();
  const uint64_t fence = options_.fence_of(entity_type, key);
  if (fence == 0) return absl::OkStatus();
  store::WriteBatch batch;
  batch.fence = fence;
  batch.fenced.emplace_back(entity_type, key);
  absl::Notification written;
  absl::Status status;
  store_.Write(std::move(batch), [&](absl::Status result) {
    status = std::move(result);
    written.Notify();
  });
  written.WaitForNotification();
  return status;
}

size_t EntityRuntime::Release(
    const std::function<bool(std::string_view entity_type, std::string_view key)>& which) {
  size_t busy = 0;
  for (size_t i = 0; i < kShards; ++i) {
    Shard& shard = shards_[i];
    absl::MutexLock lock(&shard.mu);
    absl::erase_if(shard.entities, [&](const auto& entry) {
      Entity& e = *entry.second;
      if (!which(e.type, e.key)) return false;
      if (!e.running && e.mailbox.empty() && e.writes_in_flight == 0) return true;
      e.needs_reload = true;  // the next command to take it reads the store again
      ++busy;
      return false;
    });
  }
  return busy;
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

size_t EntityRuntime::SweepExpired() {
  constexpr size_t kPerPass = 10'000;
  size_t total = 0;
  for (int pass = 0; pass < 100; ++pass) {  // bounded: the next sweep goes on
    absl::StatusOr<size_t> swept = store_.SweepExpired(clock_.WallMillis(), kPerPass);
    if (!swept.ok()) {
      spdlog::warn("expiry sweep: {}", swept.status().ToString());
      break;
    }
    total += *swept;
    if (*swept < kPerPass) break;
  }
  return total;
}

void EntityRuntime::SweepLoop() {
  // Passivation and the expiry sweep, each at its own interval (0 = off); real time.
  const auto passivate_every = options_.sweep_interval;
  const auto expire_every = options_.expiry_sweep_interval;
  auto next_passivation = std::chrono::steady_clock::now() + passivate_every;
  auto next_expiry = std::chrono::steady_clock::now() + expire_every;
  absl::MutexLock lock(&sweep_mu_);
  while (!stopping_) {
    auto next = std::chrono::steady_clock::time_point::max();
    if (passivate_every.count() > 0) next = std::min(next, next_passivation);
    if (expire_every.count() > 0) next = std::min(next, next_expiry);
    sweep_mu_.AwaitWithTimeout(
        absl::Condition(&stopping_),
        absl::FromChrono(std::max(std::chrono::steady_clock::duration::zero(),
                                  next - std::chrono::steady_clock::now())));
    if (stopping_) break;
    sweep_mu_.Unlock();
    const auto now = std::chrono::steady_clock::now();
    if (passivate_every.count() > 0 && now >= next_passivation) {
      size_t passivated = PassivateIdle();
      if (passivated > 0) spdlog::debug("passivated {} idle entities", passivated);
      next_passivation = now + passivate_every;
    }
    if (expire_every.count() > 0 && now >= next_expiry) {
      size_t swept = SweepExpired();
      if (swept > 0) spdlog::debug("reclaimed {} expired records", swept);
      next_expiry = std::chrono::steady_clock::now() + expire_every;
    }
    sweep_mu_.Lock();
  }
}

}  // namespace massa
