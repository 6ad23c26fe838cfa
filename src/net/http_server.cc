#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "spdlog/spdlog.h"

namespace massa {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
// TCP or a Unix domain socket, chosen by the listen address.
using stream_protocol = asio::generic::stream_protocol;

const std::string kEmpty;

class Session;

}  // namespace

const std::string& HttpRequest::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return kEmpty;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(HttpServerOptions options_in, HttpHandler handler_in)
      : options(std::move(options_in)),
        handler(std::move(handler_in)),
        acceptor(io),
        work(asio::make_work_guard(io)) {}

  HttpServerOptions options;
  HttpHandler handler;
  asio::io_context io;
  asio::basic_socket_acceptor<stream_protocol> acceptor;
  std::string unix_path;  // the socket file, removed on Stop; empty for TCP
  // Keeps the threads running while every connection waits for a handler's answer (nothing
  // else would be pending on the io_context then).
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::vector<std::thread> threads;
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
  int port = 0;
  std::once_flag stop_once;

  mutable std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by sessions_mu

  void Accept();
  // The connections still alive (each kept alive by the returned pointers meanwhile).
  std::vector<std::shared_ptr<Session>> LiveSessions();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  ~Session() {
    std::lock_guard<std::mutex> lock(server_->sessions_mu);
    server_->sessions.erase(this);
  }

  void Begin() {
    {
      std::lock_guard<std::mutex> lock(server_->sessions_mu);
      server_->sessions.emplace(this, weak_from_this());
    }
    Read();
  }

  // Closes the connection; on the session's strand (or with no thread running the server).
  void Close() {
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(stream_protocol::socket::shutdown_both, ignored);
    stream_.close();
  }

  // On the session's strand: closes the connection if it waits for a request and has received
  // nothing of one; otherwise it closes after its answer (draining).
  void CloseIfIdle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->reading_ && !self->parser_->got_some() && self->buffer_.size() == 0) self->Close();
    });
  }

 private:
  void Read() {
    if (server_->draining.load()) {  // the previous answer said Connection: close
      Close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(server_->options.idle_timeout);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->reading_ = false;
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    // Closed while idle (draining): a request whose bytes the reactor had already taken off the
    // socket must not be handled, since its answer could not be sent.
    if (closed_) return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      server_->in_flight.fetch_add(1);
      Reply(HttpResponse{413, "application/json",
                         "{\"code\":3,\"message\":\"request body is larger than " +
                             std::to_string(server_->options.max_body_bytes) + " bytes\"}",
                         {}},
            /*keep_alive=*/false, 11);
      return;
    }
    if (ec) {
      server_->in_flight.fetch_add(1);
      Reply(HttpResponse{400, "application/json",
                         "{\"code\":3,\"message\":\"malformed HTTP request: " + ec.message() +
                             "\"}",
                         {}},
            false, 11);
      return;
    }
    http::request<http::string_body> message = parser_->release();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request.body = std::move(message.body());
    const bool keep_alive = message.keep_alive();
    const unsigned version = message.version();
    server_->in_flight.fetch_add(1);
    server_->handler(std::move(request), [self = shared_from_this(), keep_alive,
                                          version](HttpResponse response) mutable {
      auto* raw = self.get();
      asio::post(raw->stream_.get_executor(),
                 [self = std::move(self), response = std::move(response), keep_alive,
                  version]() mutable { self->Reply(std::move(response), keep_alive, version); });
    });
  }

  // Writes the answer to the request counted in in_flight; the count drops once it is written.
  void Reply(HttpResponse response, bool keep_alive, unsigned version) {
    auto message = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), version);
    message->set(http::field::server, "massa");
    message->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) message->set(name, value);
    message->keep_alive(keep_alive && !server_->draining.load());
    message->body() = std::move(response.body);
    message->prepare_payload();
    stream_.expires_after(server_->options.idle_timeout);
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message](beast::error_code ec, size_t) {
                        self->server_->in_flight.fetch_sub(1);
                        if (ec || !message->keep_alive()) {
                          self->Close();
                          return;
                        }
                        self->Read();
                      });
  }

  beast::basic_stream<stream_protocol> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Impl> server_;
  bool reading_ = false;  // on the strand: waiting in async_read
  bool closed_ = false;   // on the strand: Close() ran
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](
                                                   beast::error_code ec, stream_protocol::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && !self->draining.load()) {
        spdlog::warn("{}: accept failed: {}", self->options.name, ec.message());
      }
      if (self->draining.load() || !self->acceptor.is_open()) return;
    } else if (self->draining.load()) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    } else {
      std::make_shared<Session>(std::move(socket), self)->Begin();
    }
    self->Accept();
  });
}

std::vector<std::shared_ptr<Session>> HttpServer::Impl::LiveSessions() {
  std::vector<std::shared_ptr<Session>> live;
  std::lock_guard<std::mutex> lock(sessions_mu);
  for (auto& [raw, weak] : sessions) {
    if (auto session = weak.lock()) live.push_back(std::move(session));
  }
  return live;
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpHandler handler) {
  auto impl = std::make_shared<Impl>(options, std::move(handler));
  beast::error_code ec;
  stream_protocol::endpoint endpoint;
  if (options.listen.rfind("unix:", 0) == 0) {
    impl->unix_path = options.listen.substr(5);
    if (impl->unix_path.empty() || impl->unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError("'" + options.listen + "' is not unix:/path (under " +
                                        std::to_string(sizeof(sockaddr_un::sun_path)) +
                                        " bytes)");
    }
    ::unlink(impl->unix_path.c_str());  // a stale socket of an earlier run
    endpoint = asio::local::stream_protocol::endpoint(impl->unix_path);
  } else {
    size_t colon = options.listen.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("'" + options.listen + "' is not host:port or unix:/path");
    }
    std::string host = options.listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    auto address = asio::ip::make_address(host, ec);
    if (ec) return absl::InvalidArgumentError("'" + host + "' is not an IP address");
    int port_number = 0;
    try {
      port_number = std::stoi(options.listen.substr(colon + 1));
    } catch (...) {
      return absl::InvalidArgumentError("'" + options.listen + "' has no valid port");
    }
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(port_number));
  }
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec && impl->unix_path.empty()) {
    impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError("cannot listen for " + options.name + " on " + options.listen +
                                  ": " + ec.message());
  }
  if (impl->unix_path.empty()) {
    // The port the kernel picked (for port 0): from the bound address, IPv4 or IPv6.
    const stream_protocol::endpoint bound = impl->acceptor.local_endpoint();
    const sockaddr* address = bound.data();
    impl->port = ntohs(address->sa_family == AF_INET6
                           ? reinterpret_cast<const sockaddr_in6*>(address)->sin6_port
                           : reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  }
  impl->Accept();
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    impl->threads.emplace_back([impl = impl.get(), i] {
      std::string name = (impl->options.name + "-" + std::to_string(i)).substr(0, 15);
      pthread_setname_np(pthread_self(), name.c_str());
      impl->io.run();
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::Drain() {
  if (impl_->draining.exchange(true)) return;
  asio::post(impl_->io, [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  for (auto& session : impl_->LiveSessions()) session->CloseIfIdle();
}

int HttpServer::open_connections() const {
  std::lock_guard<std::mutex> lock(impl_->sessions_mu);
  return static_cast<int>(impl_->sessions.size());
}

int HttpServer::in_flight() const { return impl_->in_flight.load(); }

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  Drain();
  const auto until = std::chrono::steady_clock::now() + grace;
  while (open_connections() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Stop();
}

void HttpServer::Stop() {
  std::call_once(impl_->stop_once, [this] {
    impl_->draining.store(true);
    impl_->work.reset();
    impl_->io.stop();
    for (auto& thread : impl_->threads) thread.join();
    impl_->threads.clear();
    // No thread runs the io_context now: close what is still open, then let the aborted
    // operations complete here, so that their handlers release the sessions (which hold the
    // server).
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    for (auto& session : impl_->LiveSessions()) session->Close();
    impl_->io.restart();
    impl_->io.run();
    if (!impl_->unix_path.empty()) ::unlink(impl_->unix_path.c_str());
  });
}

}  // namespace massa
