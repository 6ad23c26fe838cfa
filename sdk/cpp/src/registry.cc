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

const char* KindName(Kind kind) { return kind == Kind::kAction ? "an action" : "a value entity"; }

v1::EntityKind ToProto(Kind kind) {
  return kind == Kind::kAction ? v1::ENTITY_KIND_ACTION : v1::ENTITY_KIND_VALUE_ENTITY;
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

// Runs the handler of `call`. Afterwards `call.client_action` is set; it is a Failure when
// the handler failed, threw, or misused the API.
void Invoke(Call& call) {
  try {
    call.method.handler(call);
  } catch (const std::exception& e) {
    SetFailureAction(call.client_action, Code::kInternal, e.what());
    return;
  } catch (...) {
    SetFailureAction(call.client_action, Code::kInternal,
                     "handler of " + call.service.name + "/" + call.method.descriptor->name() +
                         " threw an exception that is not a std::exception");
    return;
  }
  if (!call.misuse.empty()) {
    SetFailureAction(call.client_action, Code::kInternal, call.misuse);
  } else if (call.client_action.action_case() == v1::ClientAction::ACTION_NOT_SET) {
    SetFailureAction(call.client_action, Code::kInternal, "handler produced no result");
  }
}

}  // namespace

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
                                  const pb::Message* state_prototype, EntityOptions options) {
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
  if (kind == Kind::kValueEntity && state_prototype == nullptr) {
    Die("value entity " + service_name + " needs a state type");
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
    if (service->state_prototype != nullptr) {
      const pb::Descriptor* state = service->state_prototype->GetDescriptor();
      AddFile(state->file(), seen, files);
      out->set_state_type(state->full_name());
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

absl::StatusOr<std::unique_ptr<Call>> Registry::Prepare(const v1::Command& command,
                                                        Kind kind) const {
  const ServiceData* service = nullptr;
  for (const auto& candidate : services_) {
    if (candidate->name == command.service_name()) service = candidate.get();
  }
  if (service == nullptr) {
    return absl::UnimplementedError("function " + function_name_ + " has no service '" +
                                    command.service_name() + "'");
  }
  if (service->kind != kind) {
    return absl::UnimplementedError(service->name + " is " + KindName(service->kind) + ", not " +
                                    KindName(kind));
  }
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
  return call;
}

absl::Status Registry::HandleAction(const v1::ActionCommand& request,
                                    v1::ActionResponse* response) const {
  absl::StatusOr<std::unique_ptr<Call>> prepared = Prepare(request.command(), Kind::kAction);
  if (!prepared.ok()) return prepared.status();
  Call& call = **prepared;
  Invoke(call);
  if (!call.client_action.has_failure() && call.effects.side_effects_size() > 0) {
    response->mutable_effects()->Swap(&call.effects);
  }
  response->mutable_client_action()->Swap(&call.client_action);
  return absl::OkStatus();
}

absl::Status Registry::HandleValueEntity(const v1::ValueEntityCommand& request,
                                         v1::ValueEntityResponse* response) const {
  absl::StatusOr<std::unique_ptr<Call>> prepared = Prepare(request.command(), Kind::kValueEntity);
  if (!prepared.ok()) return prepared.status();
  Call& call = **prepared;
  const pb::Message& state_prototype = *call.service.state_prototype;
  if (request.has_state()) {
    absl::StatusOr<std::unique_ptr<pb::Message>> state =
        Unpack(request.state(), state_prototype, "the state of " + call.service.name);
    if (!state.ok()) return state.status();
    call.state = *std::move(state);
    call.had_state = true;
  } else {
    call.state.reset(state_prototype.New());
  }
  Invoke(call);
  if (!call.client_action.has_failure()) {
    if (call.effects.side_effects_size() > 0) response->mutable_effects()->Swap(&call.effects);
    if (call.state_change == StateChange::kUpdate) {
      response->mutable_state_action()->mutable_update()->PackFrom(*call.state);
    } else if (call.state_change == StateChange::kDelete) {
      response->mutable_state_action()->mutable_delete_();
    }
  }
  response->mutable_client_action()->Swap(&call.client_action);
  return absl::OkStatus();
}

}  // namespace massa::sdk::detail
