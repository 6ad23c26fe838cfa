// An in-process gRPC server on 127.0.0.1 with a kernel-chosen port, for service tests.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"

namespace massa::testing {

struct LocalServer {
  std::unique_ptr<grpc::Server> server;    // null when it could not start
  std::shared_ptr<grpc::Channel> channel;  // to the server
};

inline LocalServer StartLocalServer(std::initializer_list<grpc::Service*> services) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  LocalServer local;
  local.server = builder.BuildAndStart();
  if (local.server == nullptr || port == 0) return LocalServer{};
  local.channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                      grpc::InsecureChannelCredentials());
  return local;
}

}  // namespace massa::testing
