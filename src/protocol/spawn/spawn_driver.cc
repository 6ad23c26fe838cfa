#include "protocol/spawn/spawn_driver.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "net/http_client.h"
#include "protocol/spawn/invocation.h"
#include "spawn/actors/actor.pb.h"
#include "spawn/actors/protocol.pb.h"
#include "spdlog/spdlog.h"

namespace massa::spawn {
namespace {

using Steady = std::chrono::steady_clock;
namespace actors = ::spawn::actors;

constexpr char kActionsPath[] = "/api/v1/actors/actions";
constexpr char kOctetStream[] = "application/octet-stream";
constexpr char kEntityKeyHeader[] = "massa-entity-key";

std::string Deterministic(const google::protobuf::MessageLite& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// The last value of metadata `key` (effects carry their cause's metadata first, then their own).
std::string LastOf(const Metadata& metadata, std::string_view key) {
  for (auto it = metadata.rbegin(); it != metadata.rend(); ++it) {
    if (it->first == key) return it->second;
  }
  return {};
}

// What the SDK sees of a command's metadata: the application's, not Massa's own.
std::map<std::string, std::string> SdkMetadata(const Metadata& metadata) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : metadata) {
    if (absl::StartsWith(key, "massa-") || absl::StartsWith(key, "spawn-") ||
        key == "idempotency-key") {
      continue;
    }
    out[key] = value;
  }
  return out;
}

std::string TimerName(std::string_view prefix) {
  thread_local std::mt19937_64 random(std::random_device{}());
  return absl::StrCat(std::string(prefix), absl::Hex(random(), absl::kZeroPad16));
}

// A short, printable excerpt of an SDK's error body for messages.
std::string Excerpt(std::string_view body) {
  std::string out;
  for (const char c : body.substr(0, 200)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '.');
  }
  return out;
}

}  // namespace

struct SpawnDriver::Impl : std::enable_shared_from_this<SpawnDriver::Impl> {
  SpawnDriverOptions options;
  std::unique_ptr<HttpClient> client;
  CallHandler call_handler;

  mutable absl::Mutex mu;
  std::shared_ptr<const System> system ABSL_GUARDED_BY(mu);
  // Per actor name: the commands at the SDK, the latest one's caller information, and the last
  // failure of an invocation the SDK made meanwhile.
  struct AtSdk {
    CallerInfo caller;
    int count = 0;
    absl::Status nested;
  };
  absl::flat_hash_map<std::string, AtSdk> in_flight ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, std::string> templates ABSL_GUARDED_BY(mu);

  std::shared_ptr<const System> Current() const {
    absl::MutexLock lock(&mu);
    return system;
  }
};

namespace {

using Impl = SpawnDriver::Impl;

// One command on its way through the SDK: what it started with and what it has produced.
struct Run {
  std::shared_ptr<Impl> impl;
  std::shared_ptr<const System> system;
  const Actor* actor = nullptr;
  Command command;
  std::string name;  // the actor's name: the entity key, or the pooled actor's name
  bool stateful = false;
  actors::ActorState state;
  std::string stored;  // `state` as it was stored (deterministic bytes); empty = none
  Outcome outcome;
  std::vector<Command> spawns;  // register_ref spawns to make before answering
  OutcomeCallback done;
};
using RunPtr = std::shared_ptr<Run>;

void Answer(const RunPtr& run);

void Fail(const RunPtr& run, absl::Status status) {
  Outcome failed;
  failed.result = std::move(status);
  std::move(run->done)(std::move(failed));
}

// Takes what an invocation's reply says about the actor into the run's state.
void TakeState(Run& run, const InvocationResult& result) {
  if (result.state.has_value()) run.state.mutable_state()->ParseFromString(*result.state);
  if (result.tags.has_value()) {
    run.state.mutable_tags()->clear();
    run.state.mutable_tags()->insert(result.tags->begin(), result.tags->end());
  }
}

// Calls the SDK for `action` of the run's actor with `payload` (a serialized Any; nullopt =
// noop) and the run's state, then `then` with its decoded reply or a transport error.
template <typename Then>
void Invoke(const RunPtr& run, const std::string& action, std::optional<std::string> payload,
            Then then) {
  Invocation invocation;
  invocation.system = run->system->name();
  invocation.actor = run->name;
  if (run->actor->definition.kind == ActorKind::kUnnamed) {
    invocation.parent = run->actor->definition.name;
  }
  invocation.action = action;
  invocation.payload = std::move(payload);
  if (run->state.has_state()) invocation.state = run->state.state().SerializeAsString();
  invocation.tags.insert(run->state.tags().begin(), run->state.tags().end());
  invocation.metadata = SdkMetadata(run->command.metadata);
  invocation.caller = LastOf(run->command.metadata, kCallerMetadata);

  Impl& impl = *run->impl;
  {
    CallerInfo caller;
    caller.call_chain = run->command.call_chain;
    caller.deadline = run->command.deadline;
    caller.hops = run->command.hops;
    caller.idempotency_key = run->command.idempotency_key;
    caller.source = run->name;
    absl::MutexLock lock(&impl.mu);
    Impl::AtSdk& at_sdk = impl.in_flight[run->name];
    at_sdk.caller = std::move(caller);
    ++at_sdk.count;
  }
  const Steady::time_point deadline =
      std::min(run->command.deadline, Steady::now() + impl.options.call_timeout);
  impl.client->Request(
      "POST", kActionsPath, kOctetStream, EncodeInvocation(invocation), deadline,
      [run, action, then = std::move(then)](absl::StatusOr<HttpClientResponse> response) mutable {
        absl::Status nested;
        {
          absl::MutexLock lock(&run->impl->mu);
          auto it = run->impl->in_flight.find(run->name);
          if (it != run->impl->in_flight.end()) {
            nested = it->second.nested;
            if (--it->second.count == 0) run->impl->in_flight.erase(it);
          }
        }
        if (!response.ok()) {
          then(run, absl::Status(response.status().code(),
                                 absl::StrCat("invoking ", action, " of actor ", run->name,
                                              " at the SDK: ", response.status().message())));
          return;
        }
        if (response->status != 200) {
          // The action failed in the SDK (Spawn SDKs answer 400 or 500, sometimes in HTML).
          std::string what = absl::StrCat(
              "action ", action, " of actor ", run->name, " failed in the SDK (HTTP ",
              response->status,
              response->body.empty() ? std::string() : absl::StrCat(": ", Excerpt(response->body)),
              ")");
          then(run, nested.ok()
                        ? absl::UnknownError(what)
                        : absl::Status(nested.code(),
                                       absl::StrCat(what, " after an invocation it made failed: ",
                                                    nested.message())));
          return;
        }
        absl::StatusOr<InvocationResult> result = ParseInvocationResult(response->body);
        if (!result.ok()) {
          then(run, absl::InternalError(absl::StrCat("action ", action, " of actor ", run->name,
                                                     ": ", result.status().message())));
          return;
        }
        then(run, std::move(result));
      });
}

absl::StatusOr<ResolvedActor> ResolveIn(Impl& impl, const System& system, std::string_view name,
                                        std::string_view parent, std::string_view register_ref) {
  if (const Actor* actor = system.FindActor(name); actor != nullptr) {
    if (actor->definition.kind == ActorKind::kUnnamed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "actor ", std::string(name), " is an unnamed template: invoke an actor spawned from it"));
    }
    return ResolvedActor{actor, false};
  }
  std::string template_name(!parent.empty() ? parent : register_ref);
  if (template_name.empty()) {
    absl::MutexLock lock(&impl.mu);
    auto it = impl.templates.find(std::string(name));
    if (it != impl.templates.end()) template_name = it->second;
  }
  const Actor* actor = template_name.empty() ? nullptr : system.FindActor(template_name);
  if (actor == nullptr || actor->definition.kind != ActorKind::kUnnamed) {
    return absl::NotFoundError(absl::StrCat(
        "actor ", std::string(name), " not found on actor system ", system.name(),
        template_name.empty() ? std::string(" (an unnamed actor needs its parent or register_ref)")
                              : absl::StrCat(" (no unnamed actor '", template_name, "')")));
  }
  return ResolvedActor{actor, !register_ref.empty()};
}

// The service, method and address of `actor`'s `action` as a target of a reply's effect, pipe
// or forward; notes a spawn to make first when it names a template (register_ref).
absl::Status Target(Run& run, const std::string& system, const std::string& name,
                    const std::string& parent, const std::string& register_ref,
                    const std::string& action, std::string& service, std::string& method,
                    Metadata& metadata) {
  if (!system.empty() && system != run.system->name()) {
    return absl::InvalidArgumentError(absl::StrCat("actor system '", system,
                                                   "' is not served here (only '",
                                                   run.system->name(), "')"));
  }
  absl::StatusOr<ResolvedActor> resolved =
      ResolveIn(*run.impl, *run.system, name, parent, register_ref);
  if (!resolved.ok()) return resolved.status();
  const Actor* target = resolved->actor;
  if (resolved->spawn_first) {
    Command spawn;
    spawn.service = target->service;
    spawn.entity_key = name;
    spawn.spawn = true;
    run.spawns.push_back(std::move(spawn));
  }
  method = target->MethodOf(action);
  if (method.empty()) {
    return absl::NotFoundError(absl::StrCat("action ", action, " not found for actor ", name));
  }
  service = target->service;
  if (target->definition.kind != ActorKind::kPooled) metadata.emplace_back(kEntityKeyHeader, name);
  metadata.emplace_back(kCallerMetadata, run.name);
  return absl::OkStatus();
}

// Turns the SDK's reply to the command's own action into the outcome, in Spawn's order: side
// effects, broadcast, then pipe or forward (Massa's effects run in that order too).
void Finish(const RunPtr& run, InvocationResult result) {
  TakeState(*run, result);
  Outcome& outcome = run->outcome;
  for (EffectInvocation& effect : result.effects) {
    SideEffect side;
    std::string method;
    absl::Status target = Target(*run, effect.system, effect.actor, effect.parent,
                                 effect.register_ref, effect.action, side.service, method,
                                 side.metadata);
    if (!target.ok()) {
      Fail(run, absl::Status(target.code(), absl::StrCat("side effect: ", target.message())));
      return;
    }
    for (auto& [key, value] : effect.metadata) side.metadata.emplace_back(key, value);
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    if (effect.scheduled_to_ms > now_ms) {
      // Later: the target keeps it as a durable timer of its own.
      ::spawn::InvocationRequest request;
      request.set_action_name(effect.action);
      if (effect.payload.has_value()) request.mutable_value()->ParseFromString(*effect.payload);
      request.set_scheduled_to(effect.scheduled_to_ms);
      google::protobuf::Any packed;
      packed.PackFrom(request);
      side.method = kScheduleMethod;
      side.payload = packed.SerializeAsString();
    } else {
      side.method = std::move(method);
      side.payload = effect.payload.value_or(std::string());
    }
    outcome.side_effects.push_back(std::move(side));
  }
  if (result.broadcast.has_value()) {
    Broadcast broadcast;
    broadcast.channel = result.broadcast->channel;
    broadcast.payload = TypedValue{kAnyType, result.broadcast->payload.value_or(std::string())};
    broadcast.metadata.emplace_back(kChannelMetadata, result.broadcast->channel);
    broadcast.metadata.emplace_back(kBroadcastActionMetadata, result.broadcast->action);
    broadcast.metadata.emplace_back(kCallerMetadata, run->name);
    outcome.broadcasts.push_back(std::move(broadcast));
  }
  std::string reply = result.reply.value_or(std::string());
  if (result.routing.has_value()) {
    const InvocationResult::Routing& routing = *result.routing;
    std::string service;
    std::string method;
    Metadata metadata;
    absl::Status target = Target(*run, "", routing.actor, "", routing.register_ref,
                                 routing.action, service, method, metadata);
    if (!target.ok()) {
      Fail(run, absl::Status(target.code(), absl::StrCat(routing.pipe ? "pipe: " : "forward: ",
                                                         target.message())));
      return;
    }
    if (routing.pipe) {
      outcome.result = Pipe{std::move(service), std::move(method), std::move(reply),
                            std::move(metadata)};
    } else {
      outcome.result = Forward{std::move(service), std::move(method), run->command.payload,
                               std::move(metadata)};
    }
  } else {
    outcome.result = Reply{std::move(reply), {}};
  }
  Answer(run);
}

// Hands the outcome to the runtime, with the state change when there is one, after the spawns
// its effects need.
void Answer(const RunPtr& run) {
  if (run->stateful) {
    std::string now = Deterministic(run->state);
    if (now != run->stored) {
      run->outcome.state_update = StateUpdate{TypedValue{kStateType, std::move(now)}, 0};
    }
  }
  if (run->spawns.empty()) {
    std::move(run->done)(std::move(run->outcome));
    return;
  }
  if (!run->impl->call_handler) {
    Fail(run, absl::InternalError("register_ref: spawning is not wired"));
    return;
  }
  // One after another (rare: register_ref); the first failure fails the command.
  Command spawn = std::move(run->spawns.back());
  run->spawns.pop_back();
  const std::string name = spawn.entity_key;
  const Actor* template_actor = run->system->FindService(spawn.service);
  CallerInfo caller;
  caller.deadline = run->command.deadline;
  caller.hops = run->command.hops;
  caller.source = run->name;
  run->impl->call_handler(caller, std::move(spawn),
                          [run, name, template_actor](CommandResult result) mutable {
                            if (!result.status.ok()) {
                              Fail(run, absl::Status(result.status.code(),
                                                     absl::StrCat("spawning ", name, ": ",
                                                                  result.status.message())));
                              return;
                            }
                            if (template_actor != nullptr) {
                              absl::MutexLock lock(&run->impl->mu);
                              run->impl->templates[name] = template_actor->definition.name;
                            }
                            Answer(run);
                          });
}

// The command itself, once the actor is activated.
void Main(const RunPtr& run) {
  std::string action;
  const MethodRole role = run->actor->RoleOf(run->command.method, &action);
  switch (role) {
    case MethodRole::kGet:
      run->outcome.result =
          Reply{run->state.has_state() ? run->state.state().SerializeAsString() : std::string(),
                {}};
      Answer(run);
      return;
    case MethodRole::kActivate:
      run->outcome.result = Reply{};
      Answer(run);
      return;
    case MethodRole::kSchedule: {
      google::protobuf::Any packed;
      ::spawn::InvocationRequest request;
      if (!packed.ParseFromString(run->command.payload) || !packed.UnpackTo(&request)) {
        Fail(run, absl::InvalidArgumentError("MassaSchedule takes a spawn.InvocationRequest"));
        return;
      }
      TimerEffect timer;
      timer.name = TimerName("spawn-at-");
      timer.method = run->actor->MethodOf(request.action_name());
      if (timer.method.empty()) {
        Fail(run, absl::NotFoundError(absl::StrCat("action ", request.action_name(),
                                                   " not found for actor ", run->name)));
        return;
      }
      timer.payload = TypedValue{kAnyType, request.has_value() && !IsNoop(request.value().SerializeAsString())
                                               ? request.value().SerializeAsString()
                                               : std::string()};
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      if (request.scheduled_to() > now_ms) timer.at_ms = request.scheduled_to();
      run->outcome.timers.push_back(std::move(timer));
      run->outcome.result = Reply{};
      Answer(run);
      return;
    }
    case MethodRole::kReceive:
      action = run->actor->ChannelAction(LastOf(run->command.metadata, kChannelMetadata),
                                         LastOf(run->command.metadata, kBroadcastActionMetadata));
      break;
    case MethodRole::kAction:
      break;
  }
  std::optional<std::string> payload;
  if (!run->command.payload.empty()) payload = run->command.payload;
  Invoke(run, action, std::move(payload),
         [](const RunPtr& invoked, absl::StatusOr<InvocationResult> result) {
           if (!result.ok()) {
             Fail(invoked, result.status());
             return;
           }
           Finish(invoked, *std::move(result));
         });
}

// The first command of an activation: the timer actions (re)set as durable recurring timers,
// then the `init` action with a noop, whose state and tags the command starts from.
void Activate(const RunPtr& run) {
  for (const TimerAction& timer : run->actor->definition.timers) {
    const std::string name = absl::StrCat("spawn-timer-", timer.action);
    // A tick of the timer itself must not replace it (the tick moves it on).
    if (run->command.timer.has_value() && run->command.timer->name == name) continue;
    TimerEffect effect;
    effect.name = name;
    effect.method = run->actor->MethodOf(timer.action);
    effect.payload = TypedValue{kAnyType, ""};
    effect.interval_ms = std::max<int64_t>(timer.every.count(),
                                           run->impl->options.min_timer_interval.count());
    effect.missed = MissedTicks::kSkip;
    run->outcome.timers.push_back(std::move(effect));
  }
  if (run->actor->init_action.empty() || run->command.method == run->actor->MethodOf(run->actor->init_action)) {
    Main(run);
    return;
  }
  Invoke(run, run->actor->init_action, std::nullopt,
         [](const RunPtr& initialized, absl::StatusOr<InvocationResult> result) {
           if (!result.ok()) {
             Fail(initialized, absl::Status(result.status().code(),
                                            absl::StrCat("activating: ", result.status().message())));
             return;
           }
           TakeState(*initialized, *result);
           Main(initialized);
         });
}

}  // namespace

SpawnDriver::SpawnDriver(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

SpawnDriver::~SpawnDriver() { Shutdown(); }

absl::StatusOr<std::unique_ptr<SpawnDriver>> SpawnDriver::Start(const SpawnDriverOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  HttpClientOptions client;
  client.address = options.address;
  client.max_connections = options.max_connections;
  client.max_response_bytes = options.max_message_bytes;
  client.user_agent = "massa-spawn";
  client.name = "massa-spawn";
  absl::StatusOr<std::unique_ptr<HttpClient>> started = HttpClient::Start(client);
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("the Spawn SDK's address: ", started.status().message()));
  }
  impl->client = *std::move(started);
  return std::unique_ptr<SpawnDriver>(new SpawnDriver(std::move(impl)));
}

std::shared_ptr<const System> SpawnDriver::system() const { return impl_->Current(); }

void SpawnDriver::SetSystem(std::shared_ptr<const System> system) {
  absl::MutexLock lock(&impl_->mu);
  impl_->system = std::move(system);
}

absl::StatusOr<FunctionSpec> SpawnDriver::Discover(std::chrono::milliseconds) {
  std::shared_ptr<const System> system = impl_->Current();
  if (system == nullptr) {
    return absl::FailedPreconditionError("no Spawn SDK has registered an actor system yet");
  }
  return system->spec();
}

namespace {

// The run of `command` on the current system's actor, or nullptr after failing `done` when the
// actor is no longer registered (a registration replaced it).
RunPtr NewRun(const std::shared_ptr<Impl>& impl, const Command& command, OutcomeCallback& done) {
  std::shared_ptr<const System> system = impl->Current();
  const Actor* actor = system == nullptr ? nullptr : system->FindService(command.service);
  if (actor == nullptr) {
    Outcome failed;
    failed.result = absl::NotFoundError(absl::StrCat(
        "no registered actor serves ", command.service, " (the SDK registered without it)"));
    std::move(done)(std::move(failed));
    return nullptr;
  }
  auto run = std::make_shared<Run>();
  run->impl = impl;
  run->system = std::move(system);
  run->actor = actor;
  run->command = command;
  run->done = std::move(done);
  return run;
}

}  // namespace

void SpawnDriver::HandleAction(const Command& command, OutcomeCallback done) {
  RunPtr run = NewRun(impl_, command, done);
  if (run == nullptr) return;
  run->name = run->actor->definition.name;
  if (command.method == kActivateMethod) {
    Activate(run);  // a pooled actor's timer actions (it has no init: it is never activated)
    return;
  }
  Main(run);
}

void SpawnDriver::HandleValueEntity(const Command& command,
                                    const std::optional<TypedValue>& state, OutcomeCallback done) {
  RunPtr run = NewRun(impl_, command, done);
  if (run == nullptr) return;
  run->name = command.entity_key;
  run->stateful = run->actor->definition.stateful;
  if (state.has_value() && state->type == kStateType) {
    if (!run->state.ParseFromString(state->bytes)) {
      Fail(run, absl::DataLossError(absl::StrCat("the stored state of actor ", run->name,
                                                 " does not decode")));
      return;
    }
    run->stored = Deterministic(run->state);
  } else {
    const ActorDefinition& definition = run->actor->definition;
    run->state.mutable_tags()->insert(definition.tags.begin(), definition.tags.end());
    if (definition.initial_state.has_value()) {
      run->state.mutable_state()->ParseFromString(*definition.initial_state);
    }
  }
  if (command.activating) {
    Activate(run);
  } else {
    Main(run);
  }
}

void SpawnDriver::HandleEventSourced(const Command&, const std::optional<TypedValue>&, uint64_t,
                                     OutcomeCallback done) {
  std::move(done)(absl::UnimplementedError("Spawn actors are not event sourced"));
}

void SpawnDriver::Fold(const std::string&, const std::string&, const std::optional<TypedValue>&,
                       const std::vector<Event>&, FoldCallback done) {
  std::move(done)(absl::UnimplementedError("Spawn actors are not event sourced"));
}

bool SpawnDriver::Reachable() { return impl_->client == nullptr || impl_->client->Reachable(); }

void SpawnDriver::Shutdown() {
  if (impl_->client != nullptr) impl_->client->Shutdown();
}

void SpawnDriver::SetCallHandler(CallHandler handler) { impl_->call_handler = std::move(handler); }

std::optional<CallerInfo> SpawnDriver::InFlight(std::string_view name) const {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->in_flight.find(std::string(name));
  if (it == impl_->in_flight.end()) return std::nullopt;
  return it->second.caller;
}

void SpawnDriver::NoteNestedFailure(std::string_view name, const absl::Status& status) {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->in_flight.find(std::string(name));
  if (it != impl_->in_flight.end()) it->second.nested = status;
}

std::string SpawnDriver::TemplateOf(std::string_view name) const {
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->templates.find(std::string(name));
  return it == impl_->templates.end() ? std::string() : it->second;
}

absl::StatusOr<ResolvedActor> SpawnDriver::Resolve(const System& system, std::string_view name,
                                                   std::string_view parent,
                                                   std::string_view register_ref) const {
  return ResolveIn(*impl_, system, name, parent, register_ref);
}

void SpawnDriver::NoteSpawned(std::string_view name, std::string_view parent) {
  absl::MutexLock lock(&impl_->mu);
  impl_->templates[std::string(name)] = std::string(parent);
}

}  // namespace massa::spawn
