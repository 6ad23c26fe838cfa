// massa-transport-bench: the leg from massa to the function alone, without the ingress: the
// session transport (protocol 1.1, many commands on long-lived streams, src/protocol/native/
// session.h) against one unary gRPC call per command (protocol 1.0, what massa did before), on
// the same function, in the same run. Closed loop with N commands in flight; prints calls/s and
// latency percentiles and appends a JSON record per transport to --json-out.
//
//   massa-transport-bench --function unix:/tmp/fn.sock --concurrency 64 --seconds 5
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "example/shoppingcart/shoppingcart.pb.h"
#include "grpcpp/grpcpp.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "protocol/native/session.h"
#include "rpc/cq_loop.h"

namespace {

namespace v1 = massa::protocol::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string function;
  int concurrency = 1;
  double seconds = 5;
  int streams = 1;
  int spin_us = 100;
  std::string json_out;
  std::string transports = "session,unary";
};

v1::ActionCommand Command(int n) {
  example::shoppingcart::LineItem item;
  item.set_product_id("p" + std::to_string(n));
  item.set_quantity(1);
  v1::ActionCommand command;
  command.mutable_command()->set_service_name("example.shoppingcart.CartFront");
  command.mutable_command()->set_method("ValidateItem");
  command.mutable_command()->mutable_payload()->PackFrom(item);
  return command;
}

// Latencies of completed calls and errors, shared by the callbacks.
struct Tally {
  absl::Mutex mu;
  std::vector<double> latencies_us;
  long errors = 0;
  std::string first_error;
};

struct Result {
  double calls_per_s = 0;
  double p50 = 0, p99 = 0, p999 = 0;
  long errors = 0;
};

Result Summarize(Tally& tally, double seconds) {
  absl::MutexLock lock(&tally.mu);
  std::sort(tally.latencies_us.begin(), tally.latencies_us.end());
  auto at = [&](double p) {
    if (tally.latencies_us.empty()) return 0.0;
    return tally.latencies_us[std::min(tally.latencies_us.size() - 1,
                                       static_cast<size_t>(p * tally.latencies_us.size()))];
  };
  if (!tally.first_error.empty()) std::fprintf(stderr, "first error: %s\n", tally.first_error.c_str());
  return Result{static_cast<double>(tally.latencies_us.size()) / seconds, at(0.5), at(0.99),
                at(0.999), tally.errors};
}

// Keeps `concurrency` commands in flight until `until`; `send(n, done)` issues one command and
// calls done(ok, error) once.
template <typename Send>
Result ClosedLoop(const Options& options, Send send) {
  Tally tally;
  const auto warm = Clock::now() + std::chrono::milliseconds(300);
  const auto until = warm + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(options.seconds));
  std::atomic<int> active{options.concurrency};
  std::atomic<int> counter{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::function<void()> next;
  next = [&] {
    const auto started = Clock::now();
    if (started >= until) {
      if (--active == 0) done_cv.notify_all();
      return;
    }
    send(counter++, [&, started](bool ok, const std::string& error) {
      const auto now = Clock::now();
      if (started >= warm) {
        absl::MutexLock lock(&tally.mu);
        if (ok) {
          tally.latencies_us.push_back(std::chrono::duration<double, std::micro>(now - started).count());
        } else if (tally.errors++ == 0) {
          tally.first_error = error;
        }
      }
      next();
    });
  };
  for (int i = 0; i < options.concurrency; ++i) next();
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait(lock, [&] { return active.load() == 0; });
  return Summarize(tally, options.seconds);
}

Result RunSession(const Options& options) {
  massa::rpc::CqLoop loop(1, "bench-io", std::chrono::microseconds(options.spin_us));
  loop.Start();
  massa::native::SessionOptions session;
  session.address = options.function;
  session.streams = options.streams;
  massa::native::SessionTransport transport(session, loop);
  transport.Start();
  Result result = ClosedLoop(options, [&](int n, auto done) {
    v1::ProxyFrame frame;
    *frame.mutable_action() = Command(n);
    transport.Send(std::move(frame), Clock::time_point::max(),
                   [done](absl::StatusOr<v1::FunctionFrame> answer) mutable {
                     done(answer.ok(), answer.ok() ? "" : answer.status().ToString());
                   });
  });
  transport.Shutdown();
  loop.Shutdown();
  return result;
}

Result RunUnary(const Options& options) {
  grpc::ChannelArguments args;
  auto channel = grpc::CreateCustomChannel(options.function, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::Action::NewStub(channel);
  struct Call {
    grpc::ClientContext context;
    v1::ActionCommand request;
    v1::ActionResponse response;
  };
  return ClosedLoop(options, [&](int n, auto done) {
    auto call = std::make_shared<Call>();
    call->request = Command(n);
    stub->async()->Handle(&call->context, &call->request, &call->response,
                          [call, done](grpc::Status status) mutable {
                            done(status.ok(), status.error_message());
                          });
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--function") options.function = value;
    else if (flag == "--concurrency") options.concurrency = std::stoi(value);
    else if (flag == "--seconds") options.seconds = std::stod(value);
    else if (flag == "--streams") options.streams = std::stoi(value);
    else if (flag == "--spin-us") options.spin_us = std::stoi(value);
    else if (flag == "--json-out") options.json_out = value;
    else if (flag == "--transports") options.transports = value;
  }
  if (options.function.empty()) {
    std::fprintf(stderr,
                 "usage: massa-transport-bench --function ADDRESS [--concurrency N] [--seconds S]"
                 " [--streams N] [--spin-us US] [--transports session,unary] [--json-out FILE]\n");
    return 2;
  }
  for (const std::string transport : {"session", "unary"}) {
    if (options.transports.find(transport) == std::string::npos) continue;
    Result r = transport == "session" ? RunSession(options) : RunUnary(options);
    std::printf("transport %-8s c%-3d %9.0f calls/s  p50 %6.0f us  p99 %6.0f us  p99.9 %6.0f us"
                "  errors %ld\n",
                transport.c_str(), options.concurrency, r.calls_per_s, r.p50, r.p99, r.p999,
                r.errors);
    if (!options.json_out.empty()) {
      std::ofstream out(options.json_out, std::ios::app);
      out << "{\"scenario\":\"transport-" << transport << "-c" << options.concurrency
          << "\",\"throughput\":" << r.calls_per_s << ",\"p50_us\":" << r.p50
          << ",\"p99_us\":" << r.p99 << ",\"p999_us\":" << r.p999 << ",\"errors\":" << r.errors
          << "}\n";
    }
  }
  return 0;
}
