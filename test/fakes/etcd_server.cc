#include "fakes/etcd_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fakes/spawn.h"

namespace massa::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";
constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kStopTimeout = std::chrono::seconds(10);

// Waits until `pid` (our child) has exited and reaps it; false after `timeout`.
bool Reap(pid_t pid, std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const pid_t done = waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Start() {
  if (access(kEtcd, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        kEtcd, " is missing: install the Debian package etcd-server (scripts/setup.sh does)"));
  }
  std::unique_ptr<EtcdServer> server(new EtcdServer());
  std::string base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
  std::string pattern = base + "/massa-etcd-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp(", pattern, ") failed"));
  }
  server->dir_ = pattern;
  // The ports are chosen before etcd binds them: another process may take one meanwhile, so a
  // failed start is tried again on other ports.
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int client = FreeLoopbackPort();
    const int peer = FreeLoopbackPort();
    if (client < 0 || peer < 0) return absl::InternalError("cannot bind a loopback port");
    if (client == peer) continue;
    server->client_port_ = client;
    server->peer_port_ = peer;
    std::error_code ec;
    std::filesystem::remove_all(server->dir_ + "/data", ec);
    status = server->Launch();
    if (status.ok()) return server;
  }
  return status;
}

EtcdServer::~EtcdServer() {
  if (pid_ > 0 && !Stop().ok()) (void)Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string EtcdServer::endpoint() const { return absl::StrCat("127.0.0.1:", client_port_); }

absl::Status EtcdServer::Launch() {
  const std::string client_url = absl::StrCat("http://127.0.0.1:", client_port_);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  pid_ = SpawnLogged({kEtcd, "--name", "t", "--data-dir", dir_ + "/data",                  //
                      "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                      "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                      "--initial-cluster", "t=" + peer_url,                                 //
                      "--heartbeat-interval", "50", "--election-timeout", "500",            //
                      "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"},
                     dir_ + "/etcd.log");
  if (pid_ < 0) return absl::InternalError(absl::StrCat("cannot start ", kEtcd));
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (!Healthy()) {
    const bool exited = waitpid(pid_, nullptr, WNOHANG) == pid_;
    if (exited || std::chrono::steady_clock::now() > deadline) {
      if (!exited) {
        kill(pid_, SIGKILL);
        Reap(pid_, kStopTimeout);
      }
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("etcd on ", endpoint(), exited ? " exited" : " was not healthy within 10 s",
                       "; its log: ", Tail(log())));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::OkStatus();
}

bool EtcdServer::Healthy() const {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(client_port_));
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = absl::StrCat(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:", client_port_, "\r\nConnection: close\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[1024];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) answer.append(buffer, n);
    }
  }
  close(fd);
  return answer.find("\"health\":\"true\"") != std::string::npos;
}

absl::Status EtcdServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGTERM);
  if (!Reap(pid_, kStopTimeout)) {
    kill(pid_, SIGKILL);
    Reap(pid_, kStopTimeout);
    pid_ = -1;
    return absl::DeadlineExceededError("etcd did not stop within 10 s of SIGTERM: killed");
  }
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status EtcdServer::Kill() {
  if (pid_ <= 0) return absl::FailedPreconditionError("etcd is not running");
  kill(pid_, SIGKILL);
  // A killed daemon may stay a zombie for a while: reap it.
  const bool reaped = Reap(pid_, kStopTimeout);
  pid_ = -1;
  return reaped ? absl::OkStatus()
                : absl::DeadlineExceededError("etcd survived SIGKILL for 10 s");
}

absl::Status EtcdServer::Restart() {
  if (pid_ > 0) return absl::FailedPreconditionError("etcd is running");
  return Launch();
}

std::string EtcdServer::log() const { return ReadFile(dir_ + "/etcd.log"); }

}  // namespace massa::testing
