// File: store/postgres/connection.h
//
// A thin layer over libpq for the PostgreSQL store: where to connect (ConnectSpec), binary
// statement parameters (Params), results (Result) and one connection (Connection), used either
// for blocking statements or in pipeline mode. libpq's own types stay in connection.cc; this
// header only names its two structs.
//
// Secrets: every message that leaves this layer is passed through ConnectSpec::Redact, and
// names the server as host:port/database, never with the conninfo itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "massa/store/store.h"

struct pg_conn;
struct pg_result;

namespace massa::store::postgres {

// What libpq needs to connect, from PostgresOptions. Copyable; immutable once parsed.
class ConnectSpec {
 public:
  // INVALID_ARGUMENT when libpq cannot parse options.conninfo.
  static absl::StatusOr<ConnectSpec> Parse(const PostgresOptions& options);

  // "host:port/database" for messages, e.g. "db.example:5432/massa"; never the password.
  const std::string& server() const { return server_; }

  // `message` with every secret this spec knows (the password option, a password in the
  // conninfo) replaced by "***".
  std::string Redact(std::string_view message) const;

  // libpq keywords and values for PQconnectdbParams (with expand_dbname): Massa's defaults
  // first, then the conninfo itself, whose settings win. `timeout` becomes libpq's
  // connect_timeout unless the conninfo sets one.
  std::vector<std::pair<std::string, std::string>> Keywords(
      std::chrono::milliseconds timeout) const;

 private:
  std::string conninfo_;
  std::string password_;  // from PostgresOptions; used when the conninfo has none
  std::vector<std::string> secrets_;
  std::string server_;
};

// The parameters of one statement, all sent in binary format. Bytes() keeps a view: the bytes
// must stay alive until the statement is sent (libpq copies them then). Everything else is
// encoded into storage the Params owns. Not copyable or movable (it holds views of itself).
class Params {
 public:
  Params() = default;
  Params(const Params&) = delete;
  Params& operator=(const Params&) = delete;

  Params& Bytes(std::string_view bytes);            // bytea
  Params& Encoded(std::string bytes);               // any type, already in binary form
  Params& Null();
  Params& Int64(int64_t v);                         // int8
  Params& Bool(bool v);                             // bool

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  void Add(const char* data, size_t size);

  std::deque<std::string> owned_;  // a deque: adding never moves earlier elements
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// One result of a statement, or none (a lost connection). Move-only.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* result) : result_(result) {}
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&& other) noexcept;
  ~Result();

  bool none() const { return result_ == nullptr; }
  // The statement succeeded (with or without rows).
  bool ok() const;
  // The statement failed; sqlstate() and message() say why.
  bool failed() const;
  // Pipeline mode: skipped because an earlier statement of the pipeline failed.
  bool skipped() const;
  // Pipeline mode: the result of a sync point.
  bool sync() const;

  std::string sqlstate() const;
  std::string message() const;  // primary message, without the trailing newline
  std::string detail() const;

  int rows() const;
  bool null(int row, int column) const;
  std::string_view bytes(int row, int column) const;  // binary results
  // int8 or int4 columns of binary results; nullopt when NULL (or not of that size).
  std::optional<int64_t> int64(int row, int column) const;
  std::optional<int32_t> int32(int row, int column) const;

 private:
  pg_result* result_ = nullptr;
};

// One open connection. Not thread-safe: one thread at a time.
class Connection {
 public:
  // Connects once; UNAVAILABLE naming spec.server() and libpq's reason.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const ConnectSpec& spec,
                                                          std::chrono::milliseconds timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // False once libpq has seen the connection fail.
  bool good() const;
  // Reads whatever the server sent while the connection was idle, without a round trip, and
  // returns good(): notices a server that closed the connection (restart, crash).
  bool CheckAlive();
  // libpq's last error, redacted, without the trailing newline.
  std::string error() const;
  // Why `result` is not ok(), redacted: the statement's error, or the connection's.
  std::string Describe(const Result& result) const;
  // The server as ConnectSpec::server() names it.
  const std::string& server() const { return spec_.server(); }

  // Blocking mode (not in pipeline mode).
  [[nodiscard]] absl::Status Prepare(const char* name, const char* sql,
                                     const std::vector<unsigned>& param_types);
  Result Execute(const char* statement, const Params& params);  // prepared; binary results
  Result ExecuteSql(const std::string& sql);                    // simple query; text results

  // Pipeline mode: statements are queued and sent together; their results come back in order,
  // each sync point adding one. The connection is non-blocking in this mode.
  [[nodiscard]] bool EnterPipelineMode();
  [[nodiscard]] bool SendPrepared(const char* statement, const Params& params);
  [[nodiscard]] bool SendSql(const char* sql);
  [[nodiscard]] bool SendSync();
  // Sends everything queued, reading incoming results meanwhile so that neither side blocks
  // on a full socket buffer. False when the connection failed.
  [[nodiscard]] bool Flush();
  // The next statement's (or sync point's) result; none() when the connection failed.
  Result Next();

 private:
  Connection(pg_conn* conn, ConnectSpec spec) : conn_(conn), spec_(std::move(spec)) {}

  pg_conn* conn_;
  ConnectSpec spec_;  // for Redact
};

}  // namespace massa::store::postgres
