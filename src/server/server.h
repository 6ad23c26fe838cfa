// `massa serve`: the sidecar as one object with a lifecycle.
//
// Start opens the store, discovers the function, builds the runtime and binds every listener
// (gRPC, HTTP/JSON, admin). Shutdown stops it in an explicit order, so that no call that was
// accepted goes unanswered and nothing is destroyed while something can still call into it:
//
//   1. stop accepting: readiness and gRPC health turn NOT_SERVING, the gRPC server refuses new
//      calls, the HTTP server closes its listener and its idle connections;
//   2. drain: every call in flight, on every protocol, is answered (HTTP answers say
//      `Connection: close`), until the grace period ends;
//   3. if the grace ran out: close the function's connections, which fails the commands still
//      waiting for it (UNAVAILABLE), and wait for the store to finish the writes in flight;
//   4. stop background work (passivation);
//   5. close the function's connections and stop the gRPC threads;
//   6. close the admin server, then flush and close the store;
//   7. destroy the runtime.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config.h"

namespace massa {

// Thread-safe.
class Server {
 public:
  // Starts serving. Errors: the store cannot be opened, discovery failed or the spec is
  // invalid, a port cannot be bound. Each message names what failed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Start(const ServeConfig& config);
  ~Server();  // Shutdown(0) unless done

  // Where it serves: "host:port" or "unix:/path" for gRPC; 0 for a listener that is off.
  std::string grpc_address() const;
  int http_port() const;
  int admin_port() const;
  int spawn_port() const;  // --protocol spawn: the Spawn sidecar API

  // Re-evaluates readiness (function reachable, store healthy, not draining) and sets the gRPC
  // health status from it; /readyz evaluates it on every request.
  void RefreshHealth();

  // Stops as the file comment says; calls in flight may take until `grace` from now. Returns
  // when everything is stopped. Later calls do nothing.
  void Shutdown(std::chrono::milliseconds grace);

  // Blocks until Shutdown has returned.
  void Wait();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs the sidecar until SIGTERM/SIGINT, then shuts down with config.shutdown_grace. Prints
// "massa: serving gRPC on HOST:PORT" (and the HTTP and admin lines) to stdout once it accepts
// calls. The caller must have blocked SIGTERM and SIGINT in every thread (BlockShutdownSignals).
[[nodiscard]] absl::Status Serve(const ServeConfig& config);

// Blocks SIGTERM and SIGINT in the calling thread and the threads it starts later, so that
// Serve can wait for them. Call first thing in main.
void BlockShutdownSignals();

}  // namespace massa
