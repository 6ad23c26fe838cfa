// What a Spawn SDK answers to an invocation (its POST /api/v1/actors/actions replies with a
// spawn.ActorInvocationResponse), decoded into the driver's terms and checked, tolerating what
// real SDKs send (docs/spawn.md): a Noop packed into `value` instead of the `noop` field (also
// under the old package name eigr.functions.protocol), an empty `workflow {}` on every reply,
// effects that carry `async`, `caller` and an absolute `scheduled_to`, a broadcast that names the
// subscriber's action only in the legacy `action_name`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace massa::spawn {

// An invocation of another actor that the SDK asks for (a workflow side effect).
struct EffectInvocation {
  std::string system;
  std::string actor;
  std::string action;
  std::optional<std::string> payload;  // a serialized google.protobuf.Any; nullopt = noop
  std::map<std::string, std::string> metadata;
  int64_t scheduled_to_ms = 0;  // Unix ms; 0 = now
  std::string register_ref;     // spawn the actor from this template first
  std::string parent;           // an unnamed actor's template (ActorId.parent)
};

struct InvocationResult {
  std::optional<std::string> reply;  // a serialized google.protobuf.Any; nullopt = noop
  std::optional<std::string> state;  // the new state (a serialized Any); nullopt = unchanged
  std::optional<std::map<std::string, std::string>> tags;  // nullopt = unchanged
  std::vector<EffectInvocation> effects;
  struct Broadcast {
    std::string channel;
    std::string action;                  // the legacy action_name; empty = the subscriber's own
    std::optional<std::string> payload;  // nullopt = noop
  };
  std::optional<Broadcast> broadcast;
  struct Routing {
    bool pipe = false;  // else forward
    std::string actor;
    std::string action;
    std::string register_ref;
  };
  std::optional<Routing> routing;
  bool checkpoint = false;
};

// An invocation Massa sends to the SDK (POST /api/v1/actors/actions).
struct Invocation {
  std::string system;  // the actor system the SDK registered (SDKs check it)
  std::string actor;
  std::string parent;  // an unnamed actor's template; empty for named and pooled actors
  std::string action;
  std::optional<std::string> payload;  // a serialized google.protobuf.Any; nullopt = noop
  std::optional<std::string> state;    // the actor's state (a serialized Any); nullopt = none
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> metadata;
  std::string caller;  // the invoking actor; empty = none (a client)
};

// The body of an invocation: a spawn.ActorInvocation that always carries current_context (the
// Node SDK fails without it) with the state, tags, metadata, caller and self; the actor's
// ActorId has the system and, for an unnamed actor, its parent (the Python SDK checks both); a
// payload or, without one, the `noop` field.
std::string EncodeInvocation(const Invocation& invocation);

// Whether a serialized Any is a Noop (spawn.Noop or eigr.functions.protocol.Noop).
bool IsNoop(std::string_view any_bytes);

// Decodes the body of the SDK's reply. INVALID_ARGUMENT ("... the SDK's reply ...") for an empty
// body, one that is not an ActorInvocationResponse, or one without `updated_context` (the
// protocol requires it); also for a side effect without a target actor or action, or a pipe or
// forward without an actor.
[[nodiscard]] absl::StatusOr<InvocationResult> ParseInvocationResult(std::string_view body);

}  // namespace massa::spawn
