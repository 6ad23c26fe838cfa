// A function whose handlers sleep as long as each request says (test/integration shutdown
// tests). Runs handlers on their own threads, as a function whose handlers block should.
// Usage: slow-function --listen ADDRESS
#include <chrono>
#include <thread>

#include "massa/sdk/function.h"
#include "massa/test/slow.pb.h"

namespace slow = massa::test::slow;
using massa::sdk::Result;
using massa::sdk::ValueContext;

int main(int argc, char** argv) {
  massa::sdk::Function function("slow-function");
  function.AddValueEntity<slow::Count>("massa.test.slow.SlowCounter")
      .Handle("Add",
              [](ValueContext<slow::Count>& ctx, const slow::SleepRequest& request)
                  -> Result<slow::Count> {
                std::this_thread::sleep_for(std::chrono::milliseconds(request.ms()));
                ctx.mutable_state().set_value(ctx.state().value() + 1);
                return ctx.state();
              })
      .Handle("Get", [](ValueContext<slow::Count>& ctx, const slow::SleepRequest&)
                         -> Result<slow::Count> { return ctx.state(); });
  return function.Run(argc, argv);
}
