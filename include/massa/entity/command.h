// File: massa/entity/command.h
//
// The values that flow through Massa: a Command comes in from an ingress, goes through the
// router to the entity runtime and a protocol driver, and an Outcome comes back. These are
// plain value types with no wire types in them; each protocol driver converts to and from
// its own wire format.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"

namespace massa {

// What a CRDT entity's handler asks of its value (defined in src/crdt/change.h: an operation
// of the CRDT library, or deleting the entity). Opaque here.
struct CrdtChange;

enum class EntityKind { kAction, kValueEntity, kEventSourced, kCrdt };

// "action", "value_entity", "event_sourced", "crdt".
const char* EntityKindName(EntityKind kind);

// Request or reply metadata (gRPC headers, HTTP headers). Keys are lower case.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// A command that fires a timer of its own entity (see TimerEffect): the runtime checks that the
// timer is still due at `due_ms` and, in the same write as the command's state change, moves
// it to `next` or removes it.
struct TimerFire {
  std::string name;
  int64_t due_ms = 0;               // the due time it fires for (Unix ms)
  std::optional<int64_t> next_due;  // recurring: the next due time; nullopt: remove the timer
  std::string next_record;          // the timer's stored record (store::TimerRecord::record)
  uint32_t partition = 0;
  bool skip = false;                // a missed tick under the skip policy: advance only
};

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
  // The request's idempotency key (from the `idempotency-key` metadata, which the router moves
  // here), or one Massa derived for an effect or a timer; empty = none.
  std::string idempotency_key;
  // The target entity is `entity_key` as given (a timer, later a call between actors) rather
  // than the key fields of the payload; where the payload names a key too, they must agree.
  bool addressed = false;
  std::optional<TimerFire> timer;  // set when the command fires a timer of its own entity
  // The entities waiting in handlers for this command's reply, outermost first, each as
  // "entity type/key": a call to one of them would wait for itself (the router refuses it).
  std::vector<std::string> call_chain;
  // A call to a read-only method of an entity that waits in call_chain: it runs at once,
  // outside the entity's mailbox, on its stored state, and may not change anything.
  bool reentrant = false;
  // Instead of running a method: spawns the unnamed actor `entity_key` of `service` (a service
  // whose spec sets `spawned`), durably; spawning an existing one is a no-op. Empty reply.
  bool spawn = false;
  // Set by the runtime on the first command an entity runs after its activation (its state
  // just loaded): drivers with activation hooks (Spawn's `init` action) run them first.
  bool activating = false;
  // Internal, between the nodes of a cluster (never from a client): instead of running a
  // method, joins this delta (a serialized CRDT value) into this node's copy of the CRDT
  // entity, if it has one in memory. Empty reply.
  std::optional<std::string> crdt_merge;
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

// A message published to a channel: delivered, durably, to every service subscribed to it
// (ServiceSpec::subscriptions) whose handler takes the message's type.
struct Broadcast {
  std::string channel;
  TypedValue payload;
  Metadata metadata;
};

// What a timer does when a recurring timer's tick was missed (massa was down, or busy past the
// misfire grace): fire once for all missed ticks, or skip them and wait for the next one.
enum class MissedTicks { kCatchUpOnce, kSkip };

// A timer set (or cancelled) by a handler: a call of `method` after a delay or at a time,
// optionally recurring every `interval_ms` or on a cron schedule. Validated by the runtime.
struct TimerEffect {
  std::string name;     // unique per entity (per service for actions); set again = replaced
  bool cancel = false;  // cancels the timer `name` (nothing if there is none); rest ignored
  // Empty: a method of the entity's own service, on the entity itself (the tick joins that
  // command's write). Else another service (its entity key taken from the payload).
  std::string service;
  std::string method;
  TypedValue payload;
  int64_t delay_ms = 0;  // first fire after this long (default: at once, or one interval)
  int64_t at_ms = 0;     // or at this time (Unix ms); 0 = not set
  int64_t interval_ms = 0;  // recurring every interval (no drift: ticks stay on the grid)
  std::string cron;         // or on this schedule (6 fields with seconds, or 5; UTC)
  MissedTicks missed = MissedTicks::kCatchUpOnce;
};

// Value entity state change requested by a command; for event-sourced entities, the state
// after the command's events.
struct StateUpdate {
  std::optional<TypedValue> value;  // nullopt = delete the state
  // Value entities: the state reads as absent after this long; 0 = the service's default.
  int64_t ttl_ms = 0;
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
  std::vector<TimerEffect> timers;
  std::vector<Broadcast> broadcasts;
  // CRDT entities: the change to the value; null = unchanged.
  std::shared_ptr<const CrdtChange> crdt;

  bool failed() const { return std::holds_alternative<absl::Status>(result); }
};

// The final answer to a Command as the ingress sends it back.
struct CommandResult {
  absl::Status status;   // OK, or the error to return to the caller
  std::string payload;   // the reply message when status is OK
  Metadata metadata;
};

}  // namespace massa
