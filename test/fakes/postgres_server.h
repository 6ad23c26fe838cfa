// File: fakes/postgres_server.h
//
// A throwaway PostgreSQL server for tests: initdb into a fresh temporary directory, started on
// a free 127.0.0.1 port with its socket in that directory, and removed with it. Tests run as
// root, which initdb refuses, so the server's programs then run as user `postgres` (runuser)
// and the directory is given to that user.
//
//   absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
//   absl::StatusOr<std::string> conninfo = (*server)->CreateDatabase("my_test");
//   ... (*server)->Kill(); (*server)->Restart(); ...
//
// Every wait is bounded (a program that hangs is killed and reported). Needs the server
// programs of PostgreSQL 15 (Debian package postgresql-15; scripts/setup.sh installs it):
// without them Start fails and says so.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace massa::testing {

struct PostgresServerOptions {
  // fsync on: what a test sees acknowledged survives Kill(). Off only for tests that say
  // they do not need durability (faster).
  bool fsync = true;
};

class PostgresServer {
 public:
  // initdb and start. FAILED_PRECONDITION when the PostgreSQL programs are missing (naming
  // the package), UNAVAILABLE when initdb or the server fail (with their output).
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(
      PostgresServerOptions options = {});

  // Stops the server (if running) and removes its directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  // A libpq URI for `database` as the superuser postgres over TCP, e.g.
  // "postgresql://postgres@127.0.0.1:5433/postgres".
  std::string conninfo(std::string_view database = "postgres") const;

  // Creates `name` (at most 63 bytes, any characters) and returns its conninfo.
  absl::StatusOr<std::string> CreateDatabase(std::string_view name);

  // Runs `sql` with psql on `database`; its output, unaligned and tuples only ("a|b" rows).
  absl::StatusOr<std::string> Query(std::string_view database, std::string_view sql);

  // A crash: SIGKILL to the postmaster and every server process, which are then gone (or
  // zombies). Data files, the stale postmaster.pid and socket lock stay behind.
  absl::Status Kill();

  // Starts the server again on the same port and data after Kill() or Stop() (removing the
  // stale pid and lock files a crash leaves); waits until it accepts connections (after crash
  // recovery).
  absl::Status Restart();

  // A clean shutdown (pg_ctl stop -m fast).
  absl::Status Stop();

  // The server's log so far, for failure messages.
  std::string log() const;

 private:
  PostgresServer() = default;

  absl::Status InitDb();
  absl::Status StartServer();
  // Runs a PostgreSQL program (as user postgres when we are root if `as_postgres`), waiting at
  // most `timeout_seconds`; its output goes to `log`. Error: it failed, with the log's tail.
  absl::Status Run(const std::string& program, std::vector<std::string> args, bool as_postgres,
                   int timeout_seconds, std::string* output = nullptr);
  pid_t PostmasterPid() const;

  PostgresServerOptions options_;
  std::string bin_;  // directory of initdb, pg_ctl, psql, createdb
  std::string dir_;  // the temporary directory: data/, server.log, the socket
  int port_ = 0;
  bool running_ = false;
};

}  // namespace massa::testing
