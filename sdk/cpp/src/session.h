// File: sdk/cpp/src/session.h (private to the SDK)
//
// The function's side of the session transport (protocol 1.1, "Session" in protocol.proto):
// Massa keeps a few Session.Connect streams open and sends commands on them, many per stream;
// this service answers each with the registry's handler.
//
// It runs on gRPC's asynchronous API with one thread per completion queue. By default a command
// is handled on the thread that read it and answered at once (the fewest thread hops: for
// handlers that do not block); with handler threads, commands are handed to a pool and answered
// in the order they finish (for handlers that block on I/O).
#pragma once

#include <chrono>
#include <memory>

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace massa::sdk::detail {

class Registry;

class SessionService {
 public:
  // Registers the service and `io_threads` completion queues on `builder` (not built yet).
  // `handler_threads` = 0 handles commands on the I/O threads.
  SessionService(const Registry& registry, grpc::ServerBuilder& builder, int io_threads,
                 int handler_threads);
  ~SessionService();  // Stop()
  SessionService(const SessionService&) = delete;
  SessionService& operator=(const SessionService&) = delete;

  // After the server is built: starts the threads and takes streams.
  void Start();

  // Before grpc::Server::Shutdown: answers commands still arriving with UNAVAILABLE and ends
  // each stream once the commands in flight on it are answered.
  void Drain();

  // After grpc::Server::Shutdown: drains the queues and joins the threads. Idempotent.
  void Stop();

  struct Impl;  // internal

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa::sdk::detail
