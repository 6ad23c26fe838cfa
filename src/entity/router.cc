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
  const MethodInfo* method = catalog_.FindMethod(command.service, command.method);
  if (method == nullptr) {
    std::string what = catalog_.FindService(command.service) == nullptr
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
  const bool entity = method->service->spec.kind != EntityKind::kAction;
  if (command.addressed && entity) {
    absl::Status agrees = command.entity_key.empty()
                              ? absl::InvalidArgumentError("addressed to an empty entity key")
                              : catalog_.CheckAddressedKey(*method, command.payload,
                                                           command.entity_key);
    if (!agrees.ok()) {
      std::move(done)(CommandResult{
          absl::InvalidArgumentError(absl::StrCat(method->path, ": ", agrees.message())), {}, {}});
      return;
    }
  } else {
    absl::StatusOr<std::string> key = catalog_.ExtractKey(*method, command.payload);
    if (!key.ok()) {
      std::move(done)(CommandResult{
          absl::InvalidArgumentError(absl::StrCat(method->path, ": ", key.status().message())),
          {},
          {}});
      return;
    }
    command.entity_key = *std::move(key);
  }
  if (!command.call_chain.empty()) {
    if (absl::Status chain = CheckCallChain(command, *method); !chain.ok()) {
      std::move(done)(CommandResult{std::move(chain), {}, {}});
      return;
    }
  }
  command.request_type = method->request_type;
  runtime_.Submit(*method, std::move(command), std::move(done));
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

absl::Status Router::CheckTarget(std::string_view service, std::string_view method,
                                 std::string_view payload_type) const {
  const MethodInfo* found = catalog_.FindMethod(service, method);
  if (found == nullptr) {
    return absl::InvalidArgumentError(
        catalog_.FindService(service) == nullptr
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
