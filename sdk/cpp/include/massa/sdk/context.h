// File: massa/sdk/context.h
//
// The context a handler receives with its command: what is being handled, the entity's state
// (entities), the events it emits (event-sourced entities) and the effects the handler asks
// for (side effects, forwards).
//
// A context lives for one handler call only and belongs to the thread running it: do not keep
// it or use it from another thread. The SDK creates contexts; handlers only use them.
//
// Example (inside an action handler):
//   ctx.SideEffect("example.shoppingcart.ShoppingCart", "AddItem", add, /*synchronous=*/true);
//   return ctx.Forward("example.shoppingcart.ShoppingCart", "GetCart", get);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "massa/sdk/result.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace massa::sdk {

namespace detail {
struct Call;  // one command being handled; private to the SDK
}  // namespace detail

// What every kind of handler can do.
class CommandContext {
 public:
  explicit CommandContext(detail::Call& call) : call_(call) {}
  CommandContext(const CommandContext&) = delete;
  CommandContext& operator=(const CommandContext&) = delete;

  // The fully qualified service name and the bare method name of the command.
  const std::string& service_name() const;
  const std::string& method() const;

  // The first metadata entry of the command named `key` (string or bytes value), if any.
  std::optional<std::string> metadata(std::string_view key) const;

  // Asks Massa to call `service_name`/`method` with `payload` on behalf of this command.
  // Synchronous side effects complete before the reply is sent, and a failing one fails the
  // reply; asynchronous ones start once the command's state is durable and do not delay it.
  // Nothing is sent when the command fails. A target whose service is linked into this binary
  // is checked: an unknown method or a payload of the wrong type fails the command with
  // INTERNAL (a programming error).
  void SideEffect(std::string_view service_name, std::string_view method,
                  const google::protobuf::Message& payload, bool synchronous = false);

  // A Forward to return from the handler: `service_name`/`method` receives `payload` and its
  // reply becomes this command's reply. Checked like SideEffect; the target must also reply
  // with the forwarding method's output type.
  sdk::Forward Forward(std::string_view service_name, std::string_view method,
                       const google::protobuf::Message& payload);

 protected:
  detail::Call& call_;
};

// The context of an action (stateless) handler.
class ActionContext : public CommandContext {
 public:
  using CommandContext::CommandContext;
};

// What every entity handler can do.
class EntityContext : public CommandContext {
 public:
  using CommandContext::CommandContext;

  // The key of the entity the command is for.
  const std::string& entity_key() const;

  // Whether the entity existed when the command arrived: it had a stored state (value
  // entities) or a state or events (event-sourced entities).
  bool has_state() const;

 protected:
  const google::protobuf::Message& state_message() const;
};

// The untyped part of ValueContext.
class ValueContextBase : public EntityContext {
 public:
  using EntityContext::EntityContext;

  // Deletes the entity's state once the command succeeds; state() becomes the default value.
  // A later SetState/mutable_state in the same handler stores a state again.
  void DeleteState();

 protected:
  google::protobuf::Message& mutable_state_message();  // marks the state as updated
};

// The context of a value entity handler with state message State.
template <typename State>
class ValueContext : public ValueContextBase {
 public:
  using ValueContextBase::ValueContextBase;

  // The state as the handler sees it: the stored state, a default State when there is none,
  // or what the handler set so far.
  const State& state() const { return static_cast<const State&>(state_message()); }

  // The state for changing in place; the (possibly unchanged) state is stored once the
  // command succeeds.
  State& mutable_state() { return static_cast<State&>(mutable_state_message()); }

  // Replaces the state; stored once the command succeeds.
  void SetState(State state) { mutable_state() = std::move(state); }
};

// The untyped part of EventContext.
class EventContextBase : public EntityContext {
 public:
  using EntityContext::EntityContext;

  // Records `event` and applies it to state() at once with the entity's handler for its type,
  // so code after Emit sees the new state. The events are persisted, in the order emitted,
  // once the command succeeds; a failing command persists none. An event type without a
  // handler (EventSourcedEntity::OnEvent) is a programming error: the command fails with
  // INTERNAL and the state is left as it was.
  void Emit(const google::protobuf::Message& event);

  // The sequence number of the last event applied to state(): the entity's journal length
  // when the command arrived (0 for a new entity) plus the events emitted so far.
  uint64_t sequence() const;
};

// The context of an event-sourced entity handler with state message State. The state changes
// only through events.
template <typename State>
class EventContext : public EventContextBase {
 public:
  using EventContextBase::EventContextBase;

  // The state as the handler sees it: the entity's state (a default State for a new entity)
  // with the events emitted so far applied.
  const State& state() const { return static_cast<const State&>(state_message()); }
};

}  // namespace massa::sdk
