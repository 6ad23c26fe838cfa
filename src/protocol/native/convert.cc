#include "protocol/native/convert.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "protocol/native/crdt_convert.h"

namespace massa::native {
namespace {

namespace v1 = protocol::v1;

constexpr std::string_view kTypeUrlPrefix = "type.googleapis.com/";
// Durations from the wire are capped here (about 290 years), far from overflow.
constexpr uint64_t kMaxDurationMs = uint64_t{1} << 53;

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

bool IsBinaryKey(const std::string& key) {
  return key.size() > 4 && key.compare(key.size() - 4, 4, "-bin") == 0;
}

void MetadataToProto(const Metadata& metadata, v1::Metadata& out) {
  for (const auto& [key, value] : metadata) {
    auto* entry = out.add_entries();
    entry->set_key(key);
    if (IsBinaryKey(key)) {
      entry->set_bytes_value(value);
    } else {
      entry->set_string_value(value);
    }
  }
}

void TypedValueToAny(const TypedValue& value, google::protobuf::Any& out) {
  out.set_type_url(TypeUrlOf(value.type));
  out.set_value(value.bytes);
}

TypedValue TypedValueFromAny(const google::protobuf::Any& any) {
  return TypedValue{std::string(TypeNameOf(any.type_url())), any.value()};
}

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
    service.delete_events_on_snapshot = s.delete_events_on_snapshot();
    service.idempotency_retention = std::chrono::milliseconds(
        std::min<uint64_t>(s.idempotency_retention_ms(), kMaxDurationMs));
    service.state_ttl =
        std::chrono::milliseconds(std::min<uint64_t>(s.state_ttl_ms(), kMaxDurationMs));
    if (service.kind == EntityKind::kCrdt) {
      std::optional<crdt::Type> type = CrdtTypeFromProto(s.crdt_type());
      if (!type.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "discovery: CRDT service '", s.service_name(), "' needs a crdt_type (got ",
            static_cast<int>(s.crdt_type()), ")"));
      }
      service.crdt_type = *type;
    }
    service.actor_name = s.actor_name();
    service.spawned = s.spawned();
    service.max_concurrency = s.max_concurrency();
    for (const v1::ChannelSubscription& sub : s.subscriptions()) {
      service.subscriptions.push_back(ChannelSubscription{sub.channel(), sub.method()});
    }
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
  if (!command.metadata.empty()) MetadataToProto(command.metadata, *out.mutable_metadata());
  out.set_idempotency_key(command.idempotency_key);
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
  for (const v1::Broadcast& b : effects.broadcasts()) {
    outcome.broadcasts.push_back(
        Broadcast{b.channel(), TypedValueFromAny(b.payload()), MetadataFromProto(b.metadata())});
  }
  for (const v1::Timer& t : effects.timers()) {
    TimerEffect timer;
    timer.name = t.name();
    timer.cancel = t.cancel();
    timer.service = t.service_name();
    timer.method = t.method();
    if (t.has_payload()) timer.payload = TypedValueFromAny(t.payload());
    timer.delay_ms = t.delay_ms();
    timer.at_ms = t.at_ms();
    timer.interval_ms = t.interval_ms();
    timer.cron = t.cron();
    timer.missed =
        t.missed() == v1::MISSED_TICKS_SKIP ? MissedTicks::kSkip : MissedTicks::kCatchUpOnce;
    outcome.timers.push_back(std::move(timer));
  }
  for (const v1::SideEffect& e : effects.side_effects()) {
    outcome.side_effects.push_back(SideEffect{e.service_name(), e.method(), AnyValue(e.payload()),
                                              e.synchronous(), MetadataFromProto(e.metadata())});
  }
  return outcome;
}

absl::StatusOr<Outcome> ValueEntityOutcomeFromProto(const v1::ValueEntityResponse& response) {
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(response.client_action(), response.effects());
  if (!outcome.ok() || outcome->failed() || !response.has_state_action()) return outcome;
  const v1::ValueStateAction& action = response.state_action();
  if (action.has_update()) {
    outcome->state_update = StateUpdate{TypedValueFromAny(action.update()),
                                        static_cast<int64_t>(std::min<uint64_t>(
                                            action.ttl_ms(), kMaxDurationMs))};
  } else if (action.has_delete_()) {
    outcome->state_update = StateUpdate{std::nullopt};
  }
  return outcome;
}

absl::StatusOr<Outcome> EventSourcedOutcomeFromProto(const v1::EventSourcedResponse& response) {
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(response.client_action(), response.effects());
  if (!outcome.ok() || outcome->failed()) return outcome;  // a failure persists no events
  if (response.events_size() > 0 && !response.has_state()) {
    return absl::InternalError(
        "the user function returned events without the state after them (EventSourcedResponse."
        "state is required with events)");
  }
  outcome->events.reserve(response.events_size());
  for (const google::protobuf::Any& event : response.events()) {
    if (TypeNameOf(event.type_url()).empty()) {
      return absl::InternalError("the user function returned an event without a type_url");
    }
    outcome->events.push_back(TypedValueFromAny(event));
  }
  // Without events the state cannot have changed; a state sent anyway is ignored so the cache
  // never drifts from what the journal folds to.
  if (!outcome->events.empty()) {
    outcome->state_update = StateUpdate{TypedValueFromAny(response.state())};
  }
  return outcome;
}

void FoldRequestToProto(const std::string& service, const std::string& entity_key,
                        const std::optional<TypedValue>& state, const std::vector<Event>& events,
                        v1::FoldRequest& out) {
  out.set_service_name(service);
  out.set_entity_key(entity_key);
  if (state.has_value()) TypedValueToAny(*state, *out.mutable_state());
  out.mutable_events()->Reserve(static_cast<int>(events.size()));
  for (const Event& event : events) {
    v1::Event* e = out.add_events();
    e->set_sequence(event.sequence);
    e->mutable_payload()->set_type_url(TypeUrlOf(event.type));
    e->mutable_payload()->set_value(event.payload);
    e->set_timestamp_ms(event.timestamp_ms);
    if (!event.metadata.empty()) MetadataToProto(event.metadata, *e->mutable_metadata());
  }
}

Metadata MetadataOf(const protocol::v1::Metadata& metadata) { return MetadataFromProto(metadata); }

void MetadataInto(const Metadata& metadata, protocol::v1::Metadata& out) {
  MetadataToProto(metadata, out);
}

}  // namespace massa::native
