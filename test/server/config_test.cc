// Validate(ServeConfig): the defaults pass; each bad option is named as its flag.

#include "server/config.h"

#include <functional>
#include <string>

#include "gtest/gtest.h"

namespace massa {
namespace {

TEST(ValidateTest, DefaultsAreValid) {
  absl::Status status = Validate(ServeConfig());
  EXPECT_TRUE(status.ok()) << status;
}

TEST(ValidateTest, GoodValuesAreAccepted) {
  const std::function<void(ServeConfig&)> cases[] = {
      [](ServeConfig& c) { c.function = "127.0.0.1:8080"; },
      [](ServeConfig& c) { c.function = "localhost:65535"; },
      [](ServeConfig& c) { c.function = "tcp://fn:8080"; },
      [](ServeConfig& c) { c.function = "unix:/run/fn.sock"; },
      [](ServeConfig& c) { c.grpc_listen = "[::]:0"; },
      [](ServeConfig& c) { c.grpc_listen = "unix:/tmp/massa.sock"; },
      [](ServeConfig& c) { c.store = "memory", c.data_dir = ""; },
      [](ServeConfig& c) { c.store = "postgres://massa@db/massa", c.data_dir = ""; },
      [](ServeConfig& c) { c.store = "postgresql://db:5432/massa?sslmode=require"; },
      [](ServeConfig& c) { c.store_connections = 1; },
      [](ServeConfig& c) { c.mailbox_capacity = 1; },
      [](ServeConfig& c) { c.mailbox_capacity = 1'000'000; },
      [](ServeConfig& c) { c.snapshot_every = 0; },
      [](ServeConfig& c) { c.max_message_bytes = 1024; },
      [](ServeConfig& c) { c.max_message_bytes = 1 << 30; },
      [](ServeConfig& c) { c.log_level = "off"; },
      [](ServeConfig& c) { c.log_level = "trace"; },
      [](ServeConfig& c) { c.protocol = "spawn"; },
      [](ServeConfig& c) { c.protocol = "spawn", c.spawn_listen = "0.0.0.0:0"; },
      [](ServeConfig& c) { c.protocol = "spawn", c.spawn_listen = "unix:/var/run/spawn.sock"; },
      [](ServeConfig& c) { c.store = "postgres://db/massa", c.cluster = "etcd://etcd:2379"; },
      [](ServeConfig& c) {
        c.store = "postgres://db/massa", c.cluster = "etcd://127.0.0.1:2379";
        c.partitions = 1, c.lease_ttl = std::chrono::seconds(1);
        c.advertise_address = "10.0.0.1:9000";
      },
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    ServeConfig config;
    cases[i](config);
    absl::Status status = Validate(config);
    EXPECT_TRUE(status.ok()) << status;
  }
}

struct BadCase {
  const char* flag;  // the message must start with "--<flag>:"
  std::function<void(ServeConfig&)> apply;
};

TEST(ValidateTest, EachBadOptionIsNamed) {
  const BadCase cases[] = {
      {"function", [](ServeConfig& c) { c.function = "nonsense"; }},
      {"function", [](ServeConfig& c) { c.function = "host:"; }},
      {"function", [](ServeConfig& c) { c.function = "host:http"; }},
      {"function", [](ServeConfig& c) { c.function = "unix:"; }},
      {"function", [](ServeConfig& c) { c.function = ""; }},
      {"grpc-listen", [](ServeConfig& c) { c.grpc_listen = "0.0.0.0"; }},
      {"grpc-listen", [](ServeConfig& c) { c.grpc_listen = "0.0.0.0:65536"; }},
      {"grpc-listen", [](ServeConfig& c) { c.grpc_listen = "0.0.0.0:1234567"; }},
      {"grpc-listen", [](ServeConfig& c) { c.grpc_listen = "0.0.0.0:-1"; }},
      {"grpc-listen", [](ServeConfig& c) { c.grpc_listen = "0.0.0.0:0000065536"; }},
      {"function", [](ServeConfig& c) { c.function = "tcp://"; }},
      {"function", [](ServeConfig& c) { c.function = "tcp://host"; }},
      {"protocol", [](ServeConfig& c) { c.protocol = "cloudstate"; }},
      {"spawn-listen", [](ServeConfig& c) { c.protocol = "spawn", c.spawn_listen = "9001"; }},
      {"store", [](ServeConfig& c) { c.store = "redis"; }},
      {"store", [](ServeConfig& c) { c.store = ""; }},
      {"store", [](ServeConfig& c) { c.store = "mysql://db/massa"; }},
      {"store-connections", [](ServeConfig& c) { c.store_connections = 0; }},
      {"store-connect-timeout", [](ServeConfig& c) { c.store_connect_timeout = {}; }},
      {"data-dir", [](ServeConfig& c) { c.data_dir = ""; }},
      {"passivation-timeout", [](ServeConfig& c) { c.passivation_timeout = {}; }},
      {"passivation-timeout",
       [](ServeConfig& c) { c.passivation_timeout = std::chrono::milliseconds(-1); }},
      {"call-timeout", [](ServeConfig& c) { c.call_timeout = {}; }},
      {"discovery-timeout", [](ServeConfig& c) { c.discovery_timeout = {}; }},
      {"mailbox-capacity", [](ServeConfig& c) { c.mailbox_capacity = 0; }},
      {"mailbox-capacity", [](ServeConfig& c) { c.mailbox_capacity = -5; }},
      {"mailbox-capacity", [](ServeConfig& c) { c.mailbox_capacity = 1'000'001; }},
      {"snapshot-every", [](ServeConfig& c) { c.snapshot_every = -1; }},
      {"max-message-bytes", [](ServeConfig& c) { c.max_message_bytes = 1023; }},
      {"max-message-bytes", [](ServeConfig& c) { c.max_message_bytes = (1 << 30) + 1; }},
      {"log-level", [](ServeConfig& c) { c.log_level = "verbose"; }},
      {"log-level", [](ServeConfig& c) { c.log_level = "INFO"; }},
      {"cluster", [](ServeConfig& c) { c.store = "postgres://db/m", c.cluster = "etcd:2379"; }},
      {"cluster", [](ServeConfig& c) { c.store = "postgres://db/m", c.cluster = "etcd://etcd"; }},
      {"cluster", [](ServeConfig& c) { c.cluster = "etcd://etcd:2379"; }},  // rocksdb
      {"cluster",
       [](ServeConfig& c) {
         c.store = "postgres://db/m", c.cluster = "etcd://etcd:2379", c.protocol = "spawn";
       }},
      {"partitions",
       [](ServeConfig& c) {
         c.store = "postgres://db/m", c.cluster = "etcd://etcd:2379", c.partitions = 0;
       }},
      {"lease-ttl",
       [](ServeConfig& c) {
         c.store = "postgres://db/m", c.cluster = "etcd://etcd:2379";
         c.lease_ttl = std::chrono::milliseconds(500);
       }},
      {"advertise-address",
       [](ServeConfig& c) {
         c.store = "postgres://db/m", c.cluster = "etcd://etcd:2379";
         c.advertise_address = "unix:/run/massa.sock";
       }},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const BadCase& c = cases[i];
    SCOPED_TRACE(std::string(c.flag) + " case " + std::to_string(i));
    ServeConfig config;
    c.apply(config);
    absl::Status status = Validate(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    const std::string prefix = "--" + std::string(c.flag) + ":";
    EXPECT_EQ(std::string(status.message()).substr(0, prefix.size()), prefix) << status;
  }
}

TEST(ValidateTest, MessageQuotesTheBadValue) {
  ServeConfig config;
  config.store = "redis";
  EXPECT_EQ(std::string(Validate(config).message()),
            "--store: 'redis' is not one of rocksdb, memory, postgres://...");
}

}  // namespace
}  // namespace massa
