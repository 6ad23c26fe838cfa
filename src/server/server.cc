#include "server/server.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "cluster/node.h"
#include "cluster/partition.h"
#include "cluster/peer.h"
#include "common/metrics.h"
#include "common/thread_pool.h"
#include "crdt/change.h"
#include "entity/catalog.h"
#include "entity/effects.h"
#include "entity/entity_runtime.h"
#include "entity/router.h"
#include "ingress/grpc/grpc_ingress.h"
#include "ingress/grpc/health.h"
#include "ingress/grpc/reflection.h"
#include "ingress/http/transcoder.h"
#include "ingress/http/transcoder_util.h"
#include "massa/store/store.h"
#include "net/http_server.h"
#include "protocol/native/native_driver.h"
#include "protocol/spawn/sidecar_api.h"
#include "protocol/spawn/spawn_driver.h"
#include "rpc/loop_service.h"
#include "server/admin_reads.h"
#include "server/http_api.h"
#include "spdlog/spdlog.h"

namespace massa {
namespace {

using Steady = std::chrono::steady_clock;

// After the grace period, how long the store may take to finish the writes in flight before
// massa gives up on an orderly exit (a database that stopped answering mid-commit).
constexpr std::chrono::seconds kStoreDrainLimit{30};

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

// Whether `entity_type` is a CRDT entity's.
bool IsCrdt(const Catalog& catalog, std::string_view entity_type) {
  for (const std::unique_ptr<ServiceInfo>& service : catalog.services()) {
    if (service->spec.entity_type == entity_type) return service->spec.kind == EntityKind::kCrdt;
  }
  return false;
}

// This node's id in a cluster: --node-id, else the host name.
std::string NodeId(const ServeConfig& config) {
  if (!config.node_id.empty()) return config.node_id;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

// GET /v1/cluster on the admin port: this node, the members it sees, the partitions it holds
// and its counters.
HttpResponse ClusterJson(const cluster::ClusterView& view) {
  std::string body = absl::StrCat(
      "{\"node\":", http::JsonQuote(view.node_id), ",\"cluster\":", http::JsonQuote(view.cluster),
      ",\"healthy\":", view.healthy ? "true" : "false", ",\"partitions\":", view.partitions,
      ",\"members\":[");
  for (size_t i = 0; i < view.members.size(); ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", "{\"id\":", http::JsonQuote(view.members[i].first),
                    ",\"address\":", http::JsonQuote(view.members[i].second), "}");
  }
  absl::StrAppend(&body, "],\"owned\":[", absl::StrJoin(view.owned, ","),
                  "],\"forwarded\":", view.stats.forwarded, ",\"claims\":", view.stats.claims,
                  ",\"handoffs\":", view.stats.releases, "}");
  return HttpResponse{200, "application/json", std::move(body), {}};
}

// Polls `done` every 2 ms until it holds or `until` passes; returns whether it holds.
template <typename F>
bool WaitUntil(F done, Steady::time_point until) {
  while (!done()) {
    if (Steady::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace

// Members are declared in dependency order; Shutdown releases them explicitly, in its own
// order, and the destructor only frees what is left.
struct Server::Impl {
  ServeConfig config;
  MetricsRegistry metrics;
  store::StorePtr store;
  // The function's driver: native, or Spawn (whose SDK registers its actors at any time).
  std::unique_ptr<NativeDriver> native;
  std::unique_ptr<spawn::SpawnDriver> spawn_driver;
  UserFunction* driver = nullptr;
  // What is served: native, the discovered services; Spawn, none until a registration
  // installs a catalog. Every catalog a registration installed is kept for the server's life
  // (commands in flight point into the one that routed them; registrations are rare).
  std::unique_ptr<Catalog> catalog;
  absl::Mutex install_mu;
  std::vector<std::unique_ptr<Catalog>> installed ABSL_GUARDED_BY(install_mu);
  bool background_started ABSL_GUARDED_BY(install_mu) = false;
  std::unique_ptr<RequestMetrics> request_metrics;
  std::unique_ptr<EntityRuntime> runtime;
  std::unique_ptr<Router> router;
  // --cluster: this node's membership, claims and placement (set before the ingress serves).
  std::unique_ptr<cluster::ClusterNode> cluster;
  HealthState health;
  std::vector<std::unique_ptr<rpc::LoopService>> grpc_services;
  std::unique_ptr<GrpcIngress> ingress;
  std::unique_ptr<http::Transcoder> transcoder;
  std::unique_ptr<HttpServer> api;
  std::unique_ptr<HttpServer> spawn_api;  // --protocol spawn: the sidecar API for the SDK
  std::unique_ptr<ThreadPool> admin_reads;
  std::unique_ptr<HttpServer> admin;
  std::atomic<bool> draining{false};
  std::string grpc_address;

  std::once_flag shutdown_once;
  absl::Notification shut_down;

  absl::Status Ready() const {
    if (draining.load()) return absl::UnavailableError("draining after SIGTERM");
    if (spawn_driver != nullptr && spawn_driver->system() == nullptr) {
      return absl::UnavailableError("no Spawn SDK has registered its actors yet");
    }
    if (!driver->Reachable()) return absl::UnavailableError("the user function is unreachable");
    if (cluster != nullptr && !cluster->healthy()) {
      return absl::UnavailableError("this node's lease on etcd is not alive");
    }
    return store->Health();
  }

  absl::Status Build();
  // Starts the outbox and the timers (once): at start for a native function; for a Spawn SDK at
  // its first registration, so that no delivery or tick runs before its actors are known.
  void StartBackground();
  // --protocol spawn: serves a registered actor system from now on.
  absl::Status Install(std::shared_ptr<const spawn::System> system);
  void Stop(std::chrono::milliseconds grace);
};

absl::Status Server::Impl::Build() {
  absl::StatusOr<store::StorePtr> opened = OpenStore(config);
  if (!opened.ok()) {
    return absl::Status(opened.status().code(),
                        absl::StrCat("cannot open the ", StoreName(config), ": ",
                                     opened.status().message()));
  }
  store = *std::move(opened);

  absl::StatusOr<std::unique_ptr<Catalog>> built;
  if (config.protocol == "spawn") {
    std::string address = config.function == ServeConfig().function ? "127.0.0.1:8090"
                                                                     : config.function;
    if (address.rfind("tcp://", 0) == 0) address = address.substr(6);
    spawn::SpawnDriverOptions options;
    options.address = address;
    options.call_timeout = config.call_timeout;
    options.max_message_bytes = static_cast<size_t>(config.max_message_bytes);
    options.min_timer_interval = config.timer_min_interval;
    absl::StatusOr<std::unique_ptr<spawn::SpawnDriver>> started = spawn::SpawnDriver::Start(options);
    if (!started.ok()) return started.status();
    spawn_driver = *std::move(started);
    driver = spawn_driver.get();
    spdlog::info("waiting for a Spawn SDK at {} to register on {}", address, config.spawn_listen);
    built = Catalog::Build(FunctionSpec{});
  } else {
    native = std::make_unique<NativeDriver>(NativeDriverOptions{
        config.function, config.call_timeout, config.max_message_bytes, config.function_streams,
        static_cast<uint32_t>(config.function_max_in_flight)});
    driver = native.get();
    spdlog::info("discovering the user function at {}", config.function);
    absl::StatusOr<FunctionSpec> spec = native->Discover(config.discovery_timeout);
    if (!spec.ok()) return spec.status();
    built = Catalog::Build(*std::move(spec));
  }
  if (!built.ok()) return built.status();
  catalog = *std::move(built);
  for (const auto& service : catalog->services()) {
    spdlog::info("serving {} ({}, {} methods)", service->spec.name,
                 EntityKindName(service->spec.kind), service->methods.size());
  }

  std::vector<std::pair<std::string, std::string>> methods;
  for (const auto& service : catalog->services()) {
    for (const auto& method : service->methods) methods.emplace_back(service->spec.name, method->name);
  }
  request_metrics = std::make_unique<RequestMetrics>(metrics, methods);
  RuntimeMetrics runtime_metrics{
      &metrics.AddHistogram("massa_function_call_duration_seconds",
                            "One call to the user function, until its answer."),
      &metrics.AddCounter("massa_function_call_errors_total",
                          "Calls that did not reach the user function or got no answer."),
      &metrics.AddHistogram("massa_store_write_duration_seconds",
                            "From handing a write to the store until it is durable."),
      &metrics.AddCounter("massa_idempotent_replays_total",
                          "Requests answered from the record of their idempotency key."),
      &metrics.AddHistogram("massa_timer_lateness_seconds",
                            "From a timer tick's due time until its command was applied."),
  };

  RuntimeOptions runtime_options;
  runtime_options.default_passivation_timeout = config.passivation_timeout;
  runtime_options.mailbox_capacity = static_cast<size_t>(config.mailbox_capacity);
  runtime_options.default_snapshot_every = static_cast<uint32_t>(config.snapshot_every);
  runtime_options.idempotency_retention = config.idempotency_retention;
  runtime_options.timer_limits.min_interval = config.timer_min_interval;
  runtime_options.timer_limits.misfire_grace = config.timer_misfire_grace;
  runtime_options.expiry_sweep_interval = config.expiry_sweep_interval;
  if (!config.cluster.empty()) {
    // Each write carries its partition's claim token (the cluster starts before any command).
    runtime_options.fence_of = [this](std::string_view type, std::string_view key) {
      return cluster == nullptr ? uint64_t{0} : cluster->FenceOf(type, key);
    };
    // A replicated CRDT has no owner: the move of a timer it set on another service carries
    // no token either (it would fence the CRDT's unfenced writes). Its commands' writes are
    // exempted by the runtime, which knows their kind; this runs per timer tick only.
    runtime_options.timers.fence_of = [this](std::string_view type, std::string_view key) {
      if (cluster == nullptr || (router != nullptr && IsCrdt(router->catalog(), type))) {
        return uint64_t{0};
      }
      return cluster->FenceOf(type, key);
    };
    // Timers and outbox records are kept per partition and fired by the partition's owner.
    runtime_options.partition_of = [partitions = static_cast<uint32_t>(config.partitions)](
                                       std::string_view type, std::string_view key) {
      return cluster::PartitionOf(type, key, partitions);
    };
    runtime_options.partitions = [this] {
      return cluster == nullptr ? std::vector<uint32_t>{} : cluster->Owned();
    };
    // CRDT entities have a replica on every node: this node's slots in their values are its
    // own, and each change's delta goes to the other nodes.
    runtime_options.replica_id = NodeId(config);
    runtime_options.replicate_crdt = [this](const Command& like, std::string delta,
                                            WriteConsistency consistency,
                                            absl::AnyInvocable<void(absl::Status) &&> done) {
      if (cluster == nullptr) {
        std::move(done)(absl::OkStatus());
        return;
      }
      cluster->ReplicateCrdt(like, std::move(delta), consistency, std::move(done));
    };
  }
  runtime = std::make_unique<EntityRuntime>(runtime_options, *driver, *store);
  router = std::make_unique<Router>(*catalog, *runtime);
  runtime->SetDispatcher(router.get());
  Router* router_ptr = router.get();
  driver->SetCallHandler([router_ptr](const CallerInfo& caller, Command call,
                                      absl::AnyInvocable<void(CommandResult) &&> done) {
    PrepareCall(caller, call);
    router_ptr->Dispatch(std::move(call), std::move(done));
  });
  runtime->outbox().SetSubscribers(
      [router_ptr](std::string_view channel) { return router_ptr->SubscribersOf(channel); });
  runtime->SetTargetCheck([router_ptr](std::string_view service, std::string_view method,
                                       std::string_view payload_type) {
    return router_ptr->CheckTarget(service, method, payload_type);
  });
  runtime->SetMetrics(runtime_metrics);

  EntityRuntime* runtime_ptr = runtime.get();
  store::Store* store_ptr = store.get();
  metrics.AddGaugeFamily("massa_active_entities", "Entities active in memory, by entity type.",
                         [runtime_ptr] {
                           std::vector<std::pair<Labels, double>> out;
                           for (const auto& [type, count] : runtime_ptr->ActiveByType()) {
                             out.push_back({{{"entity_type", type}}, static_cast<double>(count)});
                           }
                           return out;
                         });
  metrics.AddGauge("massa_mailbox_waiting_commands",
                   "Commands waiting in entity mailboxes (not counting those running).",
                   [runtime_ptr] { return static_cast<double>(runtime_ptr->waiting_commands()); });
  metrics.AddGauge("massa_commands_in_flight", "Commands accepted and not yet answered.",
                   [runtime_ptr] { return static_cast<double>(runtime_ptr->in_flight()); });
  metrics.AddCounterFunction(
      "massa_store_writes_total", "Writes the store acknowledged.",
      [store_ptr] { return static_cast<double>(store_ptr->stats().writes); });
  metrics.AddCounterFunction(
      "massa_store_flushes_total", "Durable flushes that carried them (writes/flushes = batch size).",
      [store_ptr] { return static_cast<double>(store_ptr->stats().flushes); });
  const Outbox* outbox = &runtime->outbox();
  metrics.AddCounterFunction(
      "massa_outbox_delivered_total",
      "Outbox messages delivered and removed (including those their target refused for good).",
      [outbox] { return static_cast<double>(outbox->stats().delivered); });
  metrics.AddCounterFunction(
      "massa_outbox_refused_total", "Outbox messages their target refused for good.",
      [outbox] { return static_cast<double>(outbox->stats().refused); });
  metrics.AddCounterFunction(
      "massa_outbox_retries_total", "Failed deliveries of outbox messages, retried later.",
      [outbox] { return static_cast<double>(outbox->stats().retries); });
  metrics.AddGauge("massa_outbox_failing",
                   "Outbox messages that failed at least once and are not delivered yet.",
                   [outbox] { return static_cast<double>(outbox->stats().failing); });
  metrics.AddGauge("massa_outbox_in_flight", "Outbox deliveries waiting for their result.",
                   [outbox] { return static_cast<double>(outbox->stats().in_flight); });
  const TimerScheduler* timers = &runtime->timers();
  metrics.AddCounterFunction("massa_timer_ticks_total", "Timer ticks fired.",
                             [timers] { return static_cast<double>(timers->stats().fired); });
  metrics.AddCounterFunction(
      "massa_timer_skipped_ticks_total", "Missed timer ticks skipped (MissedTicks skip).",
      [timers] { return static_cast<double>(timers->stats().skipped); });
  metrics.AddCounterFunction(
      "massa_timer_retries_total", "Timer ticks whose delivery failed and was retried.",
      [timers] { return static_cast<double>(timers->stats().retries); });
  metrics.AddGauge("massa_timers_in_memory",
                   "Timers held in memory: the window of those due next.",
                   [timers] { return static_cast<double>(timers->stats().in_window); });

  for (const auto& service : catalog->services()) health.Follow(service->spec.name);
  for (const char* own : {"grpc.health.v1.Health", "massa.admin.v1.Admin"}) health.Follow(own);
  grpc_services.push_back(NewHealthService(health));
  grpc_services.push_back(NewReflectionService(*catalog, ReflectionVersion::kV1));
  grpc_services.push_back(NewReflectionService(*catalog, ReflectionVersion::kV1Alpha));
  // The cluster's secret, read from etcd when the node joins: until then the Peer service
  // refuses every call.
  auto peer_secret = std::make_shared<cluster::PeerSecret>();
  if (!config.cluster.empty()) {
    grpc_services.push_back(cluster::NewPeerService(*router, peer_secret));
  }
  GrpcIngressOptions grpc_options;
  grpc_options.listen = config.grpc_listen;
  grpc_options.max_message_bytes = config.max_message_bytes;
  grpc_options.metrics = request_metrics.get();
  for (auto& service : grpc_services) grpc_options.services.push_back(service.get());
  grpc_options.spin = config.io_spin;
  grpc_options.threads =
      config.io_threads > 0
          ? config.io_threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency() / 2));
  absl::StatusOr<std::unique_ptr<GrpcIngress>> started =
      GrpcIngress::Start(grpc_options, *catalog, *router);
  if (!started.ok()) return started.status();
  ingress = *std::move(started);
  // The function's streams run on the ingress's threads: a proxied call stays on one thread.
  if (native != nullptr) native->Start(&ingress->loop());

  grpc_address = config.grpc_listen;
  if (grpc_address.rfind("unix:", 0) != 0) {
    grpc_address = absl::StrCat(grpc_address.substr(0, grpc_address.rfind(':')), ":",
                                ingress->port());
  }
  if (!config.cluster.empty()) {
    cluster::ClusterOptions options;
    options.etcd_endpoint = config.cluster.substr(7);
    options.cluster = config.cluster_name;
    options.node_id = NodeId(config);
    options.peer_address = config.advertise_address.empty() ? grpc_address
                                                            : config.advertise_address;
    options.partitions = static_cast<uint32_t>(config.partitions);
    options.lease_ttl = config.lease_ttl;
    options.function_up = [this] { return driver->Reachable(); };
    options.secret = peer_secret;
    options.release_entities = [this, n = options.partitions](uint32_t partition) {
      return runtime->Release([n, partition](std::string_view type, std::string_view key) {
        return cluster::PartitionOf(type, key, n) == partition;
      });
    };
    absl::StatusOr<std::unique_ptr<cluster::ClusterNode>> joined =
        cluster::ClusterNode::Start(options);
    if (!joined.ok()) {
      return absl::Status(joined.status().code(),
                          absl::StrCat("cannot join the cluster at ", config.cluster, ": ",
                                       joined.status().message()));
    }
    cluster = *std::move(joined);
    cluster->SetLocal(router.get());
    router->SetPlacement(cluster.get());
    spdlog::info("node {} of cluster '{}' ({} partitions), reachable at {}", options.node_id,
                 config.cluster_name, config.partitions, options.peer_address);
    cluster::ClusterNode* node = cluster.get();
    metrics.AddGauge("massa_cluster_members", "Live members of the cluster, as this node sees it.",
                     [node] { return static_cast<double>(node->stats().members); });
    metrics.AddGauge("massa_cluster_partitions_owned", "Partitions whose claim this node holds.",
                     [node] { return static_cast<double>(node->stats().owned); });
    metrics.AddCounterFunction("massa_cluster_forwarded_total",
                               "Commands forwarded to the node that owns their entity.",
                               [node] { return static_cast<double>(node->stats().forwarded); });
    metrics.AddCounterFunction("massa_cluster_handoffs_total",
                               "Partitions this node released to a new owner.",
                               [node] { return static_cast<double>(node->stats().releases); });
  }
  ingress->Serve();
  if (cluster != nullptr) {
    // Listed among the members only now that the peers can reach this node.
    if (absl::Status listed = cluster->Serve(); !listed.ok()) {
      return absl::Status(listed.code(), absl::StrCat("cannot join the cluster at ", config.cluster,
                                                      ": ", listed.message()));
    }
  }

  if (config.http_listen != "off") {
    absl::StatusOr<std::unique_ptr<http::Transcoder>> transcoded = http::Transcoder::Build(*catalog);
    if (!transcoded.ok()) return transcoded.status();
    transcoder = *std::move(transcoded);
    HttpServerOptions options;
    options.listen = config.http_listen;
    options.max_body_bytes = static_cast<size_t>(config.max_message_bytes);
    options.name = "massa-http";
    absl::StatusOr<std::unique_ptr<HttpServer>> bound =
        HttpServer::Start(options, ApiHandler(*transcoder, *router, request_metrics.get()));
    if (!bound.ok()) return bound.status();
    api = *std::move(bound);
  }
  if (config.admin_listen != "off") {
    // Journal reads may block on the store: they run on their own thread, so /metrics and
    // /readyz on the admin server's I/O thread never wait behind them.
    admin_reads = std::make_unique<ThreadPool>(1, "massa-admin-rd");
    ThreadPool* reads = admin_reads.get();
    auto sources = std::make_shared<AdminReads>(
        AdminReads{*store, *catalog, runtime->outbox(), runtime->timers()});
    AdminRoute journal_route = [this, reads, sources](std::string_view path,
                                                      std::string_view query,
                                                      HttpResponder& respond) {
      if (path == "/v1/cluster") {
        std::move(respond)(cluster != nullptr
                               ? ClusterJson(cluster->View())
                               : HttpResponse{404, "application/json",
                                              ErrorJson(absl::NotFoundError(
                                                  "this node is not in a cluster (--cluster)")),
                                              {}});
        return true;
      }
      if (!IsAdminReadPath(path)) return false;
      reads->Post([sources, path = std::string(path), query = std::string(query),
                   respond = std::move(respond)]() mutable {
        std::move(respond)(AdminReadEndpoint(*sources, path, query));
      });
      return true;
    };
    HttpServerOptions options;
    options.listen = config.admin_listen;
    options.max_body_bytes = 4096;
    options.name = "massa-admin";
    absl::StatusOr<std::unique_ptr<HttpServer>> bound = HttpServer::Start(
        options, AdminHandler(metrics, [this] { return Ready(); }, journal_route));
    if (!bound.ok()) return bound.status();
    admin = *std::move(bound);
  }
  if (spawn_driver != nullptr) {
    spawn::SidecarOptions sidecar;
    sidecar.driver = spawn_driver.get();
    sidecar.dispatcher = router.get();
    sidecar.install = [this](std::shared_ptr<const spawn::System> system) {
      return Install(std::move(system));
    };
    sidecar.ready = [this] { return Ready(); };
    sidecar.metrics = &metrics;
    HttpServerOptions options;
    options.listen = config.spawn_listen;
    options.max_body_bytes = static_cast<size_t>(config.max_message_bytes);
    options.name = "massa-spawn";
    absl::StatusOr<std::unique_ptr<HttpServer>> bound =
        HttpServer::Start(options, spawn::SidecarApi(std::move(sidecar)));
    if (!bound.ok()) return bound.status();
    spawn_api = *std::move(bound);
    return absl::OkStatus();
  }
  // Deliveries left by an earlier run, and timers, start once everything serves.
  StartBackground();
  return absl::OkStatus();
}

void Server::Impl::StartBackground() {
  absl::MutexLock lock(&install_mu);
  if (background_started || draining.load()) return;
  background_started = true;
  runtime->StartBackground();
}

absl::Status Server::Impl::Install(std::shared_ptr<const spawn::System> system) {
  if (draining.load()) return absl::UnavailableError("massa is shutting down");
  absl::StatusOr<std::unique_ptr<Catalog>> built = Catalog::Build(system->spec());
  if (!built.ok()) return built.status();
  {
    absl::MutexLock lock(&install_mu);
    installed.push_back(*std::move(built));
    // The driver knows the new actors before the router sends it their commands.
    spawn_driver->SetSystem(system);
    router->SetCatalog(*installed.back());
  }
  const std::string sdk(absl::StripAsciiWhitespace(system->sdk()));
  spdlog::info("Spawn actor system '{}' registered ({} actors, SDK {})", system->name(),
               system->actors().size(), sdk.empty() ? "unnamed" : sdk);
  StartBackground();
  // Spawn activates named actors on registration: their init action runs and their timer
  // actions start without waiting for a first invocation (so do pooled actors' timers).
  for (const auto& actor : system->actors()) {
    const spawn::ActorDefinition& definition = actor->definition;
    const bool named = definition.kind == spawn::ActorKind::kNamed;
    if (!(named && (definition.stateful || !actor->init_action.empty() ||
                    !definition.timers.empty())) &&
        !(definition.kind == spawn::ActorKind::kPooled && !definition.timers.empty())) {
      continue;
    }
    Command activate;
    activate.service = actor->service;
    activate.method = spawn::kActivateMethod;
    if (named) {
      activate.entity_key = definition.name;
      activate.addressed = true;
    }
    router->Dispatch(std::move(activate), [name = definition.name](CommandResult result) {
      if (!result.status.ok()) {
        spdlog::warn("activating Spawn actor {}: {}", name, result.status.ToString());
      }
    });
  }
  return absl::OkStatus();
}

void Server::Impl::Stop(std::chrono::milliseconds grace) {
  const Steady::time_point deadline = Steady::now() + grace;
  const auto system_deadline = std::chrono::system_clock::now() + grace;

  // 0. In a cluster: hand every partition over while still serving (what arrives meanwhile is
  // forwarded to the new owners), within half the grace period.
  if (cluster != nullptr && !cluster->Depart(grace / 2)) {
    spdlog::warn("cluster: not every partition was handed over within {} ms; the rest go with "
                 "this node's lease", (grace / 2).count());
  }

  // 1. Stop accepting, on every protocol.
  draining.store(true);
  health.SetServing(false);
  if (runtime != nullptr) runtime->StopEffects();  // no new deliveries or ticks; theirs drain
  health.Shutdown();  // ends Watch streams, which would hold the gRPC server open
  // grpc::Server::Shutdown blocks until every call is answered (cancelling those left at the
  // deadline), so it runs beside the drain below.
  std::thread grpc_stop;
  if (ingress != nullptr) grpc_stop = std::thread([this, system_deadline] {
    ingress->Shutdown(system_deadline);
  });
  if (api != nullptr) api->Drain();
  if (spawn_api != nullptr) spawn_api->Drain();

  // 2. Drain: every call accepted on any protocol is answered.
  auto idle = [this] {
    return (runtime == nullptr || runtime->in_flight() == 0) &&
           (ingress == nullptr || ingress->in_flight() == 0) &&
           (api == nullptr || api->open_connections() == 0) &&
           (spawn_api == nullptr || spawn_api->open_connections() == 0);
  };
  if (!WaitUntil(idle, deadline)) {
    // 3. Out of time: what waits for the function fails now (UNAVAILABLE), and the store
    // finishes (or fails) the writes in flight; only then can the runtime go.
    spdlog::warn("shutdown grace of {} ms is over with {} commands in flight; failing them",
                 grace.count(), runtime == nullptr ? 0 : runtime->in_flight());
    if (driver != nullptr) driver->Shutdown();
    const Steady::time_point limit = Steady::now() + kStoreDrainLimit;
    if (!WaitUntil([this] { return runtime == nullptr || runtime->in_flight() == 0; }, limit)) {
      spdlog::critical("{} commands still wait for the store {} s after the grace period; "
                       "exiting without an orderly shutdown (nothing unacknowledged is lost)",
                       runtime->in_flight(), kStoreDrainLimit.count());
      std::fflush(nullptr);
      std::_Exit(1);
    }
    // Answers handed to the HTTP server are written at once.
    WaitUntil([this] {
      return (api == nullptr || api->in_flight() == 0) &&
             (spawn_api == nullptr || spawn_api->in_flight() == 0);
    }, Steady::now() + std::chrono::seconds(1));
  }
  if (api != nullptr) api->Stop();
  if (spawn_api != nullptr) spawn_api->Stop();
  if (grpc_stop.joinable()) grpc_stop.join();

  // 4. Background work, and this node's claims (the others take its partitions at once).
  if (runtime != nullptr) runtime->StopBackground();
  if (cluster != nullptr) cluster->Stop();
  // 5. The function's connections, then the threads that ran them and the gRPC calls.
  if (driver != nullptr) driver->Shutdown();
  if (ingress != nullptr) ingress->Stop();
  // 6. Admin, then the store: its destructor finishes what is queued and closes it.
  if (admin != nullptr) admin->Stop();
  admin_reads.reset();
  store.reset();
  // 7. The runtime and what it used.
  api.reset();
  spawn_api.reset();
  admin.reset();
  ingress.reset();
  grpc_services.clear();
  cluster.reset();
  router.reset();
  runtime.reset();
  driver = nullptr;
  native.reset();
  spawn_driver.reset();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(std::chrono::milliseconds(0)); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServeConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  absl::Status built = impl->Build();
  if (!built.ok()) {
    impl->Stop(std::chrono::milliseconds(0));
    return built;
  }
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  server->RefreshHealth();
  return server;
}

std::string Server::grpc_address() const { return impl_->grpc_address; }

int Server::http_port() const { return impl_->api == nullptr ? 0 : impl_->api->port(); }

int Server::admin_port() const { return impl_->admin == nullptr ? 0 : impl_->admin->port(); }

int Server::spawn_port() const {
  return impl_->spawn_api == nullptr ? 0 : impl_->spawn_api->port();
}

void Server::RefreshHealth() {
  if (impl_->draining.load()) return;
  impl_->health.SetServing(impl_->Ready().ok());
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  // A second caller waits until the first has finished.
  std::call_once(impl_->shutdown_once, [this, grace] {
    impl_->Stop(grace);
    impl_->shut_down.Notify();
  });
}

void Server::Wait() { impl_->shut_down.WaitForNotification(); }

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

absl::Status Serve(const ServeConfig& config) {
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  // Abseil's mutex deadlock detection (on in Debian's build) costs a graph update per lock;
  // the tests keep it, production does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(config);
  if (!server.ok()) return server.status();

  std::printf("massa: serving gRPC on %s\n", (*server)->grpc_address().c_str());
  if ((*server)->http_port() != 0) {
    std::printf("massa: serving HTTP on %s:%d\n",
                config.http_listen.substr(0, config.http_listen.rfind(':')).c_str(),
                (*server)->http_port());
  }
  if ((*server)->admin_port() != 0) {
    std::printf("massa: admin on %s:%d\n",
                config.admin_listen.substr(0, config.admin_listen.rfind(':')).c_str(),
                (*server)->admin_port());
  }
  if (config.protocol == "spawn") {
    if (config.spawn_listen.rfind("unix:", 0) == 0) {
      std::printf("massa: serving Spawn on %s\n", config.spawn_listen.c_str());
    } else {
      std::printf("massa: serving Spawn on %s:%d\n",
                  config.spawn_listen.substr(0, config.spawn_listen.rfind(':')).c_str(),
                  (*server)->spawn_port());
    }
  }
  std::fflush(stdout);

  // Until SIGTERM/SIGINT: keep the gRPC health status in step with readiness.
  sigset_t signals = ShutdownSignals();
  int signal = 0;
  const timespec tick{0, 500'000'000};
  while (true) {
    (*server)->RefreshHealth();
    signal = sigtimedwait(&signals, nullptr, &tick);
    if (signal == SIGTERM || signal == SIGINT) break;
  }
  spdlog::info("received {}, draining (up to {} ms)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
               config.shutdown_grace.count());
  const auto started = Steady::now();
  (*server)->Shutdown(config.shutdown_grace);
  spdlog::info("stopped in {} ms",
               std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - started)
                   .count());
  return absl::OkStatus();
}

}  // namespace massa
