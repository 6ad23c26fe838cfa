#include "integration/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
                                         const std::vector<std::string>& extra) {
  constexpr auto kStartTimeout = std::chrono::seconds(30);
  std::vector<std::string> argv = {MASSA_BIN,        "serve",
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
  return endpoints;
}

HttpResult HttpCall(int port, const std::string& method, const std::string& target,
                    const std::string& body, const std::string& content_type) {
  HttpResult result;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return result;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return result;
  }
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        "Connection: close\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\n";
  if (!content_type.empty()) request += "Content-Type: " + content_type + "\r\n";
  request += "\r\n" + body;
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[4096];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  size_t end_of_headers = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.1 ", 0) != 0 || end_of_headers == std::string::npos) return result;
  result.status = std::stoi(response.substr(9, 3));
  result.headers = response.substr(0, end_of_headers);
  result.body = response.substr(end_of_headers + 4);
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
