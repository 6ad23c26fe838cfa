#include "entity/router.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "entity/catalog.h"
#include "entity/entity_runtime.h"
#include "entity/idempotency.h"

namespace massa {

void Router::Dispatch(Command command, ResultCallback done) {
  if (command.spawn) {
    Spawn(std::move(command), std::move(done));
    return;
  }
  const Catalog& catalog = this->catalog();
  const MethodInfo* method = catalog.FindMethod(command.service, command.method);
  if (method == nullptr) {
    std::string what = catalog.FindService(command.service) == nullptr
                           ? absl::StrCat("unknown service '", command.service, "'")
                           : absl::StrCat("unknown method '", command.method, "' of service '",
                                          command.service, "'");
    std::move(done)(CommandResult{absl::UnimplementedError(what), {}, {}});
    return;
  }
  if (method->streaming) {
    std::move(done)(CommandResult{
        absl::UnimplementedError(absl::StrCat("streaming method ", method->path,
                                              " is not served (only unary methods are)")),
        {},
        {}});
    return;
  }
  if (command.hops > kMaxHops) {
    std::move(done)(CommandResult{
        absl::FailedPreconditionError(absl::StrCat(
            "more than ", kMaxHops, " forwards and side effects in one chain, at ", method->path)),
        {},
        {}});
    return;
  }
  if (absl::Status key = idempotency::TakeKey(command); !key.ok()) {
    std::move(done)(CommandResult{
        absl::InvalidArgumentError(absl::StrCat(method->path, ": ", key.message())), {}, {}});
    return;
  }
  const ServiceSpec& spec = method->service->spec;
  const bool entity = spec.kind != EntityKind::kAction;
  if (entity && !command.addressed) TakeAddress(command);
  if (entity && !command.addressed && !spec.actor_name.empty()) {
    // A named actor's commands go to its one entity; key fields, where filled, must name it.
    command.entity_key = spec.actor_name;
    command.addressed = true;
  }
  if (command.addressed && entity) {
    absl::Status agrees = command.entity_key.empty()
                              ? absl::InvalidArgumentError("addressed to an empty entity key")
                              : catalog.CheckAddressedKey(*method, command.payload,
                                                           command.entity_key);
    if (!agrees.ok()) {
      std::move(done)(CommandResult{
          absl::InvalidArgumentError(absl::StrCat(method->path, ": ", agrees.message())), {}, {}});
      return;
    }
  } else {
    absl::StatusOr<std::string> key = catalog.ExtractKey(*method, command.payload);
    if (!key.ok()) {
      std::move(done)(CommandResult{
          absl::InvalidArgumentError(absl::StrCat(method->path, ": ", key.status().message())),
          {},
          {}});
      return;
    }
    command.entity_key = *std::move(key);
  }
  if (entity && command.entity_key.empty()) {
    std::move(done)(CommandResult{
        absl::InvalidArgumentError(absl::StrCat(
            method->path, ": name the actor: its request has no key fields, so the command "
                          "must be addressed (the `massa-entity-key` header or metadata, or "
                          "the key of a call)")),
        {},
        {}});
    return;
  }
  if (!spec.actor_name.empty() && command.entity_key != spec.actor_name) {
    std::move(done)(CommandResult{
        absl::NotFoundError(absl::StrCat(method->path, ": ", spec.name, " is the named actor '",
                                         spec.actor_name, "'; there is no actor '",
                                         command.entity_key, "'")),
        {},
        {}});
    return;
  }
  if (!command.call_chain.empty()) {
    if (absl::Status chain = CheckCallChain(command, *method); !chain.ok()) {
      std::move(done)(CommandResult{std::move(chain), {}, {}});
      return;
    }
  }
  // A CRDT entity has a replica on every node of a cluster: its commands run where they
  // arrive (their changes reach the other replicas as deltas), never forwarded.
  if (placement_ != nullptr && entity && spec.kind != EntityKind::kCrdt &&
      placement_->TakeRemote(spec.entity_type, command, done)) {
    return;
  }
  command.request_type = method->request_type;
  runtime_.Submit(*method, std::move(command), std::move(done));
}

void Router::TakeAddress(Command& command) {
  for (auto it = command.metadata.begin(); it != command.metadata.end(); ++it) {
    if (it->first == kEntityKeyHeader) {
      command.entity_key = std::move(it->second);
      command.addressed = true;
      command.metadata.erase(it);
      return;
    }
  }
}

void Router::Spawn(Command command, ResultCallback done) {
  const ServiceInfo* service = catalog().FindService(command.service);
  if (service == nullptr) {
    std::move(done)(CommandResult{
        absl::NotFoundError(absl::StrCat("cannot spawn an actor of unknown service '",
                                         command.service, "'")),
        {},
        {}});
    return;
  }
  const ServiceSpec& spec = service->spec;
  if (!spec.spawned) {
    std::move(done)(CommandResult{
        absl::FailedPreconditionError(absl::StrCat(
            "cannot spawn ", spec.name, "/", command.entity_key, ": ", spec.name,
            " is not a service of spawned actors (its spec does not set `spawned`)")),
        {},
        {}});
    return;
  }
  if (command.entity_key.empty() || command.entity_key.size() > kMaxActorName) {
    std::move(done)(CommandResult{
        absl::InvalidArgumentError(absl::StrCat("cannot spawn an actor of ", spec.name,
                                                ": its name must have 1 to ", kMaxActorName,
                                                " bytes, not ", command.entity_key.size())),
        {},
        {}});
    return;
  }
  if (placement_ != nullptr && placement_->TakeRemote(spec.entity_type, command, done)) return;
  runtime_.Spawn(*service, command.entity_key, std::move(done));
}

absl::Status Router::CheckCallChain(Command& command, const MethodInfo& method) const {
  const ServiceSpec& spec = method.service->spec;
  if (command.call_chain.size() >= kMaxCallDepth) {
    return absl::FailedPreconditionError(absl::StrCat(
        "calls nested more than ", kMaxCallDepth, " deep, at ", method.path, " (",
        command.call_chain.front(), " -> ... -> ", command.call_chain.back(), ")"));
  }
  if (spec.kind == EntityKind::kAction) return absl::OkStatus();
  const std::string target = absl::StrCat(spec.entity_type, "/", command.entity_key);
  if (std::find(command.call_chain.begin(), command.call_chain.end(), target) ==
      command.call_chain.end()) {
    return absl::OkStatus();
  }
  if (method.read_only && spec.kind == EntityKind::kValueEntity) {
    command.reentrant = true;  // a read of an entity that waits: runs beside its mailbox
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat(
      "call cycle: ", absl::StrJoin(command.call_chain, " -> "), " -> ", target, " (",
      method.path, "): ", target,
      " is waiting for this call's reply; nothing was applied"));
}

std::vector<ChannelSubscriber> Router::SubscribersOf(std::string_view channel) const {
  std::vector<ChannelSubscriber> out;
  for (const MethodInfo* method : catalog().SubscribersOf(channel)) {
    const ServiceSpec& spec = method->service->spec;
    out.push_back(ChannelSubscriber{spec.name, method->name, method->request_type,
                                    spec.actor_name,
                                    spec.spawned ? SpawnRegistry(spec.entity_type) : ""});
  }
  return out;
}

absl::Status Router::CheckTarget(std::string_view service, std::string_view method,
                                 std::string_view payload_type) const {
  const MethodInfo* found = catalog().FindMethod(service, method);
  if (found == nullptr) {
    return absl::InvalidArgumentError(
        catalog().FindService(service) == nullptr
            ? absl::StrCat("unknown service '", std::string(service), "'")
            : absl::StrCat("unknown method '", std::string(method), "' of service '",
                           std::string(service), "'"));
  }
  if (!payload_type.empty() && payload_type != found->request_type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the payload is a ", std::string(payload_type), " but ", found->path, " takes a ",
        found->request_type));
  }
  return absl::OkStatus();
}

}  // namespace massa
