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

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "massa/sdk/result.h"
#include "massa/sdk/status.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace massa::sdk {

namespace detail {
struct Call;  // one command being handled; private to the SDK
}  // namespace detail

// When a timer fires (Massa protocol 1.2). Timers are durable: Massa writes them with the
// command's state change, keeps them in its store and fires each tick at least once, also
// after restarts. Built with the factories, then optionally SkipMissed():
//   Schedule::After(15min)                      once, 15 minutes from now
//   Schedule::At(time_point)                    once, at that time (at once if it has passed)
//   Schedule::Every(1h)                         every hour from now, on a fixed grid
//   Schedule::Every(1h, /*first_after=*/5min)   first in 5 minutes, then every hour
//   Schedule::Cron("0 30 9 * * MON-FRI")        on a cron schedule with seconds, in UTC
// A recurring timer's tick that Massa could not fire on time (it was down) fires once for all
// the missed ticks; with SkipMissed() they are skipped and the timer waits for its next time.
class Schedule {
 public:
  static Schedule After(std::chrono::milliseconds delay);
  static Schedule At(std::chrono::system_clock::time_point at);
  static Schedule Every(std::chrono::milliseconds interval,
                        std::chrono::milliseconds first_after = std::chrono::milliseconds(0));
  static Schedule Cron(std::string expression);

  Schedule& SkipMissed() {
    skip_missed_ = true;
    return *this;
  }

  int64_t delay_ms() const { return delay_ms_; }
  int64_t at_ms() const { return at_ms_; }
  int64_t interval_ms() const { return interval_ms_; }
  const std::string& cron() const { return cron_; }
  bool skip_missed() const { return skip_missed_; }

 private:
  Schedule() = default;
  int64_t delay_ms_ = 0;
  int64_t at_ms_ = 0;
  int64_t interval_ms_ = 0;
  std::string cron_;
  bool skip_missed_ = false;
};

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

  // The command's idempotency key: the caller's `idempotency-key` (Massa applies the command
  // at most once per entity under it), or one Massa derived for an effect or a timer tick;
  // empty when there is none. Pass it on to systems outside Massa that take one.
  const std::string& idempotency_key() const;

  // Sets the timer `name` (replacing one of the same name) to call `method` of this service
  // with `payload` when `schedule` says. On an entity it fires on this same entity, and its
  // tick's state change is written together with the tick: each tick changes the state
  // once. Nothing is set when the command fails. A bad schedule (a negative delay, an interval
  // under Massa's minimum, an invalid cron expression) fails the command with
  // INVALID_ARGUMENT from Massa.
  void ScheduleTimer(std::string_view name, std::string_view method,
                     const google::protobuf::Message& payload, const Schedule& schedule);
  // The same for `method` of another service (an entity's key is taken from the payload).
  void ScheduleTimer(std::string_view name, std::string_view service_name,
                     std::string_view method, const google::protobuf::Message& payload,
                     const Schedule& schedule);
  // Cancels the timer `name` (nothing if there is none) once the command succeeds.
  void CancelTimer(std::string_view name);

  // Asks Massa to call `service_name`/`method` with `payload` on behalf of this command.
  // Synchronous side effects complete before the reply is sent, and a failing one fails the
  // reply; asynchronous ones start once the command's state is durable and do not delay it.
  // Nothing is sent when the command fails. A target whose service is linked into this binary
  // is checked: an unknown method or a payload of the wrong type fails the command with
  // INTERNAL (a programming error).
  void SideEffect(std::string_view service_name, std::string_view method,
                  const google::protobuf::Message& payload, bool synchronous = false);

  // Calls `method` of `service_name` with `request` and waits for its reply (the actor mesh,
  // Massa protocol 1.2): an entity's key comes from the request's key fields, or is
  // `entity_key` when given (where both are given they must agree). The call is a command of
  // this one's chain: it has this command's deadline, and under an idempotency key a key
  // derived from it. A call to an entity that is waiting for this chain's reply (A calls B,
  // which calls A) fails at once with ABORTED naming the chain; nothing of it is applied.
  // Needs handler threads (`--handler-threads N`): a handler on the I/O thread cannot wait,
  // and gets FAILED_PRECONDITION saying so. Returns the reply or the call's failure, which a
  // handler usually returns as its own.
  template <typename Reply>
  Result<Reply> Call(std::string_view service_name, std::string_view method,
                     const google::protobuf::Message& request, std::string_view entity_key = "") {
    Reply reply;
    std::optional<Failure> failed = CallInto(service_name, method, request, entity_key, reply);
    if (failed.has_value()) return *std::move(failed);
    return reply;
  }

  // Sends `message` to `method` of `service_name` one way: an asynchronous side effect,
  // written to Massa's durable outbox with this command's state change and delivered at least
  // once after it, under a derived idempotency key so that an entity applies it once (also
  // across restarts). Nothing is sent when the command fails.
  void Send(std::string_view service_name, std::string_view method,
            const google::protobuf::Message& message) {
    SideEffect(service_name, method, message, /*synchronous=*/false);
  }

  // Spawns the actor `name` of `service_name`, a service of unnamed actors (registered with
  // EntityOptions{.spawned = true}), and waits until its spawn is durable; spawning a name
  // again is a no-op. Until spawned, commands to the name fail with NOT_FOUND; spawned actors
  // survive restarts. Needs handler threads, like Call. Returns OK or why not.
  Status Spawn(std::string_view service_name, std::string_view name);

  // Publishes `message` to `channel`: written with this command's state change and delivered
  // after it, durably, to every service subscribed to the channel (Service::Subscribe) whose
  // handler takes the message's type: at least once, under a key per message and subscriber,
  // so that an entity applies it once, also when it was passivated. Nothing is published when
  // the command fails.
  void Publish(std::string_view channel, const google::protobuf::Message& message);

  // A Forward to return from the handler: `service_name`/`method` receives `payload` and its
  // reply becomes this command's reply. Checked like SideEffect; the target must also reply
  // with the forwarding method's output type.
  sdk::Forward Forward(std::string_view service_name, std::string_view method,
                       const google::protobuf::Message& payload);

  // A pipe to return from the handler: `reply`, what this command replies (its method's output
  // type), becomes the request of `service_name`/`method`, and that method's reply (of the same
  // type) becomes this command's reply; its failure is this command's failure. Checked like
  // Forward.
  sdk::Forward Pipe(const google::protobuf::Message& reply, std::string_view service_name,
                    std::string_view method);

 protected:
  std::optional<Failure> CallInto(std::string_view service_name, std::string_view method,
                                  const google::protobuf::Message& request,
                                  std::string_view entity_key, google::protobuf::Message& reply);
  void AddTimer(std::string_view name, std::string_view service_name, std::string_view method,
                const google::protobuf::Message& payload, const Schedule& schedule);

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

  // The state this command stores expires `ttl` after it is written (it then reads as absent,
  // as if deleted), instead of after the service's EntityOptions::state_ttl.
  void ExpireStateAfter(std::chrono::milliseconds ttl);

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
