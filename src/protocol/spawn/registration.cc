#include "protocol/spawn/registration.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spawn/actors/protocol.pb.h"

namespace massa::spawn {
namespace {

namespace pb = ::spawn;
namespace actors = ::spawn::actors;

constexpr char kDefaultChannelAction[] = "receive";

absl::Status Invalid(std::string_view actor, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("registration: actor '", std::string(actor),
                                                 "': ", what));
}

// One value of Metadata.channel_group: a Channel message, or (the Python SDK) a topic as a
// plain string. A string that happens to parse as a message without unknown fields and with a
// topic is read as a Channel; the SDKs' topics are short words that do not.
ChannelSubscription ChannelOf(const std::string& bytes) {
  actors::Channel channel;
  if (channel.ParseFromString(bytes) && !channel.topic().empty() &&
      channel.GetReflection()->GetUnknownFields(channel).empty()) {
    return ChannelSubscription{channel.topic(),
                               channel.action().empty() ? kDefaultChannelAction : channel.action()};
  }
  return ChannelSubscription{bytes, kDefaultChannelAction};
}

absl::StatusOr<std::chrono::milliseconds> TimeoutOf(std::string_view actor, const char* what,
                                                    bool present, int64_t ms,
                                                    std::chrono::milliseconds fallback) {
  if (!present) return fallback;
  if (ms < 0) return Invalid(actor, absl::StrCat(what, " timeout is negative (", ms, " ms)"));
  return ms == 0 ? fallback : std::chrono::milliseconds(ms);
}

absl::StatusOr<ActorDefinition> ActorOf(const std::string& key, const actors::Actor& actor) {
  ActorDefinition out;
  out.name = actor.id().name().empty() ? key : actor.id().name();
  if (out.name.empty()) return Invalid(key, "no name");
  if (!key.empty() && key != out.name) {
    return Invalid(out.name, absl::StrCat("registered under another name, '", key, "'"));
  }
  const actors::ActorSettings& settings = actor.settings();
  switch (settings.kind()) {
    case actors::UNKNOW_KIND:  // older SDKs leave it unset for named actors
    case actors::NAMED:
      out.kind = ActorKind::kNamed;
      break;
    case actors::UNNAMED:
      out.kind = ActorKind::kUnnamed;
      break;
    case actors::POOLED:
      out.kind = ActorKind::kPooled;
      break;
    case actors::PROXY:
    case actors::TASK:
    case actors::PROJECTION:
      return Invalid(out.name, absl::StrCat("kind ", actors::Kind_Name(settings.kind()),
                                            " is not served by massa"));
    default:
      return Invalid(out.name, absl::StrCat("unknown kind ", static_cast<int>(settings.kind())));
  }
  out.stateful = settings.stateful();
  out.state_type = settings.state_type();
  if (settings.min_pool_size() < 0 || settings.max_pool_size() < 0) {
    return Invalid(out.name, "a negative pool size");
  }
  out.max_pool_size = static_cast<uint32_t>(settings.max_pool_size());
  absl::StatusOr<std::chrono::milliseconds> deactivate = TimeoutOf(
      out.name, "deactivation", settings.deactivation_strategy().has_timeout(),
      settings.deactivation_strategy().timeout().timeout(), out.deactivate_after);
  if (!deactivate.ok()) return deactivate.status();
  out.deactivate_after = *deactivate;
  absl::StatusOr<std::chrono::milliseconds> snapshot = TimeoutOf(
      out.name, "snapshot", settings.snapshot_strategy().has_timeout(),
      settings.snapshot_strategy().timeout().timeout(), out.snapshot_every);
  if (!snapshot.ok()) return snapshot.status();
  out.snapshot_every = *snapshot;

  std::set<std::string> actions;
  for (const actors::Action& action : actor.actions()) {
    if (action.name().empty()) return Invalid(out.name, "an action without a name");
    if (!actions.insert(action.name()).second) {
      return Invalid(out.name, absl::StrCat("action '", action.name(), "' is listed twice"));
    }
    out.actions.push_back(action.name());
  }
  for (const actors::FixedTimerAction& timer : actor.timer_actions()) {
    if (timer.action().name().empty()) return Invalid(out.name, "a timer action without an action");
    if (timer.seconds() < 1) {
      return Invalid(out.name, absl::StrCat("timer action '", timer.action().name(),
                                            "' has a period of ", timer.seconds(),
                                            " ms (the field `seconds` holds milliseconds)"));
    }
    out.timers.push_back(
        TimerAction{timer.action().name(), std::chrono::milliseconds(timer.seconds())});
  }
  std::set<std::string> topics;
  for (const std::string& value : actor.metadata().channel_group()) {
    ChannelSubscription channel = ChannelOf(value);
    if (channel.topic.empty()) return Invalid(out.name, "a channel without a topic");
    if (!topics.insert(channel.topic).second) {
      return Invalid(out.name, absl::StrCat("channel '", channel.topic, "' is listed twice"));
    }
    out.channels.push_back(std::move(channel));
  }
  out.tags.insert(actor.metadata().tags().begin(), actor.metadata().tags().end());
  out.tags.insert(actor.state().tags().begin(), actor.state().tags().end());
  if (actor.state().has_state()) out.initial_state = actor.state().state().SerializeAsString();
  return out;
}

}  // namespace

absl::StatusOr<Registration> ParseRegistration(std::string_view body) {
  pb::RegistrationRequest request;
  if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::InvalidArgumentError(
        "registration: the body is not a spawn.RegistrationRequest (binary protobuf)");
  }
  Registration out;
  out.system = request.actor_system().name();
  if (out.system.empty()) return absl::InvalidArgumentError("registration: no actor system name");
  out.sdk = absl::StrCat(request.service_info().support_library_name(), " ",
                         request.service_info().support_library_version());
  for (const auto& [key, actor] : request.actor_system().registry().actors()) {
    absl::StatusOr<ActorDefinition> definition = ActorOf(key, actor);
    if (!definition.ok()) return definition.status();
    out.actors.push_back(*std::move(definition));
  }
  std::sort(out.actors.begin(), out.actors.end(),
            [](const ActorDefinition& a, const ActorDefinition& b) { return a.name < b.name; });
  return out;
}

}  // namespace massa::spawn
