// A registered Spawn actor system in Massa's terms: which service of the catalog each actor is,
// which method each action is, and the FunctionSpec (services and synthesized descriptors) that
// the catalog is built from. Immutable; one per registration (an SDK may register again, and a
// new system then replaces the old one for the commands that follow).
//
// Naming. Spawn names (actor system, actors, actions) are free strings, and the catalog needs
// protobuf identifiers: each name is kept where it is one, and otherwise spelled with `_xHH` for
// every byte outside [A-Za-z0-9_] (a leading digit gets a `_`). Actor `joe` of system
// `spawn-system` is service `spawn.spawn_x2dsystem.joe`; its entity type is the service name.
// Two names that spell the same are refused at registration, naming both.
//
// Every method takes and returns a google.protobuf.Any (Spawn's payloads); a noop is an empty
// Any. The stored state of an actor is a spawn.actors.ActorState (its tags and its state Any).
// Besides the actions, every actor has Massa's own methods (reserved names):
//   MassaSchedule  an async or scheduled invocation (a spawn.InvocationRequest in the Any): set
//                  a durable one-shot timer of the actor that invokes the action;
//   MassaReceive   a channel message: invoke the subscribed action (metadata spawn-channel);
//   MassaActivate  activate the actor (its `init` action and its timer actions; the reply is
//                  empty);
// and the built-in reads `get`, `Get`, `get_state`, `getState`, `GetState` (answered from
// Massa's copy of the state), unless the actor registers an action of that name.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "massa/protocol/user_function.h"
#include "protocol/spawn/registration.h"

namespace massa::spawn {

inline constexpr char kScheduleMethod[] = "MassaSchedule";
inline constexpr char kReceiveMethod[] = "MassaReceive";
inline constexpr char kActivateMethod[] = "MassaActivate";
// The type of every request, reply and broadcast payload, and of the stored state.
inline constexpr char kAnyType[] = "google.protobuf.Any";
inline constexpr char kStateType[] = "spawn.actors.ActorState";
// Metadata a broadcast carries to its subscribers.
inline constexpr char kChannelMetadata[] = "spawn-channel";
inline constexpr char kBroadcastActionMetadata[] = "spawn-action";
// The caller of a Spawn invocation, "system/actor", as metadata of the command.
inline constexpr char kCallerMetadata[] = "spawn-caller";

// What a method of an actor's service does.
enum class MethodRole { kAction, kGet, kSchedule, kReceive, kActivate };

struct Actor {
  ActorDefinition definition;
  std::string service;  // the catalog's service name
  std::map<std::string, std::string, std::less<>> methods;  // action -> method
  absl::flat_hash_map<std::string, std::string> actions;  // method -> action (actions only)
  std::string init_action;  // `init`, `Init`, `setup` or `Setup` when registered; else empty

  // The method of `action` (an action or a built-in read); empty when the actor has none.
  std::string MethodOf(std::string_view action) const;
  // What `method` does, and for kAction which action it is.
  MethodRole RoleOf(std::string_view method, std::string* action) const;
  // The subscribed action for a message on `channel`: the channel's own action, else the
  // broadcast's legacy action name when it has one, else `receive`.
  std::string ChannelAction(std::string_view channel, std::string_view legacy_action) const;
};

class System {
 public:
  // Maps `registration` and builds the spec of its services. INVALID_ARGUMENT naming the actor
  // or action for names that collide or take a reserved name.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<const System>> Build(
      Registration registration);

  const std::string& name() const { return name_; }
  const std::string& sdk() const { return sdk_; }
  const FunctionSpec& spec() const { return spec_; }
  const std::vector<std::unique_ptr<Actor>>& actors() const { return actors_; }

  // nullptr when there is no such actor.
  const Actor* FindActor(std::string_view name) const;
  const Actor* FindService(std::string_view service) const;

 private:
  System() = default;

  std::string name_;
  std::string sdk_;
  FunctionSpec spec_;
  std::vector<std::unique_ptr<Actor>> actors_;
  absl::flat_hash_map<std::string, const Actor*> by_name_;
  absl::flat_hash_map<std::string, const Actor*> by_service_;
};

// `name` as a protobuf identifier (see the file comment).
std::string Identifier(std::string_view name);

}  // namespace massa::spawn
