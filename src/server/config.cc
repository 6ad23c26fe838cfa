#include "server/config.h"

#include "absl/strings/str_cat.h"

namespace massa {
namespace {

absl::Status Invalid(const std::string& option, const std::string& problem) {
  return absl::InvalidArgumentError("--" + option + ": " + problem);
}

// "unix:/path" or "host:port" with a port of 0 to 65535.
bool IsAddress(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return address.size() > 5;
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoul(port) <= 65535;
}

}  // namespace

bool IsPostgresUri(const std::string& store) {
  return store.rfind("postgres://", 0) == 0 || store.rfind("postgresql://", 0) == 0;
}

absl::Status Validate(const ServeConfig& config) {
  const bool tcp_scheme = config.function.rfind("tcp://", 0) == 0;
  if (!IsAddress(tcp_scheme ? config.function.substr(6) : config.function)) {
    return Invalid("function", absl::StrCat("'", config.function,
                                            "' is not host:port or unix:/path"));
  }
  if (!IsAddress(config.grpc_listen)) {
    return Invalid("grpc-listen", absl::StrCat("'", config.grpc_listen,
                                               "' is not host:port or unix:/path"));
  }
  for (const auto& [option, value] : {std::pair<std::string, const std::string*>{
                                         "http-listen", &config.http_listen},
                                     {"admin-listen", &config.admin_listen}}) {
    if (*value != "off" && (!IsAddress(*value) || value->rfind("unix:", 0) == 0)) {
      return Invalid(option, "'" + *value + "' is not host:port or off");
    }
  }
  if (config.store != "rocksdb" && config.store != "memory" && !IsPostgresUri(config.store)) {
    return Invalid("store", absl::StrCat("'", config.store,
                                         "' is not one of rocksdb, memory, postgres://..."));
  }
  if (config.store_connections < 1 || config.store_connections > 256) {
    return Invalid("store-connections", "must be between 1 and 256");
  }
  if (config.store_connect_timeout.count() <= 0) {
    return Invalid("store-connect-timeout", "must be positive");
  }
  if (config.store == "rocksdb" && config.data_dir.empty()) {
    return Invalid("data-dir", "must not be empty with --store rocksdb");
  }
  if (config.protocol != "native" && config.protocol != "spawn") {
    return Invalid("protocol", absl::StrCat("'", config.protocol, "' is not one of native, spawn"));
  }
  if (config.protocol == "spawn" && !IsAddress(config.spawn_listen)) {
    return Invalid("spawn-listen", "'" + config.spawn_listen + "' is not host:port or unix:/path");
  }
  if (!config.cluster.empty()) {
    if (config.cluster.rfind("etcd://", 0) != 0 || !IsAddress(config.cluster.substr(7))) {
      return Invalid("cluster", "'" + config.cluster + "' is not etcd://host:port");
    }
    if (config.protocol != "native") {
      return Invalid("cluster", "a cluster runs functions of the native protocol (not " +
                                    config.protocol + ") for now");
    }
    if (!IsPostgresUri(config.store)) {
      return Invalid("cluster", "the nodes of a cluster share their state: use --store "
                                "postgres://... (not " + config.store + ")");
    }
    if (config.partitions < 1 || config.partitions > 65536) {
      return Invalid("partitions", "must be between 1 and 65536");
    }
    if (config.lease_ttl < std::chrono::seconds(1)) {
      return Invalid("lease-ttl", "must be at least 1s");
    }
    if (!config.advertise_address.empty() && (!IsAddress(config.advertise_address) ||
                                              config.advertise_address.rfind("unix:", 0) == 0)) {
      return Invalid("advertise-address", "'" + config.advertise_address + "' is not host:port");
    }
  }
  if (config.passivation_timeout.count() <= 0) {
    return Invalid("passivation-timeout", "must be positive");
  }
  if (config.call_timeout.count() <= 0) return Invalid("call-timeout", "must be positive");
  if (config.discovery_timeout.count() <= 0) {
    return Invalid("discovery-timeout", "must be positive");
  }
  if (config.mailbox_capacity < 1 || config.mailbox_capacity > 1'000'000) {
    return Invalid("mailbox-capacity", "must be between 1 and 1000000");
  }
  if (config.snapshot_every < 0) return Invalid("snapshot-every", "must be 0 or more");
  if (config.io_threads < 0 || config.io_threads > 64) {
    return Invalid("io-threads", "must be between 0 (automatic) and 64");
  }
  if (config.io_spin.count() < 0 || config.io_spin > std::chrono::milliseconds(10)) {
    return Invalid("io-spin", "must be between 0 and 10ms");
  }
  if (config.function_streams < 1 || config.function_streams > 64) {
    return Invalid("function-streams", "must be between 1 and 64");
  }
  if (config.function_max_in_flight < 1 || config.function_max_in_flight > 1'000'000) {
    return Invalid("function-max-in-flight", "must be between 1 and 1000000");
  }
  if (config.idempotency_retention < std::chrono::seconds(1) ||
      config.idempotency_retention > std::chrono::hours(24 * 366)) {
    return Invalid("idempotency-retention", "must be between 1s and 366 days");
  }
  if (config.timer_min_interval < std::chrono::milliseconds(10)) {
    return Invalid("timer-min-interval", "must be at least 10ms");
  }
  if (config.timer_misfire_grace < std::chrono::milliseconds(10)) {
    return Invalid("timer-misfire-grace", "must be at least 10ms");
  }
  if (config.expiry_sweep_interval < std::chrono::seconds(1)) {
    return Invalid("expiry-sweep-interval", "must be at least 1s");
  }
  if (config.max_message_bytes < 1024 || config.max_message_bytes > (1 << 30)) {
    return Invalid("max-message-bytes", "must be between 1024 and 1073741824");
  }
  static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool known = false;
  for (auto level : kLevels) known = known || config.log_level == level;
  if (!known) {
    return Invalid("log-level", absl::StrCat("'", config.log_level,
                                             "' is not one of trace, debug, info, warn, error, off"));
  }
  return absl::OkStatus();
}

}  // namespace massa
