#include "massa/sdk/context.h"

#include <algorithm>
#include <memory>
#include <typeinfo>
#include <utility>
#include <variant>

#include "google/protobuf/any.pb.h"
#include "registry.h"

namespace massa::sdk {
namespace {

void NoteMisuse(detail::Call& call, std::string problem) {
  if (!problem.empty() && call.misuse.empty()) call.misuse = std::move(problem);
}

}  // namespace

detail::CurrentCommand& detail::Current() {
  thread_local CurrentCommand current;
  return current;
}

namespace {

// Sends `call` (on behalf of the command this thread handles) to Massa and waits for its
// result: the reply bytes, or why there is none. `what` names it in errors ("ctx.Call(a/b)").
std::variant<std::string, Failure> Ask(protocol::v1::ActorCall call, const std::string& what) {
  detail::CurrentCommand& current = detail::Current();
  if (current.sink == nullptr) {
    return Fail(Code::kFailedPrecondition,
                what + " needs handler threads: start the function with --handler-threads N "
                       "(a handler on the I/O thread cannot wait for a reply)");
  }
  absl::StatusOr<protocol::v1::ActorCallResult> result =
      current.sink->MakeCall(current.command_id, std::move(call));
  if (!result.ok()) {
    return Fail(static_cast<Code>(result.status().code()),
                what + ": " + std::string(result.status().message()));
  }
  if (result->has_failure()) {
    const int code = result->failure().code();
    return Fail(code > 0 && code <= 16 ? static_cast<Code>(code) : Code::kUnknown,
                result->failure().message());
  }
  return std::move(*result->mutable_reply());
}

}  // namespace

std::optional<Failure> CommandContext::CallInto(std::string_view service_name,
                                                std::string_view method,
                                                const google::protobuf::Message& request,
                                                std::string_view entity_key,
                                                google::protobuf::Message& reply) {
  const std::string target = std::string(service_name) + "/" + std::string(method);
  protocol::v1::ActorCall call;
  call.set_service_name(std::string(service_name));
  call.set_method(std::string(method));
  call.set_entity_key(std::string(entity_key));
  request.SerializeToString(call.mutable_payload());
  std::variant<std::string, Failure> answer = Ask(std::move(call), "ctx.Call(" + target + ")");
  if (auto* failure = std::get_if<Failure>(&answer)) return std::move(*failure);
  if (!reply.ParseFromString(std::get<std::string>(answer))) {
    return Fail(Code::kInternal,
                "the reply of " + target + " is not a " + std::string(reply.GetTypeName()));
  }
  return std::nullopt;
}

Status CommandContext::Spawn(std::string_view service_name, std::string_view name) {
  protocol::v1::ActorCall call;
  call.set_service_name(std::string(service_name));
  call.set_entity_key(std::string(name));
  call.set_spawn(true);
  std::variant<std::string, Failure> answer = Ask(
      std::move(call), "ctx.Spawn(" + std::string(service_name) + "/" + std::string(name) + ")");
  if (auto* failure = std::get_if<Failure>(&answer)) {
    return Status(failure->code, std::move(failure->message));
  }
  return Status();
}

void CommandContext::Publish(std::string_view channel, const google::protobuf::Message& message) {
  protocol::v1::Broadcast* broadcast = call_.effects.add_broadcasts();
  broadcast->set_channel(std::string(channel));
  broadcast->mutable_payload()->PackFrom(message);
}

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

sdk::Forward CommandContext::Pipe(const google::protobuf::Message& reply,
                                  std::string_view service_name, std::string_view method) {
  const google::protobuf::Descriptor* output = call_.method.descriptor->output_type();
  if (reply.GetDescriptor() != output) {
    NoteMisuse(call_, "pipe from " + call_.service.name + "/" + call_.method.descriptor->name() +
                          " with a " + reply.GetDescriptor()->full_name() +
                          ", but the method replies " + output->full_name());
  } else {
    NoteMisuse(call_, detail::CheckTarget(call_, "pipe", service_name, method,
                                          reply.GetDescriptor(), output));
  }
  return sdk::Forward(std::string(service_name), std::string(method), output->full_name(),
                      reply.SerializeAsString(), /*pipe=*/true);
}

const std::string& CommandContext::idempotency_key() const {
  return call_.command.idempotency_key();
}

Schedule Schedule::After(std::chrono::milliseconds delay) {
  Schedule out;
  out.delay_ms_ = delay.count();
  return out;
}

Schedule Schedule::At(std::chrono::system_clock::time_point at) {
  Schedule out;
  out.at_ms_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  // At or before the epoch: the earliest time there is (a timer must name a time after 0).
  if (out.at_ms_ <= 0) out.at_ms_ = 1;
  return out;
}

Schedule Schedule::Every(std::chrono::milliseconds interval,
                         std::chrono::milliseconds first_after) {
  Schedule out;
  out.interval_ms_ = interval.count();
  out.delay_ms_ = first_after.count();
  return out;
}

Schedule Schedule::Cron(std::string expression) {
  Schedule out;
  out.cron_ = std::move(expression);
  return out;
}

void CommandContext::ScheduleTimer(std::string_view name, std::string_view method,
                                   const google::protobuf::Message& payload,
                                   const Schedule& schedule) {
  std::string problem = detail::CheckTarget(call_, "timer", call_.service.name, method,
                                            payload.GetDescriptor(), nullptr);
  if (!problem.empty()) {
    NoteMisuse(call_, std::move(problem));
    return;
  }
  // Empty service: this service, on this entity (protocol 1.2).
  AddTimer(name, "", method, payload, schedule);
}

void CommandContext::ScheduleTimer(std::string_view name, std::string_view service_name,
                                   std::string_view method,
                                   const google::protobuf::Message& payload,
                                   const Schedule& schedule) {
  std::string problem = detail::CheckTarget(call_, "timer", service_name, method,
                                            payload.GetDescriptor(), nullptr);
  if (!problem.empty()) {
    NoteMisuse(call_, std::move(problem));
    return;
  }
  AddTimer(name, service_name, method, payload, schedule);
}

void CommandContext::AddTimer(std::string_view name, std::string_view service_name,
                              std::string_view method, const google::protobuf::Message& payload,
                              const Schedule& schedule) {
  protocol::v1::Timer* timer = call_.effects.add_timers();
  timer->set_name(std::string(name));
  timer->set_service_name(std::string(service_name));
  timer->set_method(std::string(method));
  timer->mutable_payload()->PackFrom(payload);
  timer->set_delay_ms(schedule.delay_ms());
  timer->set_at_ms(schedule.at_ms());
  timer->set_interval_ms(schedule.interval_ms());
  timer->set_cron(schedule.cron());
  timer->set_missed(schedule.skip_missed() ? protocol::v1::MISSED_TICKS_SKIP
                                           : protocol::v1::MISSED_TICKS_CATCH_UP_ONCE);
}

void CommandContext::CancelTimer(std::string_view name) {
  protocol::v1::Timer* timer = call_.effects.add_timers();
  timer->set_name(std::string(name));
  timer->set_cancel(true);
}

const std::string& EntityContext::entity_key() const { return call_.command.entity_key(); }

bool EntityContext::has_state() const { return call_.had_state; }

const google::protobuf::Message& EntityContext::state_message() const { return *call_.state; }

void ValueContextBase::ExpireStateAfter(std::chrono::milliseconds ttl) {
  call_.state_ttl_ms = std::max<int64_t>(ttl.count(), 1);
}

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
  const auto fill = [&forward](auto* out) {
    out->set_service_name(forward.service_name());
    out->set_method(forward.method());
    out->mutable_payload()->set_type_url(kTypeUrlPrefix + forward.payload_type());
    out->mutable_payload()->set_value(forward.payload());
  };
  if (forward.pipe()) {
    fill(call.client_action.mutable_pipe());
  } else {
    fill(call.client_action.mutable_forward());
  }
}

}  // namespace detail
}  // namespace massa::sdk
