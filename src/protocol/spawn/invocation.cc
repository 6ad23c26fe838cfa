#include "protocol/spawn/invocation.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"
#include "spawn/actors/protocol.pb.h"

namespace massa::spawn {
namespace {

namespace pb = ::spawn;

// The type name of a type URL ("type.googleapis.com/spawn.Noop" -> "spawn.Noop").
std::string_view TypeNameOf(std::string_view url) {
  const size_t slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

bool IsNoopAny(const google::protobuf::Any& any) {
  const std::string_view type = TypeNameOf(any.type_url());
  return type == "spawn.Noop" || type == "eigr.functions.protocol.Noop";
}

// A payload oneof (value | noop), as the serialized Any or nullopt for a noop.
template <typename Message>
std::optional<std::string> PayloadOf(const Message& message) {
  if (!message.has_value() || IsNoopAny(message.value())) return std::nullopt;
  return message.value().SerializeAsString();
}

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("the SDK's reply ", what));
}

}  // namespace

std::string EncodeInvocation(const Invocation& invocation) {
  pb::ActorInvocation out;
  const auto id = [&invocation](::spawn::actors::ActorId& target, const std::string& name,
                                const std::string& parent) {
    target.set_name(name);
    target.set_system(invocation.system);
    target.set_parent(parent);
  };
  id(*out.mutable_actor(), invocation.actor, invocation.parent);
  out.set_action_name(invocation.action);
  pb::Context& context = *out.mutable_current_context();
  if (invocation.state.has_value()) context.mutable_state()->ParseFromString(*invocation.state);
  context.mutable_tags()->insert(invocation.tags.begin(), invocation.tags.end());
  context.mutable_metadata()->insert(invocation.metadata.begin(), invocation.metadata.end());
  id(*context.mutable_self(), invocation.actor, invocation.parent);
  if (!invocation.caller.empty()) {
    id(*context.mutable_caller(), invocation.caller, "");
    id(*out.mutable_caller(), invocation.caller, "");
  }
  if (invocation.payload.has_value() && !IsNoop(*invocation.payload)) {
    out.mutable_value()->ParseFromString(*invocation.payload);
  } else {
    out.mutable_noop();
  }
  return out.SerializeAsString();
}

bool IsNoop(std::string_view any_bytes) {
  google::protobuf::Any any;
  return any.ParseFromArray(any_bytes.data(), static_cast<int>(any_bytes.size())) &&
         IsNoopAny(any);
}

absl::StatusOr<InvocationResult> ParseInvocationResult(std::string_view body) {
  if (body.empty()) return Bad("is empty (the SDK did not answer the invocation)");
  pb::ActorInvocationResponse response;
  if (!response.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Bad("is not a spawn.ActorInvocationResponse (binary protobuf)");
  }
  if (!response.has_updated_context()) return Bad("has no updated_context");
  InvocationResult out;
  out.reply = PayloadOf(response);
  const pb::Context& context = response.updated_context();
  if (context.has_state()) out.state = context.state().SerializeAsString();
  if (!context.tags().empty()) out.tags.emplace(context.tags().begin(), context.tags().end());
  out.checkpoint = response.checkpoint();
  const pb::Workflow& workflow = response.workflow();
  for (const pb::SideEffect& effect : workflow.effects()) {
    const pb::InvocationRequest& request = effect.request();
    EffectInvocation invocation;
    invocation.system = request.system().name();
    invocation.actor = request.actor().id().name();
    invocation.action = request.action_name();
    if (invocation.actor.empty() || invocation.action.empty()) {
      return Bad(absl::StrCat("has a side effect without ",
                              invocation.actor.empty() ? "a target actor" : "an action"));
    }
    invocation.payload = PayloadOf(request);
    invocation.metadata.insert(request.metadata().begin(), request.metadata().end());
    invocation.scheduled_to_ms = request.scheduled_to();
    invocation.register_ref = request.register_ref();
    invocation.parent = request.actor().id().parent();
    out.effects.push_back(std::move(invocation));
  }
  if (workflow.has_broadcast() && !workflow.broadcast().channel_group().empty()) {
    out.broadcast = InvocationResult::Broadcast{workflow.broadcast().channel_group(),
                                                workflow.broadcast().action_name(),
                                                PayloadOf(workflow.broadcast())};
  }
  if (workflow.has_pipe() || workflow.has_forward()) {
    const bool pipe = workflow.has_pipe();
    const std::string& actor = pipe ? workflow.pipe().actor() : workflow.forward().actor();
    if (actor.empty()) return Bad(absl::StrCat("has a ", pipe ? "pipe" : "forward", " without an actor"));
    out.routing = pipe ? InvocationResult::Routing{true, actor, workflow.pipe().action_name(),
                                                   workflow.pipe().register_ref()}
                       : InvocationResult::Routing{false, actor, workflow.forward().action_name(),
                                                   workflow.forward().register_ref()};
  }
  return out;
}

}  // namespace massa::spawn
