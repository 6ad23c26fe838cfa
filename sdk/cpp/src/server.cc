#include "server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "grpcpp/grpcpp.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "registry.h"
#include "session.h"

namespace massa::sdk::detail {
namespace {

namespace v1 = massa::protocol::v1;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

class DiscoveryService final : public v1::Discovery::Service {
 public:
  explicit DiscoveryService(const Registry& registry) : registry_(registry) {}

  grpc::Status Discover(grpc::ServerContext*, const v1::ProxyInfo* request,
                        v1::Spec* response) override {
    absl::StatusOr<v1::Spec> spec = registry_.Discover(*request);
    if (!spec.ok()) return ToGrpc(spec.status());
    response->Swap(&*spec);
    return grpc::Status::OK;
  }

  grpc::Status ReportError(grpc::ServerContext*, const v1::UserFunctionError* request,
                           google::protobuf::Empty*) override {
    registry_.ReportError(*request);
    return grpc::Status::OK;
  }

 private:
  const Registry& registry_;
};

class ActionService final : public v1::Action::Service {
 public:
  explicit ActionService(const Registry& registry) : registry_(registry) {}

  grpc::Status Handle(grpc::ServerContext*, const v1::ActionCommand* request,
                      v1::ActionResponse* response) override {
    return ToGrpc(registry_.HandleAction(*request, response));
  }

 private:
  const Registry& registry_;
};

class ValueEntityService final : public v1::ValueEntity::Service {
 public:
  explicit ValueEntityService(const Registry& registry) : registry_(registry) {}

  grpc::Status Handle(grpc::ServerContext*, const v1::ValueEntityCommand* request,
                      v1::ValueEntityResponse* response) override {
    return ToGrpc(registry_.HandleValueEntity(*request, response));
  }

 private:
  const Registry& registry_;
};

class EventSourcedService final : public v1::EventSourced::Service {
 public:
  explicit EventSourcedService(const Registry& registry) : registry_(registry) {}

  grpc::Status Handle(grpc::ServerContext*, const v1::EventSourcedCommand* request,
                      v1::EventSourcedResponse* response) override {
    return ToGrpc(registry_.HandleEventSourced(*request, response));
  }

  grpc::Status Fold(grpc::ServerContext*, const v1::FoldRequest* request,
                    v1::FoldResponse* response) override {
    return ToGrpc(registry_.Fold(*request, response));
  }

 private:
  const Registry& registry_;
};

// Makes `path` free for a new unix socket: removes a socket file nobody listens on.
absl::Status PrepareSocketPath(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::UnavailableError("cannot stat " + path + ": " + std::strerror(errno));
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::UnavailableError(path + " exists and is not a socket; not removing it");
  }
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("unix socket path too long: " + path);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (live) return absl::UnavailableError("another process is listening on " + path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError("cannot remove stale socket " + path + ": " +
                                  std::strerror(errno));
  }
  return absl::OkStatus();
}

}  // namespace

struct GrpcServer::State {
  explicit State(const Registry& registry)
      : discovery(registry), action(registry), value_entity(registry), event_sourced(registry) {}

  DiscoveryService discovery;
  ActionService action;
  ValueEntityService value_entity;
  EventSourcedService event_sourced;
  std::unique_ptr<SessionService> session;
  std::unique_ptr<grpc::Server> server;
  std::string address;
  std::string socket_path;  // empty for TCP
  std::once_flag shutdown_once;
};

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const Registry& registry,
                                                              std::string_view address,
                                                              int io_threads,
                                                              int handler_threads) {
  auto state = std::make_unique<State>(registry);
  const std::string listen(address);
  const bool is_unix = listen.rfind("unix:", 0) == 0;
  if (is_unix) {
    state->socket_path = listen.substr(listen.rfind("unix://", 0) == 0 ? 7 : 5);
    if (state->socket_path.empty()) {
      return absl::InvalidArgumentError("no socket path in address '" + listen + "'");
    }
    const size_t slash = state->socket_path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      const std::string dir = state->socket_path.substr(0, slash);
      struct stat info {};
      if (::stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
        return absl::UnavailableError("cannot listen on " + listen + ": no directory " + dir);
      }
    }
    absl::Status prepared = PrepareSocketPath(state->socket_path);
    if (!prepared.ok()) return prepared;
  } else if (listen.empty() || listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("address '" + listen +
                                      "' is neither unix:/path nor host:port");
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  // Massa is the only client and enforces its own --max-message-bytes: take what it sends.
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService(&state->discovery);
  builder.RegisterService(&state->action);
  builder.RegisterService(&state->value_entity);
  builder.RegisterService(&state->event_sourced);
  state->session = std::make_unique<SessionService>(registry, builder, io_threads, handler_threads);
  state->server = builder.BuildAndStart();
  if (state->server == nullptr || port == 0) {
    state->session->Stop();
    return absl::UnavailableError("cannot listen on " + listen);
  }
  state->session->Start();
  state->address = listen;
  const size_t colon = listen.rfind(':');
  if (!is_unix && listen.substr(colon + 1) == "0") {
    state->address = listen.substr(0, colon + 1) + std::to_string(port);
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(state)));
}

GrpcServer::GrpcServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

GrpcServer::~GrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

const std::string& GrpcServer::address() const { return state_->address; }

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  std::call_once(state_->shutdown_once, [&] {
    // Session streams end once their commands in flight are answered; then the server stops.
    state_->session->Drain();
    state_->server->Shutdown(std::chrono::system_clock::now() + grace);
    state_->server->Wait();
    state_->session->Stop();
    if (!state_->socket_path.empty()) ::unlink(state_->socket_path.c_str());
  });
}

void GrpcServer::Wait() { state_->server->Wait(); }

}  // namespace massa::sdk::detail
