#include "server/server.h"

#include <signal.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include <atomic>
#include <vector>

#include "common/metrics.h"
#include "common/thread_pool.h"
#include "entity/catalog.h"
#include "entity/entity_runtime.h"
#include "entity/router.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "ingress/grpc/grpc_ingress.h"
#include "ingress/grpc/health.h"
#include "ingress/grpc/reflection.h"
#include "ingress/http/transcoder.h"
#include "massa/store/store.h"
#include "net/http_server.h"
#include "protocol/native/native_driver.h"
#include "server/admin_journal.h"
#include "server/http_api.h"
#include "spdlog/spdlog.h"

namespace massa {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

absl::StatusOr<store::StorePtr> OpenStore(const ServeConfig& config) {
  if (config.store == "memory") return store::NewMemoryStore();
  if (IsPostgresUri(config.store)) {
    store::PostgresOptions options;
    options.conninfo = config.store;
    options.password = config.store_password;
    options.connections = config.store_connections;
    options.connect_timeout = config.store_connect_timeout;
    return store::OpenPostgresStore(options);
  }
  return store::OpenRocksDbStore(store::RocksDbOptions{config.data_dir, config.store_sync});
}

// What to call the store in messages, without credentials.
std::string StoreName(const ServeConfig& config) {
  if (!IsPostgresUri(config.store)) {
    return config.store == "rocksdb" ? "rocksdb store at " + config.data_dir : config.store + " store";
  }
  std::string uri = config.store;
  const size_t scheme = uri.find("://") + 3;
  const size_t at = uri.find('@', scheme);
  const size_t slash = uri.find('/', scheme);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    uri.erase(scheme, at + 1 - scheme);  // drop user:password@
  }
  return "PostgreSQL store " + uri.substr(0, uri.find('?'));
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

absl::Status Serve(const ServeConfig& config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  // Abseil's mutex deadlock detection (on in Debian's build) costs a graph update per lock;
  // the tests keep it, production does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<store::StorePtr> store = OpenStore(config);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("cannot open the ", StoreName(config), ": ",
                                     store.status().message()));
  }

  UserFunctionPtr function = NewNativeDriver(NativeDriverOptions{
      config.function, config.call_timeout, config.max_message_bytes});
  spdlog::info("discovering the user function at {}", config.function);
  absl::StatusOr<FunctionSpec> spec = function->Discover(config.discovery_timeout);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(*std::move(spec));
  if (!catalog.ok()) return catalog.status();
  for (const auto& service : (*catalog)->services()) {
    spdlog::info("serving {} ({}, {} methods)", service->spec.name,
                 EntityKindName(service->spec.kind), service->methods.size());
  }

  MetricsRegistry metrics;
  std::vector<std::pair<std::string, std::string>> methods;
  for (const auto& service : (*catalog)->services()) {
    for (const auto& method : service->methods) methods.emplace_back(service->spec.name, method->name);
  }
  RequestMetrics request_metrics(metrics, methods);
  RuntimeMetrics runtime_metrics{
      &metrics.AddHistogram("massa_function_call_duration_seconds",
                            "One call to the user function, until its answer."),
      &metrics.AddCounter("massa_function_call_errors_total",
                          "Calls that did not reach the user function or got no answer."),
      &metrics.AddHistogram("massa_store_write_duration_seconds",
                            "From handing a write to the store until it is durable."),
  };

  RuntimeOptions runtime_options;
  runtime_options.default_passivation_timeout = config.passivation_timeout;
  runtime_options.mailbox_capacity = static_cast<size_t>(config.mailbox_capacity);
  runtime_options.default_snapshot_every = static_cast<uint32_t>(config.snapshot_every);
  EntityRuntime runtime(runtime_options, *function, **store);
  Router router(**catalog, runtime);
  runtime.SetDispatcher(&router);
  runtime.SetMetrics(runtime_metrics);

  store::Store* store_ptr = store->get();
  metrics.AddGaugeFamily("massa_active_entities", "Entities active in memory, by entity type.",
                         [&runtime] {
                           std::vector<std::pair<Labels, double>> out;
                           for (const auto& [type, count] : runtime.ActiveByType()) {
                             out.push_back({{{"entity_type", type}}, static_cast<double>(count)});
                           }
                           return out;
                         });
  metrics.AddGauge("massa_mailbox_waiting_commands",
                   "Commands waiting in entity mailboxes (not counting those running).",
                   [&runtime] { return static_cast<double>(runtime.waiting_commands()); });
  metrics.AddGauge("massa_commands_in_flight", "Commands accepted and not yet answered.",
                   [&runtime] { return static_cast<double>(runtime.in_flight()); });
  metrics.AddCounterFunction(
      "massa_store_writes_total", "Writes the store acknowledged.",
      [store_ptr] { return static_cast<double>(store_ptr->stats().writes); });
  metrics.AddCounterFunction(
      "massa_store_flushes_total", "Durable flushes that carried them (writes/flushes = batch size).",
      [store_ptr] { return static_cast<double>(store_ptr->stats().flushes); });

  // Readiness: the function discovered and reachable, the store open, not draining.
  std::atomic<bool> draining{false};
  UserFunction* function_ptr = function.get();
  auto ready = [&draining, function_ptr, store_ptr]() -> absl::Status {
    if (draining.load()) return absl::UnavailableError("draining after SIGTERM");
    if (!function_ptr->Reachable()) return absl::UnavailableError("the user function is unreachable");
    return store_ptr->Health();
  };
  HealthState health;
  for (const auto& service : (*catalog)->services()) health.Follow(service->spec.name);
  for (const char* own : {"grpc.health.v1.Health", "massa.admin.v1.Admin"}) health.Follow(own);
  std::unique_ptr<grpc::Service> health_service = NewHealthService(health);
  std::unique_ptr<grpc::Service> reflection_v1 = NewReflectionService(**catalog, ReflectionVersion::kV1);
  std::unique_ptr<grpc::Service> reflection_v1alpha = NewReflectionService(**catalog, ReflectionVersion::kV1Alpha);

  GrpcIngressOptions grpc_options{config.grpc_listen, config.max_message_bytes, &request_metrics,
                                  {health_service.get(), reflection_v1.get(),
                                   reflection_v1alpha.get()}};
  absl::StatusOr<std::unique_ptr<GrpcIngress>> ingress =
      GrpcIngress::Start(grpc_options, **catalog, router);
  if (!ingress.ok()) return ingress.status();

  std::unique_ptr<http::Transcoder> transcoder;
  std::unique_ptr<HttpServer> api;
  if (config.http_listen != "off") {
    absl::StatusOr<std::unique_ptr<http::Transcoder>> built = http::Transcoder::Build(**catalog);
    if (!built.ok()) return built.status();
    transcoder = *std::move(built);
    HttpServerOptions options;
    options.listen = config.http_listen;
    options.max_body_bytes = static_cast<size_t>(config.max_message_bytes);
    options.name = "massa-http";
    absl::StatusOr<std::unique_ptr<HttpServer>> started =
        HttpServer::Start(options, ApiHandler(*transcoder, router, &request_metrics));
    if (!started.ok()) return started.status();
    api = *std::move(started);
  }
  // Journal reads may block on the store: they run on their own thread, so /metrics and
  // /readyz on the admin server's I/O thread never wait behind them. Declared before the
  // admin server, so it outlives it.
  ThreadPool admin_reads(1, "massa-admin-rd");
  AdminRoute journal_route = [&admin_reads, store_ptr, &catalog = **catalog](
                                 std::string_view path, std::string_view query,
                                 HttpResponder& respond) {
    if (!IsJournalPath(path)) return false;
    admin_reads.Post([store_ptr, &catalog, path = std::string(path), query = std::string(query),
                      respond = std::move(respond)]() mutable {
      std::move(respond)(JournalEndpoint(*store_ptr, catalog, path, query));
    });
    return true;
  };
  std::unique_ptr<HttpServer> admin;
  if (config.admin_listen != "off") {
    HttpServerOptions options;
    options.listen = config.admin_listen;
    options.max_body_bytes = 4096;
    options.name = "massa-admin";
    absl::StatusOr<std::unique_ptr<HttpServer>> started =
        HttpServer::Start(options, AdminHandler(metrics, ready, journal_route));
    if (!started.ok()) return started.status();
    admin = *std::move(started);
  }

  std::string where = config.grpc_listen;
  if (where.rfind("unix:", 0) != 0) {
    where = absl::StrCat(where.substr(0, where.rfind(':')), ":", (*ingress)->port());
  }
  std::printf("massa: serving gRPC on %s\n", where.c_str());
  if (api != nullptr) {
    std::printf("massa: serving HTTP on %s:%d\n",
                config.http_listen.substr(0, config.http_listen.rfind(':')).c_str(), api->port());
  }
  if (admin != nullptr) {
    std::printf("massa: admin on %s:%d\n",
                config.admin_listen.substr(0, config.admin_listen.rfind(':')).c_str(),
                admin->port());
  }
  std::fflush(stdout);

  // Until SIGTERM/SIGINT: keep the gRPC health status in step with readiness.
  sigset_t signals = ShutdownSignals();
  int signal = 0;
  const timespec tick{0, 500'000'000};
  while (true) {
    health.SetServing(ready().ok());
    signal = sigtimedwait(&signals, nullptr, &tick);
    if (signal == SIGTERM || signal == SIGINT) break;
  }
  spdlog::info("received {}, draining (up to {} ms)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               config.shutdown_grace.count());
  draining.store(true);
  health.SetServing(false);
  health.Shutdown();  // ends Watch streams, which would hold the gRPC server open
  if (api != nullptr) api->Shutdown(config.shutdown_grace);
  (*ingress)->Shutdown(config.shutdown_grace);
  if (!runtime.Drain(config.shutdown_grace)) {
    spdlog::warn("{} commands still in flight at shutdown", runtime.in_flight());
  }
  if (admin != nullptr) admin->Shutdown(std::chrono::milliseconds(0));
  return absl::OkStatus();
}

}  // namespace massa
