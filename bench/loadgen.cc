// massa-loadgen: a gRPC load generator for any unary method of a service whose descriptors it
// learns at run time, either from a running massa (its admin API) or, for the baseline with
// no massa in the path, from a user function itself (native protocol discovery; each request
// is then wrapped in the native protocol's command envelope).
//
// Closed loop (--concurrency N calls in flight) or open loop (--rate calls/s, latency measured
// from the intended send time, so a stall is not hidden). Bounded by --duration and
// --requests. Prints a table and appends one JSON record to --json-out.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "massa/admin/v1/admin.grpc.pb.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"

namespace {

namespace pb = google::protobuf;
namespace v1 = massa::protocol::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target = "127.0.0.1:9000";
  std::string method;  // package.Service/Method
  std::string body = "{}";
  std::string mode = "massa";  // "massa" or "function" (baseline: call the function directly)
  std::string scenario = "custom";
  std::string json_out;
  int keys = 1;
  int concurrency = 1;
  double rate = 0;  // open loop when > 0
  double duration_s = 5;
  int64_t requests = 0;  // 0 = until duration
  double warmup_s = 0.5;
  int channels = 1;
  int watch_pid = 0;
  bool sequential_keys = false;  // each key used once, in order (activation benchmark)
  bool idempotency_keys = false;  // each call carries a fresh idempotency-key
  std::string http_method = "GET";  // --mode http
  std::string path;                 // --mode http: target path, {key} replaced
};

struct Target {
  std::shared_ptr<pb::SimpleDescriptorDatabase> database;
  std::unique_ptr<pb::DescriptorPool> pool;
  const pb::MethodDescriptor* method = nullptr;
  std::string kind;  // "action", "value_entity", "event_sourced" (function mode)
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "massa-loadgen: %s\n", message.c_str());
  std::exit(2);
}

void LoadFiles(Target& target, const std::string& serialized) {
  pb::FileDescriptorSet files;
  if (!files.ParseFromString(serialized)) Die("descriptor set does not parse");
  target.database = std::make_shared<pb::SimpleDescriptorDatabase>();
  for (const auto& file : files.file()) target.database->Add(file);
  target.pool = std::make_unique<pb::DescriptorPool>(target.database.get());
}

Target Discover(const Options& options, const std::shared_ptr<grpc::Channel>& channel) {
  Target target;
  std::string service_name = options.method.substr(0, options.method.rfind('/'));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (options.mode == "massa") {
    massa::admin::v1::GetSpecResponse spec;
    auto status = massa::admin::v1::Admin::NewStub(channel)->GetSpec(
        &context, massa::admin::v1::GetSpecRequest(), &spec);
    if (!status.ok()) Die("GetSpec: " + status.error_message());
    LoadFiles(target, spec.descriptor_set());
    for (const auto& s : spec.services()) {
      if (s.service_name() == service_name) target.kind = s.kind();
    }
  } else {
    v1::ProxyInfo info;
    info.mutable_protocol()->set_major(1);
    info.set_proxy_name("massa-loadgen");
    for (auto kind : {v1::ENTITY_KIND_ACTION, v1::ENTITY_KIND_VALUE_ENTITY,
                      v1::ENTITY_KIND_EVENT_SOURCED}) {
      info.add_supported_kinds(kind);
    }
    v1::Spec spec;
    auto status = v1::Discovery::NewStub(channel)->Discover(&context, info, &spec);
    if (!status.ok()) Die("Discover: " + status.error_message());
    LoadFiles(target, spec.descriptor_set());
    for (const auto& s : spec.services()) {
      if (s.service_name() != service_name) continue;
      target.kind = s.kind() == v1::ENTITY_KIND_ACTION          ? "action"
                    : s.kind() == v1::ENTITY_KIND_EVENT_SOURCED ? "event_sourced"
                                                                : "value_entity";
    }
  }
  const pb::ServiceDescriptor* service = target.pool->FindServiceByName(service_name);
  if (service == nullptr) Die("no service " + service_name);
  target.method = service->FindMethodByName(options.method.substr(options.method.rfind('/') + 1));
  if (target.method == nullptr) Die("no method " + options.method);
  return target;
}

// The request for key number `k`: the body with every "{key}" replaced, encoded, and wrapped
// in the native envelope in function mode.
std::string EncodeRequest(const Options& options, const Target& target, int k,
                          pb::DynamicMessageFactory& factory) {
  std::string json = options.body;
  const std::string key = std::to_string(k);
  for (size_t at = json.find("{key}"); at != std::string::npos; at = json.find("{key}", at)) {
    json.replace(at, 5, key);
  }
  std::unique_ptr<pb::Message> request(factory.GetPrototype(target.method->input_type())->New());
  auto parsed = pb::util::JsonStringToMessage(json, request.get());
  if (!parsed.ok()) Die("body: " + std::string(parsed.message()));
  std::string bytes = request->SerializeAsString();
  if (options.mode == "massa") return bytes;

  v1::Command command;
  command.set_service_name(target.method->service()->full_name());
  command.set_method(target.method->name());
  command.set_entity_key("key-" + key);
  command.mutable_payload()->set_type_url("type.googleapis.com/" +
                                          target.method->input_type()->full_name());
  command.mutable_payload()->set_value(bytes);
  if (target.kind == "action") {
    v1::ActionCommand envelope;
    *envelope.mutable_command() = command;
    return envelope.SerializeAsString();
  }
  if (target.kind == "event_sourced") {  // a new entity every call: no state, sequence 0
    v1::EventSourcedCommand envelope;
    *envelope.mutable_command() = command;
    return envelope.SerializeAsString();
  }
  v1::ValueEntityCommand envelope;
  *envelope.mutable_command() = command;
  return envelope.SerializeAsString();
}

struct ProcessSample {
  double cpu_s = 0;
  long rss_kb = 0;
  long context_switches = 0;  // of all its threads, voluntary and not
};

ProcessSample SampleProcess(int pid) {
  ProcessSample sample;
  if (pid <= 0) return sample;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return sample;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stoul(field);
    if (i == 15) {
      stime = std::stoul(field);
      break;
    }
  }
  sample.cpu_s = static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) sample.rss_kb = std::stol(line.substr(6));
  }
  std::error_code ignored;
  for (const auto& task : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/task", ignored)) {
    std::ifstream task_status(task.path() / "status");
    for (std::string line; std::getline(task_status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        sample.context_switches += std::stol(line.substr(24));
      } else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        sample.context_switches += std::stol(line.substr(27));
      }
    }
  }
  return sample;
}

class Runner {
 public:
  Runner(const Options& options, std::vector<std::string> requests, std::string path,
         std::vector<std::shared_ptr<grpc::Channel>> channels)
      : options_(options), requests_(std::move(requests)), path_(std::move(path)) {
    for (auto& channel : channels) {
      stubs_.push_back(
          std::make_unique<grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>>(
              channel));
    }
  }

  void Run() {
    start_ = Clock::now();
    measure_from_ = start_ + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(options_.warmup_s));
    end_ = measure_from_ + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(options_.duration_s));
    if (options_.rate > 0) {
      RunOpenLoop();
    } else {
      for (int i = 0; i < options_.concurrency; ++i) Issue(Clock::now());
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopped_ && outstanding_ == 0; });
    measured_end_ = std::min(Clock::now(), last_completion_);
  }

  std::vector<double> latencies_us;  // measured calls only
  int64_t errors = 0;
  std::string first_error;
  Clock::time_point measure_from_, measured_end_, last_completion_;

 private:
  bool ShouldStop(Clock::time_point now) {
    if (now >= end_) return true;
    if (options_.requests > 0 && issued_ >= options_.requests) return true;
    return false;
  }

  void Issue(Clock::time_point intended) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_ || ShouldStop(Clock::now())) {
        stopped_ = true;
        cv_.notify_all();
        return;
      }
      ++outstanding_;
    }
    int64_t n = issued_.fetch_add(1);
    size_t index = options_.sequential_keys ? static_cast<size_t>(n) % requests_.size()
                                            : static_cast<size_t>(Random() % requests_.size());
    struct Call {
      grpc::ClientContext context;
      grpc::ByteBuffer request;
      grpc::ByteBuffer response;
      Clock::time_point intended;
    };
    auto* call = new Call;
    call->intended = intended;
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (options_.idempotency_keys) {
      call->context.AddMetadata("idempotency-key", run_id_ + "-" + std::to_string(n));
    }
    grpc::Slice slice(requests_[index]);
    call->request = grpc::ByteBuffer(&slice, 1);
    auto& stub = *stubs_[static_cast<size_t>(n) % stubs_.size()];
    grpc::StubOptions stub_options;
    stub.UnaryCall(&call->context, path_, stub_options, &call->request, &call->response,
                   [this, call](grpc::Status status) {
                     auto now = Clock::now();
                     {
                       std::lock_guard<std::mutex> lock(mu_);
                       if (call->intended >= measure_from_ && call->intended < end_) {
                         if (status.ok()) {
                           latencies_us.push_back(
                               std::chrono::duration<double, std::micro>(now - call->intended)
                                   .count());
                           last_completion_ = now;
                         } else {
                           if (errors++ == 0) first_error = status.error_message();
                         }
                       }
                       --outstanding_;
                     }
                     delete call;
                     if (options_.rate <= 0) {
                       Issue(Clock::now());
                     } else {
                       std::lock_guard<std::mutex> lock(mu_);
                       cv_.notify_all();
                     }
                   });
  }

  void RunOpenLoop() {
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / options_.rate));
    auto next = Clock::now();
    while (true) {
      std::this_thread::sleep_until(next);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopped_) break;
      }
      Issue(next);
      next += interval;
    }
  }

  uint64_t Random() {
    thread_local std::mt19937_64 rng(std::random_device{}());
    return rng();
  }

  const Options& options_;
  std::vector<std::string> requests_;
  std::string path_;
  const std::string run_id_ = std::to_string(std::random_device{}());  // keys unique per run
  std::vector<std::unique_ptr<grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>>>
      stubs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  int64_t outstanding_ = 0;
  std::atomic<int64_t> issued_{0};
  Clock::time_point start_, end_;
};

// --mode http: closed loop over keep-alive HTTP/1.1 connections, one per call in flight.
struct HttpRun {
  std::vector<double> latencies_us;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
};

int Connect(const std::string& target) {
  size_t colon = target.rfind(':');
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::stoi(target.substr(colon + 1))));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &address.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends `request` and reads one response (Content-Length framed). Returns the status or -1.
int HttpRoundTrip(int fd, const std::string& request, std::string& buffer) {
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return -1;
    sent += static_cast<size_t>(n);
  }
  buffer.clear();
  char chunk[16384];
  size_t header_end = std::string::npos;
  size_t length = 0;
  while (true) {
    if (header_end == std::string::npos) {
      header_end = buffer.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string lower = buffer.substr(0, header_end);
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t at = lower.find("content-length:");
        length = at == std::string::npos ? 0 : std::stoul(lower.substr(at + 15));
      }
    }
    if (header_end != std::string::npos && buffer.size() >= header_end + 4 + length) break;
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return -1;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  return std::stoi(buffer.substr(9, 3));
}

HttpRun RunHttp(const Options& options) {
  HttpRun run;
  std::mutex mu;
  std::atomic<int64_t> issued{0};
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options.warmup_s));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options.duration_s));
  std::vector<std::thread> threads;
  for (int t = 0; t < options.concurrency; ++t) {
    threads.emplace_back([&] {
      std::mt19937_64 rng(std::random_device{}());
      std::vector<double> mine;
      int64_t errors = 0;
      std::string first_error;
      std::string buffer;
      int fd = Connect(options.target);
      while (fd >= 0) {
        auto now = Clock::now();
        int64_t n = issued.fetch_add(1);
        if (now >= end || (options.requests > 0 && n >= options.requests)) break;
        int64_t k = options.sequential_keys ? n % options.keys
                                            : static_cast<int64_t>(rng() % options.keys);
        auto fill = [&](std::string text) {
          for (size_t at = text.find("{key}"); at != std::string::npos; at = text.find("{key}", at)) {
            text.replace(at, 5, std::to_string(k));
          }
          return text;
        };
        std::string body = options.http_method == "GET" ? "" : fill(options.body);
        std::string request = options.http_method + " " + fill(options.path) +
                              " HTTP/1.1\r\nHost: massa\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        auto t0 = Clock::now();
        int status = HttpRoundTrip(fd, request, buffer);
        auto t1 = Clock::now();
        if (status < 0) {
          close(fd);
          fd = Connect(options.target);
        }
        if (t0 < measure_from) continue;
        if (status == 200) {
          mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        } else if (errors++ == 0) {
          first_error = "HTTP " + std::to_string(status) + " " + buffer.substr(0, 200);
        }
      }
      if (fd >= 0) close(fd);
      std::lock_guard<std::mutex> lock(mu);
      run.latencies_us.insert(run.latencies_us.end(), mine.begin(), mine.end());
      if (errors > 0 && run.errors == 0) run.first_error = first_error;
      run.errors += errors;
    });
  }
  for (auto& t : threads) t.join();
  run.seconds = std::chrono::duration<double>(std::min(Clock::now(), end) - measure_from).count();
  return run;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app("massa-loadgen: gRPC load for any unary method", "massa-loadgen");
  app.add_option("--target", options.target, "host:port or unix:/path")->capture_default_str();
  app.add_option("--method", options.method, "package.Service/Method (gRPC modes)");
  app.add_option("--body", options.body, "request as JSON; {key} is replaced by the key number")
      ->capture_default_str();
  app.add_option("--mode", options.mode,
                 "massa: call through massa; function: call the user function directly "
                 "(native protocol, the baseline)")
      ->check(CLI::IsMember({"massa", "function", "http"}))
      ->capture_default_str();
  app.add_option("--http-method", options.http_method, "--mode http: GET, POST, PUT, ...")
      ->capture_default_str();
  app.add_option("--path", options.path, "--mode http: request path; {key} is replaced");
  app.add_option("--keys", options.keys, "distinct entity keys (requests pick one at random)")
      ->check(CLI::Range(1, 10'000'000))
      ->capture_default_str();
  app.add_flag("--idempotency-keys", options.idempotency_keys,
               "gRPC modes: every call carries its own idempotency-key");
  app.add_flag("--sequential-keys", options.sequential_keys,
               "use keys in order, each once per round (first calls = activations)");
  app.add_option("--concurrency", options.concurrency, "calls in flight (closed loop)")
      ->check(CLI::Range(1, 10'000))
      ->capture_default_str();
  app.add_option("--rate", options.rate, "calls per second (open loop); 0 = closed loop")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--duration", options.duration_s, "seconds measured")
      ->check(CLI::Range(0.01, 600.0))
      ->capture_default_str();
  app.add_option("--requests", options.requests, "stop after this many calls (0 = no limit)")
      ->capture_default_str();
  app.add_option("--warmup", options.warmup_s, "seconds before measuring")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  app.add_option("--channels", options.channels, "gRPC channels (connections)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--watch-pid", options.watch_pid, "report CPU and RSS of this process (massa)");
  app.add_option("--scenario", options.scenario, "name written to the JSON record");
  app.add_option("--json-out", options.json_out, "append the JSON record to this file");
  CLI11_PARSE(app, argc, argv);

  std::vector<double> lat_http;
  int64_t http_errors = 0;
  std::string http_first_error;
  double http_seconds = 0;
  ProcessSample before, after;
  if (options.mode == "http") {
    if (options.path.empty()) Die("--mode http needs --path");
    before = SampleProcess(options.watch_pid);
    HttpRun run = RunHttp(options);
    after = SampleProcess(options.watch_pid);
    lat_http = std::move(run.latencies_us);
    http_errors = run.errors;
    http_first_error = run.first_error;
    http_seconds = run.seconds;
    options.method = options.http_method + " " + options.path;
  } else if (options.method.empty()) {
    Die("--method is required");
  }
  std::unique_ptr<Runner> runner_ptr;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; options.mode != "http" && i < options.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct channels, distinct connections
    channels.push_back(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args));
  }
  if (options.mode != "http") {
    Target target = Discover(options, channels.front());
    pb::DynamicMessageFactory factory(target.pool.get());
    std::vector<std::string> requests;
    requests.reserve(options.keys);
    for (int k = 0; k < options.keys; ++k) {
      requests.push_back(EncodeRequest(options, target, k, factory));
    }
    std::string path = "/" + target.method->service()->full_name() + "/" + target.method->name();
    if (options.mode == "function") {
      path = target.kind == "action"          ? "/massa.protocol.v1.Action/Handle"
             : target.kind == "event_sourced" ? "/massa.protocol.v1.EventSourced/Handle"
                                              : "/massa.protocol.v1.ValueEntity/Handle";
    }
    runner_ptr = std::make_unique<Runner>(options, std::move(requests), path, channels);
    before = SampleProcess(options.watch_pid);
    runner_ptr->Run();
    after = SampleProcess(options.watch_pid);
  }

  std::vector<double>& lat = runner_ptr ? runner_ptr->latencies_us : lat_http;
  const int64_t errors = runner_ptr ? runner_ptr->errors : http_errors;
  const std::string first_error = runner_ptr ? runner_ptr->first_error : http_first_error;
  std::sort(lat.begin(), lat.end());
  double seconds = runner_ptr ? std::chrono::duration<double>(runner_ptr->measured_end_ -
                                                              runner_ptr->measure_from_)
                                    .count()
                              : http_seconds;
  if (seconds <= 0) seconds = options.duration_s;
  double throughput = static_cast<double>(lat.size()) / seconds;
  double cpu_us_per_call = 0;
  double switches_per_call = 0;
  if (options.watch_pid > 0 && !lat.empty()) {
    cpu_us_per_call = (after.cpu_s - before.cpu_s) * 1e6 / static_cast<double>(lat.size());
    switches_per_call = static_cast<double>(after.context_switches - before.context_switches) /
                        static_cast<double>(lat.size());
  }
  std::printf("%-34s %9s %9s %9s %9s %9s %9s %8s\n", "scenario", "calls/s", "p50 us", "p90 us",
              "p99 us", "p99.9 us", "max us", "errors");
  std::printf("%-34s %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %8lld\n", options.scenario.c_str(),
              throughput, Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 99),
              Percentile(lat, 99.9), lat.empty() ? 0.0 : lat.back(),
              static_cast<long long>(errors));
  if (errors > 0) std::printf("first error: %s\n", first_error.c_str());
  if (options.watch_pid > 0) {
    std::printf("watched pid %d: %.1f us CPU per call, %.1f context switches per call, RSS %ld kB\n",
                options.watch_pid, cpu_us_per_call, switches_per_call, after.rss_kb);
  }

  char record[1024];
  std::snprintf(record, sizeof record,
                "{\"scenario\":\"%s\",\"mode\":\"%s\",\"method\":\"%s\",\"keys\":%d,"
                "\"concurrency\":%d,\"rate\":%.0f,\"calls\":%zu,\"errors\":%lld,"
                "\"seconds\":%.3f,\"throughput\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
                "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,\"cpu_us_per_call\":%.1f,"
                "\"switches_per_call\":%.2f,\"rss_kb\":%ld}",
                options.scenario.c_str(), options.mode.c_str(), options.method.c_str(),
                options.keys, options.concurrency, options.rate, lat.size(),
                static_cast<long long>(errors), seconds, throughput, Percentile(lat, 50),
                Percentile(lat, 90), Percentile(lat, 99), Percentile(lat, 99.9),
                lat.empty() ? 0.0 : lat.back(), cpu_us_per_call, switches_per_call, after.rss_kb);
  std::printf("%s\n", record);
  if (!options.json_out.empty()) {
    std::ofstream out(options.json_out, std::ios::app);
    out << record << "\n";
  }
  return errors > 0 && lat.empty() ? 1 : 0;
}
