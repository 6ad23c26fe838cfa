// An in-process gRPC server on 127.0.0.1 with a kernel-chosen port, running services on a
// completion-queue loop of one thread, as the ingress does, for service tests.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "rpc/cq_loop.h"
#include "rpc/loop_service.h"

namespace massa::testing {

class LocalServer {
 public:
  // Null when the server could not start.
  static std::unique_ptr<LocalServer> Start(std::initializer_list<rpc::LoopService*> services) {
    auto local = std::unique_ptr<LocalServer>(new LocalServer());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    for (rpc::LoopService* service : services) builder.RegisterService(service->service());
    local->loop_ = std::make_unique<rpc::CqLoop>(builder, 1, "test-io");
    local->server_ = builder.BuildAndStart();
    if (local->server_ == nullptr || port == 0) return nullptr;
    local->loop_->Start();
    for (rpc::LoopService* service : services) service->Start(*local->loop_);
    local->port_ = port;
    local->channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                          grpc::InsecureChannelCredentials());
    return local;
  }

  ~LocalServer() { Shutdown(std::chrono::system_clock::now()); }

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // As grpc::Server::Shutdown, then drains the loop. Idempotent.
  void Shutdown() { Shutdown(std::chrono::system_clock::time_point::max()); }
  void Shutdown(std::chrono::system_clock::time_point deadline) {
    if (server_ == nullptr) return;
    if (deadline == std::chrono::system_clock::time_point::max()) {
      server_->Shutdown();
    } else {
      server_->Shutdown(deadline);
    }
    loop_->Shutdown();
    server_.reset();
  }

 private:
  LocalServer() = default;
  std::unique_ptr<rpc::CqLoop> loop_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  int port_ = 0;
};

}  // namespace massa::testing
