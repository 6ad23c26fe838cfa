#include "ingress/grpc/grpc_ingress.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "entity/catalog.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "massa/admin/v1/admin.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace massa {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

// One unary call to a user service: read the request, dispatch, write the reply.
class GenericCall final : public grpc::ServerGenericBidiReactor {
 public:
  GenericCall(grpc::GenericCallbackServerContext* context, Dispatcher& dispatcher,
              RequestMetrics* metrics)
      : context_(context), dispatcher_(dispatcher), metrics_(metrics) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    Command command;
    // The method is "/package.Service/Method".
    std::string_view path = context_->method();
    size_t slash = path.rfind('/');
    if (path.size() < 3 || path.front() != '/' || slash == 0) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                          "malformed method path '" + std::string(path) + "'"));
      return;
    }
    command.service = std::string(path.substr(1, slash - 1));
    command.method = std::string(path.substr(slash + 1));
    command.payload = Flatten(request_);
    for (const auto& [key, value] : context_->client_metadata()) {
      command.metadata.emplace_back(std::string(key.data(), key.size()),
                                    std::string(value.data(), value.size()));
    }
    auto deadline = context_->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      command.deadline = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             deadline - std::chrono::system_clock::now());
    }
    if (metrics_ != nullptr) {
      started_ = std::chrono::steady_clock::now();
      service_ = command.service;
      method_ = command.method;
    }
    dispatcher_.Dispatch(std::move(command), [this](CommandResult result) {
      if (metrics_ != nullptr) {
        metrics_->Record(service_, method_, static_cast<int>(result.status.code()),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                       started_)
                             .count(),
                         /*http=*/false);
      }
      if (!result.status.ok()) {
        Finish(ToGrpc(result.status));
        return;
      }
      for (const auto& [key, value] : result.metadata) {
        context_->AddInitialMetadata(absl::AsciiStrToLower(key), value);
      }
      grpc::Slice slice(result.payload);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    });
  }

  void OnWriteDone(bool) override {}
  void OnDone() override { delete this; }
  void OnCancel() override {}

 private:
  grpc::GenericCallbackServerContext* context_;
  Dispatcher& dispatcher_;
  RequestMetrics* metrics_;
  std::chrono::steady_clock::time_point started_;
  std::string service_;
  std::string method_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class GenericService final : public grpc::CallbackGenericService {
 public:
  GenericService(Dispatcher& dispatcher, RequestMetrics* metrics)
      : dispatcher_(dispatcher), metrics_(metrics) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new GenericCall(context, dispatcher_, metrics_);
  }

 private:
  Dispatcher& dispatcher_;
  RequestMetrics* metrics_;
};

class AdminService final : public admin::v1::Admin::CallbackService {
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

  grpc::ServerUnaryReactor* GetSpec(grpc::CallbackServerContext* context,
                                    const admin::v1::GetSpecRequest*,
                                    admin::v1::GetSpecResponse* response) override {
    *response = spec_;
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  admin::v1::GetSpecResponse spec_;
};

}  // namespace

struct GrpcIngress::Impl {
  Impl(const Catalog& catalog, Dispatcher& dispatcher, RequestMetrics* metrics)
      : generic(dispatcher, metrics), admin(catalog) {}
  GenericService generic;
  AdminService admin;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

GrpcIngress::GrpcIngress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcIngress::~GrpcIngress() { Shutdown(std::chrono::milliseconds(0)); }

absl::StatusOr<std::unique_ptr<GrpcIngress>> GrpcIngress::Start(const GrpcIngressOptions& options,
                                                                const Catalog& catalog,
                                                                Dispatcher& dispatcher) {
  auto impl = std::make_unique<Impl>(catalog, dispatcher, options.metrics);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(&impl->admin);
  for (grpc::Service* service : options.services) builder.RegisterService(service);
  builder.RegisterCallbackGenericService(&impl->generic);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", options.listen));
  }
  return std::unique_ptr<GrpcIngress>(new GrpcIngress(std::move(impl)));
}

int GrpcIngress::port() const { return impl_->port; }

void GrpcIngress::Shutdown(std::chrono::milliseconds grace) {
  if (impl_ == nullptr || impl_->server == nullptr) return;
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->server->Wait();
  impl_->server.reset();
}

}  // namespace massa
