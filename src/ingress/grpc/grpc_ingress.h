// The gRPC ingress: serves every discovered service through one generic service built from
// the descriptors (no generated stubs of user services), plus Massa's own admin service.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "massa/entity/dispatcher.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace massa {

class Catalog;
class RequestMetrics;

struct GrpcIngressOptions {
  std::string listen = "0.0.0.0:9000";  // "host:port" (port 0 = any free port) or "unix:/path"
  int max_message_bytes = 4 << 20;
  RequestMetrics* metrics = nullptr;      // where requests are counted, if anywhere
  std::vector<grpc::Service*> services;  // served beside the user's (health, reflection)
};

class GrpcIngress {
 public:
  // Starts serving. Errors: UNAVAILABLE when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GrpcIngress>> Start(
      const GrpcIngressOptions& options, const Catalog& catalog, Dispatcher& dispatcher);
  ~GrpcIngress();

  // The port bound (for a TCP listen address), e.g. when options.listen asked for port 0.
  int port() const;

  // Stops accepting calls and waits for calls in flight, cancelling those still running
  // after `grace`.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit GrpcIngress(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa
