#include "registry.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <utility>

#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.pb.h"

namespace massa::sdk::detail {
namespace {

namespace pb = google::protobuf;
namespace v1 = massa::protocol::v1;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "massa-sdk: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kAction:
      return "an action";
    case Kind::kValueEntity:
      return "a value entity";
    case Kind::kEventSourced:
      return "an event-sourced entity";
    case Kind::kCrdt:
      return "a CRDT entity";
  }
  return "an unknown kind";
}

v1::EntityKind ToProto(Kind kind) {
  switch (kind) {
    case Kind::kAction:
      return v1::ENTITY_KIND_ACTION;
    case Kind::kValueEntity:
      return v1::ENTITY_KIND_VALUE_ENTITY;
    case Kind::kEventSourced:
      return v1::ENTITY_KIND_EVENT_SOURCED;
    case Kind::kCrdt:
      return v1::ENTITY_KIND_CRDT;
  }
  return v1::ENTITY_KIND_UNSPECIFIED;
}

std::string MethodNames(const pb::ServiceDescriptor* service) {
  std::string names;
  for (int i = 0; i < service->method_count(); ++i) {
    if (i > 0) names += ", ";
    names += service->method(i)->name();
  }
  return names.empty() ? "none" : names;
}

// Appends `file` to `set` after its dependencies, each file once.
void AddFile(const pb::FileDescriptor* file, std::set<const pb::FileDescriptor*>& seen,
             pb::FileDescriptorSet& set) {
  if (!seen.insert(file).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), seen, set);
  pb::FileDescriptorProto* proto = set.add_file();
  file->CopyTo(proto);
  file->CopyJsonNameTo(proto);
}

// The full message name an Any's type_url names (the part after the last '/').
std::string_view TypeName(std::string_view type_url) {
  const size_t slash = type_url.rfind('/');
  return slash == std::string_view::npos ? type_url : type_url.substr(slash + 1);
}

// Decodes `any` into a new message like `prototype`, or says why it cannot.
absl::StatusOr<std::unique_ptr<pb::Message>> Unpack(const pb::Any& any,
                                                    const pb::Message& prototype,
                                                    const std::string& what) {
  const std::string& expected = prototype.GetDescriptor()->full_name();
  if (TypeName(any.type_url()) != expected) {
    return absl::InvalidArgumentError(what + " has type_url '" + any.type_url() + "', expected '" +
                                      kTypeUrlPrefix + expected + "'");
  }
  std::unique_ptr<pb::Message> message(prototype.New());
  if (!message->ParseFromString(any.value())) {
    return absl::InvalidArgumentError(what + " does not decode as " + expected);
  }
  return message;
}

void SetFailureAction(v1::ClientAction& action, Code code, std::string message) {
  v1::Failure* failure = action.mutable_failure();
  failure->set_code(static_cast<int>(code));
  failure->set_message(std::move(message));
}

// Runs `function`, turning an exception into its message; returns "" when none was thrown.
// `where` names what ran, for exceptions that are not std::exception.
std::string RunCatching(const std::function<void()>& function, std::string_view where) {
  try {
    function();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return std::string(where) + " threw an exception that is not a std::exception";
  }
  return "";
}

// Runs the handler of `call`. Afterwards `call.client_action` is set; it is a Failure when
// the handler failed, threw, or misused the API.
void Invoke(Call& call) {
  std::string thrown =
      RunCatching([&call] { call.method.handler(call); },
                  "handler of " + call.service.name + "/" + call.method.descriptor->name());
  if (!thrown.empty()) {
    SetFailureAction(call.client_action, Code::kInternal, std::move(thrown));
  } else if (!call.misuse.empty()) {
    SetFailureAction(call.client_action, Code::kInternal, call.misuse);
  } else if (call.client_action.action_case() == v1::ClientAction::ACTION_NOT_SET) {
    SetFailureAction(call.client_action, Code::kInternal, "handler produced no result");
  }
}

// Decodes the state `any` of `service`'s entities; a default state when `any` is null.
absl::StatusOr<std::unique_ptr<pb::Message>> DecodeState(const ServiceData& service,
                                                         const pb::Any* any,
                                                         const std::string& what) {
  if (any == nullptr) return std::unique_ptr<pb::Message>(service.state_prototype->New());
  return Unpack(*any, *service.state_prototype, what);
}

// The state of a command or fold request, or null when it has none.
template <typename Request>
const pb::Any* StateOf(const Request& request) {
  return request.has_state() ? &request.state() : nullptr;
}

// Moves what every kind answers from `call` into `response`: the client action, and the
// effects unless the command failed. Returns whether it succeeded.
template <typename Response>
bool TakeOutcome(Call& call, Response* response) {
  const bool succeeded = !call.client_action.has_failure();
  if (succeeded && (call.effects.side_effects_size() > 0 || call.effects.timers_size() > 0 ||
                    call.effects.broadcasts_size() > 0)) {
    response->mutable_effects()->Swap(&call.effects);
  }
  response->mutable_client_action()->Swap(&call.client_action);
  return succeeded;
}

}  // namespace

const EventHandlerData* FindEventHandler(const ServiceData& service, std::string_view type_name) {
  auto found = service.event_handlers.find(type_name);
  return found == service.event_handlers.end() ? nullptr : &found->second;
}

std::string CheckTarget(const Call& call, std::string_view what, std::string_view service_name,
                        std::string_view method, const pb::Descriptor* payload_type,
                        const pb::Descriptor* reply_type) {
  const std::string target = std::string(service_name) + "/" + std::string(method);
  const std::string from =
      " (from " + call.service.name + "/" + call.method.descriptor->name() + ")";
  const pb::ServiceDescriptor* service =
      pb::DescriptorPool::generated_pool()->FindServiceByName(std::string(service_name));
  if (service == nullptr) return "";  // not linked here: Massa checks it
  const pb::MethodDescriptor* target_method = service->FindMethodByName(std::string(method));
  if (target_method == nullptr) {
    return std::string(what) + " to unknown method " + target + from;
  }
  if (target_method->input_type() != payload_type) {
    return std::string(what) + " to " + target + from + " has a " + payload_type->full_name() +
           " payload, expected " + target_method->input_type()->full_name();
  }
  if (reply_type != nullptr && target_method->output_type() != reply_type) {
    return std::string(what) + " to " + target + from + ": it replies " +
           target_method->output_type()->full_name() + ", expected " + reply_type->full_name();
  }
  return "";
}

Registry::Registry(std::string function_name, std::string function_version)
    : function_name_(std::move(function_name)), function_version_(std::move(function_version)) {}

ServiceData& Registry::AddService(std::string_view name, Kind kind,
                                  const pb::Message* state_prototype, EventSourcedOptions options) {
  const std::string service_name(name);
  if (frozen_) Die("cannot register service " + service_name + " after the function started");
  const pb::ServiceDescriptor* descriptor =
      pb::DescriptorPool::generated_pool()->FindServiceByName(service_name);
  if (descriptor == nullptr) {
    Die("service '" + service_name +
        "' is not in the linked generated code: give its fully qualified name "
        "(package.Service) and link the code generated from its .proto");
  }
  for (const auto& other : services_) {
    if (other->name == service_name) Die("service " + service_name + " is registered twice");
  }
  if (kind != Kind::kAction && kind != Kind::kCrdt && state_prototype == nullptr) {
    Die(std::string(KindName(kind)) + " like " + service_name + " needs a state type");
  }
  auto data = std::make_unique<ServiceData>();
  data->registry = this;
  data->name = service_name;
  data->kind = kind;
  data->descriptor = descriptor;
  data->state_prototype = state_prototype;
  data->options = std::move(options);
  if (data->options.entity_type.empty()) data->options.entity_type = service_name;
  if (data->options.passivation_timeout.count() < 0) {
    Die("service " + service_name + " has a negative passivation timeout");
  }
  for (const auto& other : services_) {
    if (other->options.entity_type == data->options.entity_type && other->kind != kind) {
      Die("services " + other->name + " and " + service_name + " share entity type '" +
          data->options.entity_type + "' but are of different kinds");
    }
  }
  services_.push_back(std::move(data));
  return *services_.back();
}

void Registry::AddSubscription(ServiceData& service, std::string_view channel,
                               std::string_view method) {
  if (frozen_) Die("cannot subscribe " + service.name + " after the function started");
  if (channel.empty()) Die("service " + service.name + " subscribes to an empty channel name");
  if (service.descriptor->FindMethodByName(std::string(method)) == nullptr) {
    Die("service " + service.name + " subscribes to channel '" + std::string(channel) +
        "' with method '" + std::string(method) + "', which it does not have (its methods: " +
        MethodNames(service.descriptor) + ")");
  }
  service.subscriptions.emplace_back(std::string(channel), std::string(method));
}

void Registry::AddHandler(ServiceData& service, std::string_view method,
                          const pb::Message& input_prototype, const pb::Descriptor* output_type,
                          Handler handler) {
  const std::string full = service.name + "/" + std::string(method);
  if (frozen_) Die("cannot register a handler for " + full + " after the function started");
  const pb::MethodDescriptor* descriptor =
      service.descriptor->FindMethodByName(std::string(method));
  if (descriptor == nullptr) {
    Die("service " + service.name + " has no method '" + std::string(method) +
        "' (its methods: " + MethodNames(service.descriptor) + ")");
  }
  if (descriptor->client_streaming() || descriptor->server_streaming()) {
    Die(full + " is a streaming method; Massa supports unary methods only");
  }
  const pb::Descriptor* input_type = input_prototype.GetDescriptor();
  if (descriptor->input_type() != input_type || descriptor->output_type() != output_type) {
    Die(full + " takes " + descriptor->input_type()->full_name() + " and returns " +
        descriptor->output_type()->full_name() + ", but its handler takes " +
        input_type->full_name() + " and returns " + output_type->full_name());
  }
  if (handler == nullptr) Die("empty handler for " + full);
  MethodData data;
  data.descriptor = descriptor;
  data.input_prototype = &input_prototype;
  data.handler = std::move(handler);
  if (!service.methods.emplace(std::string(method), std::move(data)).second) {
    Die(full + " has two handlers");
  }
}

void Registry::AddEventHandler(ServiceData& service, const pb::Message& event_prototype,
                               EventHandler handler) {
  const std::string& type = event_prototype.GetDescriptor()->full_name();
  const std::string what = "the " + type + " handler of " + service.name;
  if (frozen_) Die("cannot register " + what + " after the function started");
  if (service.kind != Kind::kEventSourced) {
    Die("cannot register " + what + ": it is " + KindName(service.kind) +
        ", only event-sourced entities have event handlers");
  }
  if (handler == nullptr) Die("empty handler for events " + type + " of " + service.name);
  if (!service.event_handlers.emplace(type, EventHandlerData{&event_prototype, std::move(handler)})
           .second) {
    Die(service.name + " has two handlers for events " + type);
  }
}

void Registry::Freeze() {
  if (frozen_) return;
  frozen_ = true;
  for (const auto& service : services_) {
    for (int i = 0; i < service->descriptor->method_count(); ++i) {
      const std::string& method = service->descriptor->method(i)->name();
      if (service->methods.find(method) == service->methods.end()) {
        std::fprintf(stderr,
                     "massa-sdk: warning: %s/%s has no handler (it fails with UNIMPLEMENTED)\n",
                     service->name.c_str(), method.c_str());
      }
    }
    if (service->kind == Kind::kEventSourced && service->event_handlers.empty()) {
      std::fprintf(stderr,
                   "massa-sdk: warning: event-sourced entity %s has no event handlers "
                   "(register them with OnEvent)\n",
                   service->name.c_str());
    }
  }
}

absl::StatusOr<v1::Spec> Registry::Discover(const v1::ProxyInfo& info) const {
  const std::string ours = std::to_string(kProtocolMajor) + "." + std::to_string(kProtocolMinor);
  const std::string sdk = std::string(kSdkName) + " " + kSdkVersion;
  if (info.protocol().major() != kProtocolMajor) {
    return absl::FailedPreconditionError("incompatible protocol: the proxy speaks Massa protocol " +
                                         std::to_string(info.protocol().major()) + "." +
                                         std::to_string(info.protocol().minor()) + ", function " +
                                         function_name_ + " (" + sdk + ") speaks " + ours);
  }
  if (info.supported_kinds_size() > 0) {
    for (const auto& service : services_) {
      bool supported = false;
      for (int kind : info.supported_kinds()) supported |= kind == ToProto(service->kind);
      if (!supported) {
        return absl::FailedPreconditionError("the proxy does not support " +
                                             std::string(KindName(service->kind)) +
                                             " services like " + service->name);
      }
    }
  }

  v1::Spec spec;
  spec.mutable_protocol()->set_major(kProtocolMajor);
  spec.mutable_protocol()->set_minor(kProtocolMinor);
  pb::FileDescriptorSet files;
  std::set<const pb::FileDescriptor*> seen;
  for (const auto& service : services_) {
    AddFile(service->descriptor->file(), seen, files);
    v1::ServiceSpec* out = spec.add_services();
    out->set_service_name(service->name);
    out->set_kind(ToProto(service->kind));
    out->set_entity_type(service->options.entity_type);
    out->set_passivation_timeout_ms(
        static_cast<uint64_t>(service->options.passivation_timeout.count()));
    out->set_idempotency_retention_ms(
        static_cast<uint64_t>(service->options.idempotency_retention.count()));
    out->set_state_ttl_ms(static_cast<uint64_t>(service->state_ttl.count()));
    if (service->kind == Kind::kCrdt) {
      out->set_crdt_type(static_cast<v1::CrdtType>(static_cast<int>(service->crdt_type)));
    }
    out->set_actor_name(service->options.actor_name);
    out->set_spawned(service->options.spawned);
    out->set_max_concurrency(service->max_concurrency);
    for (const auto& [channel, method] : service->subscriptions) {
      v1::ChannelSubscription* sub = out->add_subscriptions();
      sub->set_channel(channel);
      sub->set_method(method);
    }
    if (service->state_prototype != nullptr) {
      const pb::Descriptor* state = service->state_prototype->GetDescriptor();
      AddFile(state->file(), seen, files);
      out->set_state_type(state->full_name());
    }
    if (service->kind == Kind::kEventSourced) {
      out->set_snapshot_every(service->options.snapshot_every);
      out->set_delete_events_on_snapshot(service->options.delete_events_on_snapshot);
      for (const auto& [type, event] : service->event_handlers) {
        AddFile(event.prototype->GetDescriptor()->file(), seen, files);
      }
    }
  }
  spec.set_descriptor_set(files.SerializeAsString());
  v1::FunctionInfo* function = spec.mutable_function();
  function->set_sdk_name(kSdkName);
  function->set_sdk_version(kSdkVersion);
  function->set_function_name(function_name_);
  function->set_function_version(function_version_);
  return spec;
}

void Registry::ReportError(const v1::UserFunctionError& error) const {
  std::string where = error.service_name();
  if (!error.method().empty()) where += "/" + error.method();
  std::fprintf(stderr, "massa-sdk: Massa reported an error%s%s: %s\n", where.empty() ? "" : " in ",
               where.c_str(), error.message().c_str());
  std::fflush(stderr);
}

absl::StatusOr<const ServiceData*> Registry::FindService(const std::string& name, Kind kind) const {
  for (const auto& candidate : services_) {
    if (candidate->name != name) continue;
    if (candidate->kind != kind) {
      return absl::UnimplementedError(name + " is " + KindName(candidate->kind) + ", not " +
                                      KindName(kind));
    }
    return candidate.get();
  }
  return absl::UnimplementedError("function " + function_name_ + " has no service '" + name + "'");
}

absl::StatusOr<std::unique_ptr<Call>> Registry::Prepare(const v1::Command& command, Kind kind,
                                                        const pb::Any* state) const {
  absl::StatusOr<const ServiceData*> found = FindService(command.service_name(), kind);
  if (!found.ok()) return found.status();
  const ServiceData* service = *found;
  const std::string full = service->name + "/" + command.method();
  auto method = service->methods.find(command.method());
  if (method == service->methods.end()) {
    return absl::UnimplementedError(
        service->descriptor->FindMethodByName(command.method()) == nullptr
            ? service->name + " has no method '" + command.method() + "'"
            : full + " has no handler in function " + function_name_);
  }
  auto call = std::make_unique<Call>(*service, method->second, command);
  if (!command.has_payload())
    return absl::InvalidArgumentError("command " + full + " has no payload");
  absl::StatusOr<std::unique_ptr<pb::Message>> input =
      Unpack(command.payload(), *method->second.input_prototype, "the payload of " + full);
  if (!input.ok()) return input.status();
  call->input = *std::move(input);
  if (kind == Kind::kAction || kind == Kind::kCrdt) return call;
  absl::StatusOr<std::unique_ptr<pb::Message>> decoded =
      DecodeState(*service, state, "the state of " + service->name);
  if (!decoded.ok()) return decoded.status();
  call->state = *std::move(decoded);
  call->had_state = state != nullptr;
  return call;
}

absl::Status Registry::HandleAction(const v1::ActionCommand& request,
                                    v1::ActionResponse* response) const {
  absl::StatusOr<std::unique_ptr<Call>> prepared =
      Prepare(request.command(), Kind::kAction, nullptr);
  if (!prepared.ok()) return prepared.status();
  Call& call = **prepared;
  Invoke(call);
  TakeOutcome(call, response);
  return absl::OkStatus();
}

absl::Status Registry::HandleValueEntity(const v1::ValueEntityCommand& request,
                                         v1::ValueEntityResponse* response) const {
  absl::StatusOr<std::unique_ptr<Call>> prepared =
      Prepare(request.command(), Kind::kValueEntity, StateOf(request));
  if (!prepared.ok()) return prepared.status();
  Call& call = **prepared;
  Invoke(call);
  if (!TakeOutcome(call, response)) return absl::OkStatus();
  if (call.state_change == StateChange::kUpdate) {
    response->mutable_state_action()->mutable_update()->PackFrom(*call.state);
    response->mutable_state_action()->set_ttl_ms(static_cast<uint64_t>(call.state_ttl_ms));
  } else if (call.state_change == StateChange::kDelete) {
    response->mutable_state_action()->mutable_delete_();
  }
  return absl::OkStatus();
}

absl::Status Registry::HandleCrdt(const v1::CrdtCommand& request,
                                  v1::CrdtResponse* response) const {
  absl::StatusOr<std::unique_ptr<Call>> prepared =
      Prepare(request.command(), Kind::kCrdt, nullptr);
  if (!prepared.ok()) return prepared.status();
  Call& call = **prepared;
  call.crdt_value = &request.value();
  call.had_state = request.has_value();
  Invoke(call);
  if (!TakeOutcome(call, response)) return absl::OkStatus();
  if (call.crdt_delta.delta_case() != v1::CrdtDelta::DELTA_NOT_SET) {
    response->mutable_delta()->Swap(&call.crdt_delta);
  }
  response->set_delete_(call.crdt_delete);
  response->set_write_consistency(static_cast<v1::WriteConsistency>(call.crdt_consistency));
  return absl::OkStatus();
}

absl::Status Registry::HandleEventSourced(const v1::EventSourcedCommand& request,
                                          v1::EventSourcedResponse* response) const {
  absl::StatusOr<std::unique_ptr<Call>> prepared =
      Prepare(request.command(), Kind::kEventSourced, StateOf(request));
  if (!prepared.ok()) return prepared.status();
  Call& call = **prepared;
  call.sequence = request.sequence();
  call.had_state = call.had_state || request.sequence() > 0;
  Invoke(call);
  if (TakeOutcome(call, response) && !call.events.empty()) {
    response->mutable_events()->Swap(&call.events);
    response->mutable_state()->PackFrom(*call.state);  // required with events
  }
  return absl::OkStatus();
}

absl::Status Registry::Fold(const v1::FoldRequest& request, v1::FoldResponse* response) const {
  absl::StatusOr<const ServiceData*> found =
      FindService(request.service_name(), Kind::kEventSourced);
  if (!found.ok()) return found.status();
  const ServiceData& service = **found;
  const std::string entity = service.name + " entity '" + request.entity_key() + "'";
  absl::StatusOr<std::unique_ptr<pb::Message>> state =
      DecodeState(service, StateOf(request), "the state of " + entity);
  if (!state.ok()) return state.status();
  for (const v1::Event& event : request.events()) {
    const std::string what = "event " + std::to_string(event.sequence()) + " of " + entity +
                             " in function " + function_name_;
    const EventHandlerData* handler =
        FindEventHandler(service, TypeName(event.payload().type_url()));
    if (handler == nullptr) {
      return absl::InternalError("cannot rebuild the state: " + what + " has type_url '" +
                                 event.payload().type_url() + "', which has no event handler");
    }
    absl::StatusOr<std::unique_ptr<pb::Message>> decoded =
        Unpack(event.payload(), *handler->prototype, what);
    if (!decoded.ok()) {
      return absl::InternalError("cannot rebuild the state: " +
                                 std::string(decoded.status().message()));
    }
    std::string thrown = RunCatching([&] { handler->handler(**state, **decoded); }, "the handler");
    if (!thrown.empty()) {
      return absl::InternalError("cannot rebuild the state: the event handler of " + what +
                                 " failed: " + thrown);
    }
  }
  response->mutable_state()->PackFrom(**state);
  return absl::OkStatus();
}

}  // namespace massa::sdk::detail
