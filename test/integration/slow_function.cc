// A function whose handlers sleep as long as each request says (test/integration shutdown
// tests). Runs handlers on their own threads, as a function whose handlers block should.
// With SLOW_FUNCTION_TRACE=PREFIX set, each command appends "<key> <enter ns> <exit ns>" (steady
// clock, the same in every process of the machine) to PREFIX.<pid>, so that a test can check
// that no two commands of one entity ever ran at once, across every function of a cluster.
// Usage: slow-function --listen ADDRESS
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "massa/sdk/function.h"
#include "massa/test/slow.pb.h"

namespace slow = massa::test::slow;
using massa::sdk::Result;
using massa::sdk::ValueContext;

namespace {

int trace_fd = -1;  // the trace file, or -1

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Records one command of entity `key` that ran from `enter` until now. One write() of one line
// to a file opened with O_APPEND: lines of concurrent handlers never interleave.
void Trace(const std::string& key, int64_t enter) {
  if (trace_fd < 0) return;
  char line[256];
  const int n = std::snprintf(line, sizeof(line), "%s %lld %lld\n", key.c_str(),
                              static_cast<long long>(enter), static_cast<long long>(Now()));
  if (n > 0 && n < static_cast<int>(sizeof(line)) && write(trace_fd, line, n) != n) {
    std::perror("slow-function: trace");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* prefix = std::getenv("SLOW_FUNCTION_TRACE"); prefix != nullptr) {
    const std::string path = std::string(prefix) + "." + std::to_string(getpid());
    trace_fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (trace_fd < 0) std::perror(path.c_str());
  }
  massa::sdk::Function function("slow-function");
  function.AddValueEntity<slow::Count>("massa.test.slow.SlowCounter")
      .Handle("Add",
              [](ValueContext<slow::Count>& ctx, const slow::SleepRequest& request)
                  -> Result<slow::Count> {
                const int64_t enter = Now();
                std::this_thread::sleep_for(std::chrono::milliseconds(request.ms()));
                ctx.mutable_state().set_value(ctx.state().value() + 1);
                Trace(request.id(), enter);
                return ctx.state();
              })
      .Handle("Get", [](ValueContext<slow::Count>& ctx, const slow::SleepRequest& request)
                         -> Result<slow::Count> {
        const int64_t enter = Now();
        Trace(request.id(), enter);
        return ctx.state();
      });
  return function.Run(argc, argv);
}
