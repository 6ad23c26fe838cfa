// The configuration of `massa serve`, as plain structs. The CLI layer fills it from flags,
// environment variables and a YAML file; Validate checks it once; the rest of Massa only
// sees the result.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/status.h"

namespace massa {

struct ServeConfig {
  // How massa talks to the function: "native" (Massa's protocol over gRPC, discovery at start)
  // or "spawn" (a Spawn SDK: it registers on the Spawn API, massa calls its HTTP server).
  std::string protocol = "native";
  // The user function's address; with --protocol spawn the default is the SDKs' 127.0.0.1:8090.
  std::string function = "unix:/tmp/massa-function.sock";
  // --protocol spawn: where the Spawn sidecar API listens (host:port, port 0 picks one; or
  // unix:/path, as Spawn's PROXY_UDS_ADDRESS).
  std::string spawn_listen = "127.0.0.1:9001";
  std::string grpc_listen = "0.0.0.0:9000";
  std::string http_listen = "0.0.0.0:8080";   // HTTP/JSON ingress; "off" disables it
  std::string admin_listen = "0.0.0.0:9090";  // /metrics, /healthz, /readyz; "off" disables it
  // "rocksdb", "memory", or a PostgreSQL URI ("postgres://..." / "postgresql://...").
  std::string store = "rocksdb";
  std::string store_password_file;  // PostgreSQL password, when not in the URI or the env
  std::string store_password;       // from MASSA_STORE_PASSWORD (never a flag: ps shows flags)
  int store_connections = 4;        // PostgreSQL connections
  std::chrono::milliseconds store_connect_timeout{30'000};  // retry an unreachable database
  std::string data_dir = "massa-data";
  bool store_sync = true;  // fsync before acknowledging; off only for benchmarks that say so
  std::chrono::milliseconds passivation_timeout{30'000};
  std::chrono::milliseconds call_timeout{30'000};
  std::chrono::milliseconds discovery_timeout{60'000};
  std::chrono::milliseconds shutdown_grace{10'000};
  int mailbox_capacity = 1024;
  // Event sourced: snapshot every N events where the function's spec sets no frequency;
  // 0 = no snapshots.
  int snapshot_every = 100;
  int max_message_bytes = 4 << 20;
  std::string log_level = "info";
  // Threads that serve gRPC calls and run the streams to the function (one completion queue
  // each); 0 = half the CPUs, at least 1 (the function and the store need CPU too, and a
  // proxied call is cheapest when one thread receives it and its answer).
  int io_threads = 0;
  // After work, how long an I/O thread keeps polling before it sleeps (rpc/cq_loop.h): an
  // answer arriving meanwhile costs no wake-up. 0 = never poll.
  std::chrono::microseconds io_spin{100};
  // Session streams (each its own connection) to a function speaking protocol 1.1.
  int function_streams = 2;
  // Commands that may be unanswered on one stream to the function; more get RESOURCE_EXHAUSTED.
  int function_max_in_flight = 1024;
  // How long a request's idempotency record is kept, unless its service sets a retention.
  std::chrono::milliseconds idempotency_retention{std::chrono::hours(24)};
  // A cluster (docs/cluster.md): etcd://host:port of an etcd member, or empty for one node.
  std::string cluster;
  std::string cluster_name = "massa";  // key prefix in etcd: nodes with the same name cooperate
  std::string node_id;                 // unique per node; default: the host name
  std::string advertise_address;       // what other nodes dial (this node's gRPC); default: as bound
  int partitions = 64;                 // fixed when the cluster is created
  std::chrono::milliseconds lease_ttl{5000};
  // The shortest interval a recurring timer may have.
  std::chrono::milliseconds timer_min_interval{1000};
  // A recurring timer's tick firing later than this was missed (its policy decides).
  std::chrono::milliseconds timer_misfire_grace{1000};
  // How often expired state and idempotency records are reclaimed from the store.
  std::chrono::milliseconds expiry_sweep_interval{60'000};
};

// Whether --store names a PostgreSQL database.
bool IsPostgresUri(const std::string& store);

// Errors: INVALID_ARGUMENT naming the option (as its flag) and the problem.
[[nodiscard]] absl::Status Validate(const ServeConfig& config);

}  // namespace massa
