// massa-coldstart: time from exec of `massa serve` to its first successful proxied call, with
// the user function already running. Repeats --runs times and prints the median. Massa gets
// a fresh data directory and port each run.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "grpcpp/grpcpp.h"

extern char** environ;

int main(int argc, char** argv) {
  std::string massa, function, json_out;
  int runs = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--massa") massa = argv[i + 1];
    else if (flag == "--function") function = argv[i + 1];
    else if (flag == "--runs") runs = std::stoi(argv[i + 1]);
    else if (flag == "--json-out") json_out = argv[i + 1];
  }
  if (massa.empty() || function.empty()) {
    std::fprintf(stderr, "usage: massa-coldstart --massa BIN --function ADDRESS [--runs N]\n");
    return 2;
  }
  auto base = std::filesystem::temp_directory_path() / "massa-coldstart";
  std::vector<double> times_ms;
  for (int run = 0; run < runs; ++run) {
    std::filesystem::remove_all(base);
    std::filesystem::create_directories(base);
    const int port = 19000 + run;
    std::string address = "127.0.0.1:" + std::to_string(port);
    std::vector<std::string> args = {massa, "serve", "--function", function, "--grpc-listen",
                                      address, "--http-listen", "127.0.0.1:0",
                                      "--admin-listen", "127.0.0.1:0", "--data-dir",
                                      (base / "data").string(), "--log-level", "off"};
    std::vector<char*> argv_c;
    for (auto& a : args) argv_c.push_back(a.data());
    argv_c.push_back(nullptr);
    // Retry the connection every millisecond so the client's backoff does not hide massa's
    // start time.
    grpc::ChannelArguments channel_args;
    channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1);
    channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1);
    channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2);
    example::shoppingcart::GetShoppingCart request;
    request.set_cart_id("cold");

    auto start = std::chrono::steady_clock::now();
    pid_t pid;
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    int spawned = posix_spawn(&pid, argv_c[0], &quiet, nullptr, argv_c.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    if (spawned != 0) return 1;
    bool ok = false;
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
      // A new channel per attempt: a refused connection then costs one attempt, not a backoff.
      channel_args.SetInt("massa.attempt", static_cast<int>(
          std::chrono::steady_clock::now().time_since_epoch().count() & 0x7fffffff));
      auto stub = example::shoppingcart::ShoppingCart::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), channel_args));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      example::shoppingcart::Cart reply;
      if (stub->GetCart(&context, request, &reply).ok()) {
        ok = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    if (!ok) {
      std::fprintf(stderr, "run %d: no successful call within 10 s\n", run);
      return 1;
    }
    times_ms.push_back(ms);
  }
  std::filesystem::remove_all(base);
  std::sort(times_ms.begin(), times_ms.end());
  double median = times_ms[times_ms.size() / 2];
  std::printf("cold start (exec to first proxied call): median %.1f ms, min %.1f, max %.1f over %d runs\n",
              median, times_ms.front(), times_ms.back(), runs);
  if (!json_out.empty()) {
    std::ofstream out(json_out, std::ios::app);
    out << "{\"scenario\":\"cold-start\",\"runs\":" << runs << ",\"median_ms\":" << median
        << ",\"min_ms\":" << times_ms.front() << ",\"max_ms\":" << times_ms.back() << "}\n";
  }
  return 0;
}
