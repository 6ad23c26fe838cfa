// The Spawn protocol driver: runs the actors a Spawn SDK registered (system.h) by calling the
// SDK's `POST /api/v1/actors/actions` (an HTTP/1.1 client with a keep-alive pool) for each
// command, and turns its replies into Massa's outcomes: the reply, the actor's new state and
// tags (stored together as a spawn.actors.ActorState), side effects, a broadcast, a pipe or a
// forward (docs/spawn.md). The runtime gives it durability, one command at a time per actor,
// passivation, timers and the outbox.
//
// What the sidecar's built-ins do here: `get` and friends answer from the state Massa holds;
// the first command of an activation first invokes the actor's `init`/`setup` action (with a
// noop) and (re)sets its timer actions as durable recurring timers; async and scheduled
// invocations become durable one-shot timers of the target actor (MassaSchedule).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "massa/protocol/user_function.h"
#include "protocol/spawn/system.h"

namespace massa::spawn {

struct SpawnDriverOptions {
  std::string address;  // the SDK's HTTP server, "host:port" (Spawn's USER_FUNCTION_PORT)
  std::chrono::milliseconds call_timeout{60'000};  // per invocation (Spawn's default)
  size_t max_connections = 64;
  size_t max_message_bytes = 4 << 20;
  // Timer actions shorter than this run at this interval (Massa's --timer-min-interval).
  std::chrono::milliseconds min_timer_interval{1000};
};

// Where an invocation of actor `name` goes.
struct ResolvedActor {
  const Actor* actor = nullptr;  // the named or pooled actor, or the unnamed actor's template
  bool spawn_first = false;      // register_ref: spawn `name` from the template first
};

// Thread-safe.
class SpawnDriver final : public UserFunction {
 public:
  // INVALID_ARGUMENT for an address that does not parse.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SpawnDriver>> Start(
      const SpawnDriverOptions& options);
  ~SpawnDriver() override;

  // The registered system (null before the first registration), and its replacement.
  std::shared_ptr<const System> system() const;
  void SetSystem(std::shared_ptr<const System> system);

  // Spawn SDKs push their registration; there is nothing to ask. The current system's spec, or
  // FAILED_PRECONDITION before a registration.
  absl::StatusOr<FunctionSpec> Discover(std::chrono::milliseconds timeout) override;

  void HandleAction(const Command& command, OutcomeCallback done) override;
  void HandleValueEntity(const Command& command, const std::optional<TypedValue>& state,
                         OutcomeCallback done) override;
  void HandleEventSourced(const Command& command, const std::optional<TypedValue>& state,
                          uint64_t sequence, OutcomeCallback done) override;
  void Fold(const std::string& service, const std::string& entity_key,
            const std::optional<TypedValue>& state, const std::vector<Event>& events,
            FoldCallback done) override;
  bool Reachable() override;
  void Shutdown() override;
  // Used to spawn unnamed actors that a reply names through `register_ref` before its effects.
  void SetCallHandler(CallHandler handler) override;

  // The command that actor `name` is handling while its SDK makes an invocation of its own
  // (Spawn SDKs call the sidecar's invoke from inside an action, naming the actor as caller):
  // its chain, deadline and hops, so that the nested invocation joins the chain (and a cycle is
  // refused at once). nullopt when the actor has no command at the SDK.
  std::optional<CallerInfo> InFlight(std::string_view name) const;

  // An invocation that actor `name`'s SDK made while handling a command failed (the sidecar API
  // notes it). Should the SDK then fail that command, its error takes the nested failure's code
  // and names it: a call cycle three actors deep still says "call cycle" to the outermost caller,
  // whatever the SDK put in its error body.
  void NoteNestedFailure(std::string_view name, const absl::Status& status);

  // The template of unnamed actor `name` as far as this driver has seen it spawned; empty
  // when unknown. Noted by the sidecar API and by register_ref spawns.
  std::string TemplateOf(std::string_view name) const;
  void NoteSpawned(std::string_view name, std::string_view parent);

  // Finds what serves actor `name` of `system`: a registered actor of that name, else the
  // unnamed template named by `parent`, `register_ref` (then spawn_first) or, failing both, the
  // one it was seen spawned from. NOT_FOUND naming the actor and the system; INVALID_ARGUMENT
  // for an invocation of a template itself.
  [[nodiscard]] absl::StatusOr<ResolvedActor> Resolve(const System& system, std::string_view name,
                                                      std::string_view parent,
                                                      std::string_view register_ref) const;

 public:
  struct Impl;  // internal

 private:
  explicit SpawnDriver(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace massa::spawn
