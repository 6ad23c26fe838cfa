#include "ingress/grpc/health.h"

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace massa {

namespace health_v1 = grpc::health::v1;
using health_internal::State;
using WireStatus = health_v1::HealthCheckResponse::ServingStatus;

namespace {

class WatchStream;

WireStatus ToWire(ServingStatus status) {
  return status == ServingStatus::kServing ? health_v1::HealthCheckResponse::SERVING
                                           : health_v1::HealthCheckResponse::NOT_SERVING;
}

}  // namespace

struct health_internal::State {
  // The status `service` answers; nullopt when unknown.
  std::optional<ServingStatus> GetLocked(std::string_view service) const
      ABSL_SHARED_LOCKS_REQUIRED(mu) {
    if (service.empty()) return shut_down ? ServingStatus::kNotServing : overall;
    auto it = services.find(absl::string_view(service.data(), service.size()));
    if (it == services.end()) return std::nullopt;
    if (shut_down) return ServingStatus::kNotServing;
    return it->second.value_or(overall);
  }

  // What Watch reports for `service`.
  WireStatus WatchStatusLocked(std::string_view service) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    std::optional<ServingStatus> status = GetLocked(service);
    return status.has_value() ? ToWire(*status) : health_v1::HealthCheckResponse::SERVICE_UNKNOWN;
  }

  // Tells every open Watch stream its service's status (streams skip what they already sent).
  void NotifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  mutable absl::Mutex mu;
  ServingStatus overall ABSL_GUARDED_BY(mu) = ServingStatus::kNotServing;
  // Known services: nullopt follows `overall`.
  absl::flat_hash_map<std::string, std::optional<ServingStatus>> services ABSL_GUARDED_BY(mu);
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  // Open Watch streams; each removes itself in OnDone.
  absl::flat_hash_set<WatchStream*> watchers ABSL_GUARDED_BY(mu);
};

namespace {

// One Watch call. The state calls Update/End under its lock; gRPC calls the reactions. A write
// or Finish is started outside `mu_` and at most one write is in flight; Finish waits for it.
// Lock order: State::mu, then mu_.
class WatchStream final : public grpc::ServerWriteReactor<health_v1::HealthCheckResponse> {
 public:
  WatchStream(std::shared_ptr<State> state, std::string service)
      : state_(std::move(state)), service_(std::move(service)) {
    {
      absl::MutexLock state_lock(&state_->mu);
      absl::MutexLock lock(&mu_);
      latest_ = state_->WatchStatusLocked(service_);
      ending_ = state_->shut_down;
      if (!ending_) state_->watchers.insert(this);
    }
    Next();
  }

  const std::string& service() const { return service_; }

  // Reports `status` (if it differs from the last one sent).
  void Update(WireStatus status) {
    {
      absl::MutexLock lock(&mu_);
      latest_ = status;
    }
    Next();
  }

  // Ends the stream (UNAVAILABLE) once the latest status is written.
  void End() {
    {
      absl::MutexLock lock(&mu_);
      ending_ = true;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;  // the call is over: no more writes
    }
    Next();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    Next();
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->watchers.erase(this);
    }
    delete this;
  }

 private:
  // Starts the next write, or Finish, if one is due and nothing is in flight.
  void Next() {
    enum class Op { kNone, kWrite, kFinish } op = Op::kNone;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!cancelled_ && latest_ != sent_) {
        sent_ = latest_;
        response_.set_status(latest_);
        writing_ = true;
        op = Op::kWrite;
      } else if (cancelled_ || ending_) {
        finished_ = true;
        status = cancelled_ ? grpc::Status::CANCELLED
                            : grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
        op = Op::kFinish;
      }
    }
    // Reactions never run inline in these calls (gRPC schedules them), so no lock is needed
    // here; response_ stays untouched until OnWriteDone.
    if (op == Op::kWrite) StartWrite(&response_);
    if (op == Op::kFinish) Finish(status);
  }

  const std::shared_ptr<State> state_;
  const std::string service_;

  absl::Mutex mu_;
  WireStatus latest_ ABSL_GUARDED_BY(mu_) = health_v1::HealthCheckResponse::UNKNOWN;
  std::optional<WireStatus> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Set under mu_ while no write is in flight; read by gRPC during the write.
  health_v1::HealthCheckResponse response_;
};

class HealthService final : public health_v1::Health::CallbackService {
 public:
  explicit HealthService(std::shared_ptr<State> state) : state_(std::move(state)) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const health_v1::HealthCheckRequest* request,
                                  health_v1::HealthCheckResponse* response) override {
    std::optional<ServingStatus> status;
    {
      absl::ReaderMutexLock lock(&state_->mu);
      status = state_->GetLocked(request->service());
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (!status.has_value()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   "unknown service '" + request->service() + "'"));
      return reactor;
    }
    response->set_status(ToWire(*status));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<health_v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext*, const health_v1::HealthCheckRequest* request) override {
    return new WatchStream(state_, request->service());
  }

 private:
  const std::shared_ptr<State> state_;
};

}  // namespace

void health_internal::State::NotifyLocked() {
  for (WatchStream* watcher : watchers) watcher->Update(WatchStatusLocked(watcher->service()));
}

HealthState::HealthState() : impl_(std::make_shared<State>()) {}
HealthState::~HealthState() = default;

void HealthState::SetServing(bool serving) {
  SetStatus("", serving ? ServingStatus::kServing : ServingStatus::kNotServing);
}

void HealthState::Follow(std::string service) {
  absl::MutexLock lock(&impl_->mu);
  if (impl_->shut_down || service.empty()) return;
  impl_->services[std::move(service)] = std::nullopt;
  impl_->NotifyLocked();
}

void HealthState::SetStatus(std::string service, ServingStatus status) {
  absl::MutexLock lock(&impl_->mu);
  if (impl_->shut_down) return;
  if (service.empty()) {
    if (impl_->overall == status) return;  // no news: cheap to call on every readiness tick
    impl_->overall = status;
  } else {
    std::optional<ServingStatus>& own = impl_->services[std::move(service)];
    if (own == status) return;
    own = status;
  }
  impl_->NotifyLocked();
}

std::optional<ServingStatus> HealthState::Get(std::string_view service) const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return impl_->GetLocked(service);
}

void HealthState::Shutdown() {
  absl::MutexLock lock(&impl_->mu);
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->NotifyLocked();
  for (WatchStream* watcher : impl_->watchers) watcher->End();
}

std::unique_ptr<grpc::Service> NewHealthService(const HealthState& state) {
  return std::make_unique<HealthService>(state.impl_);
}

}  // namespace massa
