// `massa serve`: wires store, user function, runtime, router and ingress together and runs
// until SIGTERM or SIGINT.
#pragma once

#include "absl/status/status.h"
#include "server/config.h"

namespace massa {

// Runs the sidecar until SIGTERM/SIGINT, then shuts down gracefully. Prints one line
// "massa: serving gRPC on HOST:PORT" to stdout once it accepts calls. The caller must have
// blocked SIGTERM and SIGINT in every thread (see BlockShutdownSignals).
// Errors: the store cannot be opened, discovery failed or the spec is invalid, the port
// cannot be bound. Each message names what failed.
[[nodiscard]] absl::Status Serve(const ServeConfig& config);

// Blocks SIGTERM and SIGINT in the calling thread and the threads it starts later, so that
// Serve can wait for them. Call first thing in main.
void BlockShutdownSignals();

}  // namespace massa
