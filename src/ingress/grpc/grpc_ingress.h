// The gRPC ingress: serves every discovered service through one generic service built from
// the descriptors (no generated stubs of user services), plus Massa's own admin service.
//
// Calls to user services run on the completion-queue loop (rpc/cq_loop.h) that the ingress
// owns: the thread that receives a call reads it, dispatches it and, when the answer comes
// back on a loop thread (the native driver's streams run on the same loop), writes the reply,
// without handing the call to another thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "massa/entity/dispatcher.h"

namespace massa {

class Catalog;
class RequestMetrics;
namespace rpc {
class CqLoop;
class LoopService;
}  // namespace rpc

struct GrpcIngressOptions {
  std::string listen = "0.0.0.0:9000";  // "host:port" (port 0 = any free port) or "unix:/path"
  int max_message_bytes = 4 << 20;
  RequestMetrics* metrics = nullptr;      // where requests are counted, if anywhere
  std::vector<rpc::LoopService*> services;  // served beside the user's (health, reflection)
  int threads = 1;                          // completion-queue threads (the loop)
  std::chrono::microseconds spin{0};        // polling after work (rpc/cq_loop.h)
};

// Thread-safe.
class GrpcIngress {
 public:
  // Binds and starts the loop, but takes no call until Serve. Errors: UNAVAILABLE when the
  // address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GrpcIngress>> Start(
      const GrpcIngressOptions& options, const Catalog& catalog, Dispatcher& dispatcher);
  ~GrpcIngress();  // Shutdown(0), then Stop()

  // The port bound (for a TCP listen address), e.g. when options.listen asked for port 0.
  int port() const;

  // The loop the calls run on; other gRPC work (the driver's streams) may run on it too.
  rpc::CqLoop& loop();

  // Starts taking calls.
  void Serve();

  // Calls accepted and not yet answered.
  int64_t in_flight() const;

  // Stops accepting calls and waits for those in flight, cancelling the ones still running at
  // `deadline` (their dispatches still call back, into a cancelled call). Blocks until every
  // call is answered or cancelled.
  void Shutdown(std::chrono::system_clock::time_point deadline);

  // After Shutdown, once no dispatch can call back any more and every other user of the loop
  // has finished: drains and stops the loop. Idempotent.
  void Stop();

 public:
  struct Impl;  // internal

 private:
  explicit GrpcIngress(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa
