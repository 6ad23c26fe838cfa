// massa-spawn-bench: the Spawn driver against the native protocol, same actor logic (a deposit:
// add the amount to the account's balance, durably, and answer the new balance).
//
//   massa-spawn-bench sdk                 a Spawn SDK serving the actor `account` (unnamed,
//                                         stateful; action `deposit`) on 127.0.0.1, port printed
//   massa-spawn-bench load --mode spawn --port SPAWN_PORT ...
//                                         registers the system `bench`, spawns accounts a0..aN-1,
//                                         then invokes deposit on them through the Spawn API
//   massa-spawn-bench load --mode native --port HTTP_PORT ...
//                                         POST /accounts/aK:deposit (the bank example over
//                                         massa's HTTP/JSON ingress): the same client, the same
//                                         logic, Massa's own protocol to the function
//
// The load is closed-loop (--concurrency requests in flight, on as many keep-alive
// connections), for --duration seconds after a warm-up; it prints one line and appends one JSON
// record to --json-out.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "spawn/actors/actor.pb.h"
#include "spawn/actors/protocol.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

// The SDK side: deposit adds the payload's Int64Value to the state's and replies the total.
int RunSdk() {
  massa::HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.name = "bench-sdk";
  auto server = massa::HttpServer::Start(options, [](massa::HttpRequest request,
                                                     massa::HttpResponder respond) {
    spawn::ActorInvocation invocation;
    massa::HttpResponse response;
    response.content_type = "application/octet-stream";
    if (!invocation.ParseFromString(request.body)) {
      response.status = 400;
      response.body.clear();
      std::move(respond)(std::move(response));
      return;
    }
    google::protobuf::Int64Value amount;
    google::protobuf::Int64Value balance;
    invocation.value().UnpackTo(&amount);
    invocation.current_context().state().UnpackTo(&balance);
    balance.set_value(balance.value() + amount.value());
    spawn::ActorInvocationResponse reply;
    reply.set_actor_name(invocation.actor().name());
    reply.set_actor_system(invocation.actor().system());
    reply.mutable_updated_context()->mutable_state()->PackFrom(balance);
    reply.mutable_value()->PackFrom(balance);
    response.body = reply.SerializeAsString();
    std::move(respond)(std::move(response));
  });
  if (!server.ok()) {
    std::fprintf(stderr, "sdk: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("bench sdk listening on 127.0.0.1:%d\n", (*server)->port());
  std::fflush(stdout);
  while (true) std::this_thread::sleep_for(std::chrono::hours(1));
}

struct LoadOptions {
  std::string mode = "spawn";
  int port = 0;
  int keys = 1000;
  int concurrency = 32;
  double duration_s = 5;
  double warmup_s = 1;
  std::string scenario = "spawn";
  std::string json_out;
  bool setup = true;  // spawn: register the system and spawn the accounts first
};

// One blocking request (setup: registration, spawns).
massa::HttpClientResponse Call(massa::HttpClient& client, const std::string& target,
                               const std::string& body) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::StatusOr<massa::HttpClientResponse>> result;
  client.Request("POST", target, "application/octet-stream", body,
                 Clock::now() + std::chrono::seconds(30),
                 [&](absl::StatusOr<massa::HttpClientResponse> response) {
                   std::lock_guard lock(mu);
                   result = std::move(response);
                   cv.notify_one();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  if (!result->ok()) {
    std::fprintf(stderr, "%s: %s\n", target.c_str(), result->status().ToString().c_str());
    std::exit(1);
  }
  return **result;
}

std::string Account(int key) { return "a" + std::to_string(key); }

int RunLoad(const LoadOptions& options) {
  massa::HttpClientOptions client_options;
  client_options.address = "127.0.0.1:" + std::to_string(options.port);
  client_options.max_connections = static_cast<size_t>(options.concurrency);
  auto client = massa::HttpClient::Start(client_options);
  if (!client.ok()) return 1;
  const bool spawn_mode = options.mode == "spawn";
  if (spawn_mode && options.setup) {
    spawn::RegistrationRequest registration;
    spawn::actors::ActorSystem& system = *registration.mutable_actor_system();
    system.set_name("bench");
    spawn::actors::Actor& actor = (*system.mutable_registry()->mutable_actors())["account"];
    actor.mutable_id()->set_name("account");
    actor.mutable_id()->set_system("bench");
    actor.mutable_settings()->set_kind(spawn::actors::UNNAMED);
    actor.mutable_settings()->set_stateful(true);
    actor.mutable_state();
    actor.add_actions()->set_name("deposit");
    if (Call(**client, "/api/v1/system", registration.SerializeAsString()).status != 200) {
      std::fprintf(stderr, "registration refused\n");
      return 1;
    }
    spawn::SpawnRequest spawns;
    for (int key = 0; key < options.keys; ++key) {
      spawn::actors::ActorId& id = *spawns.add_actors();
      id.set_name(Account(key));
      id.set_system("bench");
      id.set_parent("account");
    }
    if (Call(**client, "/api/v1/system/bench/actors/spawn", spawns.SerializeAsString()).status !=
        200) {
      std::fprintf(stderr, "spawn refused\n");
      return 1;
    }
  }
  // Requests, prebuilt per key.
  std::vector<std::pair<std::string, std::string>> requests;  // target, body
  for (int key = 0; key < options.keys; ++key) {
    if (spawn_mode) {
      spawn::InvocationRequest request;
      request.mutable_system()->set_name("bench");
      request.mutable_actor()->mutable_id()->set_name(Account(key));
      request.mutable_actor()->mutable_id()->set_system("bench");
      request.mutable_actor()->mutable_id()->set_parent("account");
      request.set_action_name("deposit");
      google::protobuf::Int64Value amount;
      amount.set_value(1);
      request.mutable_value()->PackFrom(amount);
      requests.emplace_back("/api/v1/system/bench/actors/" + Account(key) + "/invoke",
                            request.SerializeAsString());
    } else {
      requests.emplace_back("/accounts/" + Account(key) + ":deposit", R"({"amountCents":"1"})");
    }
  }
  const std::string content_type = spawn_mode ? "application/octet-stream" : "application/json";

  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> latencies_us;
  int64_t errors = 0;
  int outstanding = 0;
  std::atomic<bool> stop{false};
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(options.warmup_s));
  const Clock::time_point end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(options.duration_s));
  std::atomic<uint64_t> next_key{0};
  std::function<void()> send = [&] {
    const auto& [target, body] = requests[next_key.fetch_add(1) % requests.size()];
    const Clock::time_point sent = Clock::now();
    (*client)->Request("POST", target, content_type, body, sent + std::chrono::seconds(30),
                       [&, sent](absl::StatusOr<massa::HttpClientResponse> response) {
                         const Clock::time_point now = Clock::now();
                         const bool ok = response.ok() && response->status == 200;
                         bool again = now < end;
                         {
                           std::lock_guard lock(mu);
                           if (sent >= measure_from && now <= end) {
                             if (ok) {
                               latencies_us.push_back(
                                   std::chrono::duration<double, std::micro>(now - sent).count());
                             } else {
                               ++errors;
                             }
                           }
                           if (!again) {
                             --outstanding;
                             cv.notify_one();
                           }
                         }
                         if (again) send();
                       });
  };
  {
    std::lock_guard lock(mu);
    outstanding = options.concurrency;
  }
  for (int i = 0; i < options.concurrency; ++i) send();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return outstanding == 0; });
  }
  (*client)->Shutdown();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us.empty() ? 0.0 : latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))];
  };
  const double rate = static_cast<double>(latencies_us.size()) / options.duration_s;
  std::printf("%s %.0f calls/s p50 %.0f us p99 %.0f us errors %lld\n", options.scenario.c_str(),
              rate, pct(0.5), pct(0.99), static_cast<long long>(errors));
  if (!options.json_out.empty()) {
    std::ofstream out(options.json_out, std::ios::app);
    out << "{\"scenario\":\"" << options.scenario << "\",\"mode\":\"" << options.mode
        << "\",\"keys\":" << options.keys << ",\"concurrency\":" << options.concurrency
        << ",\"calls_per_s\":" << static_cast<int64_t>(rate) << ",\"p50_us\":"
        << static_cast<int64_t>(pct(0.5)) << ",\"p99_us\":" << static_cast<int64_t>(pct(0.99))
        << ",\"errors\":" << errors << "}\n";
  }
  return errors == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("massa-spawn-bench: the Spawn driver against the native protocol");
  app.require_subcommand(1);
  CLI::App* sdk = app.add_subcommand("sdk", "serve the bench actor as a Spawn SDK");
  LoadOptions options;
  CLI::App* load = app.add_subcommand("load", "invoke deposits in a closed loop");
  load->add_option("--mode", options.mode, "spawn or native")->check(CLI::IsMember({"spawn", "native"}));
  load->add_option("--port", options.port, "massa's Spawn API port (spawn) or HTTP port (native)")
      ->required();
  load->add_option("--keys", options.keys, "accounts");
  load->add_option("--concurrency", options.concurrency, "requests in flight");
  load->add_option("--duration", options.duration_s, "seconds measured");
  load->add_option("--warmup", options.warmup_s, "seconds before measuring");
  load->add_option("--scenario", options.scenario, "name in the output");
  load->add_option("--json-out", options.json_out, "append a JSON record here");
  load->add_flag("!--skip-setup", options.setup, "spawn: the system is registered already");
  CLI11_PARSE(app, argc, argv);
  if (*sdk) return RunSdk();
  return RunLoad(options);
}
