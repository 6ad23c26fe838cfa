// The router: resolves a Command's service and method, checks the request and extracts the
// entity key, then hands the command to the entity runtime. Local only for now; the cluster
// issue adds placement and forwarding to the owner here.
#pragma once

#include "massa/entity/dispatcher.h"

namespace massa {

class Catalog;
class EntityRuntime;

// Thread-safe.
class Router final : public Dispatcher {
 public:
  static constexpr uint32_t kMaxHops = 32;

  Router(const Catalog& catalog, EntityRuntime& runtime) : catalog_(catalog), runtime_(runtime) {}

  // Errors (through `done`): UNIMPLEMENTED for an unknown service or method or a streaming
  // method; INVALID_ARGUMENT for a request that does not decode or lacks its entity key;
  // FAILED_PRECONDITION for a chain of more than kMaxHops forwards and side effects.
  void Dispatch(Command command, ResultCallback done) override;

 private:
  const Catalog& catalog_;
  EntityRuntime& runtime_;
};

}  // namespace massa
