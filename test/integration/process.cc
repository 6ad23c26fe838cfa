#include "integration/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "fakes/spawn.h"

namespace massa::testing {

Process::Process(std::vector<std::string> argv, std::string log_path)
    : log_path_(std::move(log_path)) {
  const std::string program = argv[0];
  pid_ = SpawnLogged(std::move(argv), log_path_);
  if (pid_ < 0) throw std::runtime_error("cannot start " + program);
}

Process::~Process() {
  if (running()) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

std::string Process::log() const {
  std::ifstream in(log_path_);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::optional<std::string> Process::WaitForLine(const std::string& needle,
                                                std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::istringstream lines(log());
    for (std::string line; std::getline(lines, line);) {
      if (line.find(needle) != std::string::npos) return line;
    }
    if (!running()) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

void Process::Signal(int signal) {
  if (pid_ > 0 && !exit_status_) ::kill(pid_, signal);
}

bool Process::running() {
  if (exit_status_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

int Process::Wait(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return *exit_status_;
}

std::optional<MassaEndpoints> StartMassa(std::unique_ptr<Process>& process,
                                         const std::string& function_address,
                                         const std::string& data_dir, const std::string& log_path,
                                         const std::vector<std::string>& extra,
                                         const std::string& binary) {
  constexpr auto kStartTimeout = std::chrono::seconds(30);
  std::vector<std::string> argv = {binary.empty() ? MASSA_BIN : binary, "serve",
                                   "--function",     function_address,
                                   "--grpc-listen",  "127.0.0.1:0",
                                   "--http-listen",  "127.0.0.1:0",
                                   "--admin-listen", "127.0.0.1:0",
                                   "--data-dir",     data_dir,
                                   "--log-level",    "warn"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  process = std::make_unique<Process>(argv, log_path);
  MassaEndpoints endpoints;
  std::optional<std::string> line = process->WaitForLine("massa: serving gRPC on ", kStartTimeout);
  if (!line.has_value()) return std::nullopt;
  endpoints.grpc_address = line->substr(line->rfind(' ') + 1);
  auto port_of = [&](const std::string& needle) {
    std::optional<std::string> found = process->WaitForLine(needle, kStartTimeout);
    return found ? std::stoi(found->substr(found->rfind(':') + 1)) : 0;
  };
  endpoints.http_port = port_of("massa: serving HTTP on ");
  endpoints.admin_port = port_of("massa: admin on ");
  if (endpoints.http_port == 0 || endpoints.admin_port == 0) return std::nullopt;
  for (size_t i = 0; i + 1 < extra.size(); ++i) {
    if (extra[i] == "--protocol" && extra[i + 1] == "spawn") {
      endpoints.spawn_port = port_of("massa: serving Spawn on ");
      if (endpoints.spawn_port == 0) return std::nullopt;
    }
  }
  return endpoints;
}

HttpResult HttpCall(int port, const std::string& method, const std::string& target,
                    const std::string& body, const std::string& content_type,
                    const HttpHeaders& headers) {
  HttpConnection connection(port);
  return connection.Request(method, target, body, content_type, /*keep_alive=*/false, nullptr,
                            headers);
}

HttpConnection::HttpConnection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{20, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) Close();
}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

HttpResult HttpConnection::Request(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& content_type,
                                   bool keep_alive, bool* sent, const HttpHeaders& headers) {
  HttpResult result;
  if (sent != nullptr) *sent = false;
  if (fd_ < 0) return result;
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        (keep_alive ? "" : "Connection: close\r\n") +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!content_type.empty()) request += "Content-Type: " + content_type + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "\r\n" + body;
  size_t written = 0;
  while (written < request.size()) {
    ssize_t n = send(fd_, request.data() + written, request.size() - written, MSG_NOSIGNAL);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  if (sent != nullptr) *sent = written == request.size();
  // Even when the server stopped reading (a body over its limit), its answer may be there.
  // Headers, then Content-Length bytes of body.
  std::string& data = buffered_;
  size_t end_of_headers = std::string::npos;
  size_t length = 0;
  char buffer[4096];
  while (true) {
    if (end_of_headers == std::string::npos) {
      end_of_headers = data.find("\r\n\r\n");
      if (end_of_headers != std::string::npos) {
        std::string head = data.substr(0, end_of_headers);
        for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const size_t at = head.find("content-length:");
        length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 15));
      }
    }
    if (end_of_headers != std::string::npos && data.size() >= end_of_headers + 4 + length) break;
    ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) {
      Close();
      data.clear();
      return result;
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  if (data.rfind("HTTP/1.1 ", 0) != 0) {
    Close();
    data.clear();
    return result;
  }
  result.status = std::stoi(data.substr(9, 3));
  result.headers = data.substr(0, end_of_headers);
  result.body = data.substr(end_of_headers + 4, length);
  data.erase(0, end_of_headers + 4 + length);
  std::string lower = result.headers;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!keep_alive || lower.find("connection: close") != std::string::npos) Close();
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/massa-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace massa::testing
