// The router: resolves a Command's service and method, checks the request and extracts the
// entity key, then hands the command to the entity runtime. Local only for now; the cluster
// issue adds placement and forwarding to the owner here.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "massa/entity/dispatcher.h"

namespace massa {

class Catalog;
class EntityRuntime;
struct MethodInfo;

// Thread-safe.
class Router final : public Dispatcher {
 public:
  static constexpr uint32_t kMaxHops = 32;
  static constexpr size_t kMaxCallDepth = 32;  // entities waiting in one chain of calls

  Router(const Catalog& catalog, EntityRuntime& runtime) : catalog_(catalog), runtime_(runtime) {}

  // Errors (through `done`): UNIMPLEMENTED for an unknown service or method or a streaming
  // method; INVALID_ARGUMENT for a request that does not decode or lacks its entity key (or,
  // addressed to an entity, names another), or for a malformed `idempotency-key`;
  // FAILED_PRECONDITION for a chain of more than kMaxHops forwards and side effects, or of
  // calls nested more than kMaxCallDepth deep; ABORTED, naming the chain, for a call to an
  // entity that is waiting for its reply (Command::call_chain), which would never be answered,
  // unless the method is read-only (then the command is marked reentrant).
  void Dispatch(Command command, ResultCallback done) override;

  // Whether `method` of `service` exists and takes `payload_type` (unchecked when empty):
  // what the runtime checks when a handler sets a timer (TargetCheck).
  absl::Status CheckTarget(std::string_view service, std::string_view method,
                           std::string_view payload_type) const;

 private:
  absl::Status CheckCallChain(Command& command, const MethodInfo& method) const;

  const Catalog& catalog_;
  EntityRuntime& runtime_;
};

}  // namespace massa
