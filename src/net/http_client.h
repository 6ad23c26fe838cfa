// An asynchronous HTTP/1.1 client (Boost.Beast) with a keep-alive connection pool to one
// server: Massa's transport to a Spawn SDK's HTTP server (`POST /api/v1/actors/actions` with
// binary protobuf bodies). Beast and Asio stay inside http_client.cc.
//
// It copes with the SDK servers' habits: a connection closed after every reply (`Connection:
// close`, or HTTP/1.0 with the body delimited by the close), chunked bodies, idle connections
// closed by the server (a pooled connection idles at most `idle_timeout`, below Node's 5 s, and
// a request that finds its reused connection dead before any byte of the answer arrived is sent
// once more on a fresh connection, as Go's and Node's clients do), and 4xx/5xx answers with
// empty or HTML bodies (returned as responses, not errors).
//
// Example:
//   auto client = HttpClient::Start({.address = "127.0.0.1:8091"});
//   (*client)->Request("POST", "/api/v1/actors/actions", "application/octet-stream", bytes,
//                      std::chrono::steady_clock::now() + std::chrono::seconds(5),
//                      [](absl::StatusOr<HttpClientResponse> response) { ... });
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace massa {

struct HttpClientOptions {
  // "host:port" with a numeric host ("127.0.0.1", "[::1]"; "localhost" means 127.0.0.1), or
  // "unix:/path" for a Unix domain socket.
  std::string address;
  size_t max_connections = 64;  // open at once; further requests wait in FIFO order
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds idle_timeout{4'000};  // close a pooled connection idle this long
  size_t max_response_bytes = 4 << 20;            // larger bodies: RESOURCE_EXHAUSTED
  std::string user_agent = "massa";
  std::string name = "http-client";  // for the thread name and logs
};

struct HttpClientResponse {
  int status = 0;
  std::string content_type;  // "" when absent
  std::string body;
};

// Called exactly once per request; see HttpClient::Request for the thread.
using HttpClientCallback = absl::AnyInvocable<void(absl::StatusOr<HttpClientResponse>) &&>;

// Thread-safe. One I/O thread runs every connection and every callback.
class HttpClient {
 public:
  // Starts the I/O thread; connects only when requests come. INVALID_ARGUMENT for an address
  // that does not parse.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpClient>> Start(
      const HttpClientOptions& options);
  ~HttpClient();  // Shutdown(); must not run on the client's thread (from a callback)

  // Sends one request with Host, User-Agent, Accept: */*, Connection: keep-alive,
  // Content-Length and (when non-empty) Content-Type, and calls `done` exactly once, on the
  // client's thread (so it must not block), with the response whatever its status code, or:
  //   UNAVAILABLE: cannot connect, or the connection was reset or closed before a complete
  //     response (after the one retry that a reused connection gets);
  //   DEADLINE_EXCEEDED: no complete response by `deadline` (also while queued); the
  //     connection is closed;
  //   RESOURCE_EXHAUSTED: the body is larger than max_response_bytes;
  //   INTERNAL: the response is not valid HTTP.
  // After Shutdown, `done` gets UNAVAILABLE at once, on the calling thread.
  void Request(std::string method, std::string target, std::string content_type, std::string body,
               std::chrono::steady_clock::time_point deadline, HttpClientCallback done);

  // Whether the last attempt to connect succeeded (true before any attempt). Never blocks.
  bool Reachable() const;

  // Fails queued and in-flight requests with UNAVAILABLE, closes the connections and joins the
  // thread; returns once no callback will run any more. Idempotent; must not be called from a
  // callback.
  void Shutdown();

  // Connections open or being opened (for tests).
  size_t open_connections() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa
