// The actors a Spawn SDK registers (POST /api/v1/system, a spawn.RegistrationRequest), decoded
// into Massa's terms and checked: what the Spawn driver turns into services of the catalog.
//
// Decoding tolerates what real SDKs send (docs/spawn.md): a channel given as a plain topic
// string where current protos have a Channel message (the Python SDK), the UNAMED spelling of
// UNNAMED (the same number), timers' `seconds` holding milliseconds, an unnamed template whose
// ActorId.parent is its own name (the Node SDK).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace massa::spawn {

enum class ActorKind { kNamed, kUnnamed, kPooled };

struct ChannelSubscription {
  std::string topic;
  std::string action;  // the action a message invokes: the Channel's, else "receive"
};

struct TimerAction {
  std::string action;
  std::chrono::milliseconds every{0};
};

struct ActorDefinition {
  std::string name;
  ActorKind kind = ActorKind::kNamed;
  bool stateful = false;
  std::string state_type;  // as the SDK gives it (may be empty)
  std::vector<std::string> actions;
  std::vector<TimerAction> timers;
  std::vector<ChannelSubscription> channels;
  std::map<std::string, std::string> tags;
  std::optional<std::string> initial_state;  // a serialized google.protobuf.Any
  std::chrono::milliseconds deactivate_after{10'000};  // Spawn's default
  std::chrono::milliseconds snapshot_every{2'000};     // Spawn's default
  uint32_t max_pool_size = 0;                          // pooled: 0 = no limit
};

struct Registration {
  std::string system;  // the actor system's name
  std::string sdk;     // "library version", for logs
  std::vector<ActorDefinition> actors;  // sorted by name
};

// Decodes and checks a RegistrationRequest body. INVALID_ARGUMENT, naming the actor where there
// is one, for: a body that is not a RegistrationRequest; no actor system name; an actor without
// a name, or whose name differs from its registry key; a kind Massa does not serve (PROXY, TASK,
// PROJECTION) or an unknown one; a timer action without an action or with a period under 1 ms;
// a negative timeout or pool size; an action or channel named twice.
[[nodiscard]] absl::StatusOr<Registration> ParseRegistration(std::string_view body);

}  // namespace massa::spawn
