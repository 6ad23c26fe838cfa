// File: massa/sdk/function.h
//
// The Massa C++ SDK: a user function is a gRPC server that Massa (the sidecar proxy) calls
// with one command at a time, passing the entity's state in and taking the new state out.
// Register each service of your .proto with typed handlers, then Run() the function.
//
// Example:
//   using namespace massa::sdk;
//   Function fn("shopping-cart");
//   fn.AddValueEntity<Cart>("example.shoppingcart.ShoppingCart")   // state message Cart
//       .Handle("AddItem", [](ValueContext<Cart>& ctx, const AddLineItem& cmd)
//                              -> Result<google::protobuf::Empty> {
//         if (cmd.quantity() <= 0) return Fail(Code::kInvalidArgument, "bad quantity");
//         ctx.mutable_state().add_items()->set_product_id(cmd.product_id());
//         return google::protobuf::Empty();
//       });
//   fn.AddAction("example.shoppingcart.CartFront")
//       .Handle("Checkout", [](ActionContext& ctx, const CheckoutCart& req) -> Result<Cart> {
//         return ctx.Forward("example.shoppingcart.ShoppingCart", "Checkout", req);
//       });
//   return fn.Run(argc, argv);  // --listen unix:/path | host:port
//
// Supported kinds: actions (stateless), value entities (the state is read and replaced by each
// command) and event-sourced entities (commands emit events; event handlers fold them into
// the state):
//   fn.AddEventSourcedEntity<Cart>("example.escart.ShoppingCart", {.snapshot_every = 100})
//       .Handle("AddItem", [](EventContext<Cart>& ctx, const AddLineItem& cmd) -> Result<Empty> {
//         ItemAdded added;
//         *added.mutable_item() = ...;
//         ctx.Emit(added);  // applied to ctx.state() at once by the ItemAdded handler
//         return Empty();
//       })
//       .OnEvent<ItemAdded>([](Cart& state, const ItemAdded& event) { ... });
// CRDTs are part of the protocol and will be added to the SDK later.
//
// Registration errors (a service or method missing from the linked generated code, handler
// types that differ from the .proto, a method or event type registered twice) are
// programming errors: the SDK prints what is wrong and aborts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "massa/sdk/context.h"
#include "massa/sdk/crdt.h"
#include "massa/sdk/result.h"
#include "massa/sdk/status.h"

namespace google::protobuf {
class Descriptor;
class Message;
}  // namespace google::protobuf

namespace massa::sdk {

class Function;

namespace detail {

struct ServiceData;  // a registered service; private to the SDK

enum class Kind { kAction, kValueEntity, kEventSourced, kCrdt };

// A handler with its types erased; it always completes `call` with one of the Set* below.
using Handler = std::function<void(Call& call)>;

// An event handler with its types erased: applies `event` to `state`.
using EventHandler =
    std::function<void(google::protobuf::Message& state, const google::protobuf::Message& event)>;

// Used by the templates below; not for direct use.
const google::protobuf::Message& Input(const Call& call);
void SetReply(Call& call, const google::protobuf::Message& reply);
void SetFailure(Call& call, Failure failure);
void SetForward(Call& call, Forward forward);

template <typename T>
void Finish(Call& call, Result<T>&& result) {
  if (result.is_reply()) {
    SetReply(call, result.reply());
  } else if (result.is_failure()) {
    SetFailure(call, result.failure());
  } else {
    SetForward(call, result.forward());
  }
}

template <typename T>
inline constexpr bool kIsMessage = std::is_base_of_v<google::protobuf::Message, T>;

// The request and reply types of a handler `R (Context&, const In&)` where R is Result<Out>
// (or Out), for a function, function pointer or lambda (not a generic lambda).
template <typename R>
struct ReplyOf {
  using type = R;
};
template <typename T>
struct ReplyOf<Result<T>> {
  using type = T;
};
template <typename F>
struct Signature : Signature<decltype(&F::operator())> {};
template <typename R, typename Context, typename In>
struct Signature<R (*)(Context&, const In&)> {
  using Input = In;
  using Output = typename ReplyOf<R>::type;
};
template <typename C, typename R, typename Context, typename In>
struct Signature<R (C::*)(Context&, const In&) const> : Signature<R (*)(Context&, const In&)> {};
template <typename C, typename R, typename Context, typename In>
struct Signature<R (C::*)(Context&, const In&)> : Signature<R (*)(Context&, const In&)> {};

}  // namespace detail

// How Massa runs a value entity service. Every field has a default, so designated
// initializers may name any subset: EntityOptions{.passivation_timeout = 30s}.
struct EntityOptions {
  // Name under which the entities' state is stored; empty = the service name. Services may
  // share an entity type only if they are of the same kind.
  std::string entity_type{};
  // Idle time after which Massa passivates an entity; 0 = Massa's default.
  std::chrono::milliseconds passivation_timeout{0};
  // How long Massa remembers a request applied under an idempotency key (a retry within it
  // gets the stored reply); 0 = Massa's default (--idempotency-retention, 24 h).
  std::chrono::milliseconds idempotency_retention{0};
  // The entities' state reads as absent this long after it was last written (a command may
  // set its own, ValueContext::ExpireStateAfter); 0 = never expires.
  std::chrono::milliseconds state_ttl{0};
  // A named actor: the service has one entity, under this key, and its requests need no key
  // fields (where they have some, they must agree). Not with `spawned`.
  std::string actor_name{};
  // Unnamed actors: an entity exists once spawned (CommandContext::Spawn, or Massa's
  // POST /massa/v1/actors/{service}/{name}/spawn); commands to a name never spawned fail with
  // NOT_FOUND. Requests name their actor by key fields or by address (the key of a Call, the
  // `massa-entity-key` header).
  bool spawned = false;
};

// How Massa runs an action service.
struct ActionOptions {
  // A pool: at most this many commands of the service run at once, across Massa; more fail at
  // once with RESOURCE_EXHAUSTED. 0 = no limit.
  uint32_t max_concurrency = 0;
};

// How Massa runs an event-sourced entity service: EntityOptions plus its journal settings.
struct EventSourcedOptions {
  // As in EntityOptions (event-sourced state does not expire).
  std::string entity_type{};
  std::chrono::milliseconds passivation_timeout{0};
  std::chrono::milliseconds idempotency_retention{0};
  // Massa stores a snapshot of the state every `snapshot_every` events, so activating an
  // entity folds at most that many events; 0 = Massa's default.
  uint32_t snapshot_every = 0;
  // Once a snapshot is stored, Massa deletes the events it covers (bounded journal, but no
  // full history).
  bool delete_events_on_snapshot = false;
  // As in EntityOptions.
  std::string actor_name{};
  bool spawned = false;
};

// A registered service. Owned by its Function; references stay valid as long as it lives.
class Service {
 public:
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  virtual ~Service();

  // The fully qualified service name.
  const std::string& name() const;


 protected:
  explicit Service(detail::ServiceData& data) : data_(data) {}

  // Registers `handler` for `method`, checking the method exists with these input and output
  // types; aborts otherwise.
  void AddHandler(std::string_view method, const google::protobuf::Message& input_prototype,
                  const google::protobuf::Descriptor* output_type, detail::Handler handler);

  // Subscribes the service to `channel` with `method`; aborts if there is no such method.
  void AddSubscription(std::string_view channel, std::string_view method);

  // Event-sourced entities: registers `handler` for events of `event_prototype`'s type;
  // aborts if that type already has one.
  void AddEventHandler(const google::protobuf::Message& event_prototype,
                       detail::EventHandler handler);

 private:
  detail::ServiceData& data_;
};

// The Handle methods of a service of type Self whose handlers take a Context&.
template <typename Self, typename Context>
class ServiceOf : public Service {
 public:
  // Handles `method` (bare name, e.g. "AddItem"), whose request is In and reply Out.
  template <typename In, typename Out>
  Self& Handle(std::string_view method, std::function<Result<Out>(Context&, const In&)> handler) {
    static_assert(detail::kIsMessage<In> && detail::kIsMessage<Out>,
                  "In and Out must be generated protobuf messages");
    AddHandler(method, In::default_instance(), Out::descriptor(),
               [handler = std::move(handler)](detail::Call& call) {
                 Context ctx(call);
                 detail::Finish(call, handler(ctx, static_cast<const In&>(detail::Input(call))));
               });
    return static_cast<Self&>(*this);
  }

  // Subscribes the service to `channel`: Massa delivers every message published to it
  // (CommandContext::Publish) whose type is `method`'s request type to `method`, durably and
  // once per message: an action statelessly, a named actor to its entity, unnamed actors to
  // every one spawned, other entities to the one the message's key fields name (activated if
  // passivated). Aborts if the service has no such method. Register before Start.
  Self& Subscribe(std::string_view channel, std::string_view method) {
    AddSubscription(channel, method);
    return static_cast<Self&>(*this);
  }

  // As above, with In and Out taken from the handler's signature:
  //   cart.Handle("AddItem",
  //               [](ValueContext<Cart>& ctx, const AddLineItem& c) -> Result<Empty> { ... });
  template <typename F>
  Self& Handle(std::string_view method, F&& handler) {
    using Types = detail::Signature<std::decay_t<F>>;
    return Handle<typename Types::Input, typename Types::Output>(method, std::forward<F>(handler));
  }

 protected:
  using Service::Service;
};

// A stateless service: each command is handled on its own. A handler may run concurrently
// with any other handler.
class Action final : public ServiceOf<Action, ActionContext> {
 private:
  friend class Function;
  using ServiceOf::ServiceOf;
};

// An entity whose state is one State message, read and replaced by each command. Massa runs
// at most one command per entity at a time; handlers of different entities run concurrently.
template <typename State>
class ValueEntity final : public ServiceOf<ValueEntity<State>, ValueContext<State>> {
 private:
  friend class Function;
  using ServiceOf<ValueEntity<State>, ValueContext<State>>::ServiceOf;
};

// An entity whose state is derived from its journal of events: a command handler decides
// which events to emit (EventContext::Emit), and an event handler per event type applies one
// event to the State. Massa persists the events, keeps the state, takes snapshots and
// rebuilds the state through the same event handlers (Fold) when it activates the entity.
// Massa runs at most one command per entity at a time; handlers of different entities run
// concurrently.
//
// Event handlers must be deterministic and depend on nothing but the state and the event:
// they run again, possibly much later, whenever the state is rebuilt.
template <typename State>
class EventSourcedEntity final : public ServiceOf<EventSourcedEntity<State>, EventContext<State>> {
 public:
  // Applies events of type Event to the state:
  //   cart.OnEvent<ItemAdded>([](Cart& state, const ItemAdded& event) { ... });
  // Every event type a command handler emits needs one.
  template <typename Event>
  EventSourcedEntity& OnEvent(std::function<void(State&, const Event&)> handler) {
    static_assert(detail::kIsMessage<Event>, "Event must be a generated protobuf message");
    this->AddEventHandler(Event::default_instance(),
                          [handler = std::move(handler)](google::protobuf::Message& state,
                                                         const google::protobuf::Message& event) {
                            handler(static_cast<State&>(state), static_cast<const Event&>(event));
                          });
    return *this;
  }

  // As above, with Event taken from the handler's signature `void (State&, const Event&)`:
  //   cart.OnEvent([](Cart& state, const ItemAdded& event) { ... });
  template <typename F>
  EventSourcedEntity& OnEvent(F&& handler) {
    return OnEvent<typename detail::Signature<std::decay_t<F>>::Input>(std::forward<F>(handler));
  }

 private:
  friend class Function;
  using ServiceOf<EventSourcedEntity<State>, EventContext<State>>::ServiceOf;
};

// A CRDT entity (massa/sdk/crdt.h): its value is a replicated data type that Massa owns and
// merges; handlers read it and change it through the typed handles of CrdtContext.
class CrdtEntity final : public ServiceOf<CrdtEntity, CrdtContext> {
 private:
  friend class Function;
  using ServiceOf::ServiceOf;
};

// How a function serves Massa. Every field has a default.
struct ServeOptions {
  // Threads that receive Massa's commands (one gRPC completion queue each) and, unless
  // handler_threads is set, run the handlers. 0 = half the CPUs, 1 to 4 (Massa and the
  // function share the machine; a thread that receives a command and answers it itself costs
  // the fewest switches).
  int io_threads = 0;
  // Threads that run handlers, for handlers that block (on a database, a lock, a sleep): Massa
  // keeps many commands in flight on each of its streams, and a handler that blocks an I/O
  // thread delays the others behind it. 0 = handlers run on the I/O threads, which costs the
  // fewest thread switches: the right choice for handlers that only compute.
  int handler_threads = 0;
};

// A user function: its services and the gRPC server Massa talks to.
//
// Register every service and handler first (single-threaded), then Start or Run. While
// serving, handlers are called from the server's threads. Start, Shutdown and Wait are
// thread-safe.
class Function {
 public:
  // `name` identifies the function in Massa's logs; `version` is optional.
  explicit Function(std::string name, std::string version = {});
  Function(const Function&) = delete;
  Function& operator=(const Function&) = delete;
  ~Function();  // shuts the server down

  // Registers the stateless service `service_name` (fully qualified, e.g.
  // "example.shoppingcart.CartFront"). Aborts if it is not in the linked generated code or
  // is already registered.
  Action& AddAction(std::string_view service_name, ActionOptions options = {});

  // Registers the value entity service `service_name` with state message State.
  template <typename State>
  ValueEntity<State>& AddValueEntity(std::string_view service_name, EntityOptions options = {}) {
    static_assert(detail::kIsMessage<State>, "State must be a generated protobuf message");
    return Keep<ValueEntity<State>>(
        RegisterService(service_name, detail::Kind::kValueEntity, &State::default_instance(),
                        EventSourcedOptions{.entity_type = std::move(options.entity_type),
                                            .passivation_timeout = options.passivation_timeout,
                                            .idempotency_retention =
                                                options.idempotency_retention,
                                            .actor_name = std::move(options.actor_name),
                                            .spawned = options.spawned},
                        options.state_ttl));
  }

  // Registers the event-sourced entity service `service_name` with state message State.
  // Register its event handlers (OnEvent) with its command handlers, before Start.
  template <typename State>
  EventSourcedEntity<State>& AddEventSourcedEntity(std::string_view service_name,
                                                   EventSourcedOptions options = {}) {
    static_assert(detail::kIsMessage<State>, "State must be a generated protobuf message");
    return Keep<EventSourcedEntity<State>>(RegisterService(
        service_name, detail::Kind::kEventSourced, &State::default_instance(), std::move(options)));
  }

  // Registers the CRDT entity service `service_name` whose entities hold a value of `type`
  // (EntityOptions: entity_type, passivation_timeout, idempotency_retention; not state_ttl or
  // actor settings).
  CrdtEntity& AddCrdtEntity(std::string_view service_name, CrdtType type,
                            EntityOptions options = {});

  // Serves on `address`: "unix:/path/to.sock" (a stale socket file is removed first) or
  // "host:port" (port 0 picks a free port). Returns once listening. Errors: INVALID_ARGUMENT
  // for a bad address or options, UNAVAILABLE when it cannot listen, FAILED_PRECONDITION when
  // serving.
  Status Start(std::string_view address, ServeOptions options = {});

  // The address being served, with the real port for "host:0"; empty when not serving.
  std::string address() const;

  // Stops serving: waits up to `grace` for commands in flight, then cancels them; removes the
  // unix socket file. No-op when not serving.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // Blocks until the server is shut down (returns at once when not serving).
  void Wait();

  // For main(): parses `--listen ADDRESS` (default: $MASSA_FUNCTION_LISTEN, else
  // unix:/tmp/massa-function.sock), `--io-threads N` and `--handler-threads N` (ServeOptions;
  // also $MASSA_FUNCTION_IO_THREADS, $MASSA_FUNCTION_HANDLER_THREADS), starts, prints
  // "listening on <address>" to stdout and
  // serves until SIGTERM or SIGINT, then shuts down gracefully. Returns the exit code: 0 after
  // a signal, 1 when it cannot listen, 2 for bad arguments. Blocks SIGTERM and SIGINT in the
  // calling thread, whose mask the server's threads inherit: call it from main() before
  // starting threads of your own (or block those signals in them).
  int Run(int argc, char** argv);

 private:
  // Registers a service of any kind; `options` holds what that kind uses (EventSourcedOptions
  // is a superset of EntityOptions).
  detail::ServiceData& RegisterService(
      std::string_view service_name, detail::Kind kind,
      const google::protobuf::Message* state_prototype, EventSourcedOptions options,
      std::chrono::milliseconds state_ttl = std::chrono::milliseconds(0));
  void Keep(std::unique_ptr<Service> service);
  template <typename S>
  S& Keep(detail::ServiceData& data) {
    auto* service = new S(data);
    Keep(std::unique_ptr<Service>(service));
    return *service;
  }

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa::sdk
