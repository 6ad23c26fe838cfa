#include "protocol/native/convert.h"

#include "absl/strings/str_cat.h"

namespace massa::native {
namespace {

namespace v1 = protocol::v1;

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";

Metadata MetadataFromProto(const v1::Metadata& metadata) {
  Metadata out;
  out.reserve(metadata.entries_size());
  for (const auto& entry : metadata.entries()) {
    out.emplace_back(entry.key(), entry.has_bytes_value() ? entry.bytes_value()
                                                          : entry.string_value());
  }
  return out;
}

std::string AnyValue(const google::protobuf::Any& any) { return any.value(); }

}  // namespace

std::string_view TypeNameOf(std::string_view type_url) {
  size_t slash = type_url.rfind('/');
  return slash == std::string_view::npos ? type_url : type_url.substr(slash + 1);
}

std::string TypeUrlOf(std::string_view type_name) {
  std::string url(kTypeUrlPrefix);
  url.append(type_name);
  return url;
}

absl::StatusOr<FunctionSpec> SpecFromProto(const v1::Spec& spec) {
  if (spec.protocol().major() != kProtocolMajor) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the user function speaks Massa protocol ", spec.protocol().major(), ".",
        spec.protocol().minor(), " but this massa speaks ", kProtocolMajor, ".", kProtocolMinor,
        " (major versions must match)"));
  }
  FunctionSpec out;
  out.descriptor_set = spec.descriptor_set();
  out.function_name = spec.function().function_name();
  out.sdk = absl::StrCat(spec.function().sdk_name(), " ", spec.function().sdk_version());
  for (const v1::ServiceSpec& s : spec.services()) {
    ServiceSpec service;
    service.name = s.service_name();
    switch (s.kind()) {
      case v1::ENTITY_KIND_ACTION:
        service.kind = EntityKind::kAction;
        break;
      case v1::ENTITY_KIND_VALUE_ENTITY:
        service.kind = EntityKind::kValueEntity;
        break;
      case v1::ENTITY_KIND_EVENT_SOURCED:
        service.kind = EntityKind::kEventSourced;
        break;
      case v1::ENTITY_KIND_CRDT:
        service.kind = EntityKind::kCrdt;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "discovery: service '", s.service_name(), "' has unknown entity kind ",
            static_cast<int>(s.kind())));
    }
    service.entity_type = s.entity_type();
    service.passivation_timeout = std::chrono::milliseconds(s.passivation_timeout_ms());
    service.state_type = s.state_type();
    service.snapshot_every = s.snapshot_every();
    out.services.push_back(std::move(service));
  }
  return out;
}

void CommandToProto(const Command& command, std::string_view request_type, v1::Command& out) {
  out.set_service_name(command.service);
  out.set_method(command.method);
  out.set_entity_key(command.entity_key);
  out.mutable_payload()->set_type_url(TypeUrlOf(request_type));
  out.mutable_payload()->set_value(command.payload);
  if (!command.metadata.empty()) {
    auto* metadata = out.mutable_metadata();
    for (const auto& [key, value] : command.metadata) {
      auto* entry = metadata->add_entries();
      entry->set_key(key);
      if (key.size() > 4 && key.compare(key.size() - 4, 4, "-bin") == 0) {
        entry->set_bytes_value(value);
      } else {
        entry->set_string_value(value);
      }
    }
  }
}

absl::StatusOr<Outcome> OutcomeFromProto(const v1::ClientAction& action,
                                         const v1::Effects& effects) {
  Outcome outcome;
  switch (action.action_case()) {
    case v1::ClientAction::kReply:
      outcome.result = Reply{AnyValue(action.reply().payload()),
                             MetadataFromProto(action.reply().metadata())};
      break;
    case v1::ClientAction::kForward: {
      const auto& f = action.forward();
      outcome.result = Forward{f.service_name(), f.method(), AnyValue(f.payload()),
                               MetadataFromProto(f.metadata())};
      break;
    }
    case v1::ClientAction::kPipe: {
      const auto& p = action.pipe();
      outcome.result = Pipe{p.service_name(), p.method(), AnyValue(p.payload()),
                            MetadataFromProto(p.metadata())};
      break;
    }
    case v1::ClientAction::kFailure: {
      int code = action.failure().code();
      auto status_code = (code > 0 && code <= 16) ? static_cast<absl::StatusCode>(code)
                                                  : absl::StatusCode::kUnknown;
      std::string message = action.failure().message();
      if (message.empty()) message = "the function failed the command";
      outcome.result = absl::Status(status_code, message);
      return outcome;  // a failure applies nothing: effects are dropped
    }
    case v1::ClientAction::ACTION_NOT_SET:
      outcome.result = Reply{};  // no reply: the method's default (empty) message
      break;
  }
  if (effects.broadcasts_size() > 0 || effects.timers_size() > 0) {
    return absl::InternalError(
        "the user function returned broadcasts or timers, which this massa does not support yet");
  }
  for (const v1::SideEffect& e : effects.side_effects()) {
    outcome.side_effects.push_back(SideEffect{e.service_name(), e.method(), AnyValue(e.payload()),
                                              e.synchronous(), MetadataFromProto(e.metadata())});
  }
  return outcome;
}

}  // namespace massa::native
