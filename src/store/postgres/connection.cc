#include "store/postgres/connection.h"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "massa/common/status.h"
#include "store/postgres/libpq.h"
#include "store/postgres/wire.h"

namespace massa::store::postgres {
namespace {

// libpq's messages on one line: "...refused\n\tIs the server running...\n" becomes
// "...refused Is the server running...". Spaces stay as they are.
std::string OneLine(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r' && text[i] != '\t') {
      out.push_back(text[i]);
      continue;
    }
    while (i + 1 < text.size() && std::isspace(static_cast<unsigned char>(text[i + 1])) != 0) ++i;
    if (!out.empty() && out.back() != ' ' && i + 1 < text.size()) out.push_back(' ');
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Passwords in a conninfo that libpq could not parse, found by looking: the value after
// "password=" (key=value form or a URI query), and the password of a URI's user:password@.
std::vector<std::string> GuessSecrets(std::string_view conninfo) {
  std::vector<std::string> out;
  for (size_t at = conninfo.find("password"); at != std::string_view::npos;
       at = conninfo.find("password", at + 1)) {
    size_t i = at + 8;
    while (i < conninfo.size() && conninfo[i] == ' ') ++i;
    if (i >= conninfo.size() || conninfo[i] != '=') continue;
    ++i;
    while (i < conninfo.size() && conninfo[i] == ' ') ++i;
    const bool quoted = i < conninfo.size() && conninfo[i] == '\'';
    if (quoted) ++i;
    size_t end = i;
    while (end < conninfo.size() &&
           (quoted ? conninfo[end] != '\'' : conninfo[end] != ' ' && conninfo[end] != '&')) {
      end += (quoted && conninfo[end] == '\\') ? 2 : 1;
    }
    out.emplace_back(conninfo.substr(i, std::min(end, conninfo.size()) - i));
  }
  const size_t scheme = conninfo.find("://");
  if (scheme != std::string_view::npos) {
    const std::string_view rest = conninfo.substr(scheme + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    const size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      const std::string_view userinfo = authority.substr(0, at);
      const size_t colon = userinfo.find(':');
      if (colon != std::string_view::npos) out.emplace_back(userinfo.substr(colon + 1));
    }
  }
  return out;
}

void DropNotice(void* /*arg*/, const char* /*message*/) {}

}  // namespace

// ---- ConnectSpec ----

absl::StatusOr<ConnectSpec> ConnectSpec::Parse(const PostgresOptions& options) {
  MASSA_RETURN_IF_ERROR(LoadLibpq());
  ConnectSpec spec;
  spec.conninfo_ = options.conninfo;
  spec.password_ = options.password;
  spec.secrets_ = GuessSecrets(options.conninfo);
  if (!options.password.empty()) spec.secrets_.push_back(options.password);
  char* error = nullptr;
  PQconninfoOption* parsed = Pq().PQconninfoParse(options.conninfo.c_str(), &error);
  if (parsed == nullptr) {
    std::string message = error != nullptr ? OneLine(error) : "out of memory";
    Pq().PQfreemem(error);
    return absl::InvalidArgumentError(
        absl::StrCat("store: cannot parse the PostgreSQL conninfo: ", spec.Redact(message)));
  }
  std::string host;
  std::string port;
  std::string dbname;
  std::string user;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "password" && *o->val != '\0') spec.secrets_.emplace_back(o->val);
    if (keyword == "host") host = o->val;
    if (keyword == "hostaddr" && host.empty()) host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") dbname = o->val;
    if (keyword == "user") user = o->val;
  }
  Pq().PQconninfoFree(parsed);
  // Longest first, so that a secret containing another is replaced whole.
  spec.secrets_.erase(std::remove(spec.secrets_.begin(), spec.secrets_.end(), std::string()),
                      spec.secrets_.end());
  std::sort(spec.secrets_.begin(), spec.secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  if (host.empty()) host = "localhost";
  if (port.empty()) port = "5432";
  if (dbname.empty()) dbname = user;
  spec.server_ = spec.Redact(absl::StrCat(host, ":", port, dbname.empty() ? "" : "/", dbname));
  return spec;
}

std::string ConnectSpec::Redact(std::string_view message) const {
  std::string out(message);
  for (const std::string& secret : secrets_) {
    if (!secret.empty()) out = absl::StrReplaceAll(out, {{secret, "***"}});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ConnectSpec::Keywords(
    std::chrono::milliseconds timeout) const {
  // libpq counts connect_timeout in whole seconds, at least 2.
  const long long seconds = std::max<long long>(2, (timeout.count() + 999) / 1000);
  std::vector<std::pair<std::string, std::string>> out = {
      {"connect_timeout", std::to_string(seconds)},
      {"fallback_application_name", "massa"},
      // A server that vanishes without closing the connection is noticed within about a
      // minute instead of the kernel's two hours.
      {"keepalives_idle", "30"},
      {"keepalives_interval", "10"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", "60000"},
  };
  if (!password_.empty()) out.emplace_back("password", password_);
  out.emplace_back("dbname", conninfo_);  // expanded; overrides everything above
  return out;
}

// ---- Params ----

void Params::Add(const char* data, size_t size) {
  // A NULL pointer is a NULL parameter to libpq; an empty value needs a real one.
  values_.push_back(data != nullptr ? data : "");
  lengths_.push_back(static_cast<int>(size));
  formats_.push_back(1);
}

Params& Params::Bytes(std::string_view bytes) {
  Add(bytes.data(), bytes.size());
  return *this;
}

Params& Params::Encoded(std::string bytes) {
  const std::string& kept = owned_.emplace_back(std::move(bytes));
  Add(kept.data(), kept.size());
  return *this;
}

Params& Params::Null() {
  values_.push_back(nullptr);
  lengths_.push_back(0);
  formats_.push_back(1);
  return *this;
}

Params& Params::Int64(int64_t v) {
  std::string bytes;
  AppendBigEndian64(&bytes, static_cast<uint64_t>(v));
  return Encoded(std::move(bytes));
}

Params& Params::Bool(bool v) { return Encoded(std::string(1, v ? '\1' : '\0')); }

// ---- Result ----

Result& Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) Pq().PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Result::~Result() {
  if (result_ != nullptr) Pq().PQclear(result_);
}

bool Result::ok() const {
  if (result_ == nullptr) return false;
  const ExecStatusType status = Pq().PQresultStatus(result_);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

bool Result::failed() const {
  if (result_ == nullptr) return false;
  const ExecStatusType status = Pq().PQresultStatus(result_);
  return status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
         status == PGRES_NONFATAL_ERROR;
}

bool Result::skipped() const {
  return result_ != nullptr && Pq().PQresultStatus(result_) == PGRES_PIPELINE_ABORTED;
}

bool Result::sync() const {
  return result_ != nullptr && Pq().PQresultStatus(result_) == PGRES_PIPELINE_SYNC;
}

std::string Result::sqlstate() const {
  const char* field = result_ != nullptr ? Pq().PQresultErrorField(result_, PG_DIAG_SQLSTATE) : nullptr;
  return field != nullptr ? field : "";
}

std::string Result::message() const {
  if (result_ == nullptr) return "no result";
  const char* primary = Pq().PQresultErrorField(result_, PG_DIAG_MESSAGE_PRIMARY);
  return OneLine(primary != nullptr ? primary : Pq().PQresultErrorMessage(result_));
}

std::string Result::detail() const {
  const char* field =
      result_ != nullptr ? Pq().PQresultErrorField(result_, PG_DIAG_MESSAGE_DETAIL) : nullptr;
  return field != nullptr ? field : "";
}

int Result::rows() const { return result_ != nullptr ? Pq().PQntuples(result_) : 0; }

bool Result::null(int row, int column) const { return Pq().PQgetisnull(result_, row, column) != 0; }

std::string_view Result::bytes(int row, int column) const {
  return std::string_view(Pq().PQgetvalue(result_, row, column),
                          static_cast<size_t>(Pq().PQgetlength(result_, row, column)));
}

std::optional<int64_t> Result::int64(int row, int column) const {
  if (null(row, column) || Pq().PQgetlength(result_, row, column) != 8) return std::nullopt;
  return static_cast<int64_t>(GetBigEndian64(Pq().PQgetvalue(result_, row, column)));
}

std::optional<int32_t> Result::int32(int row, int column) const {
  if (null(row, column) || Pq().PQgetlength(result_, row, column) != 4) return std::nullopt;
  return static_cast<int32_t>(GetBigEndian32(Pq().PQgetvalue(result_, row, column)));
}

// ---- Connection ----

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectSpec& spec,
                                                             std::chrono::milliseconds timeout) {
  const std::vector<std::pair<std::string, std::string>> keywords = spec.Keywords(timeout);
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [key, value] : keywords) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = Pq().PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot connect to PostgreSQL at ", spec.server(), ": out of memory"));
  }
  if (Pq().PQstatus(conn) != CONNECTION_OK) {
    std::string message = spec.Redact(OneLine(Pq().PQerrorMessage(conn)));
    Pq().PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("store: cannot connect to PostgreSQL at ", spec.server(), ": ", message));
  }
  Pq().PQsetNoticeProcessor(conn, DropNotice, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn, spec));
}

Connection::~Connection() { Pq().PQfinish(conn_); }

bool Connection::good() const { return Pq().PQstatus(conn_) == CONNECTION_OK; }

bool Connection::CheckAlive() {
  if (!good()) return false;
  if (Pq().PQconsumeInput(conn_) == 0) return false;
  return good();
}

std::string Connection::error() const { return spec_.Redact(OneLine(Pq().PQerrorMessage(conn_))); }

std::string Connection::Describe(const Result& result) const {
  if (result.none() || !good()) return error();
  std::string message = spec_.Redact(result.message());
  const std::string sqlstate = result.sqlstate();
  if (!sqlstate.empty()) absl::StrAppend(&message, " (SQLSTATE ", sqlstate, ")");
  return message;
}

absl::Status Connection::Prepare(const char* name, const char* sql,
                                 const std::vector<unsigned>& param_types) {
  const std::vector<Oid> types(param_types.begin(), param_types.end());
  Result result(Pq().PQprepare(conn_, name, sql, static_cast<int>(types.size()), types.data()));
  if (result.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat("store: preparing ", name, ": ", Describe(result));
  return good() ? absl::InternalError(message) : absl::UnavailableError(message);
}

Result Connection::Execute(const char* statement, const Params& params) {
  return Result(Pq().PQexecPrepared(conn_, statement, params.size(), params.values(), params.lengths(),
                               params.formats(), /*resultFormat=*/1));
}

Result Connection::ExecuteSql(const std::string& sql) { return Result(Pq().PQexec(conn_, sql.c_str())); }

bool Connection::EnterPipelineMode() {
  return Pq().PQenterPipelineMode(conn_) == 1 && Pq().PQsetnonblocking(conn_, 1) == 0;
}

bool Connection::SendPrepared(const char* statement, const Params& params) {
  return Pq().PQsendQueryPrepared(conn_, statement, params.size(), params.values(), params.lengths(),
                             params.formats(), /*resultFormat=*/1) == 1;
}

bool Connection::SendSql(const char* sql) {
  return Pq().PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 1) == 1;
}

bool Connection::SendSync() { return Pq().PQpipelineSync(conn_) == 1; }

bool Connection::Flush() {
  for (;;) {
    const int flushed = Pq().PQflush(conn_);
    if (flushed == 0) return true;
    if (flushed < 0) return false;
    pollfd fd = {Pq().PQsocket(conn_), POLLIN | POLLOUT, 0};
    if (poll(&fd, 1, -1) < 0 && errno != EINTR) return false;
    if ((fd.revents & POLLIN) != 0 && Pq().PQconsumeInput(conn_) == 0) return false;
  }
}

Result Connection::Next() {
  Result result(Pq().PQgetResult(conn_));
  if (result.none() || result.sync()) return result;
  // Each statement's results end with a null; the store's statements have one result each.
  for (int extra = 0; extra < 16; ++extra) {
    PGresult* more = Pq().PQgetResult(conn_);
    if (more == nullptr) break;
    Pq().PQclear(more);
  }
  return result;
}

}  // namespace massa::store::postgres
