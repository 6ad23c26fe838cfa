#include "server/server.h"

#include <signal.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "entity/catalog.h"
#include "entity/entity_runtime.h"
#include "entity/router.h"
#include "ingress/grpc/grpc_ingress.h"
#include "massa/store/store.h"
#include "protocol/native/native_driver.h"
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
  return store::OpenRocksDbStore(store::RocksDbOptions{config.data_dir, config.store_sync});
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
                        absl::StrCat("cannot open the ", config.store, " store",
                                     config.store == "rocksdb" ? " at " + config.data_dir : "",
                                     ": ", store.status().message()));
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

  RuntimeOptions runtime_options;
  runtime_options.default_passivation_timeout = config.passivation_timeout;
  runtime_options.mailbox_capacity = static_cast<size_t>(config.mailbox_capacity);
  EntityRuntime runtime(runtime_options, *function, **store);
  Router router(**catalog, runtime);
  runtime.SetDispatcher(&router);

  absl::StatusOr<std::unique_ptr<GrpcIngress>> ingress = GrpcIngress::Start(
      GrpcIngressOptions{config.grpc_listen, config.max_message_bytes}, **catalog, router);
  if (!ingress.ok()) return ingress.status();

  std::string where = config.grpc_listen;
  if (where.rfind("unix:", 0) != 0) {
    where = absl::StrCat(where.substr(0, where.rfind(':')), ":", (*ingress)->port());
  }
  std::printf("massa: serving gRPC on %s\n", where.c_str());
  std::fflush(stdout);

  sigset_t signals = ShutdownSignals();
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("received {}, draining (up to {} ms)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               config.shutdown_grace.count());
  (*ingress)->Shutdown(config.shutdown_grace);
  if (!runtime.Drain(config.shutdown_grace)) {
    spdlog::warn("{} commands still in flight at shutdown", runtime.in_flight());
  }
  return absl::OkStatus();
}

}  // namespace massa
