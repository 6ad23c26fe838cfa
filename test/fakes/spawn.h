// Starting a child process from a test: stdout and stderr to a log file, stdin from
// /dev/null, a clean signal mask (the test runner may block signals).
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

}  // namespace massa::testing
