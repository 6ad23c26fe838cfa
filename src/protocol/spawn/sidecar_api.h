// The HTTP API a Spawn SDK expects of its sidecar (Spawn's proxy listens on 9001), served by
// Massa over its runtime:
//
//   POST /api/v1/system                                   register an actor system (again after
//                                                         an SDK restart: it replaces the last)
//   POST /api/v1/system/{system}/actors/spawn[?revision=N] spawn unnamed actors
//   POST /api/v1/system/{system}/actors/{actor}/invoke    invoke an action (sync, async,
//                                                         scheduled)
//   GET  /health, /health/liveness, /health/readiness, /metrics
//
// Bodies are binary protobuf (application/octet-stream or application/protobuf). Errors are
// answered the way Spawn's SDKs read them: HTTP 500 with the route's response message and
// status ERROR, its message "<CODE>: reason" (the canonical status code name first).
#pragma once

#include <functional>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "net/http_server.h"
#include "protocol/spawn/system.h"

namespace massa {
class Dispatcher;
class MetricsRegistry;
}  // namespace massa

namespace massa::spawn {

class SpawnDriver;

struct SidecarOptions {
  SpawnDriver* driver = nullptr;
  Dispatcher* dispatcher = nullptr;  // the router
  // Makes a registered system the one served (the catalog is rebuilt from its spec); an error
  // refuses the registration and keeps the system served before.
  std::function<absl::Status(std::shared_ptr<const System>)> install;
  std::function<absl::Status()> ready;  // readiness
  MetricsRegistry* metrics = nullptr;
  // Invocations without a `request-timeout` metadata wait this long (Spawn's default).
  std::chrono::milliseconds default_timeout{60'000};
};

// The handler for an HttpServer. The options' pointers must outlive the server.
HttpHandler SidecarApi(SidecarOptions options);

}  // namespace massa::spawn
