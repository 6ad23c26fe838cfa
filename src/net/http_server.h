// A small HTTP/1.1 server (Boost.Beast) for Massa's HTTP ingress and admin endpoints: keep-
// alive, a body limit (413), an idle timeout, and handlers that answer asynchronously from any
// thread. Beast and Asio stay inside http_server.cc.
//
// Shutdown is in two steps so that no accepted request goes unanswered: Drain stops accepting
// connections, closes the idle ones and answers every request already received (with
// `Connection: close`), closing each connection after its answer; Stop then ends what is left.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace massa {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string body;

  // The value of header `name` (lower case), or "" when absent.
  const std::string& Header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once per request, from any thread.
using HttpResponder = absl::AnyInvocable<void(HttpResponse) &&>;
// Must not block: answer through `respond`, now or later.
using HttpHandler = std::function<void(HttpRequest request, HttpResponder respond)>;

struct HttpServerOptions {
  // host:port (port 0 picks a free one), or unix:/path (a Unix domain socket; a stale socket
  // file at the path is replaced, and the file is removed on Stop).
  std::string listen = "0.0.0.0:8080";
  size_t max_body_bytes = 4 << 20;      // larger bodies get 413
  std::chrono::milliseconds idle_timeout{60'000};
  int threads = 1;
  std::string name = "http";  // for thread names and logs
};

// Thread-safe.
class HttpServer {
 public:
  // Binds and starts serving. Errors: UNAVAILABLE when the address cannot be bound,
  // INVALID_ARGUMENT for an address that does not parse.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options, HttpHandler handler);
  ~HttpServer();  // Stop()

  int port() const;  // 0 for a Unix domain socket

  // Stops accepting connections and closes those waiting for a request; requests already
  // (partly) received are still handled and answered with `Connection: close`, and each
  // connection closes after its answer. Returns at once.
  void Drain();

  // Connections still open: after Drain, 0 means every request received has been answered.
  int open_connections() const;

  // Requests handed to the handler and not yet answered on the wire.
  int in_flight() const;

  // Drain(), waits until no connection is open or `grace` passes, then Stop().
  void Shutdown(std::chrono::milliseconds grace);

  // Closes every connection and stops the threads; answers not yet written are dropped.
  void Stop();

 public:
  struct Impl;  // internal

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace massa
