// File: massa/protocol/user_function.h
//
// The seam between the runtime and a user function. A driver (native, Spawn, Cloudstate)
// implements UserFunction over its own wire protocol and hands back Massa's own types;
// the runtime never sees a driver's wire types.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "massa/entity/command.h"

namespace massa {
namespace crdt {
enum class Type : uint8_t;  // src/crdt/crdt.h
struct Value;
}  // namespace crdt

// A service's subscription to a channel: `method` handles the channel's messages.
struct ChannelSubscription {
  std::string channel;
  std::string method;
};

// How the function wants one of its services run.
struct ServiceSpec {
  std::string name;  // fully qualified service name
  EntityKind kind = EntityKind::kAction;
  std::string entity_type;                            // defaults to `name`
  std::chrono::milliseconds passivation_timeout{0};  // 0 = Massa's default
  std::string state_type;                             // fully qualified message name, or empty
  // Event sourced: store a snapshot every N events; 0 = Massa's default.
  uint32_t snapshot_every = 0;
  // Event sourced: delete events once a snapshot covers them (retention).
  bool delete_events_on_snapshot = false;
  // How long a request's idempotency record is kept; 0 = Massa's default (--idempotency-retention).
  std::chrono::milliseconds idempotency_retention{0};
  // Value entities: state reads as absent this long after its last write; 0 = never expires.
  std::chrono::milliseconds state_ttl{0};
  // The actor mesh. A named actor: the service's one entity, under this key; empty = none.
  std::string actor_name;
  // Unnamed actors: an entity exists once spawned (Command::spawn); others are NOT_FOUND.
  bool spawned = false;
  // Pooled actions: at most this many commands run at once (RESOURCE_EXHAUSTED beyond); 0 = any.
  uint32_t max_concurrency = 0;
  std::vector<ChannelSubscription> subscriptions;
  // CRDT entities: the data type of their value; 0 = not a CRDT.
  crdt::Type crdt_type{};
};

// What discovery returned: the services and the descriptors that define them.
struct FunctionSpec {
  std::string descriptor_set;  // serialized google.protobuf.FileDescriptorSet
  std::vector<ServiceSpec> services;
  std::string function_name;   // for logs
  std::string sdk;             // "name version", for logs
};

// The answer of the function to one command, or a transport error (UNAVAILABLE when the
// function is down, DEADLINE_EXCEEDED, INTERNAL for an answer that does not decode).
// A function-side failure is an OK StatusOr holding an Outcome whose result is a Status.
using OutcomeCallback = absl::AnyInvocable<void(absl::StatusOr<Outcome>) &&>;

// The state an event-sourced entity has after a fold (nullopt: the function keeps the initial
// state), or a transport error / INTERNAL when the function could not apply the events.
using FoldCallback = absl::AnyInvocable<void(absl::StatusOr<std::optional<TypedValue>>) &&>;

// Thread-safe. Handle* never block; `done` runs on a driver thread and must not block.
// The command a function was handling when it made a call to another actor (the actor mesh).
struct CallerInfo {
  std::vector<std::string> call_chain;  // its chain, its own entity last (Command::call_chain)
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  uint32_t hops = 0;
  std::string idempotency_key;  // the command's; empty = none
  std::string source;           // its entity ("type/key"), or its service for an action
  uint32_t index = 0;           // this call's number among the command's calls, from 0
};

// Runs a call the function made: `call` names the service, method, payload and metadata, and
// the entity key when the function gave one (then `addressed`). Answers through `done`; must
// not block.
using CallHandler = absl::AnyInvocable<void(const CallerInfo& caller, Command call,
                                            absl::AnyInvocable<void(CommandResult) &&> done)>;

class UserFunction {
 public:
  virtual ~UserFunction() = default;

  // Asks the function for its services. Blocks until it answers or `timeout` passes, retrying
  // while the function is not reachable yet. Errors: UNAVAILABLE / DEADLINE_EXCEEDED when it
  // never answered, FAILED_PRECONDITION for an incompatible protocol version.
  [[nodiscard]] virtual absl::StatusOr<FunctionSpec> Discover(std::chrono::milliseconds timeout) = 0;

  virtual void HandleAction(const Command& command, OutcomeCallback done) = 0;

  // `state` is the entity's current state, nullopt when it has none.
  virtual void HandleValueEntity(const Command& command, const std::optional<TypedValue>& state,
                                 OutcomeCallback done) = 0;

  // `state` is the entity's state after `sequence` events (nullopt: initial state). The
  // outcome carries the events to persist and, when there are any, the state after them.
  virtual void HandleEventSourced(const Command& command, const std::optional<TypedValue>& state,
                                  uint64_t sequence, OutcomeCallback done) = 0;

  // CRDT entities: `value` is the entity's current value (the empty value of its type when it
  // has none). The outcome carries the change to the value (Outcome::crdt), if any.
  virtual void HandleCrdt(const Command& command, const crdt::Value& value, OutcomeCallback done) {
    (void)command;
    (void)value;
    std::move(done)(absl::UnimplementedError("this driver does not serve CRDT entities"));
  }

  // Applies `events` (in order) to `state` with the function's event handlers; used to
  // rebuild state on activation.
  virtual void Fold(const std::string& service, const std::string& entity_key,
                    const std::optional<TypedValue>& state, const std::vector<Event>& events,
                    FoldCallback done) = 0;

  // Whether the function can be reached now, as far as the driver knows without a call (for
  // readiness). May start a connection attempt; never blocks.
  virtual bool Reachable() { return true; }

  // Closes the connections to the function: calls in flight fail with UNAVAILABLE, and so do
  // later ones. Returns once no callback of the driver will run any more (part of an orderly
  // server shutdown). Idempotent.
  virtual void Shutdown() {}

  // Where the calls the function makes while handling a command go (set once, before the
  // first command). Without one, or on a transport without calls, they fail.
  virtual void SetCallHandler(CallHandler handler) { (void)handler; }
};

using UserFunctionPtr = std::unique_ptr<UserFunction>;

}  // namespace massa
