// File: massa/entity/command.h
//
// The values that flow through Massa: a Command comes in from an ingress, goes through the
// router to the entity runtime and a protocol driver, and an Outcome comes back. These are
// plain value types with no wire types in them; each protocol driver converts to and from
// its own wire format.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace massa {

enum class EntityKind { kAction, kValueEntity, kEventSourced, kCrdt };

// "action", "value_entity", "event_sourced", "crdt".
const char* EntityKindName(EntityKind kind);

// Request or reply metadata (gRPC headers, HTTP headers). Keys are lower case.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// One call to one method of one service, as the ingress received it.
struct Command {
  std::string service;     // fully qualified service name
  std::string method;      // method name without the service
  std::string entity_key;  // filled in by the router for entity kinds; empty for actions
  std::string payload;     // the serialized request message (protobuf binary)
  // Fully qualified request message type, set by the router. Points into the service
  // catalog, which outlives every command.
  std::string_view request_type;
  Metadata metadata;
  // Point after which the caller no longer waits; max() = no deadline.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // How many forwards, pipes and side effects led to this command; bounded by the router.
  uint32_t hops = 0;
};

// A message of a known protobuf type: the fully qualified message name and its bytes.
struct TypedValue {
  std::string type;   // e.g. "example.shoppingcart.Cart"
  std::string bytes;  // protobuf binary

  friend bool operator==(const TypedValue&, const TypedValue&) = default;
};

struct Reply {
  std::string payload;  // the method's output message, protobuf binary
  Metadata metadata;
};

struct Forward {
  std::string service;
  std::string method;
  std::string payload;
  Metadata metadata;
};

// Like Forward, but the request of the target is this command's reply payload.
struct Pipe {
  std::string service;
  std::string method;
  std::string payload;  // filled by the driver from the reply
  Metadata metadata;
};

struct SideEffect {
  std::string service;
  std::string method;
  std::string payload;
  bool synchronous = false;
  Metadata metadata;
};

// Value entity state change requested by a command; for event-sourced entities, the state
// after the command's events.
struct StateUpdate {
  std::optional<TypedValue> value;  // nullopt = delete the state
};

// One event of an event-sourced entity's journal.
struct Event {
  uint64_t sequence = 0;     // 1-based per entity, no gaps
  std::string type;          // fully qualified message type of `payload`
  std::string payload;       // protobuf binary
  int64_t timestamp_ms = 0;  // when Massa persisted it (Unix time, milliseconds)
  Metadata metadata;         // what Massa recorded about its origin (e.g. the command)

  friend bool operator==(const Event&, const Event&) = default;
};

// What the user function made of one command.
struct Outcome {
  // A failure is an absl::Status that is not OK; its message comes from the function.
  std::variant<Reply, Forward, Pipe, absl::Status> result;
  // Value entities: the state change, if any. Event sourced: the state after `events`
  // (required when there are events).
  std::optional<StateUpdate> state_update;
  std::vector<TypedValue> events;  // event sourced: events to persist, in order
  std::vector<SideEffect> side_effects;

  bool failed() const { return std::holds_alternative<absl::Status>(result); }
};

// The final answer to a Command as the ingress sends it back.
struct CommandResult {
  absl::Status status;   // OK, or the error to return to the caller
  std::string payload;   // the reply message when status is OK
  Metadata metadata;
};

}  // namespace massa
