// Starting a child process from a test: stdout and stderr to a log file, stdin from
// /dev/null, a clean signal mask (the test runner may block signals); and what the throwaway
// servers (postgres_server.h, etcd_server.h) need around that.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace massa::testing {

struct SpawnOptions {
  bool truncate_log = false;  // else append
  bool own_group = false;     // a new process group, so kill(-pid) reaches its children
  char** env = nullptr;       // nullptr = this process's environment
};

// Starts argv[0] (a path) with `argv`. Returns the child's pid, or -1 when it could not start.
pid_t SpawnLogged(std::vector<std::string> argv, const std::string& log_path,
                  const SpawnOptions& options = {});

// A loopback TCP port nobody listens on right now (someone may take it before the caller
// binds it); -1 when none could be bound.
int FreeLoopbackPort();

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// The last `n` bytes of `text` (a log, for an error message), "..." first when cut.
std::string Tail(const std::string& text, size_t n = 2000);

}  // namespace massa::testing
