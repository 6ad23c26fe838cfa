// File: sdk/cpp/src/registry.h (private to the SDK)
//
// The registered services and the protocol logic of a function, free of gRPC: discovery and
// the dispatch of one command to its typed handler. The gRPC server (server.h) only adapts
// these calls to the wire.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "massa/protocol/v1/protocol.pb.h"
#include "massa/sdk/function.h"
#include "massa/sdk/version.h"

namespace massa::sdk::detail {

// Where ctx.Call sends a call to another actor: the stream of the command being handled.
class CallSink {
 public:
  virtual ~CallSink() = default;
  // Sends `call` on behalf of command `command_id` and waits for its result; UNAVAILABLE when
  // the stream ends first.
  virtual absl::StatusOr<protocol::v1::ActorCallResult> MakeCall(
      uint64_t command_id, protocol::v1::ActorCall call) = 0;
};

// The command this thread is handling on a handler thread (no sink on an I/O thread, where a
// handler cannot wait for a reply that arrives on the same thread).
struct CurrentCommand {
  CallSink* sink = nullptr;
  uint64_t command_id = 0;
};
CurrentCommand& Current();  // thread-local


class Registry;

inline constexpr char kSdkName[] = "massa-cpp";
inline constexpr char kSdkVersion[] = MASSA_SDK_VERSION;
inline constexpr unsigned kProtocolMajor = 1;
inline constexpr unsigned kProtocolMinor = 2;  // 1.2: timers, state TTL, idempotency keys
inline constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";  // of every Any we send

struct MethodData {
  const google::protobuf::MethodDescriptor* descriptor = nullptr;
  const google::protobuf::Message* input_prototype = nullptr;  // a default In
  Handler handler;
};

struct EventHandlerData {
  const google::protobuf::Message* prototype = nullptr;  // a default Event
  EventHandler handler;
};

struct ServiceData {
  Registry* registry = nullptr;
  std::string name;
  Kind kind = Kind::kAction;
  const google::protobuf::ServiceDescriptor* descriptor = nullptr;
  const google::protobuf::Message* state_prototype = nullptr;  // entities: a default State
  EventSourcedOptions options;  // the event-sourced settings are used by event-sourced only
  std::chrono::milliseconds state_ttl{0};  // value entities
  uint32_t max_concurrency = 0;            // actions: a pool's size
  CrdtType crdt_type = CrdtType::kGCounter;  // CRDT entities
  std::vector<std::pair<std::string, std::string>> subscriptions;  // (channel, method)
  std::map<std::string, MethodData, std::less<>> methods;  // by bare method name
  // Event-sourced: by the event's full message name.
  std::map<std::string, EventHandlerData, std::less<>> event_handlers;
};

enum class StateChange { kNone, kUpdate, kDelete };

// One command being handled. Filled by the registry, then by the handler through its context.
struct Call {
  Call(const ServiceData& service_data, const MethodData& method_data,
       const protocol::v1::Command& command_message)
      : service(service_data), method(method_data), command(command_message) {}

  const ServiceData& service;
  const MethodData& method;
  const protocol::v1::Command& command;
  std::unique_ptr<google::protobuf::Message> input;  // the decoded payload, an In
  std::unique_ptr<google::protobuf::Message> state;  // entities: never null
  bool had_state = false;
  StateChange state_change = StateChange::kNone;  // value entities
  int64_t state_ttl_ms = 0;                       // value entities: this write's TTL
  uint64_t sequence = 0;  // event-sourced: of the last event applied to `state`
  google::protobuf::RepeatedPtrField<google::protobuf::Any> events;  // event-sourced: emitted
  // CRDT entities: the value Massa sent, and the change the handler asks for so far.
  const protocol::v1::CrdtValue* crdt_value = nullptr;
  protocol::v1::CrdtDelta crdt_delta;
  bool crdt_delete = false;
  int crdt_consistency = 0;  // a protocol::v1::WriteConsistency
  protocol::v1::ClientAction client_action;
  protocol::v1::Effects effects;
  std::string misuse;  // the first API misuse of the handler; fails the command (INTERNAL)
};

// Registration is single-threaded and ends with Freeze(); after that every method is const
// and thread-safe.
class Registry {
 public:
  Registry(std::string function_name, std::string function_version);

  // These abort with a message on a programming error (unknown service or method, wrong
  // types, duplicates, registration after Freeze).
  ServiceData& AddService(std::string_view name, Kind kind,
                          const google::protobuf::Message* state_prototype,
                          EventSourcedOptions options);
  void AddSubscription(ServiceData& service, std::string_view channel, std::string_view method);
  void AddHandler(ServiceData& service, std::string_view method,
                  const google::protobuf::Message& input_prototype,
                  const google::protobuf::Descriptor* output_type, Handler handler);
  void AddEventHandler(ServiceData& service, const google::protobuf::Message& event_prototype,
                       EventHandler handler);

  // Ends registration; the first call warns on stderr about methods without a handler and
  // event-sourced entities without event handlers.
  void Freeze();

  // Discovery.Discover. FAILED_PRECONDITION when Massa's protocol major version is not ours
  // or it does not support a kind of service registered here.
  absl::StatusOr<protocol::v1::Spec> Discover(const protocol::v1::ProxyInfo& info) const;

  // Discovery.ReportError: logs the error on stderr.
  void ReportError(const protocol::v1::UserFunctionError& error) const;

  // Action.Handle, ValueEntity.Handle and EventSourced.Handle. A handler's failure is an OK
  // status with a Failure in the response (and no state change, events or effects). Errors:
  // UNIMPLEMENTED for an unknown service or method, INVALID_ARGUMENT for a payload or state
  // that does not decode as the expected message.
  absl::Status HandleAction(const protocol::v1::ActionCommand& request,
                            protocol::v1::ActionResponse* response) const;
  absl::Status HandleValueEntity(const protocol::v1::ValueEntityCommand& request,
                                 protocol::v1::ValueEntityResponse* response) const;
  absl::Status HandleCrdt(const protocol::v1::CrdtCommand& request,
                          protocol::v1::CrdtResponse* response) const;
  absl::Status HandleEventSourced(const protocol::v1::EventSourcedCommand& request,
                                  protocol::v1::EventSourcedResponse* response) const;

  // EventSourced.Fold: the state after applying the events in order with the event handlers.
  // Errors: UNIMPLEMENTED for an unknown service, INVALID_ARGUMENT for a state that does not
  // decode, INTERNAL for an event whose type has no handler, that does not decode, or whose
  // handler throws (the state cannot be rebuilt).
  absl::Status Fold(const protocol::v1::FoldRequest& request,
                    protocol::v1::FoldResponse* response) const;

  const std::string& function_name() const { return function_name_; }

 private:
  // Finds the service `name`, which must be of `kind`.
  absl::StatusOr<const ServiceData*> FindService(const std::string& name, Kind kind) const;

  // Finds the handler of `command` and decodes its payload; for entities also decodes `state`
  // (null: none) into call->state.
  absl::StatusOr<std::unique_ptr<Call>> Prepare(const protocol::v1::Command& command, Kind kind,
                                                const google::protobuf::Any* state) const;

  std::string function_name_;
  std::string function_version_;
  std::vector<std::unique_ptr<ServiceData>> services_;  // in registration order
  bool frozen_ = false;
};

// Checks the target of a forward or side effect made by `call` when its service is linked
// into this binary; returns a description of the problem or "" when fine.
// `reply_type` is the output type the target must have, or null for no check.
std::string CheckTarget(const Call& call, std::string_view what, std::string_view service_name,
                        std::string_view method, const google::protobuf::Descriptor* payload_type,
                        const google::protobuf::Descriptor* reply_type);

// The handler of events named `type_name` (a full message name) in `service`, or null.
const EventHandlerData* FindEventHandler(const ServiceData& service, std::string_view type_name);

}  // namespace massa::sdk::detail
