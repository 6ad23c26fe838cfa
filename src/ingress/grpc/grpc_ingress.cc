#include "ingress/grpc/grpc_ingress.h"

#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "entity/catalog.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "massa/admin/v1/admin.grpc.pb.h"
#include "rpc/cq_loop.h"
#include "rpc/loop_service.h"

namespace massa {
namespace {

// Calls waiting to be matched per completion queue: enough that a burst of new calls does not
// wait for the loop to post the next request.
constexpr int kPendingAcceptsPerQueue = 16;

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::string out;
  grpc::Slice single;
  if (buffer.TrySingleSlice(&single).ok()) {
    out.assign(reinterpret_cast<const char*>(single.begin()), single.size());
    return out;
  }
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

class AdminService final : public rpc::LoopService {
 public:
  explicit AdminService(const Catalog& catalog) {
    spec_.set_descriptor_set(catalog.spec().descriptor_set);
    for (const auto& service : catalog.services()) {
      auto* info = spec_.add_services();
      info->set_service_name(service->spec.name);
      info->set_kind(EntityKindName(service->spec.kind));
      info->set_entity_type(service->spec.entity_type);
    }
  }

  grpc::Service* service() override { return &async_; }

  void Start(rpc::CqLoop& loop) override {
    rpc::ServeUnary(async_, &admin::v1::Admin::AsyncService::RequestGetSpec, loop,
                    [this](const admin::v1::GetSpecRequest&, admin::v1::GetSpecResponse* out) {
                      *out = spec_;
                      return grpc::Status::OK;
                    });
  }

 private:
  admin::v1::GetSpecResponse spec_;
  admin::v1::Admin::AsyncService async_;
};

}  // namespace

struct GrpcIngress::Impl {
  Impl(const GrpcIngressOptions& options_in, const Catalog& catalog, Dispatcher& dispatcher_in)
      : options(options_in), dispatcher(dispatcher_in), admin(catalog) {}

  void Accept(size_t queue);

  GrpcIngressOptions options;
  Dispatcher& dispatcher;
  AdminService admin;
  grpc::AsyncGenericService generic;
  std::unique_ptr<rpc::CqLoop> loop;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::atomic<bool> shutting_down{false};
  std::atomic<int64_t> in_flight{0};
  bool serving = false;
  bool shut_down = false;
  bool stopped = false;
};

namespace {

// One call to a user service: accepted, its request read, dispatched, answered. Runs on the
// thread of its completion queue, except the dispatch's answer, which may come from any thread.
class GenericCall {
 public:
  GenericCall(GrpcIngress::Impl& ingress, size_t queue)
      : ingress_(ingress),
        queue_(queue),
        stream_(&context_),
        accept_tag_(this),
        read_tag_(this),
        finish_tag_(this) {
    ingress_.generic.RequestCall(&context_, &stream_, ingress_.loop->queue(queue_),
                                 ingress_.loop->server_queue(queue_), &accept_tag_);
  }

 private:
  void OnAccept(bool ok) {
    if (!ok) {  // the server is shutting down
      delete this;
      return;
    }
    ingress_.in_flight.fetch_add(1, std::memory_order_relaxed);
    if (!ingress_.shutting_down.load(std::memory_order_relaxed)) ingress_.Accept(queue_);
    stream_.Read(&request_, &read_tag_);
  }

  void OnRead(bool ok) {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    Command command;
    // The method is "/package.Service/Method".
    const std::string& path = context_.method();
    const size_t slash = path.rfind('/');
    if (path.size() < 3 || path.front() != '/' || slash == 0 || slash == std::string::npos) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "malformed method path '" + path + "'"));
      return;
    }
    command.service.assign(path, 1, slash - 1);
    command.method.assign(path, slash + 1);
    command.payload = Flatten(request_);
    request_.Clear();
    for (const auto& [key, value] : context_.client_metadata()) {
      command.metadata.emplace_back(std::string(key.data(), key.size()),
                                    std::string(value.data(), value.size()));
    }
    const auto deadline = context_.deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      command.deadline = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             deadline - std::chrono::system_clock::now());
    }
    if (ingress_.options.metrics != nullptr) {
      started_ = std::chrono::steady_clock::now();
      service_ = command.service;
      method_ = command.method;
    }
    ingress_.dispatcher.Dispatch(std::move(command),
                                 [this](CommandResult result) { Answer(std::move(result)); });
  }

  void Answer(CommandResult result) {
    if (ingress_.options.metrics != nullptr) {
      ingress_.options.metrics->Record(
          service_, method_, static_cast<int>(result.status.code()),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count(),
          /*http=*/false);
    }
    if (!result.status.ok()) {
      Finish(ToGrpc(result.status));
      return;
    }
    for (const auto& [key, value] : result.metadata) {
      context_.AddInitialMetadata(absl::AsciiStrToLower(key), value);
    }
    grpc::Slice slice(std::move(result.payload));
    response_ = grpc::ByteBuffer(&slice, 1);
    stream_.WriteAndFinish(response_, grpc::WriteOptions(), grpc::Status::OK, &finish_tag_);
  }

  void Finish(const grpc::Status& status) { stream_.Finish(status, &finish_tag_); }

  void OnFinish(bool) {
    ingress_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    delete this;
  }

  GrpcIngress::Impl& ingress_;
  const size_t queue_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::chrono::steady_clock::time_point started_;
  std::string service_;
  std::string method_;
  rpc::MemberTag<GenericCall, &GenericCall::OnAccept> accept_tag_;
  rpc::MemberTag<GenericCall, &GenericCall::OnRead> read_tag_;
  rpc::MemberTag<GenericCall, &GenericCall::OnFinish> finish_tag_;
};

}  // namespace

void GrpcIngress::Impl::Accept(size_t queue) { new GenericCall(*this, queue); }

GrpcIngress::GrpcIngress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcIngress::~GrpcIngress() {
  Shutdown(std::chrono::system_clock::now());
  Stop();
}

absl::StatusOr<std::unique_ptr<GrpcIngress>> GrpcIngress::Start(const GrpcIngressOptions& options,
                                                                const Catalog& catalog,
                                                                Dispatcher& dispatcher) {
  auto impl = std::make_unique<Impl>(options, catalog, dispatcher);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(impl->admin.service());
  for (rpc::LoopService* service : options.services) builder.RegisterService(service->service());
  builder.RegisterAsyncGenericService(&impl->generic);
  impl->loop = std::make_unique<rpc::CqLoop>(builder, options.threads, "massa-io", options.spin);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr) {
    impl->loop->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", options.listen));
  }
  impl->loop->Start();
  return std::unique_ptr<GrpcIngress>(new GrpcIngress(std::move(impl)));
}

int GrpcIngress::port() const { return impl_->port; }

rpc::CqLoop& GrpcIngress::loop() { return *impl_->loop; }

void GrpcIngress::Serve() {
  if (impl_->serving) return;
  impl_->serving = true;
  impl_->admin.Start(*impl_->loop);
  for (rpc::LoopService* service : impl_->options.services) service->Start(*impl_->loop);
  for (size_t queue = 0; queue < impl_->loop->size(); ++queue) {
    for (int i = 0; i < kPendingAcceptsPerQueue; ++i) impl_->Accept(queue);
  }
}

int64_t GrpcIngress::in_flight() const {
  return impl_->in_flight.load(std::memory_order_relaxed);
}

void GrpcIngress::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->shutting_down.store(true);
  impl_->server->Shutdown(deadline);
}

void GrpcIngress::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  Shutdown(std::chrono::system_clock::now());
  impl_->loop->Shutdown();
  impl_->server.reset();
}

}  // namespace massa
