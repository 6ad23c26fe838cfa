#include "protocol/spawn/system.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "spawn/actors/actor.pb.h"

namespace massa::spawn {
namespace {

namespace gpb = google::protobuf;

// Spawn's built-in reads (answered by the sidecar unless the actor has such an action) and the
// actions it invokes on activation.
constexpr std::string_view kBuiltInReads[] = {"get", "Get", "get_state", "getState", "GetState"};
constexpr std::string_view kInitActions[] = {"init", "Init", "setup", "Setup"};
constexpr std::string_view kReserved[] = {kScheduleMethod, kReceiveMethod, kActivateMethod};

void AddFileWithDependencies(const gpb::FileDescriptor* file, std::set<std::string>& added,
                             gpb::FileDescriptorSet& set) {
  if (!added.insert(std::string(file->name())).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileWithDependencies(file->dependency(i), added, set);
  }
  file->CopyTo(set.add_file());
}

absl::Status Collision(std::string_view what, std::string_view a, std::string_view b) {
  return absl::InvalidArgumentError(absl::StrCat("registration: ", std::string(what), " '",
                                                 std::string(a), "' and '", std::string(b),
                                                 "' map to the same name in Massa"));
}

}  // namespace

std::string Identifier(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "_x", absl::Hex(static_cast<uint8_t>(c), absl::kZeroPad2));
    }
  }
  if (out.empty() || absl::ascii_isdigit(static_cast<unsigned char>(out[0]))) out.insert(0, "_");
  return out;
}

std::string Actor::MethodOf(std::string_view action) const {
  auto it = methods.find(action);
  return it == methods.end() ? std::string() : it->second;
}

MethodRole Actor::RoleOf(std::string_view method, std::string* action) const {
  if (auto it = actions.find(std::string(method)); it != actions.end()) {
    if (action != nullptr) *action = it->second;
    return MethodRole::kAction;
  }
  if (method == kScheduleMethod) return MethodRole::kSchedule;
  if (method == kReceiveMethod) return MethodRole::kReceive;
  if (method == kActivateMethod) return MethodRole::kActivate;
  return MethodRole::kGet;  // the only other methods a service has
}

std::string Actor::ChannelAction(std::string_view channel, std::string_view legacy_action) const {
  for (const ChannelSubscription& subscription : definition.channels) {
    if (subscription.topic != channel) continue;
    if (subscription.action != "receive" || legacy_action.empty()) return subscription.action;
    break;
  }
  return legacy_action.empty() ? std::string("receive") : std::string(legacy_action);
}

absl::StatusOr<std::shared_ptr<const System>> System::Build(Registration registration) {
  std::shared_ptr<System> system(new System());
  system->name_ = registration.system;
  system->sdk_ = registration.sdk;

  gpb::FileDescriptorSet set;
  std::set<std::string> added;
  AddFileWithDependencies(gpb::Any::descriptor()->file(), added, set);
  AddFileWithDependencies(::spawn::actors::ActorState::descriptor()->file(), added, set);
  gpb::FileDescriptorProto& file = *set.add_file();
  const std::string package = absl::StrCat("spawn.", Identifier(registration.system));
  file.set_name(absl::StrCat("massa/spawn/", Identifier(registration.system), ".proto"));
  file.set_package(package);
  file.set_syntax("proto3");
  file.add_dependency(std::string(gpb::Any::descriptor()->file()->name()));
  file.add_dependency(std::string(::spawn::actors::ActorState::descriptor()->file()->name()));

  absl::flat_hash_map<std::string, std::string> services;  // service -> actor
  for (ActorDefinition& definition : registration.actors) {
    auto actor = std::make_unique<Actor>();
    actor->service = absl::StrCat(package, ".", Identifier(definition.name));
    if (auto [it, added_service] = services.emplace(actor->service, definition.name);
        !added_service) {
      return Collision("actors", it->second, definition.name);
    }
    gpb::ServiceDescriptorProto& service = *file.add_service();
    service.set_name(Identifier(definition.name));
    absl::flat_hash_map<std::string, std::string> taken;  // method -> action
    auto add_method = [&](const std::string& method, std::string_view owner) -> absl::Status {
      if (auto [it, fresh] = taken.emplace(method, owner); !fresh) {
        return Collision(absl::StrCat("actor '", definition.name, "': actions"), it->second,
                         owner);
      }
      gpb::MethodDescriptorProto& added_method = *service.add_method();
      added_method.set_name(method);
      added_method.set_input_type(".google.protobuf.Any");
      added_method.set_output_type(".google.protobuf.Any");
      return absl::OkStatus();
    };
    for (std::string_view reserved : kReserved) {
      if (absl::Status status = add_method(std::string(reserved), "(Massa's own)"); !status.ok()) {
        return status;
      }
    }
    auto add_action = [&](const std::string& action) -> absl::Status {
      if (actor->methods.contains(action)) return absl::OkStatus();
      const std::string method = Identifier(action);
      if (absl::Status status = add_method(method, action); !status.ok()) return status;
      actor->methods.emplace(action, method);
      actor->actions.emplace(method, action);
      return absl::OkStatus();
    };
    // Timer and channel actions are invoked whether or not the SDK listed them as actions.
    std::vector<std::string> names = definition.actions;
    for (const TimerAction& timer : definition.timers) names.push_back(timer.action);
    for (const ChannelSubscription& channel : definition.channels) {
      names.push_back(channel.action);
    }
    for (const std::string& action : names) {
      if (absl::Status status = add_action(action); !status.ok()) return status;
    }
    for (std::string_view init : kInitActions) {
      if (actor->methods.contains(init)) {
        actor->init_action = std::string(init);
        break;
      }
    }
    for (std::string_view read : kBuiltInReads) {
      if (actor->methods.contains(read)) continue;
      const std::string method = Identifier(read);
      if (absl::Status status = add_method(method, read); !status.ok()) return status;
      actor->methods.emplace(std::string(read), method);
    }

    ServiceSpec spec;
    spec.name = actor->service;
    spec.passivation_timeout = definition.deactivate_after;
    if (definition.kind == ActorKind::kPooled) {
      spec.kind = EntityKind::kAction;
      spec.max_concurrency = definition.max_pool_size;
    } else {
      spec.kind = EntityKind::kValueEntity;
      spec.state_type = kStateType;
      if (definition.kind == ActorKind::kNamed) {
        spec.actor_name = definition.name;
      } else {
        spec.spawned = true;
      }
    }
    for (const ChannelSubscription& channel : definition.channels) {
      spec.subscriptions.push_back(massa::ChannelSubscription{channel.topic, kReceiveMethod});
    }
    system->spec_.services.push_back(std::move(spec));
    actor->definition = std::move(definition);
    system->by_name_.emplace(actor->definition.name, actor.get());
    system->by_service_.emplace(actor->service, actor.get());
    system->actors_.push_back(std::move(actor));
  }
  system->spec_.descriptor_set = set.SerializeAsString();
  system->spec_.function_name = absl::StrCat("spawn:", system->name_);
  system->spec_.sdk = system->sdk_;
  return std::shared_ptr<const System>(std::move(system));
}

const Actor* System::FindActor(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

const Actor* System::FindService(std::string_view service) const {
  auto it = by_service_.find(std::string(service));
  return it == by_service_.end() ? nullptr : it->second;
}

}  // namespace massa::spawn
