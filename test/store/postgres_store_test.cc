// The PostgreSQL store: the contract suite on a throwaway server (one per test binary, a
// fresh database per test), then what only PostgreSQL has: the schema and its version, nodes
// sharing a database, group commit, a server crash under load, connection errors, and the
// binary encodings.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fakes/postgres_server.h"
#include "gtest/gtest.h"
#include "massa/store/store.h"
#include "store/postgres/connection.h"
#include "store/postgres/schema.h"
#include "store/postgres/wire.h"
#include "store_contract/effects_contract_test.h"
#include "store_contract/store_contract_test.h"

namespace massa::store {
namespace {

using store_contract::CallbackTracker;
using store_contract::Iota;
using store_contract::MakeAppend;
using store_contract::MakeEvent;
using store_contract::OffsetsOf;
using testing::PostgresServer;

// The server shared by the tests of this binary, started before the first test.
PostgresServer* g_server = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    g_server = server->release();
  }
  void TearDown() override {
    delete g_server;
    g_server = nullptr;
  }
};

::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// A fresh database on the shared server; "" (and a failure) when there is none.
std::string FreshDatabase(const std::string& prefix) {
  static std::atomic<int> next{0};
  if (g_server == nullptr) {
    ADD_FAILURE() << "no PostgreSQL server";
    return "";
  }
  absl::StatusOr<std::string> conninfo =
      g_server->CreateDatabase(prefix + "_" + std::to_string(next.fetch_add(1)));
  if (!conninfo.ok()) {
    ADD_FAILURE() << conninfo.status();
    return "";
  }
  return *conninfo;
}

PostgresOptions OptionsFor(const std::string& conninfo) {
  PostgresOptions options;
  options.conninfo = conninfo;
  options.connect_timeout = std::chrono::seconds(20);
  return options;
}

// A store on `conninfo`; null (and a failure) when it cannot be opened.
StorePtr OpenOrFail(const std::string& conninfo) {
  absl::StatusOr<StorePtr> store = OpenPostgresStore(OptionsFor(conninfo));
  EXPECT_TRUE(store.ok()) << "OpenPostgresStore: " << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

struct PostgresBackend {
  static constexpr bool kDurable = true;
  StorePtr Open() { return OpenOrFail(conninfo); }
  std::string conninfo = FreshDatabase("contract");
};

absl::Status WriteAndWait(Store& store, WriteBatch batch) {
  CallbackTracker tracker(1);
  store.Write(std::move(batch), tracker.Callback(0));
  if (!tracker.WaitAll()) return absl::DeadlineExceededError("write not called back");
  return tracker.status(0);
}

// The value, "<none>", or the read error.
std::string ValueOrError(Store& store, std::string_view type, std::string_view key) {
  absl::StatusOr<VersionedValue> read = store.ReadValue(type, key);
  if (!read.ok()) return "<error: " + read.status().ToString() + ">";
  return read->value.value_or("<none>");
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(g_server, nullptr); }
};

// ---- Schema ----

TEST_F(PostgresStoreTest, CreatesTheSchemaAndRecordsItsVersion) {
  const std::string conninfo = FreshDatabase("schema");
  StorePtr store = OpenOrFail(conninfo);
  ASSERT_NE(store, nullptr);
  const std::string db = conninfo.substr(conninfo.rfind('/') + 1);
  absl::StatusOr<std::string> version = g_server->Query(db, "SELECT version FROM massa_schema_version");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, "2");
  absl::StatusOr<std::string> tables = g_server->Query(
      db,
      "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
      "WHERE tablename LIKE 'massa%'");
  ASSERT_TRUE(tables.ok()) << tables.status();
  EXPECT_EQ(*tables,
            "massa_entities,massa_events,massa_idempotency,massa_outbox,massa_schema_version,"
            "massa_streams,massa_timers");
  // Opening again finds the schema in place.
  store.reset();
  store = OpenOrFail(conninfo);
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.Put("t", "k", "v");
  EXPECT_TRUE(WriteAndWait(*store, std::move(batch)).ok());
  EXPECT_EQ(g_server->Query(db, "SELECT count(*) FROM massa_schema_version").value_or("?"), "1");
}

TEST_F(PostgresStoreTest, NewerSchemaIsRefused) {
  const std::string conninfo = FreshDatabase("newer");
  ASSERT_NE(OpenOrFail(conninfo), nullptr);
  const std::string db = conninfo.substr(conninfo.rfind('/') + 1);
  ASSERT_TRUE(g_server->Query(db, "UPDATE massa_schema_version SET version = 97").ok());
  absl::StatusOr<StorePtr> store = OpenPostgresStore(OptionsFor(conninfo));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  const std::string message(store.status().message());
  EXPECT_NE(message.find("version 97"), std::string::npos) << message;
  EXPECT_NE(message.find("version 2,"), std::string::npos) << message;
  // Nothing was changed.
  EXPECT_EQ(g_server->Query(db, "SELECT version FROM massa_schema_version").value_or("?"), "97");
}

TEST_F(PostgresStoreTest, AVersion1DatabaseIsMigratedKeepingItsData) {
  const std::string conninfo = FreshDatabase("v1");
  const std::string db = conninfo.substr(conninfo.rfind('/') + 1);
  {
    absl::StatusOr<postgres::ConnectSpec> spec = postgres::ConnectSpec::Parse(OptionsFor(conninfo));
    ASSERT_TRUE(spec.ok()) << spec.status();
    absl::StatusOr<std::unique_ptr<postgres::Connection>> conn =
        postgres::Connection::Open(*spec, std::chrono::seconds(20));
    ASSERT_TRUE(conn.ok()) << conn.status();
    ASSERT_TRUE(postgres::MigrateSchema(**conn, /*target_version=*/1).ok());
  }
  ASSERT_EQ(g_server->Query(db, "SELECT version FROM massa_schema_version").value_or("?"), "1");
  // A version-1 node wrote a value (its six-argument massa_put).
  ASSERT_TRUE(g_server
                  ->Query(db, "SELECT code FROM massa_put('\\x74'::bytea, '\\x6b'::bytea, "
                              "'\\x7631'::bytea, NULL, 0, false)")
                  .ok());
  StorePtr store = OpenOrFail(conninfo);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(g_server->Query(db, "SELECT version FROM massa_schema_version").value_or("?"), "2");
  absl::StatusOr<VersionedValue> read = store->ReadValue("t", "k");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (VersionedValue{"v1", 1, 0}));
  // A value with an expiry, then rewritten by a node still on version 1: the expiry goes.
  WriteBatch expiring;
  expiring.mutations.push_back({"t", "k", std::string("v2"), 1, /*expires_ms=*/5000});
  ASSERT_TRUE(WriteAndWait(*store, std::move(expiring)).ok());
  EXPECT_EQ(store->ReadValue("t", "k")->expires_ms, 5000);
  ASSERT_TRUE(g_server
                  ->Query(db, "SELECT code FROM massa_put('\\x74'::bytea, '\\x6b'::bytea, "
                              "'\\x7633'::bytea, 2, 0, false)")
                  .ok());
  read = store->ReadValue("t", "k");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (VersionedValue{"v3", 3, 0}));
}

TEST_F(PostgresStoreTest, NodesOpeningAFreshDatabaseTogetherAllSucceed) {
  const std::string conninfo = FreshDatabase("together");
  constexpr int kNodes = 6;
  std::vector<absl::StatusOr<StorePtr>> stores;
  for (int i = 0; i < kNodes; ++i) stores.emplace_back(absl::UnknownError("not opened"));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kNodes) std::this_thread::yield();
      PostgresOptions options = OptionsFor(conninfo);
      options.connections = 2;
      stores[i] = OpenPostgresStore(options);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kNodes; ++i) ASSERT_TRUE(stores[i].ok()) << i << ": " << stores[i].status();
  // They share one schema: what one writes, the others read.
  WriteBatch batch;
  batch.Put("shared", "k", "from node 0");
  ASSERT_TRUE(WriteAndWait(**stores[0], std::move(batch)).ok());
  for (int i = 1; i < kNodes; ++i) EXPECT_EQ(ValueOrError(**stores[i], "shared", "k"), "from node 0");
}

// ---- Nodes sharing a database ----

TEST_F(PostgresStoreTest, FencesHoldAcrossNodes) {
  const std::string conninfo = FreshDatabase("fences");
  StorePtr old_owner = OpenOrFail(conninfo);
  StorePtr new_owner = OpenOrFail(conninfo);
  ASSERT_NE(old_owner, nullptr);
  ASSERT_NE(new_owner, nullptr);
  WriteBatch first;
  first.fence = 1;
  first.Put("cart", "c1", "old", 0);
  ASSERT_TRUE(WriteAndWait(*old_owner, std::move(first)).ok());
  WriteBatch taken_over;
  taken_over.fence = 2;
  taken_over.Put("cart", "c1", "new", 1);
  ASSERT_TRUE(WriteAndWait(*new_owner, std::move(taken_over)).ok());
  // The old owner, with its old token, can write neither the value nor the journal.
  WriteBatch late;
  late.fence = 1;
  late.Put("cart", "c1", "late");
  absl::Status status = WriteAndWait(*old_owner, std::move(late));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("fenced"), std::string::npos) << status;
  WriteBatch late_append = store_contract::BatchOf(MakeAppend("cart", "c1", 0, 1));
  late_append.fence = 1;
  status = WriteAndWait(*old_owner, std::move(late_append));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  absl::StatusOr<VersionedValue> value = new_owner->ReadValue("cart", "c1");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, (VersionedValue{"new", 2}));
}

// Offsets come from one counter per type that every node increments in its transactions:
// no gaps, no duplicates, each entity's events in order.
TEST_F(PostgresStoreTest, NodesAppendingToOneTypeShareOneGaplessStream) {
  const std::string conninfo = FreshDatabase("stream");
  constexpr int kNodes = 2;
  constexpr int kThreadsPerNode = 8;
  constexpr int kAppends = 25;
  std::vector<StorePtr> nodes;
  for (int n = 0; n < kNodes; ++n) nodes.push_back(OpenOrFail(conninfo));
  for (const StorePtr& node : nodes) ASSERT_NE(node, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < kNodes; ++n) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([&, n, t] {
        const std::string key = "n" + std::to_string(n) + "t" + std::to_string(t);
        for (int i = 0; i < kAppends; ++i) {
          // Two types per batch, in both orders across threads: no deadlock on the counters.
          WriteBatch batch;
          batch.appends.push_back(MakeAppend(t % 2 ? "a" : "b", key, i, 1, key));
          batch.appends.push_back(MakeAppend(t % 2 ? "b" : "a", key, i, 1, key));
          failures += !WriteAndWait(*nodes[n], std::move(batch)).ok();
        }
      });
    }
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (const char* type : {"a", "b"}) {
    absl::StatusOr<std::vector<StreamEvent>> stream = nodes[0]->ReadStream(type, 1, 1'000'000);
    ASSERT_TRUE(stream.ok()) << stream.status();
    EXPECT_EQ(OffsetsOf(*stream), Iota(1, kNodes * kThreadsPerNode * kAppends)) << type;
    std::map<std::string, uint64_t> next;
    size_t in_order = 0;
    for (const StreamEvent& e : *stream) in_order += e.event.sequence == ++next[e.key];
    EXPECT_EQ(in_order, stream->size()) << type;
  }
}

// ---- Group commit ----

// Also prints the throughput: 64 writers, each waiting for its write before the next.
TEST_F(PostgresStoreTest, ConcurrentWritersShareCommits) {
  const std::string conninfo = FreshDatabase("group");
  StorePtr store = OpenOrFail(conninfo);
  ASSERT_NE(store, nullptr);
  constexpr int kWriters = 64;
  const auto run = [&](const char* what, int writes_per_writer, auto make_batch) {
    const StoreStats before = store->stats();
    std::atomic<int> failures{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    const auto start = std::chrono::steady_clock::now();
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        ready.fetch_add(1);
        while (ready.load() < kWriters) std::this_thread::yield();
        for (int i = 0; i < writes_per_writer; ++i) {
          absl::Status status = WriteAndWait(*store, make_batch(w, i));
          if (!status.ok()) {
            failures.fetch_add(1);
            ADD_FAILURE() << status;
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const StoreStats after = store->stats();
    const uint64_t writes = after.writes - before.writes;
    const uint64_t flushes = after.flushes - before.flushes;
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(writes, static_cast<uint64_t>(kWriters) * writes_per_writer);
    EXPECT_GE(flushes, 1u);
    EXPECT_LT(flushes, writes) << "one commit per write: no group commit";
    std::printf("[ postgres ] %s, %d writers: %.0f writes/s, %.1f writes per commit (%llu "
                "commits)\n",
                what, kWriters, static_cast<double>(writes) / seconds,
                flushes == 0 ? 0.0 : static_cast<double>(writes) / static_cast<double>(flushes),
                static_cast<unsigned long long>(flushes));
  };
  run("value puts (conditional)", 40, [](int w, int i) {
    WriteBatch batch;
    batch.Put("counter", "w" + std::to_string(w), std::string(100, 'x'), i);
    return batch;
  });
  run("journal appends (one event)", 40, [](int w, int i) {
    return store_contract::BatchOf(MakeAppend("cart", "w" + std::to_string(w), i, 1));
  });
}

// ---- Failures ----

// A crash of the database while writes are in flight: nothing acknowledged is lost, writes
// fail with UNAVAILABLE while it is down, and work again once it is back, without reopening.
TEST_F(PostgresStoreTest, DatabaseCrashUnderLoad) {
  absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();  // fsync on
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::string> conninfo = (*server)->CreateDatabase("crash");
  ASSERT_TRUE(conninfo.ok()) << conninfo.status();
  StorePtr store = OpenOrFail(*conninfo);
  ASSERT_NE(store, nullptr);

  constexpr int kWriters = 16;
  // kDown: from Kill() until Restart() begins; a write that starts and ends then must fail.
  // Writes that start in one phase and end in another count as kCrossing.
  enum Phase { kBefore, kDown, kRestarting, kAfter, kStop, kCrossing };
  std::atomic<int> phase{kBefore};
  absl::Mutex mu;
  std::vector<std::string> acknowledged;  // keys whose write was acknowledged OK
  std::map<int, int> ok_in_phase;
  std::map<int, int> failed_in_phase;
  std::vector<std::string> wrong_failures;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; phase.load() != kStop; ++i) {
        const int at = phase.load();
        const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
        WriteBatch batch;
        batch.Put("kv", key, "value of " + key);
        batch.appends.push_back(MakeAppend("log", key, 0, 1, key));
        absl::Status status = WriteAndWait(*store, std::move(batch));
        const int in = at == phase.load() ? at : kCrossing;
        absl::MutexLock lock(&mu);
        if (status.ok()) {
          acknowledged.push_back(key);
          ++ok_in_phase[in];
        } else {
          ++failed_in_phase[in];
          if (status.code() != absl::StatusCode::kUnavailable) {
            wrong_failures.push_back(status.ToString());
          }
        }
        if (!status.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  const auto wait_for = [&](auto condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  };
  const auto count = [&](std::map<int, int>& m, int at) {
    absl::MutexLock lock(&mu);
    return m[at];
  };
  EXPECT_TRUE(wait_for([&] { return count(ok_in_phase, kBefore) >= 300; }));
  ASSERT_TRUE((*server)->Kill().ok());
  phase.store(kDown);
  EXPECT_TRUE(wait_for([&] { return count(failed_in_phase, kDown) >= 2 * kWriters; }));
  EXPECT_FALSE(store->Health().ok());
  EXPECT_EQ(store->Health().code(), absl::StatusCode::kUnavailable) << store->Health();
  phase.store(kRestarting);
  ASSERT_TRUE((*server)->Restart().ok()) << (*server)->log();
  // The shards reconnect by themselves (backoff at most 2 s).
  EXPECT_TRUE(wait_for([&] { return store->Health().ok(); })) << store->Health();
  phase.store(kAfter);
  EXPECT_TRUE(wait_for([&] { return count(ok_in_phase, kAfter) >= 100; }));
  phase.store(kStop);
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(count(ok_in_phase, kDown), 0);
  EXPECT_GE(count(failed_in_phase, kDown), 2 * kWriters);
  EXPECT_TRUE(wrong_failures.empty()) << wrong_failures.front();
  // Everything acknowledged is there, value and event, read by the same store.
  size_t present = 0;
  for (const std::string& key : acknowledged) {
    absl::StatusOr<std::vector<Event>> events = store->ReadEvents("log", key, 1, 10);
    present += ValueOrError(*store, "kv", key) == "value of " + key && events.ok() &&
               *events == MakeAppend("log", key, 0, 1, key).events;
  }
  EXPECT_EQ(present, acknowledged.size());
  // And the stream has no gaps or duplicates.
  absl::StatusOr<std::vector<StreamEvent>> stream = store->ReadStream("log", 1, 1'000'000);
  ASSERT_TRUE(stream.ok()) << stream.status();
  ASSERT_FALSE(stream->empty());
  EXPECT_EQ(OffsetsOf(*stream), Iota(1, stream->size()));
}

TEST_F(PostgresStoreTest, UnreachableDatabaseAtStartIsUnavailable) {
  absl::StatusOr<std::unique_ptr<PostgresServer>> stopped = PostgresServer::Start();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  const int port = (*stopped)->port();
  ASSERT_TRUE((*stopped)->Stop().ok());  // nothing listens on `port` now
  PostgresOptions options;
  options.conninfo =
      "postgresql://massa:conninfo-secret@127.0.0.1:" + std::to_string(port) + "/massa";
  options.password = "option-secret";
  options.connect_timeout = std::chrono::milliseconds(1500);
  absl::StatusOr<StorePtr> store = OpenPostgresStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  const std::string message(store.status().message());
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
  EXPECT_EQ(message.find("conninfo-secret"), std::string::npos) << message;
  EXPECT_EQ(message.find("option-secret"), std::string::npos) << message;
}

TEST_F(PostgresStoreTest, BadConninfoIsInvalidArgument) {
  for (const std::string conninfo :
       {"host=127.0.0.1 no_such_option=1 password=kv-secret",
        "postgresql://massa:uri-secret@127.0.0.1:5432/massa?no_such_option=1",
        "postgresql://massa:uri-secret@[::1/massa", "host='unterminated password=kv-secret"}) {
    PostgresOptions options;
    options.conninfo = conninfo;
    options.password = "option-secret";
    absl::StatusOr<StorePtr> store = OpenPostgresStore(options);
    ASSERT_FALSE(store.ok()) << conninfo;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument)
        << conninfo << ": " << store.status();
    const std::string message(store.status().message());
    for (const char* secret : {"kv-secret", "uri-secret", "option-secret"}) {
      EXPECT_EQ(message.find(secret), std::string::npos) << message;
    }
  }
}

TEST_F(PostgresStoreTest, ErrorsFromTheServerDoNotShowThePassword) {
  // The server answers (no such database); the password is in the conninfo and the options.
  PostgresOptions options;
  options.conninfo = "postgresql://postgres:conninfo-secret@127.0.0.1:" +
                     std::to_string(g_server->port()) + "/no_such_database";
  options.password = "option-secret";
  options.connect_timeout = std::chrono::milliseconds(500);
  absl::StatusOr<StorePtr> store = OpenPostgresStore(options);
  ASSERT_FALSE(store.ok());
  const std::string message(store.status().message());
  EXPECT_NE(message.find("no_such_database"), std::string::npos) << message;
  EXPECT_EQ(message.find("conninfo-secret"), std::string::npos) << message;
  EXPECT_EQ(message.find("option-secret"), std::string::npos) << message;
}

TEST_F(PostgresStoreTest, PasswordOptionIsUsedWhenTheConninfoHasNone) {
  // A role that must log in with a password over TCP would need pg_hba changes; what can be
  // checked here is that a password option does not break a connection that needs none.
  PostgresOptions options = OptionsFor(FreshDatabase("password"));
  options.password = "unused";
  absl::StatusOr<StorePtr> opened = OpenPostgresStore(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  StorePtr store = *std::move(opened);
  WriteBatch batch;
  batch.Put("t", "k", "v");
  EXPECT_TRUE(WriteAndWait(*store, std::move(batch)).ok());
}

// A write of several statements that fails a check is rolled back alone; the writes queued
// around it, in the same transaction, commit.
TEST_F(PostgresStoreTest, FailedMultiStatementWriteFailsAloneInItsGroup) {
  StorePtr store = OpenOrFail(FreshDatabase("alone"));
  ASSERT_NE(store, nullptr);
  constexpr size_t kWrites = 60;
  CallbackTracker tracker(kWrites);
  for (size_t i = 0; i < kWrites; ++i) {
    WriteBatch batch;
    batch.Put("t", "k" + std::to_string(i), "v");
    if (i % 3 == 1) {  // stale: expects a journal that does not exist
      batch.appends.push_back(MakeAppend("t", "j" + std::to_string(i), 5, 1));
    }
    store->Write(std::move(batch), tracker.Callback(i));
  }
  ASSERT_TRUE(tracker.WaitAll());
  for (size_t i = 0; i < kWrites; ++i) {
    const bool stale = i % 3 == 1;
    EXPECT_EQ(tracker.status(i).code(),
              stale ? absl::StatusCode::kAborted : absl::StatusCode::kOk)
        << i << ": " << tracker.status(i);
    EXPECT_EQ(ValueOrError(*store, "t", "k" + std::to_string(i)), stale ? "<none>" : "v") << i;
  }
  EXPECT_LT(store->stats().flushes, kWrites);
}

TEST_F(PostgresStoreTest, SequencesPastBigintAreInvalidArgument) {
  StorePtr store = OpenOrFail(FreshDatabase("bigint"));
  ASSERT_NE(store, nullptr);
  absl::Status status =
      WriteAndWait(*store, store_contract::BatchOf(MakeAppend("t", "k", uint64_t{1} << 63, 1)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  WriteBatch fenced;
  fenced.fence = uint64_t{1} << 63;
  fenced.Put("t", "k", "v");
  status = WriteAndWait(*store, std::move(fenced));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ValueOrError(*store, "t", "k"), "<none>");
}

// ---- Encodings ----

TEST(PostgresWireTest, MetadataRoundTripsAndRejectsDamage) {
  using std::string_literals::operator""s;
  const Metadata metadata = {{"", ""}, {"k\0"s, std::string(300, '\xff')}, {"x", "1"}, {"x", "2"}};
  const std::string encoded = postgres::EncodeMetadata(metadata);
  Metadata decoded;
  ASSERT_TRUE(postgres::DecodeMetadata(encoded, &decoded));
  EXPECT_EQ(decoded, metadata);
  ASSERT_TRUE(postgres::DecodeMetadata(postgres::EncodeMetadata({}), &decoded));
  EXPECT_TRUE(decoded.empty());
  for (size_t cut = 0; cut < encoded.size(); ++cut) {
    EXPECT_FALSE(postgres::DecodeMetadata(encoded.substr(0, cut), &decoded)) << cut;
  }
  EXPECT_FALSE(postgres::DecodeMetadata(encoded + "x", &decoded));
  EXPECT_FALSE(postgres::DecodeMetadata("\x02", &decoded));  // unknown format
}

TEST(PostgresWireTest, ArraysUsePostgresBinaryFormat) {
  using std::string_literals::operator""s;
  // array_send of '{"\\x61",""}'::bytea[]: 1 dimension, no NULLs, element OID 17, 2
  // elements from index 1, then length-prefixed elements.
  EXPECT_EQ(postgres::EncodeArray(postgres::kByteaOid, {"a", ""}),
            "\0\0\0\1\0\0\0\0\0\0\0\x11\0\0\0\2\0\0\0\1"
            "\0\0\0\1a\0\0\0\0"s);
  EXPECT_EQ(postgres::EncodeInt64Array({-1}),
            "\0\0\0\1\0\0\0\0\0\0\0\x14\0\0\0\1\0\0\0\1"
            "\0\0\0\x08\xff\xff\xff\xff\xff\xff\xff\xff"s);
}

}  // namespace
}  // namespace massa::store

// The suite's macros need its unqualified name, hence its namespace.
namespace massa::store_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, StoreContractTest,
                               ::testing::Types<massa::store::PostgresBackend>);
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, EffectsContractTest,
                               ::testing::Types<massa::store::PostgresBackend>);
}  // namespace massa::store_contract
