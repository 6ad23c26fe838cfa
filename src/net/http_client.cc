#include "net/http_client.h"

#include <pthread.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

namespace massa {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Protocol = asio::generic::stream_protocol;  // TCP or Unix domain
using Clock = std::chrono::steady_clock;

struct Connection;

// One request, from Request() until its callback ran. Everything below runs on the I/O thread.
struct Call {
  explicit Call(asio::io_context& io) : timer(io) {}
  http::request<http::string_body> request;  // kept whole for the one retry
  HttpClientCallback done;
  asio::steady_timer timer;          // the deadline
  std::shared_ptr<Connection> conn;  // the connection carrying it, if any
  bool retried = false;
  bool finished = false;  // `done` ran
};

struct Connection {
  explicit Connection(asio::io_context& io) : socket(io), timer(io) {}
  enum State { kConnecting, kBusy, kIdle, kClosed };
  Protocol::socket socket;
  asio::steady_timer timer;       // connect timeout, then idle timeout
  uint64_t timer_generation = 0;  // a wait acts only while it is the latest one armed
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  std::shared_ptr<Call> call;
  State state = kConnecting;
  bool reused = false;  // answered a request before: a failure may mean the server closed it
  bool connect_timed_out = false;
};

using CallPtr = std::shared_ptr<Call>;
using ConnectionPtr = std::shared_ptr<Connection>;

// Errors that mean the peer closed or reset the connection.
bool IsClosed(beast::error_code ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == http::error::partial_message;
}

}  // namespace

struct HttpClient::Impl {
  Impl(HttpClientOptions options_in, Protocol::endpoint endpoint_in, bool tcp_in,
       std::string host_in)
      : options(std::move(options_in)),
        endpoint(endpoint_in),
        tcp(tcp_in),
        host(std::move(host_in)),
        work(asio::make_work_guard(io)) {}

  const HttpClientOptions options;
  const Protocol::endpoint endpoint;
  const bool tcp;
  const std::string host;  // for the Host header
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::mutex shutdown_mu;  // serializes Shutdown()
  std::mutex mu;
  bool stopped = false;  // guarded by mu: nothing more is posted to `io`
  std::atomic<bool> reachable{true};
  std::atomic<size_t> open_count{0};

  // On the I/O thread only.
  bool closing = false;
  std::deque<CallPtr> queue;
  std::vector<ConnectionPtr> idle;                // LIFO
  std::unordered_set<ConnectionPtr> connections;  // open or opening, idle or not

  void Enqueue(CallPtr call);
  void Dispatch();
  void Connect(CallPtr call);
  void Send(ConnectionPtr conn, CallPtr call);
  void OnRead(const ConnectionPtr& conn, const CallPtr& call, beast::error_code ec);
  bool Retry(const ConnectionPtr& conn, const CallPtr& call, beast::error_code ec);
  void MakeIdle(const ConnectionPtr& conn);
  void Forget(ConnectionPtr conn);        // closes it; frees its slot (by value: may be call->conn)
  void Drop(const ConnectionPtr& conn) {  // closes it and gives its slot to the queue
    Forget(conn);
    Dispatch();
  }
  void Finish(const CallPtr& call, absl::StatusOr<HttpClientResponse> result);
  void ArmTimer(const ConnectionPtr& conn, std::chrono::milliseconds after);
  void CloseAll();
};

void HttpClient::Impl::Enqueue(CallPtr call) {
  if (closing) {
    Finish(call, absl::UnavailableError(options.name + " is shut down"));
    return;
  }
  call->timer.async_wait([this, call](beast::error_code ec) {
    if (ec || call->finished) return;
    if (call->conn) {
      Forget(call->conn);  // its pending operation completes aborted and finds `finished`
    } else {
      auto queued = std::find(queue.begin(), queue.end(), call);
      if (queued != queue.end()) queue.erase(queued);
    }
    Finish(call,
           absl::DeadlineExceededError("no response from " + options.address + " by the deadline"));
    Dispatch();
  });
  queue.push_back(std::move(call));
  Dispatch();
}

void HttpClient::Impl::Dispatch() {
  while (!closing && !queue.empty()) {
    if (!idle.empty()) {
      ConnectionPtr conn = std::move(idle.back());
      idle.pop_back();
      ++conn->timer_generation;
      conn->timer.cancel();
      Send(std::move(conn), std::move(queue.front()));
    } else if (connections.size() < std::max<size_t>(options.max_connections, 1)) {
      Connect(std::move(queue.front()));
    } else {
      return;
    }
    queue.pop_front();
  }
}

void HttpClient::Impl::ArmTimer(const ConnectionPtr& conn, std::chrono::milliseconds after) {
  const uint64_t generation = ++conn->timer_generation;
  conn->timer.expires_after(after);
  conn->timer.async_wait([this, conn, generation](beast::error_code ec) {
    if (ec || generation != conn->timer_generation) return;
    if (conn->state == Connection::kConnecting) {
      conn->connect_timed_out = true;
      beast::error_code ignored;
      conn->socket.close(ignored);  // the connect completes aborted
    } else if (conn->state == Connection::kIdle) {
      Drop(conn);
    }
  });
}

void HttpClient::Impl::Connect(CallPtr call) {
  auto conn = std::make_shared<Connection>(io);
  connections.insert(conn);
  open_count.store(connections.size());
  conn->call = call;
  call->conn = conn;
  ArmTimer(conn, options.connect_timeout);
  conn->socket.async_connect(endpoint, [this, conn, call](beast::error_code ec) {
    if (call->finished || closing) return Drop(conn);
    if (ec || conn->connect_timed_out) {
      const std::string why = conn->connect_timed_out ? "timed out" : ec.message();
      if (reachable.exchange(false)) {
        spdlog::warn("{}: cannot connect to {}: {}", options.name, options.address, why);
      }
      Drop(conn);
      Finish(call, absl::UnavailableError("cannot connect to " + options.address + ": " + why));
      return;
    }
    if (!reachable.exchange(true)) {
      spdlog::info("{}: connected to {} again", options.name, options.address);
    }
    ++conn->timer_generation;
    conn->timer.cancel();
    if (tcp) conn->socket.set_option(asio::ip::tcp::no_delay(true), ec);
    Send(conn, call);
  });
}

void HttpClient::Impl::Send(ConnectionPtr conn, CallPtr call) {
  conn->state = Connection::kBusy;
  conn->call = call;
  call->conn = conn;
  http::async_write(conn->socket, call->request, [this, conn, call](beast::error_code ec, size_t) {
    if (call->finished || closing) return Drop(conn);
    if (ec) {
      if (Retry(conn, call, ec)) return;
      Drop(conn);
      Finish(call, absl::UnavailableError("cannot send the request to " + options.address + ": " +
                                          ec.message()));
      return;
    }
    conn->parser.emplace();
    conn->parser->body_limit(options.max_response_bytes);
    conn->parser->header_limit(64 * 1024);
    if (call->request.method() == http::verb::head) conn->parser->skip(true);
    http::async_read(
        conn->socket, conn->buffer, *conn->parser,
        [this, conn, call](beast::error_code read_ec, size_t) { OnRead(conn, call, read_ec); });
  });
}

void HttpClient::Impl::OnRead(const ConnectionPtr& conn, const CallPtr& call,
                              beast::error_code ec) {
  if (call->finished || closing) return Drop(conn);
  if (ec == http::error::body_limit) {
    Drop(conn);
    Finish(call, absl::ResourceExhaustedError(
                     "the response from " + options.address + " is larger than " +
                     std::to_string(options.max_response_bytes) + " bytes"));
    return;
  }
  if (ec) {
    if (Retry(conn, call, ec)) return;
    Drop(conn);
    const std::string what = "response from " + options.address + ": " + ec.message();
    Finish(call, IsClosed(ec)
                     ? absl::UnavailableError("connection closed before a complete " + what)
                     : absl::InternalError("invalid " + what));
    return;
  }
  const bool keep_alive = conn->parser->keep_alive() && conn->buffer.size() == 0;
  http::response<http::string_body> message = conn->parser->release();
  conn->parser.reset();  // a write error on the next request must not see this one's bytes
  HttpClientResponse response;
  response.status = static_cast<int>(message.result_int());
  response.content_type = std::string(message[http::field::content_type]);
  response.body = std::move(message.body());
  conn->call.reset();
  call->conn.reset();
  conn->reused = true;
  if (keep_alive) {
    MakeIdle(conn);
  } else {
    Drop(conn);
  }
  Finish(call, std::move(response));
}

// A reused connection that fails before any byte of the response was read was most likely
// closed by the server while idle: the request goes once more, on a fresh connection that takes
// over the slot.
bool HttpClient::Impl::Retry(const ConnectionPtr& conn, const CallPtr& call, beast::error_code ec) {
  const bool nothing_read =
      conn->buffer.size() == 0 && (!conn->parser || !conn->parser->got_some());
  if (!conn->reused || call->retried || !nothing_read || !IsClosed(ec)) return false;
  call->retried = true;
  Forget(conn);
  Connect(call);
  return true;
}

void HttpClient::Impl::MakeIdle(const ConnectionPtr& conn) {
  conn->state = Connection::kIdle;
  idle.push_back(conn);
  ArmTimer(conn, options.idle_timeout);
  Dispatch();
}

void HttpClient::Impl::Forget(ConnectionPtr conn) {
  if (conn->state == Connection::kClosed) return;
  if (conn->state == Connection::kIdle) idle.erase(std::find(idle.begin(), idle.end(), conn));
  conn->state = Connection::kClosed;
  beast::error_code ignored;
  conn->socket.close(ignored);
  ++conn->timer_generation;
  conn->timer.cancel();
  if (conn->call && conn->call->conn == conn) conn->call->conn.reset();
  conn->call.reset();
  connections.erase(conn);
  open_count.store(connections.size());
}

void HttpClient::Impl::Finish(const CallPtr& call, absl::StatusOr<HttpClientResponse> result) {
  if (call->finished) return;
  call->finished = true;
  call->timer.cancel();
  call->conn.reset();
  std::move(call->done)(std::move(result));
  call->done = nullptr;  // release what the callback holds now
}

void HttpClient::Impl::CloseAll() {
  closing = true;
  const absl::Status shut_down = absl::UnavailableError(options.name + " is shut down");
  for (auto& call : std::exchange(queue, {})) Finish(call, shut_down);
  for (auto conn : std::vector<ConnectionPtr>(connections.begin(), connections.end())) {
    CallPtr call = conn->call;
    Forget(conn);
    if (call) Finish(call, shut_down);
  }
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() { Shutdown(); }

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Start(const HttpClientOptions& options) {
  const std::string& address = options.address;
  Protocol::endpoint endpoint;
  bool tcp = true;
  std::string host = address;
  if (address.rfind("unix:", 0) == 0) {
    const std::string path = address.substr(5);
    if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError("'" + address + "' is not a valid unix socket path");
    }
    endpoint = asio::local::stream_protocol::endpoint(path);
    tcp = false;
    host = "localhost";
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("'" + address + "' is not host:port or unix:/path");
    }
    std::string ip = address.substr(0, colon);
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    if (ip == "localhost") ip = "127.0.0.1";
    beast::error_code ec;
    const auto ip_address = asio::ip::make_address(ip, ec);
    unsigned port = 0;
    const char* first = address.data() + colon + 1;
    const char* last = address.data() + address.size();
    const auto [end, parse_error] = std::from_chars(first, last, port);
    if (ec || parse_error != std::errc() || end != last || port == 0 || port > 65535) {
      return absl::InvalidArgumentError("'" + address + "' is not a numeric host:port");
    }
    endpoint = asio::ip::tcp::endpoint(ip_address, static_cast<unsigned short>(port));
  }
  auto impl = std::make_unique<Impl>(options, endpoint, tcp, std::move(host));
  impl->thread = std::thread([impl = impl.get()] {
    const std::string name = impl->options.name.substr(0, 15);
    pthread_setname_np(pthread_self(), name.c_str());
    impl->io.run();
  });
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

void HttpClient::Request(std::string method, std::string target, std::string content_type,
                         std::string body, std::chrono::steady_clock::time_point deadline,
                         HttpClientCallback done) {
  auto call = std::make_shared<Call>(impl_->io);
  http::request<http::string_body>& request = call->request;
  request.version(11);
  request.method_string(method);
  request.target(target);
  request.set(http::field::host, impl_->host);
  request.set(http::field::user_agent, impl_->options.user_agent);
  if (!content_type.empty()) request.set(http::field::content_type, content_type);
  request.set(http::field::accept, "*/*");
  request.set(http::field::connection, "keep-alive");
  request.content_length(body.size());
  request.body() = std::move(body);
  call->timer.expires_at(deadline);
  call->done = std::move(done);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->stopped) {
      asio::post(impl_->io, [impl = impl_.get(), call] { impl->Enqueue(call); });
      return;
    }
  }
  std::move(call->done)(absl::UnavailableError(impl_->options.name + " is shut down"));
}

bool HttpClient::Reachable() const { return impl_->reachable.load(); }

void HttpClient::Shutdown() {
  std::lock_guard<std::mutex> serialize(impl_->shutdown_mu);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  // Everything posted before `stopped` runs (and fails, after CloseAll); run() returns once no
  // operation or callback is left.
  asio::post(impl_->io, [impl = impl_.get()] { impl->CloseAll(); });
  impl_->work.reset();
  impl_->thread.join();
}

size_t HttpClient::open_connections() const { return impl_->open_count.load(); }

}  // namespace massa
