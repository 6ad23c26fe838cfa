#include "cluster/peer.h"

#include <chrono>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "massa/internal/v1/peer.grpc.pb.h"
#include "rpc/loop_service.h"

namespace massa::cluster {
namespace {

namespace v1 = ::massa::internal::v1;
using Steady = std::chrono::steady_clock;

v1::PeerCommand ToPeer(Command command) {
  v1::PeerCommand out;
  out.set_service(std::move(command.service));
  out.set_method(std::move(command.method));
  out.set_entity_key(std::move(command.entity_key));
  out.set_payload(std::move(command.payload));
  for (auto& [key, value] : command.metadata) {
    v1::MetadataPair& pair = *out.add_metadata();
    pair.set_key(std::move(key));
    pair.set_value(std::move(value));
  }
  if (command.deadline != Steady::time_point::max()) {
    out.set_deadline_remaining_ms(std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(command.deadline - Steady::now())
               .count()));
  }
  out.set_hops(command.hops);
  out.set_idempotency_key(std::move(command.idempotency_key));
  out.set_addressed(command.addressed);
  for (std::string& entity : command.call_chain) out.add_call_chain(std::move(entity));
  out.set_spawn(command.spawn);
  if (command.crdt_merge.has_value()) out.set_crdt_merge(std::move(*command.crdt_merge));
  return out;
}

Command FromPeer(const v1::PeerCommand& in) {
  Command out;
  out.service = in.service();
  out.method = in.method();
  out.entity_key = in.entity_key();
  out.payload = in.payload();
  for (const v1::MetadataPair& pair : in.metadata()) out.metadata.emplace_back(pair.key(), pair.value());
  if (in.deadline_remaining_ms() > 0) {
    out.deadline = Steady::now() + std::chrono::milliseconds(in.deadline_remaining_ms());
  }
  out.hops = in.hops();
  out.idempotency_key = in.idempotency_key();
  out.addressed = in.addressed();
  out.call_chain.assign(in.call_chain().begin(), in.call_chain().end());
  out.spawn = in.spawn();
  if (in.has_crdt_merge()) out.crdt_merge = in.crdt_merge();
  return out;
}

class PeerService final : public rpc::LoopService {
 public:
  PeerService(Dispatcher& local, std::shared_ptr<const PeerSecret> secret)
      : local_(local), secret_(std::move(secret)) {}
  grpc::Service* service() override { return &async_; }
  void Start(rpc::CqLoop& loop) override {
    rpc::ServeUnaryAsync(
        async_, &v1::Peer::AsyncService::RequestForward, loop,
        [this](const v1::PeerCommand& request,
               rpc::AsyncUnaryCall<v1::Peer::AsyncService, v1::PeerCommand,
                                   v1::PeerResult>::Reply reply) {
          if (!secret_->Admits(request.cluster_secret())) {
            v1::PeerResult refused;
            refused.set_code(static_cast<int32_t>(absl::StatusCode::kPermissionDenied));
            refused.set_message(
                "the Peer service takes commands from the nodes of this cluster only (the "
                "cluster's secret is missing or wrong)");
            std::move(reply)(grpc::Status::OK, std::move(refused));
            return;
          }
          local_.Dispatch(FromPeer(request),
                          [reply = std::move(reply)](CommandResult result) mutable {
                            v1::PeerResult out;
                            out.set_code(static_cast<int32_t>(result.status.code()));
                            out.set_message(std::string(result.status.message()));
                            out.set_payload(std::move(result.payload));
                            for (auto& [key, value] : result.metadata) {
                              v1::MetadataPair& pair = *out.add_metadata();
                              pair.set_key(std::move(key));
                              pair.set_value(std::move(value));
                            }
                            std::move(reply)(grpc::Status::OK, std::move(out));
                          });
        });
  }

 private:
  Dispatcher& local_;
  std::shared_ptr<const PeerSecret> secret_;
  v1::Peer::AsyncService async_;
};

}  // namespace

void PeerSecret::Set(std::string secret) {
  absl::MutexLock lock(&mu_);
  secret_ = std::move(secret);
}

std::string PeerSecret::Get() const {
  absl::MutexLock lock(&mu_);
  return secret_;
}

bool PeerSecret::Admits(std::string_view offered) const {
  absl::MutexLock lock(&mu_);
  if (secret_.empty() || offered.size() != secret_.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < secret_.size(); ++i) {
    differ |= static_cast<unsigned char>(secret_[i] ^ offered[i]);
  }
  return differ == 0;
}

std::unique_ptr<rpc::LoopService> NewPeerService(Dispatcher& local,
                                                 std::shared_ptr<const PeerSecret> secret) {
  return std::make_unique<PeerService>(local, std::move(secret));
}

struct PeerClients::Impl {
  std::shared_ptr<const PeerSecret> secret;
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::unique_ptr<v1::Peer::Stub>> stubs ABSL_GUARDED_BY(mu);

  v1::Peer::Stub& StubFor(const std::string& address) {
    absl::MutexLock lock(&mu);
    std::unique_ptr<v1::Peer::Stub>& stub = stubs[address];
    if (stub == nullptr) {
      stub = v1::Peer::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    }
    return *stub;
  }
};

PeerClients::PeerClients(std::shared_ptr<const PeerSecret> secret)
    : impl_(std::make_unique<Impl>()) {
  impl_->secret = std::move(secret);
}
PeerClients::~PeerClients() = default;

void PeerClients::Forward(const std::string& address, Command command, ResultCallback done) {
  // What a call needs until its callback: request, response, context.
  struct Call {
    grpc::ClientContext context;
    v1::PeerCommand request;
    v1::PeerResult response;
    ResultCallback done;
    std::string address;
  };
  auto* call = new Call();
  if (command.deadline != Steady::time_point::max()) {
    call->context.set_deadline(std::chrono::system_clock::now() +
                               (command.deadline - Steady::now()));
  }
  call->request = ToPeer(std::move(command));
  call->request.set_cluster_secret(impl_->secret->Get());
  call->done = std::move(done);
  call->address = address;
  impl_->StubFor(address).async()->Forward(
      &call->context, &call->request, &call->response, [call](grpc::Status status) {
        std::unique_ptr<Call> owned(call);
        CommandResult result;
        if (!status.ok()) {
          const bool late = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
          result.status = absl::Status(
              late ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kUnavailable,
              absl::StrCat("forwarding to node ", owned->address, ": ", status.error_message()));
        } else {
          result.status = absl::Status(static_cast<absl::StatusCode>(owned->response.code()),
                                       owned->response.message());
          result.payload = std::move(*owned->response.mutable_payload());
          for (v1::MetadataPair& pair : *owned->response.mutable_metadata()) {
            result.metadata.emplace_back(std::move(*pair.mutable_key()),
                                         std::move(*pair.mutable_value()));
          }
        }
        // The call's context goes before the callback runs: the caller may destroy these
        // clients (and the channel) as soon as it has the result.
        ResultCallback callback = std::move(owned->done);
        owned.reset();
        std::move(callback)(std::move(result));
      });
}

}  // namespace massa::cluster
