// File: sdk/cpp/src/server.h (private to the SDK)
//
// The gRPC server of a function: serves Massa's Discovery service, the Session streams that
// carry commands (protocol 1.1), and the unary Action, ValueEntity and EventSourced services
// that a massa speaking protocol 1.0 calls, all from a Registry.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace massa::sdk::detail {

class Registry;

class GrpcServer {
 public:
  // Listens on `address` ("unix:/path", "unix:///path" or "host:port") and serves `registry`,
  // which must outlive the server. A unix socket file left by a dead process is removed
  // first; a socket someone still listens on, or a file that is not a socket, is an error.
  // `io_threads` receive Massa's commands on the session streams; `handler_threads` > 0 runs
  // handlers on a pool of that many threads instead (for handlers that block).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const Registry& registry,
                                                           std::string_view address,
                                                           int io_threads, int handler_threads);
  ~GrpcServer();  // shuts down with no grace

  // The address served, with the real port when asked for port 0.
  const std::string& address() const;

  // Stops accepting commands, waits up to `grace` for those in flight, cancels the rest and
  // removes the unix socket file. Thread-safe; later calls do nothing.
  void Shutdown(std::chrono::milliseconds grace);

  // Blocks until Shutdown has completed.
  void Wait();

 private:
  struct State;
  explicit GrpcServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace massa::sdk::detail
