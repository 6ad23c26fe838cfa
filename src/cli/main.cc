// The `massa` binary: `serve` runs the sidecar; `call` and `services` talk to a running one.
// Every option of `serve` can come from a flag, an environment variable (MASSA_<NAME>) or
// a YAML file (--config), in that order of precedence.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "cli/client.h"
#include "cli/new_project.h"
#include "common/duration.h"
#include "server/config.h"
#include "server/server.h"
#include "yaml-cpp/yaml.h"

namespace {

// "grpc-listen" -> "MASSA_GRPC_LISTEN".
std::string EnvName(const std::string& option) {
  std::string env = "MASSA_";
  for (char c : option) env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return env;
}

// Reads a flat YAML mapping ("grpc-listen: 127.0.0.1:9000") as CLI11 config items, so the
// YAML file accepts exactly the long option names.
class YamlConfig final : public CLI::Config {
 public:
  explicit YamlConfig(const CLI::App& serve) : serve_(serve) {}

  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return ""; }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    YAML::Node root;
    try {
      root = YAML::Load(input);
    } catch (const YAML::Exception& e) {
      throw CLI::ParseError("config file: " + std::string(e.what()), CLI::ExitCodes::InvalidError);
    }
    std::vector<CLI::ConfigItem> items;
    if (root.IsNull()) return items;
    if (!root.IsMap()) {
      throw CLI::ParseError("config file: expected a mapping of option: value",
                            CLI::ExitCodes::InvalidError);
    }
    for (const auto& entry : root) {
      CLI::ConfigItem item;
      item.parents = {"serve"};
      item.name = entry.first.as<std::string>();
      if (entry.second.IsSequence()) {
        for (const auto& value : entry.second) item.inputs.push_back(value.as<std::string>());
      } else if (entry.second.IsScalar()) {
        item.inputs.push_back(entry.second.as<std::string>());
      } else {
        throw CLI::ParseError("config file: option '" + item.name + "' must be a scalar",
                              CLI::ExitCodes::InvalidError);
      }
      if (serve_.get_option_no_throw("--" + item.name) == nullptr) {
        throw CLI::ParseError("config file: unknown option '" + item.name + "'",
                              CLI::ExitCodes::InvalidError);
      }
      // The environment overrides the file (CLI11 alone would let the file win).
      if (std::getenv(EnvName(item.name).c_str()) != nullptr) continue;
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  const CLI::App& serve_;
};

std::string DurationCheck(const std::string& text) {
  auto parsed = massa::ParseDuration(text);
  return parsed.ok() ? std::string() : std::string(parsed.status().message());
}

std::chrono::milliseconds Duration(const std::string& text) { return *massa::ParseDuration(text); }

std::string FineDurationCheck(const std::string& text) {
  auto parsed = massa::ParseFineDuration(text);
  return parsed.ok() ? std::string() : std::string(parsed.status().message());
}

struct DurationFlags {
  std::string passivation_timeout = "30s";
  std::string call_timeout = "30s";
  std::string discovery_timeout = "60s";
  std::string shutdown_grace = "10s";
  std::string store_connect_timeout = "30s";
  std::string io_spin = "100us";
  std::string idempotency_retention = "24h";
  std::string timer_min_interval = "1s";
  std::string timer_misfire_grace = "1s";
  std::string expiry_sweep_interval = "60s";
  std::string lease_ttl = "5s";
};

// The PostgreSQL password: MASSA_STORE_PASSWORD, else the file named by --store-password-file
// (one line; a trailing newline is dropped). Never a flag value, which `ps` would show.
absl::Status ReadStorePassword(massa::ServeConfig& config) {
  if (const char* env = std::getenv("MASSA_STORE_PASSWORD"); env != nullptr) {
    config.store_password = env;
    return absl::OkStatus();
  }
  if (config.store_password_file.empty()) return absl::OkStatus();
  std::ifstream file(config.store_password_file);
  if (!file) {
    return absl::InvalidArgumentError("--store-password-file: cannot read '" +
                                      config.store_password_file + "'");
  }
  std::getline(file, config.store_password);
  if (!config.store_password.empty() && config.store_password.back() == '\r') {
    config.store_password.pop_back();
  }
  return absl::OkStatus();
}

void AddServeOptions(CLI::App& app, CLI::App& serve, massa::ServeConfig& config,
                     DurationFlags& durations) {
  // CLI11 reads config files on the main app only: the file's keys are routed to `serve`,
  // and `serve` lets --config fall through to the main app.
  app.set_config("--config", "", "YAML file of `serve` options (keys are the long option names)")
      ->envname("MASSA_CONFIG");
  app.config_formatter(std::make_shared<YamlConfig>(serve));
  app.allow_config_extras(false);
  serve.fallthrough();

  auto add = [&](const std::string& name, auto& value, const std::string& help) {
    return serve.add_option("--" + name, value, help)->envname(EnvName(name))->capture_default_str();
  };
  add("protocol", config.protocol,
      "the function's protocol: native (Massa's, gRPC) or spawn (a Spawn SDK over HTTP; it "
      "registers its actors on --spawn-listen)");
  add("function", config.function,
      "address of the user function: unix:/path or host:port (with --protocol spawn: the SDK's "
      "HTTP server, default 127.0.0.1:8090)");
  add("spawn-listen", config.spawn_listen,
      "with --protocol spawn: where the Spawn sidecar API listens (host:port or unix:/path)");
  add("grpc-listen", config.grpc_listen,
      "address to serve gRPC on: host:port (port 0 picks a free port) or unix:/path");
  add("http-listen", config.http_listen,
      "address to serve HTTP/JSON on (google.api.http transcoding): host:port, or off");
  add("admin-listen", config.admin_listen,
      "address of /metrics, /healthz and /readyz: host:port, or off");
  add("store", config.store,
      "where state is kept: rocksdb (durable, this machine), a PostgreSQL URI "
      "postgres://user@host:port/db?sslmode=... (shared by several nodes), or memory (tests)");
  add("store-password-file", config.store_password_file,
      "file holding the PostgreSQL password (or set MASSA_STORE_PASSWORD, or PGPASSWORD)");
  add("store-connections", config.store_connections, "PostgreSQL connections massa opens");
  add("store-connect-timeout", durations.store_connect_timeout,
      "at start, how long to retry a PostgreSQL database that cannot be reached")
      ->check(DurationCheck);
  add("data-dir", config.data_dir, "directory of the rocksdb store");
  add("store-sync", config.store_sync,
      "fsync before acknowledging a write (turn off only for throwaway benchmarks)");
  add("passivation-timeout", durations.passivation_timeout,
      "idle time after which an entity is passivated, unless its spec sets one (e.g. 30s)")
      ->check(DurationCheck);
  add("call-timeout", durations.call_timeout,
      "longest wait for the user function on one command")
      ->check(DurationCheck);
  add("discovery-timeout", durations.discovery_timeout,
      "how long to wait at start for the user function to answer discovery")
      ->check(DurationCheck);
  add("shutdown-grace", durations.shutdown_grace,
      "on SIGTERM, how long calls in flight may take to finish")
      ->check(DurationCheck);
  add("mailbox-capacity", config.mailbox_capacity,
      "commands that may wait per entity; more are refused with RESOURCE_EXHAUSTED");
  add("max-message-bytes", config.max_message_bytes, "largest request or reply message");
  add("snapshot-every", config.snapshot_every,
      "event-sourced entities: store a snapshot every N events, unless the function's spec "
      "sets a frequency; 0 = no snapshots");
  add("log-level", config.log_level, "trace, debug, info, warn, error or off");
  add("io-threads", config.io_threads,
      "threads serving gRPC calls and the streams to the function; 0 = half the CPUs");
  add("io-spin", durations.io_spin,
      "after work, how long an I/O thread polls before it sleeps (e.g. 100us; 0 = never): "
      "lower latency for some CPU")
      ->check(FineDurationCheck);
  add("function-streams", config.function_streams,
      "streams (connections) to the function, for functions speaking protocol 1.1");
  add("function-max-in-flight", config.function_max_in_flight,
      "commands that may be unanswered on one stream to the function");
  add("idempotency-retention", durations.idempotency_retention,
      "how long a request applied under an idempotency-key is remembered (a retry within it "
      "gets the stored reply), unless its service sets a retention")
      ->check(DurationCheck);
  add("cluster", config.cluster,
      "run as a node of a cluster: etcd://host:port of an etcd member (needs --store postgres://...)");
  add("cluster-name", config.cluster_name, "nodes with the same cluster name share the work");
  add("node-id", config.node_id, "this node's id in the cluster (default: the host name)");
  add("advertise-address", config.advertise_address,
      "host:port other nodes dial to forward commands here (default: the gRPC address)");
  add("partitions", config.partitions, "partitions of the cluster (fixed when it is created)");
  add("lease-ttl", durations.lease_ttl,
      "the node's etcd lease: a node silent this long loses its partitions")
      ->check(DurationCheck);
  add("timer-min-interval", durations.timer_min_interval,
      "the shortest interval a recurring timer may have")
      ->check(DurationCheck);
  add("timer-misfire-grace", durations.timer_misfire_grace,
      "a recurring timer's tick firing later than this was missed (fired once or skipped, as "
      "the timer says)")
      ->check(DurationCheck);
  add("expiry-sweep-interval", durations.expiry_sweep_interval,
      "how often expired state and idempotency records are reclaimed from the store")
      ->check(DurationCheck);
}

}  // namespace

int main(int argc, char** argv) {
  massa::BlockShutdownSignals();

  CLI::App app("Massa: a sidecar runtime for stateful serverless functions", "massa");
  app.require_subcommand(1);
  app.set_version_flag("--version", MASSA_VERSION);

  massa::ServeConfig config;
  DurationFlags durations;
  CLI::App* serve = app.add_subcommand("serve", "run the sidecar beside a user function");
  AddServeOptions(app, *serve, config, durations);

  massa::cli::ClientOptions client;
  std::string client_timeout = "10s";
  std::string method;
  std::string json = "{}";
  CLI::App* call = app.add_subcommand("call", "call a method of a running massa with JSON");
  CLI::App* services = app.add_subcommand("services", "list the services a running massa serves");
  for (CLI::App* sub : {call, services}) {
    sub->add_option("--address", client.address, "massa's gRPC address")
        ->envname("MASSA_ADDRESS")
        ->capture_default_str();
    sub->add_option("--timeout", client_timeout, "deadline of the call")
        ->check(DurationCheck)
        ->capture_default_str();
  }
  call->add_option("method", method, "package.Service/Method")->required();

  std::string project_name;
  std::string project_dir;
  CLI::App* create = app.add_subcommand(
      "new", "write the skeleton of a function project (built against the installed SDK)");
  create->add_option("name", project_name,
                     "project name: a lower-case identifier (the proto package, a C++ namespace)")
      ->required();
  create->add_option("--dir", project_dir, "where to write it (default: ./NAME); must be empty");
  call->add_option("json", json, "the request as JSON, or - to read it from stdin")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "massa: error: %s\n", e.what());
    return 2;
  }

  if (*serve) {
    config.passivation_timeout = Duration(durations.passivation_timeout);
    config.call_timeout = Duration(durations.call_timeout);
    config.discovery_timeout = Duration(durations.discovery_timeout);
    config.shutdown_grace = Duration(durations.shutdown_grace);
    config.store_connect_timeout = Duration(durations.store_connect_timeout);
    config.io_spin = *massa::ParseFineDuration(durations.io_spin);
    config.idempotency_retention = Duration(durations.idempotency_retention);
    config.timer_min_interval = Duration(durations.timer_min_interval);
    config.lease_ttl = Duration(durations.lease_ttl);
    config.timer_misfire_grace = Duration(durations.timer_misfire_grace);
    config.expiry_sweep_interval = Duration(durations.expiry_sweep_interval);
    absl::Status valid = ReadStorePassword(config);
    if (valid.ok()) valid = massa::Validate(config);
    if (!valid.ok()) {
      std::fprintf(stderr, "massa: error: %s\n", std::string(valid.message()).c_str());
      return 2;
    }
    if (absl::Status served = massa::Serve(config); !served.ok()) {
      std::fprintf(stderr, "massa: error: %s\n", std::string(served.message()).c_str());
      return 1;
    }
    return 0;
  }
  if (*create) {
    absl::Status written = massa::cli::NewProject(project_name, project_dir);
    if (!written.ok()) {
      std::fprintf(stderr, "massa: error: %s\n", std::string(written.message()).c_str());
      return 2;
    }
    const std::string where = project_dir.empty() ? project_name : project_dir;
    std::printf("wrote %s/ (proto/%s/v1/%s.proto, main.cc, CMakeLists.txt, README.md)\n"
                "build it:  cmake -S %s -B %s/build && cmake --build %s/build\n"
                "run it:    %s/build/%s-function --listen unix:/tmp/%s.sock &\n"
                "           massa serve --function unix:/tmp/%s.sock\n",
                where.c_str(), project_name.c_str(), project_name.c_str(), where.c_str(),
                where.c_str(), where.c_str(), where.c_str(), project_name.c_str(),
                project_name.c_str(), project_name.c_str());
    return 0;
  }
  client.timeout = Duration(client_timeout);
  if (*call) {
    if (json == "-") {
      json.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    return massa::cli::Call(client, method, json);
  }
  return massa::cli::ListServices(client);
}
