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
#include "rpc/loop_service.h"

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
  // Open Watch streams; each removes itself when released.
  absl::flat_hash_set<WatchStream*> watchers ABSL_GUARDED_BY(mu);
};

namespace {

using AsyncHealth = health_v1::Health::AsyncService;

// One Watch call, on the asynchronous API. The state calls Update/End under its lock; the
// loop calls the completions. At most one write is in flight; Finish waits for it. The call is
// released once gRPC reports it done (finished or cancelled) and no operation is pending.
// Lock order: State::mu, then mu_.
class WatchStream final {
 public:
  static void Post(std::shared_ptr<State> state, AsyncHealth& service, rpc::CqLoop& loop,
                   size_t queue) {
    auto* call = new WatchStream(std::move(state), service, loop, queue);
    call->context_.AsyncNotifyWhenDone(&call->done_tag_);
    service.RequestWatch(&call->context_, &call->request_, &call->writer_, loop.queue(queue),
                         loop.server_queue(queue), &call->accept_tag_);
  }

  const std::string& service() const { return service_; }

  // Reports `status` (if it differs from the last one sent).
  void Update(WireStatus status) {
    absl::MutexLock lock(&mu_);
    latest_ = status;
    NextLocked();
  }

  // Ends the stream (UNAVAILABLE) once the latest status is written.
  void End() {
    absl::MutexLock lock(&mu_);
    ending_ = true;
    NextLocked();
  }

 private:
  WatchStream(std::shared_ptr<State> state, AsyncHealth& service, rpc::CqLoop& loop, size_t queue)
      : state_(std::move(state)),
        async_(service),
        loop_(loop),
        queue_(queue),
        writer_(&context_),
        accept_tag_(this),
        write_tag_(this),
        done_tag_(this) {}

  void OnAccept(bool ok) {
    if (!ok) {  // shutting down: the call never started, and no done tag comes
      delete this;
      return;
    }
    Post(state_, async_, loop_, queue_);
    service_ = request_.service();
    absl::MutexLock state_lock(&state_->mu);
    absl::MutexLock lock(&mu_);
    latest_ = state_->WatchStatusLocked(service_);
    ending_ = state_->shut_down;
    if (!ending_) {
      state_->watchers.insert(this);
      registered_ = true;
    }
    started_ = true;
    NextLocked();
  }

  void OnWrite(bool ok) {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;  // the call is over: no more writes
      NextLocked();
      release = Releasable();
    }
    if (release) Release();
  }

  void OnDone(bool) {
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      cancelled_ = cancelled_ || context_.IsCancelled();
      NextLocked();
      release = Releasable();
    }
    if (release) Release();
  }

  // Starts the next write, or Finish, if one is due and nothing is in flight.
  void NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!started_ || writing_ || finishing_) return;
    if (done_) return;  // cancelled: nothing more to send
    if (!cancelled_ && latest_ != sent_) {
      sent_ = latest_;
      response_.set_status(latest_);
      writing_ = true;
      writer_.Write(response_, &write_tag_);
    } else if (cancelled_ || ending_) {
      finishing_ = true;
      writing_ = true;  // the finish completes on write_tag_ too
      writer_.Finish(cancelled_ ? grpc::Status::CANCELLED
                                : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                               "server shutting down"),
                     &write_tag_);
    }
  }

  bool Releasable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ && !writing_; }

  // Leaves the state's list (under its lock, so no Update runs meanwhile), then frees the call.
  void Release() {
    if (registered_) {
      absl::MutexLock lock(&state_->mu);
      state_->watchers.erase(this);
    }
    delete this;
  }

  const std::shared_ptr<State> state_;
  AsyncHealth& async_;
  rpc::CqLoop& loop_;
  const size_t queue_;
  grpc::ServerContext context_;
  health_v1::HealthCheckRequest request_;
  grpc::ServerAsyncWriter<health_v1::HealthCheckResponse> writer_;
  std::string service_;
  bool registered_ = false;
  rpc::MemberTag<WatchStream, &WatchStream::OnAccept> accept_tag_;
  rpc::MemberTag<WatchStream, &WatchStream::OnWrite> write_tag_;
  rpc::MemberTag<WatchStream, &WatchStream::OnDone> done_tag_;

  absl::Mutex mu_;
  WireStatus latest_ ABSL_GUARDED_BY(mu_) = health_v1::HealthCheckResponse::UNKNOWN;
  std::optional<WireStatus> sent_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  // Set under mu_ while no write is in flight; read by gRPC during the write.
  health_v1::HealthCheckResponse response_;
};

class HealthService final : public rpc::LoopService {
 public:
  explicit HealthService(std::shared_ptr<State> state) : state_(std::move(state)) {}

  grpc::Service* service() override { return &async_; }

  void Start(rpc::CqLoop& loop) override {
    rpc::ServeUnary(async_, &AsyncHealth::RequestCheck, loop,
                    [state = state_](const health_v1::HealthCheckRequest& request,
                                     health_v1::HealthCheckResponse* response) {
                      std::optional<ServingStatus> status;
                      {
                        absl::ReaderMutexLock lock(&state->mu);
                        status = state->GetLocked(request.service());
                      }
                      if (!status.has_value()) {
                        return grpc::Status(grpc::StatusCode::NOT_FOUND,
                                            "unknown service '" + request.service() + "'");
                      }
                      response->set_status(ToWire(*status));
                      return grpc::Status::OK;
                    });
    for (size_t i = 0; i < loop.size(); ++i) WatchStream::Post(state_, async_, loop, i);
  }

 private:
  const std::shared_ptr<State> state_;
  AsyncHealth async_;
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

std::unique_ptr<rpc::LoopService> NewHealthService(const HealthState& state) {
  return std::make_unique<HealthService>(state.impl_);
}

}  // namespace massa
