// File: ingress/grpc/health.h
//
// gRPC health checking (grpc.health.v1.Health) for load balancers and Kubernetes probes.
// HealthState holds the statuses; the service made by NewHealthService answers from it:
//   Check  the current status of a service ("" = the server as a whole); NOT_FOUND for a
//          service the state does not know.
//   Watch  the current status, then each change, until the client cancels or the state is
//          shut down; an unknown service is answered SERVICE_UNKNOWN and the stream stays
//          open (it reports the status if the service becomes known later).
//
// Readiness in Massa: SERVING once the user function is discovered and reachable and the store
// is open; NOT_SERVING while draining after SIGTERM. Each user service follows that overall
// status.
//
// Example:
//   HealthState health;                       // overall: NOT_SERVING
//   for (const auto& service : catalog.services()) health.Follow(service->spec.name);
//   std::unique_ptr<rpc::LoopService> service = NewHealthService(health);
//   builder.RegisterService(service->service());   // then service->Start(loop)
//   ...
//   health.SetServing(true);                  // ready
//   health.SetServing(false);                 // SIGTERM: draining
//   health.Shutdown();                        // ends Watch streams; then
//   server->Shutdown(deadline);
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace massa {

namespace rpc {
class LoopService;
}  // namespace rpc

namespace health_internal {
struct State;
}  // namespace health_internal

enum class ServingStatus {
  kServing,
  kNotServing,
};

// Thread-safe. Watch streams keep what they need alive, so the state may be destroyed before
// the server (its streams then see no more changes).
class HealthState {
 public:
  // The overall status starts NOT_SERVING; no service is known but "".
  HealthState();
  ~HealthState();
  HealthState(const HealthState&) = delete;
  HealthState& operator=(const HealthState&) = delete;

  // Sets the overall status, which "" and every followed service answer. Setting the status
  // already in force does nothing (cheap to call on every readiness check).
  void SetServing(bool serving);

  // From now on `service` answers the overall status (dropping a status of its own).
  void Follow(std::string service);

  // From now on `service` answers `status`, whatever the overall status. "" sets the overall
  // status (same as SetServing).
  void SetStatus(std::string service, ServingStatus status);

  // The status `service` answers; nullopt for a service neither followed nor set.
  std::optional<ServingStatus> Get(std::string_view service) const;

  // For server shutdown: every known service answers NOT_SERVING from now on and later
  // changes are ignored; each open Watch stream is sent NOT_SERVING (if that is news to it)
  // and then ends with UNAVAILABLE. Call before grpc::Server::Shutdown, which otherwise waits
  // for open Watch streams until its deadline (and forever without one). Idempotent.
  void Shutdown();

 private:
  friend std::unique_ptr<rpc::LoopService> NewHealthService(const HealthState& state);

  // Shared with the service and its open Watch streams.
  std::shared_ptr<health_internal::State> impl_;
};

// A service answering from `state`, run on a completion-queue loop (rpc/loop_service.h); it
// must outlive the server, as every registered service must, and may outlive `state`.
std::unique_ptr<rpc::LoopService> NewHealthService(const HealthState& state);

}  // namespace massa
