// HttpClient (src/net/http_client.h) against Massa's own HttpServer (well-behaved) and small
// raw-socket servers that behave like the Spawn SDKs' servers do: closing after every reply,
// HTTP/1.0 bodies delimited by the close, chunked bodies, idle connections closed silently,
// requests never answered.
#include "net/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "net/http_server.h"

namespace massa {
namespace {

using namespace std::chrono_literals;
using Result = absl::StatusOr<HttpClientResponse>;
using Clock = std::chrono::steady_clock;

// A server on 127.0.0.1 (port 0) or a Unix socket that runs `handler(fd, index)` on a thread
// per connection (index 0 for the first one accepted) and closes the connection when it returns.
class RawServer {
 public:
  using Handler = std::function<void(int fd, int index)>;

  explicit RawServer(Handler handler, std::string unix_path = "")
      : handler_(std::move(handler)), unix_path_(std::move(unix_path)) {
    if (unix_path_.empty()) {
      listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t size = sizeof(address);
      EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), size), 0);
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size);
      port_ = ntohs(address.sin_port);
    } else {
      listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", unix_path_.c_str());
      EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    }
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~RawServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // wakes the handlers' recv()
    }
    for (auto& thread : threads_) thread.join();
    ::close(listen_fd_);
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }

  std::string address() const {
    return unix_path_.empty() ? "127.0.0.1:" + std::to_string(port_) : "unix:" + unix_path_;
  }
  int accepted() const { return accepted_.load(); }
  int finished() const { return finished_.load(); }  // connections closed

 private:
  void AcceptLoop() {
    while (true) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_ || errno != EINTR) return;
        continue;
      }
      if (unix_path_.empty()) {
        const int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));  // replies in pieces
      }
      const int index = accepted_++;
      {
        std::lock_guard<std::mutex> lock(mu_);
        fds_.push_back(fd);
      }
      threads_.emplace_back([this, fd, index] {
        handler_(fd, index);
        {
          std::lock_guard<std::mutex> lock(mu_);
          fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
          ::close(fd);
        }
        ++finished_;
      });
    }
  }

  Handler handler_;
  std::string unix_path_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> finished_{0};
  std::thread acceptor_;
  std::vector<std::thread> threads_;  // acceptor_ only, until it is joined
  std::mutex mu_;
  std::vector<int> fds_;  // guarded by mu_
};

// Reads one request (head and Content-Length body) off `fd`, keeping what follows in
// `pending`. False on EOF or error.
bool ReadRequest(int fd, std::string& pending, std::string* request = nullptr) {
  while (true) {
    const size_t head_end = pending.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::string head = pending.substr(0, head_end);
      for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t length = 0;
      const size_t field = head.find("content-length:");
      if (field != std::string::npos) length = std::stoul(head.substr(field + 15));
      const size_t total = head_end + 4 + length;
      if (pending.size() >= total) {
        if (request != nullptr) *request = pending.substr(0, total);
        pending.erase(0, total);
        return true;
      }
    }
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return false;
    pending.append(buffer, static_cast<size_t>(n));
  }
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Blocks until the peer closes the connection (or the server stops).
void WaitForClose(int fd) {
  char buffer[256];
  while (::recv(fd, buffer, sizeof(buffer), 0) > 0) {
  }
}

std::string KeepAliveReply(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

bool WaitFor(const std::function<bool()>& condition) {
  const auto until = Clock::now() + 10s;
  while (!condition()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::unique_ptr<HttpClient> StartClient(const std::string& address, size_t max_connections = 64,
                                        std::chrono::milliseconds idle_timeout = 4'000ms) {
  HttpClientOptions options;
  options.address = address;
  options.max_connections = max_connections;
  options.idle_timeout = idle_timeout;
  options.connect_timeout = 2'000ms;
  auto client = HttpClient::Start(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

std::future<Result> Send(HttpClient& client, std::string body = "hello",
                         std::chrono::milliseconds timeout = 10'000ms) {
  auto promise = std::make_shared<std::promise<Result>>();
  std::future<Result> future = promise->get_future();
  client.Request("POST", "/api/v1/actors/actions", "application/octet-stream", std::move(body),
                 Clock::now() + timeout,
                 [promise](Result result) { promise->set_value(std::move(result)); });
  return future;
}

// The result of `future`, or INTERNAL when the callback did not run within 30 s.
Result Get(std::future<Result> future) {
  if (future.wait_for(30s) != std::future_status::ready) {
    return absl::InternalError("the callback never ran");
  }
  return future.get();
}

Result SendAndWait(HttpClient& client, std::string body = "hello",
                   std::chrono::milliseconds timeout = 10'000ms) {
  return Get(Send(client, std::move(body), timeout));
}

std::unique_ptr<HttpServer> StartServer(HttpHandler handler) {
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.name = "test-http";
  auto server = HttpServer::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string Address(const HttpServer& server) {
  return "127.0.0.1:" + std::to_string(server.port());
}

// Answers with the request's body and content type.
void Echo(HttpRequest request, HttpResponder respond) {
  std::move(respond)(
      HttpResponse{200, request.Header("content-type"), std::move(request.body), {}});
}

TEST(HttpClientTest, StartRejectsAddressesThatDoNotParse) {
  for (const char* address : {"nonsense", "example.com:80", "127.0.0.1:99999",
                              "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:80x", "unix:"}) {
    HttpClientOptions options;
    options.address = address;
    EXPECT_EQ(HttpClient::Start(options).status().code(), absl::StatusCode::kInvalidArgument)
        << address;
  }
  for (const char* address : {"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "unix:/tmp/x"}) {
    HttpClientOptions options;
    options.address = address;
    EXPECT_TRUE(HttpClient::Start(options).ok()) << address;
  }
}

TEST(HttpClientTest, PostsABinaryBodyAndSendsTheHeaders) {
  std::mutex mu;
  HttpRequest seen;
  auto server = StartServer([&](HttpRequest request, HttpResponder respond) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen = request;
    }
    Echo(std::move(request), std::move(respond));
  });
  auto client = StartClient(Address(*server));
  std::string body("\0\xff\x01\x80", 4);
  for (int i = 0; i < 1000; ++i) body.push_back(static_cast<char>(i % 256));
  body += std::string("\xff\0", 2);

  Result result = SendAndWait(*client, body);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->content_type, "application/octet-stream");
  EXPECT_EQ(result->body, body);

  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/api/v1/actors/actions");
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(seen.Header("host"), Address(*server));
  EXPECT_EQ(seen.Header("user-agent"), "massa");
  EXPECT_EQ(seen.Header("content-type"), "application/octet-stream");
  EXPECT_EQ(seen.Header("content-length"), std::to_string(body.size()));
  EXPECT_EQ(seen.Header("connection"), "keep-alive");
  EXPECT_EQ(seen.Header("accept"), "*/*");
}

// Massa's HTTP server on a Unix domain socket (the Spawn sidecar API's option), the client on
// the same path: a round trip, port() 0, a stale socket file replaced, the file gone after Stop.
TEST(HttpClientTest, ServerAndClientOnAUnixSocket) {
  const std::string path = "/tmp/massa-http-test-" + std::to_string(::getpid()) + ".sock";
  { std::ofstream stale(path); }  // a leftover of an earlier run
  HttpServerOptions options;
  options.listen = "unix:" + path;
  options.name = "test-unix";
  auto server = HttpServer::Start(options, Echo);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->port(), 0);
  auto client = StartClient("unix:" + path);
  Result result = SendAndWait(*client, std::string("over a \0 socket", 15));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->body, std::string("over a \0 socket", 15));
  client->Shutdown();
  (*server)->Stop();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket file was left behind";
  HttpServerOptions bad = options;
  bad.listen = "unix:";
  EXPECT_EQ(HttpServer::Start(bad, Echo).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpClientTest, ReusesOneConnectionForSequentialRequests) {
  std::atomic<HttpServer*> server_ptr{nullptr};
  std::atomic<int> max_server_connections{0};
  auto server = StartServer([&](HttpRequest request, HttpResponder respond) {
    int open = server_ptr.load()->open_connections();
    int seen = max_server_connections.load();
    while (open > seen && !max_server_connections.compare_exchange_weak(seen, open)) {
    }
    Echo(std::move(request), std::move(respond));
  });
  server_ptr = server.get();
  auto client = StartClient(Address(*server));
  for (int i = 0; i < 10; ++i) {
    Result result = SendAndWait(*client, "request " + std::to_string(i));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->body, "request " + std::to_string(i));
    EXPECT_EQ(client->open_connections(), 1u);
  }
  EXPECT_EQ(max_server_connections.load(), 1);
}

TEST(HttpClientTest, AnswersManyConcurrentRequestsOverAtMostMaxConnections) {
  std::atomic<HttpServer*> server_ptr{nullptr};
  std::atomic<int> max_server_connections{0};
  auto server = StartServer([&](HttpRequest request, HttpResponder respond) {
    int open = server_ptr.load()->open_connections();
    int seen = max_server_connections.load();
    while (open > seen && !max_server_connections.compare_exchange_weak(seen, open)) {
    }
    Echo(std::move(request), std::move(respond));
  });
  server_ptr = server.get();
  auto client = StartClient(Address(*server), /*max_connections=*/4);
  constexpr int kRequests = 200;
  std::atomic<int> answered{0};
  std::atomic<size_t> max_client_connections{0};
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < kRequests; ++i) {
    auto promise = std::make_shared<std::promise<Result>>();
    futures.push_back(promise->get_future());
    HttpClient* raw = client.get();
    client->Request(
        "POST", "/echo", "text/plain", "request " + std::to_string(i), Clock::now() + 20s,
        [promise, raw, &answered, &max_client_connections](Result result) {
          ++answered;
          max_client_connections = std::max(max_client_connections.load(), raw->open_connections());
          promise->set_value(std::move(result));
        });
  }
  for (int i = 0; i < kRequests; ++i) {
    Result result = Get(std::move(futures[i]));
    ASSERT_TRUE(result.ok()) << i << ": " << result.status();
    EXPECT_EQ(result->body, "request " + std::to_string(i));
  }
  EXPECT_EQ(answered.load(), kRequests);
  EXPECT_LE(max_client_connections.load(), 4u);
  EXPECT_GE(max_client_connections.load(), 1u);
  EXPECT_LE(max_server_connections.load(), 4);
}

TEST(HttpClientTest, ClosesAPooledConnectionIdleForIdleTimeout) {
  auto server = StartServer(Echo);
  auto client = StartClient(Address(*server), 64, /*idle_timeout=*/50ms);
  ASSERT_TRUE(SendAndWait(*client).ok());
  EXPECT_TRUE(WaitFor([&] { return client->open_connections() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return server->open_connections() == 0; }));
  Result again = SendAndWait(*client);  // on a new connection
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->body, "hello");
}

// Werkzeug: one request per connection.
TEST(HttpClientTest, WorksWithAServerThatClosesAfterEveryReply) {
  RawServer server([](int fd, int index) {
    std::string pending;
    if (!ReadRequest(fd, pending)) return;
    const std::string body = "reply " + std::to_string(index);
    WriteAll(fd,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
             "Content-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  auto client = StartClient(server.address());
  for (int i = 0; i < 20; ++i) {
    Result result = SendAndWait(*client);
    ASSERT_TRUE(result.ok()) << i << ": " << result.status();
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->body, "reply " + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 20);
}

TEST(HttpClientTest, ReadsHttp10BodiesDelimitedByTheClose) {
  RawServer server([](int fd, int index) {
    std::string pending;
    if (!ReadRequest(fd, pending)) return;
    WriteAll(fd, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
    WriteAll(fd, std::string("\0\xff", 2) + "reply " + std::to_string(index));
  });
  auto client = StartClient(server.address());
  for (int i = 0; i < 20; ++i) {
    Result result = SendAndWait(*client);
    ASSERT_TRUE(result.ok()) << i << ": " << result.status();
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->content_type, "application/octet-stream");
    EXPECT_EQ(result->body, std::string("\0\xff", 2) + "reply " + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 20);
}

// Node.js: chunked, keep-alive.
TEST(HttpClientTest, ReadsChunkedBodiesAndKeepsTheConnection) {
  RawServer server([](int fd, int) {
    std::string pending;
    while (ReadRequest(fd, pending)) {
      WriteAll(fd,
               "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
      WriteAll(fd, "6\r\n world\r\n0\r\n\r\n");
    }
  });
  auto client = StartClient(server.address());
  for (int i = 0; i < 3; ++i) {
    Result result = SendAndWait(*client);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->body, "hello world");
  }
  EXPECT_EQ(server.accepted(), 1);
}

// The server replies with keep-alive, then closes the connection 100 ms later without a word.
TEST(HttpClientTest, RetriesOnAFreshConnectionWhenAnIdleOneWasClosed) {
  RawServer server([](int fd, int index) {
    std::string pending;
    if (!ReadRequest(fd, pending)) return;
    WriteAll(fd, KeepAliveReply("reply " + std::to_string(index)));
    std::this_thread::sleep_for(100ms);
  });
  auto client = StartClient(server.address());
  Result first = SendAndWait(*client);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->body, "reply 0");
  ASSERT_TRUE(WaitFor([&] { return server.finished() == 1; }));  // the pooled one is closed

  Result second = SendAndWait(*client);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "reply 1");
  EXPECT_EQ(server.accepted(), 2);
}

TEST(HttpClientTest, RetriesOnlyOnce) {
  RawServer server([](int fd, int index) {
    std::string pending;
    if (!ReadRequest(fd, pending)) return;
    if (index == 0) WriteAll(fd, KeepAliveReply("first"));  // later ones: closed unanswered
  });
  auto client = StartClient(server.address());
  ASSERT_TRUE(SendAndWait(*client).ok());
  ASSERT_TRUE(WaitFor([&] { return server.finished() == 1; }));

  Result second = SendAndWait(*client);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_EQ(server.accepted(), 2);
}

TEST(HttpClientTest, NeverRetriesOnAFreshConnection) {
  RawServer server([](int fd, int) {
    std::string pending;
    ReadRequest(fd, pending);  // and close without an answer
  });
  auto client = StartClient(server.address());
  Result result = SendAndWait(*client);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(client->open_connections(), 0u);
}

TEST(HttpClientTest, NeverRetriesAfterResponseBytesArrived) {
  RawServer server([](int fd, int) {
    std::string pending;
    if (!ReadRequest(fd, pending)) return;
    WriteAll(fd, KeepAliveReply("first"));
    if (!ReadRequest(fd, pending)) return;
    WriteAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");  // and close
  });
  auto client = StartClient(server.address());
  ASSERT_TRUE(SendAndWait(*client).ok());
  Result second = SendAndWait(*client);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_EQ(server.accepted(), 1);
}

// One connection allowed: the first request waits on it, the second in the queue.
TEST(HttpClientTest, DeadlineExceededWhenTheServerNeverAnswers) {
  RawServer server([](int fd, int) {
    std::string pending;
    ReadRequest(fd, pending);
    WaitForClose(fd);
  });
  auto client = StartClient(server.address(), /*max_connections=*/1);
  std::future<Result> on_connection = Send(*client, "first", 1'000ms);
  std::future<Result> queued = Send(*client, "second", 100ms);

  Result second = Get(std::move(queued));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded) << second.status();
  EXPECT_EQ(client->open_connections(), 1u);  // the first still has the only one

  Result first = Get(std::move(on_connection));
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded) << first.status();
  EXPECT_TRUE(WaitFor([&] { return server.finished() == server.accepted(); }))
      << "the client closes a connection whose request ran out of time";
  EXPECT_EQ(client->open_connections(), 0u);
}

TEST(HttpClientTest, UnavailableAndUnreachableWhenNothingListens) {
  // A port bound but not listening: connections are refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  auto client = StartClient("127.0.0.1:" + std::to_string(ntohs(address.sin_port)));
  EXPECT_TRUE(client->Reachable()) << "before any attempt";

  Result result = SendAndWait(*client);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_FALSE(client->Reachable());
  EXPECT_EQ(client->open_connections(), 0u);
  ::close(fd);
}

TEST(HttpClientTest, ConnectsToAUnixSocketOnceItListens) {
  char dir[] = "/tmp/massa-http-client-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/sdk.sock";
  auto client = StartClient("unix:" + path);

  Result refused = SendAndWait(*client);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_FALSE(client->Reachable());
  {
    RawServer server(
        [](int fd, int) {
          std::string pending;
          while (ReadRequest(fd, pending)) WriteAll(fd, KeepAliveReply("over unix"));
        },
        path);
    Result result = SendAndWait(*client);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->body, "over unix");
    EXPECT_TRUE(client->Reachable());
  }
  ::rmdir(dir);
}

TEST(HttpClientTest, ReturnsErrorStatusCodesAsResponses) {
  auto server = StartServer([](HttpRequest request, HttpResponder respond) {
    if (request.body == "500") {
      std::move(respond)(HttpResponse{500, "text/html", "<html><body>oops</body></html>", {}});
    } else {
      std::move(respond)(HttpResponse{400, "", "", {}});
    }
  });
  auto client = StartClient(Address(*server));
  Result server_error = SendAndWait(*client, "500");
  ASSERT_TRUE(server_error.ok()) << server_error.status();
  EXPECT_EQ(server_error->status, 500);
  EXPECT_EQ(server_error->content_type, "text/html");
  EXPECT_EQ(server_error->body, "<html><body>oops</body></html>");

  Result bad_request = SendAndWait(*client, "400");
  ASSERT_TRUE(bad_request.ok()) << bad_request.status();
  EXPECT_EQ(bad_request->status, 400);
  EXPECT_EQ(bad_request->body, "");
}

TEST(HttpClientTest, ResourceExhaustedForABodyOverTheLimit) {
  auto server = StartServer(Echo);
  HttpClientOptions options;
  options.address = Address(*server);
  options.max_response_bytes = 1000;
  auto client = HttpClient::Start(options);
  ASSERT_TRUE(client.ok()) << client.status();

  Result too_large = SendAndWait(**client, std::string(1001, 'x'));
  EXPECT_EQ(too_large.status().code(), absl::StatusCode::kResourceExhausted) << too_large.status();
  Result at_limit = SendAndWait(**client, std::string(1000, 'x'));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->body.size(), 1000u);
}

TEST(HttpClientTest, ShutdownFailsEveryRequestInFlightExactlyOnce) {
  std::mutex mu;
  std::vector<HttpResponder> unanswered;  // guarded by mu
  auto server = StartServer([&](HttpRequest, HttpResponder respond) {
    std::lock_guard<std::mutex> lock(mu);
    unanswered.push_back(std::move(respond));
  });
  auto client = StartClient(Address(*server), /*max_connections=*/4);
  constexpr int kRequests = 10;  // 4 on connections, 6 queued
  std::vector<std::atomic<int>> calls(kRequests);
  std::vector<absl::StatusCode> codes(kRequests, absl::StatusCode::kOk);
  for (int i = 0; i < kRequests; ++i) {
    client->Request("POST", "/", "", "x", Clock::now() + 30s, [&, i](Result result) {
      codes[i] = result.status().code();
      ++calls[i];
    });
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return unanswered.size() == 4;
  }));
  client->Shutdown();
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(calls[i].load(), 1) << i;
    EXPECT_EQ(codes[i], absl::StatusCode::kUnavailable) << i;
  }
  EXPECT_EQ(client->open_connections(), 0u);

  Result after = SendAndWait(*client);
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnavailable) << after.status();
  client->Shutdown();  // idempotent
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& respond : unanswered) std::move(respond)(HttpResponse{200, "", "late", {}});
  }
  client.reset();
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(calls[i].load(), 1) << i;
}

}  // namespace
}  // namespace massa
