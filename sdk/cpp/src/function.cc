#include "massa/sdk/function.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <algorithm>
#include <mutex>
#include <thread>
#include <utility>

#include "registry.h"
#include "server.h"

namespace massa::sdk {
namespace {

constexpr char kDefaultListen[] = "unix:/tmp/massa-function.sock";
constexpr char kListenEnv[] = "MASSA_FUNCTION_LISTEN";

constexpr char kIoThreadsEnv[] = "MASSA_FUNCTION_IO_THREADS";
constexpr char kHandlerThreadsEnv[] = "MASSA_FUNCTION_HANDLER_THREADS";

void PrintUsage(std::FILE* out, const char* program) {
  std::fprintf(out,
               "usage: %s [--listen ADDRESS] [--io-threads N] [--handler-threads N]\n"
               "  --listen ADDRESS       unix:/path/to.sock or host:port to serve Massa on\n"
               "                         (default: $%s, else %s)\n"
               "  --io-threads N         threads receiving commands (default: $%s, else half\n"
               "                         the CPUs, 1 to 4)\n"
               "  --handler-threads N    run handlers on N threads of their own, for handlers\n"
               "                         that block (default: $%s, else 0: on the I/O threads)\n",
               program, kListenEnv, kDefaultListen, kIoThreadsEnv, kHandlerThreadsEnv);
}

// A thread count from a flag or the environment: 0..256, or -1 when it is not one.
int ThreadCount(std::string_view text) {
  if (text.empty() || text.size() > 3) return -1;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n <= 256 ? n : -1;
}

}  // namespace

struct Function::Impl {
  Impl(std::string name, std::string version) : registry(std::move(name), std::move(version)) {}

  detail::Registry registry;
  std::vector<std::unique_ptr<Service>> services;
  std::mutex mu;
  std::shared_ptr<detail::GrpcServer> server;  // guarded by mu; null when not serving
};

Service::~Service() = default;

const std::string& Service::name() const { return data_.name; }

void Service::AddHandler(std::string_view method, const google::protobuf::Message& input_prototype,
                         const google::protobuf::Descriptor* output_type, detail::Handler handler) {
  data_.registry->AddHandler(data_, method, input_prototype, output_type, std::move(handler));
}

void Service::AddSubscription(std::string_view channel, std::string_view method) {
  data_.registry->AddSubscription(data_, channel, method);
}

void Service::AddEventHandler(const google::protobuf::Message& event_prototype,
                              detail::EventHandler handler) {
  data_.registry->AddEventHandler(data_, event_prototype, std::move(handler));
}

Function::Function(std::string name, std::string version)
    : impl_(std::make_unique<Impl>(std::move(name), std::move(version))) {}

Function::~Function() { Shutdown(std::chrono::milliseconds(0)); }

Action& Function::AddAction(std::string_view service_name, ActionOptions options) {
  detail::ServiceData& data = RegisterService(service_name, detail::Kind::kAction, nullptr, {});
  data.max_concurrency = options.max_concurrency;
  return Keep<Action>(data);
}

CrdtEntity& Function::AddCrdtEntity(std::string_view service_name, CrdtType type,
                                    EntityOptions options) {
  detail::ServiceData& data = RegisterService(
      service_name, detail::Kind::kCrdt, nullptr,
      EventSourcedOptions{.entity_type = std::move(options.entity_type),
                          .passivation_timeout = options.passivation_timeout,
                          .idempotency_retention = options.idempotency_retention});
  data.crdt_type = type;
  return Keep<CrdtEntity>(data);
}

detail::ServiceData& Function::RegisterService(std::string_view service_name, detail::Kind kind,
                                               const google::protobuf::Message* state_prototype,
                                               EventSourcedOptions options,
                                               std::chrono::milliseconds state_ttl) {
  detail::ServiceData& data =
      impl_->registry.AddService(service_name, kind, state_prototype, std::move(options));
  data.state_ttl = state_ttl;
  return data;
}

void Function::Keep(std::unique_ptr<Service> service) {
  impl_->services.push_back(std::move(service));
}

Status Function::Start(std::string_view address, ServeOptions options) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->server != nullptr) {
    return Status(Code::kFailedPrecondition, "already serving on " + impl_->server->address());
  }
  if (options.io_threads < 0 || options.io_threads > 256 || options.handler_threads < 0 ||
      options.handler_threads > 256) {
    return Status(Code::kInvalidArgument, "io_threads and handler_threads must be 0..256");
  }
  if (options.io_threads == 0) {
    options.io_threads =
        static_cast<int>(std::clamp(std::thread::hardware_concurrency() / 2, 1u, 4u));
  }
  impl_->registry.Freeze();
  absl::StatusOr<std::unique_ptr<detail::GrpcServer>> server = detail::GrpcServer::Start(
      impl_->registry, address, options.io_threads, options.handler_threads);
  if (!server.ok()) {
    return Status(static_cast<Code>(server.status().code()),
                  std::string(server.status().message()));
  }
  impl_->server = *std::move(server);
  return Status();
}

std::string Function::address() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->server == nullptr ? std::string() : impl_->server->address();
}

void Function::Shutdown(std::chrono::milliseconds grace) {
  std::shared_ptr<detail::GrpcServer> server;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    server = impl_->server;
  }
  if (server == nullptr) return;
  server->Shutdown(grace);  // outside the lock: wakes threads in Wait()
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->server == server) impl_->server.reset();
}

void Function::Wait() {
  std::shared_ptr<detail::GrpcServer> server;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    server = impl_->server;
  }
  if (server != nullptr) server->Wait();
}

int Function::Run(int argc, char** argv) {
  const char* program = argc > 0 ? argv[0] : "function";
  const char* env = std::getenv(kListenEnv);
  std::string listen = env != nullptr && *env != '\0' ? env : kDefaultListen;
  ServeOptions options;
  for (const auto& [name, field] : {std::pair<const char*, int*>{kIoThreadsEnv, &options.io_threads},
                                    {kHandlerThreadsEnv, &options.handler_threads}}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    *field = ThreadCount(value);
    if (*field < 0) {
      std::fprintf(stderr, "%s: $%s: '%s' is not a thread count (0..256)\n", program, name, value);
      return 2;
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--io-threads" || arg == "--handler-threads") {
      int* field = arg == "--io-threads" ? &options.io_threads : &options.handler_threads;
      *field = i + 1 < argc ? ThreadCount(argv[i + 1]) : -1;
      if (*field < 0) {
        std::fprintf(stderr, "%s: %s needs a thread count (0..256)\n", program, argv[i]);
        PrintUsage(stderr, program);
        return 2;
      }
      ++i;
    } else if (arg == "--listen") {
      if (i + 1 == argc) {
        std::fprintf(stderr, "%s: --listen needs an address\n", program);
        PrintUsage(stderr, program);
        return 2;
      }
      listen = argv[++i];
    } else if (arg.rfind("--listen=", 0) == 0) {
      listen = std::string(arg.substr(std::strlen("--listen=")));
    } else if (arg == "-h" || arg == "--help") {
      PrintUsage(stdout, program);
      return 0;
    } else {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n", program, argv[i]);
      PrintUsage(stderr, program);
      return 2;
    }
  }

  // Block the signals before gRPC starts its threads, so that only sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Status started = Start(listen, options);
  if (!started.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, started.message().c_str());
    return 1;
  }
  std::cout << "listening on " << address() << std::endl;

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0) {
  }
  std::fprintf(stderr, "%s: %s, shutting down\n", program, strsignal(signal_number));
  Shutdown();
  return 0;
}

}  // namespace massa::sdk
