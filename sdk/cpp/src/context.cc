#include "massa/sdk/context.h"

#include <memory>
#include <typeinfo>
#include <utility>

#include "google/protobuf/any.pb.h"
#include "registry.h"

namespace massa::sdk {
namespace {

void NoteMisuse(detail::Call& call, std::string problem) {
  if (!problem.empty() && call.misuse.empty()) call.misuse = std::move(problem);
}

}  // namespace

const std::string& CommandContext::service_name() const { return call_.command.service_name(); }

const std::string& CommandContext::method() const { return call_.command.method(); }

std::optional<std::string> CommandContext::metadata(std::string_view key) const {
  for (const auto& entry : call_.command.metadata().entries()) {
    if (entry.key() != key) continue;
    if (entry.has_string_value()) return entry.string_value();
    if (entry.has_bytes_value()) return entry.bytes_value();
  }
  return std::nullopt;
}

void CommandContext::SideEffect(std::string_view service_name, std::string_view method,
                                const google::protobuf::Message& payload, bool synchronous) {
  std::string problem = detail::CheckTarget(call_, "side effect", service_name, method,
                                            payload.GetDescriptor(), nullptr);
  if (!problem.empty()) {
    NoteMisuse(call_, std::move(problem));
    return;
  }
  protocol::v1::SideEffect* effect = call_.effects.add_side_effects();
  effect->set_service_name(std::string(service_name));
  effect->set_method(std::string(method));
  effect->mutable_payload()->PackFrom(payload);
  effect->set_synchronous(synchronous);
}

sdk::Forward CommandContext::Forward(std::string_view service_name, std::string_view method,
                                     const google::protobuf::Message& payload) {
  NoteMisuse(call_,
             detail::CheckTarget(call_, "forward", service_name, method, payload.GetDescriptor(),
                                 call_.method.descriptor->output_type()));
  return sdk::Forward(std::string(service_name), std::string(method),
                      payload.GetDescriptor()->full_name(), payload.SerializeAsString());
}

const std::string& EntityContext::entity_key() const { return call_.command.entity_key(); }

bool EntityContext::has_state() const { return call_.had_state; }

const google::protobuf::Message& EntityContext::state_message() const { return *call_.state; }

void ValueContextBase::DeleteState() {
  call_.state->Clear();
  call_.state_change = detail::StateChange::kDelete;
}

google::protobuf::Message& ValueContextBase::mutable_state_message() {
  call_.state_change = detail::StateChange::kUpdate;
  return *call_.state;
}

void EventContextBase::Emit(const google::protobuf::Message& event) {
  const std::string& type = event.GetDescriptor()->full_name();
  const detail::EventHandlerData* handler = detail::FindEventHandler(call_.service, type);
  if (handler == nullptr) {
    NoteMisuse(call_, call_.service.name + "/" + call_.method.descriptor->name() +
                          " emitted an event of type " + type +
                          ", which has no event handler (register one with OnEvent)");
    return;
  }
  if (typeid(event) == typeid(*handler->prototype)) {
    handler->handler(*call_.state, event);
  } else {  // e.g. a DynamicMessage of the type: the handler expects the generated class
    std::unique_ptr<google::protobuf::Message> copy(handler->prototype->New());
    copy->ParseFromString(event.SerializeAsString());
    handler->handler(*call_.state, *copy);
  }
  call_.events.Add()->PackFrom(event);
  ++call_.sequence;
}

uint64_t EventContextBase::sequence() const { return call_.sequence; }

namespace detail {

const google::protobuf::Message& Input(const Call& call) { return *call.input; }

void SetReply(Call& call, const google::protobuf::Message& reply) {
  call.client_action.mutable_reply()->mutable_payload()->PackFrom(reply);
}

void SetFailure(Call& call, Failure failure) {
  protocol::v1::Failure* out = call.client_action.mutable_failure();
  out->set_code(static_cast<int>(failure.code));
  out->set_message(std::move(failure.message));
}

void SetForward(Call& call, Forward forward) {
  protocol::v1::Forward* out = call.client_action.mutable_forward();
  out->set_service_name(forward.service_name());
  out->set_method(forward.method());
  out->mutable_payload()->set_type_url(kTypeUrlPrefix + forward.payload_type());
  out->mutable_payload()->set_value(forward.payload());
}

}  // namespace detail
}  // namespace massa::sdk
