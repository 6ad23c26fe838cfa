// File: fakes/etcd_server.h
//
// A throwaway single-node etcd for tests: started on two free 127.0.0.1 ports (client and
// peer) with its data in a fresh temporary directory, removed with it.
//
//   absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Start();
//   if (absl::IsFailedPrecondition(etcd.status())) GTEST_SKIP() << etcd.status();
//   ... EtcdOptions{.endpoint = (*etcd)->endpoint(), ...} ... (*etcd)->Kill(); (*etcd)->Restart();
//
// Every wait is bounded. Needs /usr/bin/etcd (Debian package etcd-server). It runs with a 50 ms
// heartbeat and a 500 ms election timeout, so it starts fast and grants leases of 1 s.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace massa::testing {

class EtcdServer {
 public:
  // Starts etcd and waits (at most 10 s) until it reports itself healthy. FAILED_PRECONDITION
  // when the etcd program is missing (naming the package), UNAVAILABLE when it does not start
  // (with its log).
  static absl::StatusOr<std::unique_ptr<EtcdServer>> Start();

  // Stops etcd (if running) and removes its directory.
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // "127.0.0.1:<client port>", what a gRPC client dials.
  std::string endpoint() const;
  int client_port() const { return client_port_; }

  // A clean shutdown: SIGTERM, then wait (SIGKILL after 10 s).
  absl::Status Stop();

  // A crash: SIGKILL, and waits until the process is gone (reaped).
  absl::Status Kill();

  // Starts etcd again on the same ports and data after Stop() or Kill(), and waits until it
  // is healthy.
  absl::Status Restart();

  // etcd's log so far, for failure messages.
  std::string log() const;

 private:
  EtcdServer() = default;

  absl::Status Launch();
  // Whether GET /health answers "health":"true".
  bool Healthy() const;

  std::string dir_;  // data/ and etcd.log
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace massa::testing
