// The PostgreSQL Store (schema and statements in schema.h, libpq behind connection.h).
//
// Writes. Write() checks a batch's shape on the caller's thread and queues it on one of the
// write shards, chosen by hash(entity_type, key) of the batch's first mutation or append, so
// that the writes of one entity are applied, and called back, in the order of the Write calls
// (for batches that write several entities, that holds for the first one). Each shard has a
// thread and a connection in pipeline mode. The thread takes every write queued while its
// previous transaction ran (up to kMaxGroupWrites / kMaxGroupBytes) and commits them as one
// transaction, sent in one round trip:
//
//   BEGIN; [SELECT massa_lock_streams(types)]; <the writes' statements>; COMMIT; sync
//
// A write of one mutation or one append is one statement, massa_put or massa_append, called
// with raise = false: it checks (fence, expected version or sequence) before it changes
// anything and reports a failed check as its result, so the write fails alone and the rest of
// the pipeline goes on. Any other write (several mutations and appends, or idempotency records,
// timer changes and outbox records with them) first checks and raises the fence of each entity
// it writes (massa_fence), then runs its statements with raise = true: a
// failed check raises, the transaction is rolled back, and the group is sent again without
// that write (no savepoints: a subtransaction per write would overflow PostgreSQL's cache of
// 64 subtransactions per transaction under load, and failures are rare). Transient errors
// (serialization failures, deadlocks) roll back and resend the whole group, a few times.
// Callbacks run after COMMIT returns, in write order, with no lock held.
//
// Failures. A lost connection fails the writes in flight with UNAVAILABLE: "not applied" when
// the transaction was known to be rolled back or COMMIT was never queued, "may or may not have
// been applied" otherwise. The shard then reconnects with backoff (100 ms doubling to 2 s);
// while it is down, writes fail at once with UNAVAILABLE, and Health() says why.
//
// Empty batches carry no entity: they are barriers that every shard passes in order, and are
// acknowledged when the last shard has passed them (after every write queued before them on
// any shard has been called back).
//
// Reads take a connection from a small pool (blocking while all are busy), reconnecting a
// lost one on use.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "massa/store/store.h"
#include "spdlog/spdlog.h"
#include "store/journal_checks.h"
#include "store/postgres/connection.h"
#include "store/postgres/schema.h"
#include "store/postgres/wire.h"

namespace massa::store {
namespace {

using postgres::ConnectSpec;
using postgres::Connection;
using postgres::Params;
using postgres::Result;
using postgres::Statement;
using postgres::StatementName;

constexpr size_t kMaxGroupWrites = 256;
constexpr size_t kMaxGroupBytes = size_t{16} << 20;
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
// The longest one connection attempt may take (libpq's connect_timeout), unless the conninfo
// says otherwise.
constexpr std::chrono::milliseconds kMaxAttemptTimeout{10'000};
constexpr int kMaxTransientRetries = 5;
// How often an idle shard looks for a connection the server closed (no round trip).
constexpr absl::Duration kIdleCheck = absl::Seconds(1);
constexpr uint64_t kMaxBigint = INT64_MAX;

using Clock = std::chrono::steady_clock;
using EntityRef = std::pair<std::string_view, std::string_view>;  // (entity_type, key)

std::string SqlStateClass(const std::string& sqlstate) { return sqlstate.substr(0, 2); }

// The checks Write makes before queueing: the shape of the appends, then what PostgreSQL's
// bigint columns can hold.
absl::Status CheckBatch(const WriteBatch& batch) {
  for (const JournalAppend& append : batch.appends) {
    absl::Status shape = internal::CheckAppendShape(append);
    if (!shape.ok()) return shape;
  }
  const auto too_big = [](std::string_view what, uint64_t v) {
    return absl::InvalidArgumentError(absl::StrCat("store: ", std::string(what), " ", v,
                                                   " is past 2^63 - 1, the most PostgreSQL's "
                                                   "bigint holds"));
  };
  if (batch.fence > kMaxBigint) return too_big("fence", batch.fence);
  for (const WriteBatch::Mutation& m : batch.mutations) {
    if (m.expected_version.value_or(0) > kMaxBigint) {
      return too_big("expected version", *m.expected_version);
    }
  }
  for (const JournalAppend& a : batch.appends) {
    if (a.expected_sequence > kMaxBigint || a.events.size() > kMaxBigint - a.expected_sequence) {
      return too_big("last sequence after the append to " + internal::EntityName(a.entity_type,
                                                                                  a.key),
                     a.expected_sequence + a.events.size());
    }
  }
  return absl::OkStatus();
}

// The distinct entities `batch` writes: its mutations', appends', idempotency records',
// timers' and the fenced ones'.
std::vector<EntityRef> EntitiesOf(const WriteBatch& batch) {
  std::vector<EntityRef> out;
  const auto add = [&out](std::string_view type, std::string_view key) {
    const EntityRef id(type, key);
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  for (const WriteBatch::Mutation& m : batch.mutations) add(m.entity_type, m.key);
  for (const JournalAppend& a : batch.appends) add(a.entity_type, a.key);
  for (const IdempotencyRecord& r : batch.idempotency) add(r.entity_type, r.key);
  for (const TimerChange& c : batch.timers) add(c.timer.entity_type, c.timer.key);
  for (const auto& [type, key] : batch.fenced) add(type, key);
  return out;
}

// Whether `batch` is a single massa_put or massa_append, which checks its own fence.
bool IsSingleStatement(const WriteBatch& batch) {
  return batch.mutations.size() + batch.appends.size() == 1 && batch.idempotency.empty() &&
         batch.timers.empty() && batch.outbox.empty() && batch.outbox_done.empty() &&
         batch.fenced.empty();
}

size_t BytesOf(const WriteBatch& batch) {
  size_t bytes = 0;
  for (const WriteBatch::Mutation& m : batch.mutations) {
    bytes += 64 + m.entity_type.size() + m.key.size() + (m.value ? m.value->size() : 0);
  }
  for (const JournalAppend& a : batch.appends) {
    bytes += 64 + a.entity_type.size() + a.key.size() + (a.snapshot ? a.snapshot->state.size() : 0);
    for (const Event& e : a.events) bytes += 64 + e.type.size() + e.payload.size();
  }
  for (const IdempotencyRecord& r : batch.idempotency) {
    bytes += 64 + r.entity_type.size() + r.key.size() + r.idempotency_key.size() + r.record.size();
  }
  for (const TimerChange& c : batch.timers) {
    bytes += 64 + c.timer.entity_type.size() + c.timer.key.size() + c.timer.name.size() +
             c.timer.record.size();
  }
  for (const OutboxRecord& r : batch.outbox) bytes += 64 + r.id.size() + r.record.size();
  for (const std::string& id : batch.outbox_done) bytes += 16 + id.size();
  return bytes;
}

// An empty batch, passed by every shard; acknowledged by the last.
struct Barrier {
  Barrier(size_t parts, WriteCallback callback) : remaining(parts), done(std::move(callback)) {}
  std::atomic<size_t> remaining;
  WriteCallback done;
};

// A write queued on a shard.
struct Pending {
  WriteBatch batch;
  WriteCallback done;
  std::shared_ptr<Barrier> barrier;  // set for a part of an empty batch
  absl::Status status;               // the outcome once `decided`
  bool decided = false;              // failed (or, for a barrier, passed) without the database
  size_t bytes = 0;
};

struct Counters {
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> flushes{0};
};

void PassBarrier(Barrier& barrier, Counters& counters) {
  if (barrier.remaining.fetch_sub(1) != 1) return;
  counters.writes.fetch_add(1, std::memory_order_relaxed);
  std::move(barrier.done)(absl::OkStatus());
}

// Opens a connection ready for the store's statements: prepared, and in pipeline mode for a
// writer.
absl::StatusOr<std::unique_ptr<Connection>> OpenPrepared(const ConnectSpec& spec,
                                                         std::chrono::milliseconds timeout,
                                                         bool pipeline) {
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(spec, timeout);
  if (!conn.ok()) return conn.status();
  absl::Status prepared = postgres::PrepareStatements(**conn);
  if (!prepared.ok()) return prepared;
  if (pipeline && !(*conn)->EnterPipelineMode()) {
    return absl::UnavailableError(absl::StrCat("store: entering pipeline mode on ", spec.server(),
                                               ": ", (*conn)->error()));
  }
  return conn;
}

// One write shard: a queue, a thread and its connection.
class Shard {
 public:
  Shard(const ConnectSpec& spec, std::chrono::milliseconds connect_timeout, Counters& counters,
        std::unique_ptr<Connection> conn)
      : spec_(spec), connect_timeout_(connect_timeout), counters_(counters),
        conn_(std::move(conn)) {
    thread_ = std::thread([this] { Loop(); });
  }

  ~Shard() { Stop(); }

  // Finishes the queued writes, then stops the thread. Later writes are refused.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  // Queues `p` (moving from it) unless the shard is stopping; false then, and `p` is intact.
  bool Enqueue(Pending& p) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(p));
    return true;
  }

  absl::Status Health() const {
    absl::MutexLock lock(&health_mu_);
    return health_;
  }

 private:
  // What one statement of an attempt is for.
  struct Step {
    enum Kind {
      kBegin,
      kLockStreams,
      kFence,
      kPut,
      kAppend,
      kIdempotency,
      kTimer,
      kOutbox,
      kOutboxDone,
      kCommit
    } kind = kBegin;
    size_t write = 0;  // index in the group (every kind but kBegin, kLockStreams, kCommit)
    // The entity (kFence), mutation (kPut), append (kAppend), record (kIdempotency, kOutbox) or
    // timer change (kTimer) of the write.
    size_t item = 0;
    bool raise = false;
  };
  enum class Attempt { kCommitted, kResend, kTransient, kDone };

  void Loop() {
    for (;;) {
      std::vector<Pending> group;
      const absl::Duration wait =
          conn_ != nullptr ? kIdleCheck
                           : absl::FromChrono(std::max(Clock::duration::zero(),
                                                       next_connect_ - Clock::now()));
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(this, &Shard::HasWorkOrStopping), wait);
        size_t bytes = 0;
        while (!queue_.empty() && group.size() < kMaxGroupWrites &&
               (group.empty() || bytes + queue_.front().bytes <= kMaxGroupBytes)) {
          bytes += queue_.front().bytes;
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        if (group.empty() && stopping_) return;
      }
      if (group.empty()) {  // idle: notice a dropped connection, or try to get one back
        if (conn_ != nullptr && !conn_->CheckAlive()) Disconnect(conn_->error());
        if (conn_ == nullptr && Clock::now() >= next_connect_) Connect();
        continue;
      }
      Process(group);
      Complete(group);
    }
  }

  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  }

  void SetHealth(absl::Status status) {
    absl::MutexLock lock(&health_mu_);
    health_ = std::move(status);
  }

  void Disconnect(const std::string& why) {
    spdlog::warn("store: lost the connection to PostgreSQL at {}: {}", spec_.server(), why);
    conn_.reset();
    next_connect_ = Clock::now();  // the first attempt right away
    SetHealth(absl::UnavailableError(
        absl::StrCat("store: lost the connection to PostgreSQL at ", spec_.server(), ": ", why)));
  }

  void Connect() {
    absl::StatusOr<std::unique_ptr<Connection>> conn =
        OpenPrepared(spec_, std::min(connect_timeout_, kMaxAttemptTimeout), /*pipeline=*/true);
    if (conn.ok()) {
      if (!Health().ok()) spdlog::info("store: reconnected to PostgreSQL at {}", spec_.server());
      conn_ = *std::move(conn);
      backoff_ = kFirstBackoff;
      SetHealth(absl::OkStatus());
      return;
    }
    next_connect_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    SetHealth(conn.status());
  }

  // A connection that works, if there is one to be had without waiting for the backoff.
  bool EnsureConnected() {
    if (conn_ != nullptr && !conn_->CheckAlive()) Disconnect(conn_->error());
    if (conn_ == nullptr && Clock::now() >= next_connect_) Connect();
    return conn_ != nullptr;
  }

  // Commits what it can of `group` and sets every write's status.
  void Process(std::vector<Pending>& group) {
    for (int transient = 0;;) {
      std::vector<size_t> active;
      for (size_t i = 0; i < group.size(); ++i) {
        if (!group[i].decided) active.push_back(i);
      }
      if (active.empty()) return;
      if (!EnsureConnected()) {
        const absl::Status down = Health();
        FailAll(group, active,
                absl::UnavailableError(absl::StrCat(
                    down.message(), down.ok() ? "" : "; ", "the write was not applied")));
        return;
      }
      const Attempt attempt = Run(group, active);
      if (attempt == Attempt::kCommitted) {
        bool any = false;
        for (size_t i : active) {
          if (!group[i].decided) group[i].decided = any = true;
        }
        if (any) counters_.flushes.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (attempt == Attempt::kDone) return;
      if (attempt == Attempt::kTransient && ++transient > kMaxTransientRetries) {
        FailAll(group, active,
                absl::UnavailableError(absl::StrCat(
                    "store: PostgreSQL at ", spec_.server(), " kept aborting the transaction (",
                    last_error_, "); the write was not applied")));
        return;
      }
    }
  }

  void FailAll(std::vector<Pending>& group, const std::vector<size_t>& active,
               const absl::Status& status) {
    for (size_t i : active) {
      if (group[i].decided) continue;
      group[i].status = status;
      group[i].decided = true;
    }
  }

  // One transaction for the writes `active` of `group`. Writes that fail a check are decided;
  // the others are left undecided unless the attempt returns kDone.
  Attempt Run(std::vector<Pending>& group, const std::vector<size_t>& active) {
    std::vector<Step> steps;
    bool commit_queued = false;
    bool sent = conn_->SendSql("BEGIN");
    steps.push_back({.kind = Step::kBegin});
    std::vector<std::string_view> types;
    for (size_t i : active) {
      for (const JournalAppend& a : group[i].batch.appends) {
        if (!a.events.empty()) types.push_back(a.entity_type);
      }
    }
    std::sort(types.begin(), types.end());
    types.erase(std::unique(types.begin(), types.end()), types.end());
    if (sent && !types.empty()) {
      Params params;
      params.Encoded(postgres::EncodeArray(postgres::kByteaOid, types));
      sent = conn_->SendPrepared(StatementName(Statement::kLockStreams), params);
      steps.push_back({.kind = Step::kLockStreams});
    }
    for (size_t k = 0; sent && k < active.size(); ++k) sent = SendWrite(group, active[k], &steps);
    if (sent) {
      sent = conn_->SendSql("COMMIT");
      steps.push_back({.kind = Step::kCommit});
      commit_queued = true;
    }
    sent = sent && conn_->SendSync() && conn_->Flush();
    if (!sent) return Lost(group, active, commit_queued, /*aborted=*/false);

    std::optional<Step> failed_step;
    Result failure;
    bool committed = false;
    for (const Step& step : steps) {
      Result result = conn_->Next();
      if (result.none()) return Lost(group, active, true, failed_step.has_value());
      if (result.skipped()) continue;
      if (result.failed()) {
        // An error the server reported means the transaction did not commit; libpq's own
        // (no SQLSTATE: the connection broke) leaves the outcome open.
        const bool server_error = !result.sqlstate().empty();
        if (!server_error || !conn_->good()) {
          return Lost(group, active, true, failed_step.has_value() || server_error);
        }
        if (!failed_step) {
          failed_step = step;
          failure = std::move(result);
        }
        continue;
      }
      if (step.kind == Step::kCommit) committed = true;
      if (HasWrite(step) && !step.raise) {
        const std::optional<int32_t> code = result.rows() == 1 ? result.int32(0, 0) : std::nullopt;
        if (!code.has_value()) {
          Decide(group[step.write],
                 absl::InternalError(absl::StrCat("store: unexpected result from ",
                                                  spec_.server(), " for a write")));
        } else if (*code != 0) {
          Decide(group[step.write],
                 CheckFailed(group[step.write].batch, step, *code, result.int64(0, 1).value_or(0)));
        }
      }
    }
    if (!conn_->Next().sync()) return Lost(group, active, true, failed_step.has_value());
    if (committed) return Attempt::kCommitted;
    if (!failed_step) return Lost(group, active, true, false);  // cannot happen

    // The transaction is aborted: roll it back, then blame the write or retry.
    const bool rolled_back = conn_->SendSql("ROLLBACK") && conn_->SendSync() && conn_->Flush() &&
                             conn_->Next().ok() && conn_->Next().sync();
    if (!rolled_back) return Lost(group, active, true, true);
    const std::string sqlstate = failure.sqlstate();
    last_error_ = conn_->Describe(failure);
    const bool per_write = HasWrite(*failed_step);
    if (per_write && sqlstate.rfind(postgres::kCheckFailedSqlStatePrefix, 0) == 0) {
      const int code = sqlstate.back() - '0';
      int64_t detail = 0;
      if (!absl::SimpleAtoi(failure.detail(), &detail)) detail = -1;
      Decide(group[failed_step->write],
             CheckFailed(group[failed_step->write].batch, *failed_step, code, detail));
      return Attempt::kResend;
    }
    const std::string cls = SqlStateClass(sqlstate);
    if (cls == "40" || sqlstate == "55P03") return Attempt::kTransient;
    const std::string message =
        absl::StrCat("store: PostgreSQL at ", spec_.server(), " failed the write: ", last_error_);
    if (per_write && (cls == "22" || cls == "23" || cls == "54")) {
      // Something about this write's data (e.g. a value over 1 GB): it alone fails.
      Decide(group[failed_step->write], absl::InternalError(message + "; it was not applied"));
      return Attempt::kResend;
    }
    const bool outage = cls == "08" || cls == "53" || cls == "57" || cls == "58";
    FailAll(group, active,
            outage ? absl::UnavailableError(message + "; the write was not applied")
                   : absl::InternalError(message + "; the write was not applied"));
    return Attempt::kDone;
  }

  static bool HasWrite(const Step& step) {
    return step.kind != Step::kBegin && step.kind != Step::kLockStreams &&
           step.kind != Step::kCommit;
  }

  static void Decide(Pending& p, absl::Status status) {
    p.status = std::move(status);
    p.decided = true;
  }

  // The connection failed during an attempt: fail the writes in flight and drop it.
  Attempt Lost(std::vector<Pending>& group, const std::vector<size_t>& active, bool commit_queued,
               bool aborted) {
    const std::string why = conn_->error();
    const std::string message =
        commit_queued && !aborted
            ? absl::StrCat("store: lost the connection to PostgreSQL at ", spec_.server(),
                           " while committing (", why,
                           "); the write may or may not have been applied")
            : absl::StrCat("store: lost the connection to PostgreSQL at ", spec_.server(), " (",
                           why, "); the write was not applied");
    FailAll(group, active, absl::UnavailableError(message));
    Disconnect(why);
    return Attempt::kDone;
  }

  absl::Status CheckFailed(const WriteBatch& batch, const Step& step, int code,
                           int64_t detail) const {
    const auto actual = static_cast<uint64_t>(detail);
    std::string_view type;
    std::string_view key;
    if (step.kind == Step::kFence) {
      std::tie(type, key) = EntitiesOf(batch)[step.item];
    } else if (step.kind == Step::kPut) {
      type = batch.mutations[step.item].entity_type;
      key = batch.mutations[step.item].key;
    } else if (step.kind == Step::kTimer) {
      type = batch.timers[step.item].timer.entity_type;
      key = batch.timers[step.item].timer.key;
    } else {
      type = batch.appends[step.item].entity_type;
      key = batch.appends[step.item].key;
    }
    switch (code) {
      case postgres::kFenced:
        return internal::Fenced(type, key, batch.fence, actual);
      case postgres::kStaleVersion:
        return internal::StaleVersion(type, key,
                                      batch.mutations[step.item].expected_version.value_or(0),
                                      actual);
      case postgres::kStaleSequence:
        return internal::StaleExpectation(type, key, batch.appends[step.item].expected_sequence,
                                          actual);
      case postgres::kStaleTimer:
        return internal::StaleTimer(type, key, batch.timers[step.item].timer.name,
                                    batch.timers[step.item].expected_due_ms.value_or(0), detail);
      default:
        return absl::InternalError(absl::StrCat("store: unknown check result ", code, " from ",
                                                spec_.server()));
    }
  }

  // Queues the statements of write `index` and notes them in `steps`.
  bool SendWrite(const std::vector<Pending>& group, size_t index, std::vector<Step>* steps) {
    const WriteBatch& batch = group[index].batch;
    const bool raise = !IsSingleStatement(batch);
    const auto fence = static_cast<int64_t>(batch.fence);
    if (raise) {
      const std::vector<EntityRef> entities = EntitiesOf(batch);
      for (size_t e = 0; e < entities.size(); ++e) {
        Params params;
        params.Bytes(entities[e].first).Bytes(entities[e].second).Int64(fence).Bool(true);
        if (!conn_->SendPrepared(StatementName(Statement::kFence), params)) return false;
        steps->push_back({Step::kFence, index, e, true});
      }
    }
    for (size_t m = 0; m < batch.mutations.size(); ++m) {
      const WriteBatch::Mutation& mutation = batch.mutations[m];
      Params params;
      params.Bytes(mutation.entity_type).Bytes(mutation.key);
      if (mutation.value.has_value()) {
        params.Bytes(*mutation.value);
      } else {
        params.Null();
      }
      if (mutation.expected_version.has_value()) {
        params.Int64(static_cast<int64_t>(*mutation.expected_version));
      } else {
        params.Null();
      }
      params.Int64(fence).Bool(raise).Int64(mutation.value.has_value() ? mutation.expires_ms : 0);
      if (!conn_->SendPrepared(StatementName(Statement::kPut), params)) return false;
      steps->push_back({Step::kPut, index, m, raise});
    }
    for (size_t a = 0; a < batch.appends.size(); ++a) {
      const JournalAppend& append = batch.appends[a];
      std::vector<std::string_view> types;
      std::vector<std::string_view> payloads;
      std::vector<int64_t> timestamps;
      std::vector<std::string> metadata;
      for (const Event& e : append.events) {
        types.push_back(e.type);
        payloads.push_back(e.payload);
        timestamps.push_back(e.timestamp_ms);
        metadata.push_back(postgres::EncodeMetadata(e.metadata));
      }
      Params params;
      params.Bytes(append.entity_type)
          .Bytes(append.key)
          .Int64(static_cast<int64_t>(append.expected_sequence))
          .Int64(fence)
          .Bool(raise);
      if (append.snapshot.has_value()) {
        params.Int64(static_cast<int64_t>(append.snapshot->sequence)).Bytes(append.snapshot->state);
      } else {
        params.Null().Null();
      }
      params.Bool(append.delete_events_covered_by_snapshot)
          .Encoded(postgres::EncodeArray(postgres::kByteaOid, types))
          .Encoded(postgres::EncodeArray(postgres::kByteaOid, payloads))
          .Encoded(postgres::EncodeInt64Array(timestamps))
          .Encoded(postgres::EncodeArray(postgres::kByteaOid,
                                         std::vector<std::string_view>(metadata.begin(),
                                                                       metadata.end())));
      if (!conn_->SendPrepared(StatementName(Statement::kAppend), params)) return false;
      steps->push_back({Step::kAppend, index, a, raise});
    }
    for (size_t i = 0; i < batch.idempotency.size(); ++i) {
      const IdempotencyRecord& r = batch.idempotency[i];
      Params params;
      params.Bytes(r.entity_type).Bytes(r.key).Bytes(r.idempotency_key).Bytes(r.record).Int64(
          r.expires_ms);
      if (!conn_->SendPrepared(StatementName(Statement::kPutIdempotency), params)) return false;
      steps->push_back({Step::kIdempotency, index, i, true});
    }
    for (size_t t = 0; t < batch.timers.size(); ++t) {
      const TimerChange& change = batch.timers[t];
      Params params;
      params.Bytes(change.timer.entity_type)
          .Bytes(change.timer.key)
          .Bytes(change.timer.name)
          .Bool(change.remove)
          .Int64(change.timer.due_ms)
          .Int64(change.timer.partition)
          .Bytes(change.timer.record);
      if (change.expected_due_ms.has_value()) {
        params.Int64(*change.expected_due_ms);
      } else {
        params.Null();
      }
      params.Bool(true);
      if (!conn_->SendPrepared(StatementName(Statement::kTimer), params)) return false;
      steps->push_back({Step::kTimer, index, t, true});
    }
    for (size_t o = 0; o < batch.outbox.size(); ++o) {
      const OutboxRecord& r = batch.outbox[o];
      Params params;
      params.Bytes(r.id).Int64(r.due_ms).Int64(r.partition).Bytes(r.record);
      if (!conn_->SendPrepared(StatementName(Statement::kPutOutbox), params)) return false;
      steps->push_back({Step::kOutbox, index, o, true});
    }
    if (!batch.outbox_done.empty()) {
      Params params;
      params.Encoded(postgres::EncodeArray(
          postgres::kByteaOid,
          std::vector<std::string_view>(batch.outbox_done.begin(), batch.outbox_done.end())));
      if (!conn_->SendPrepared(StatementName(Statement::kDeleteOutbox), params)) return false;
      steps->push_back({Step::kOutboxDone, index, 0, true});
    }
    return true;
  }

  // Calls back the writes of `group` in order.
  void Complete(std::vector<Pending>& group) {
    for (Pending& p : group) {
      if (p.barrier != nullptr) {
        PassBarrier(*p.barrier, counters_);
        continue;
      }
      if (p.status.ok()) counters_.writes.fetch_add(1, std::memory_order_relaxed);
      std::move(p.done)(std::move(p.status));
    }
  }

  const ConnectSpec& spec_;
  const std::chrono::milliseconds connect_timeout_;
  Counters& counters_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  mutable absl::Mutex health_mu_;
  absl::Status health_ ABSL_GUARDED_BY(health_mu_);

  // Used by the thread only.
  std::unique_ptr<Connection> conn_;  // null while disconnected
  Clock::time_point next_connect_ = Clock::now();
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  std::string last_error_;

  std::thread thread_;  // last: started once everything above is initialized
};

// The reader connections: at most `size`, opened when first needed or after one was lost.
class ReaderPool {
 public:
  ReaderPool(const ConnectSpec& spec, std::chrono::milliseconds connect_timeout, size_t size,
             std::unique_ptr<Connection> first)
      : spec_(spec), connect_timeout_(connect_timeout) {
    idle_.push_back(std::move(first));
    idle_.resize(std::max<size_t>(size, 1));
  }

  // Runs `statement` on a reader connection; its result, or UNAVAILABLE / INTERNAL naming
  // `what` was being read.
  absl::StatusOr<Result> Query(Statement statement, const Params& params, std::string_view what) {
    std::unique_ptr<Connection> conn;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](std::vector<std::unique_ptr<Connection>>* idle) { return !idle->empty(); }, &idle_));
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
    absl::StatusOr<Result> out = QueryOn(conn, statement, params, what);
    absl::MutexLock lock(&mu_);
    idle_.push_back(conn != nullptr && conn->good() ? std::move(conn) : nullptr);
    return out;
  }

 private:
  absl::StatusOr<Result> QueryOn(std::unique_ptr<Connection>& conn, Statement statement,
                                 const Params& params, std::string_view what) {
    if (conn != nullptr && !conn->CheckAlive()) conn.reset();
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<Connection>> opened =
          OpenPrepared(spec_, std::min(connect_timeout_, kMaxAttemptTimeout), /*pipeline=*/false);
      if (!opened.ok()) {
        return absl::UnavailableError(absl::StrCat("store: reading ", std::string(what), ": ",
                                                   opened.status().message()));
      }
      conn = *std::move(opened);
    }
    Result result = conn->Execute(StatementName(statement), params);
    if (result.ok()) return result;
    const std::string message = absl::StrCat("store: reading ", std::string(what),
                                             " from PostgreSQL at ", spec_.server(), ": ",
                                             conn->Describe(result));
    return conn->good() ? absl::InternalError(message) : absl::UnavailableError(message);
  }

  const ConnectSpec& spec_;
  const std::chrono::milliseconds connect_timeout_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);  // null: not connected
};

// A timer's name, due time, partition and record from columns name.. name + 3 of `row`.
bool DecodeTimer(const Result& result, int row, int name, TimerRecord* timer) {
  const std::optional<int64_t> due = result.int64(row, name + 1);
  const std::optional<int64_t> partition = result.int64(row, name + 2);
  if (result.null(row, name) || !due.has_value() || !partition.has_value() ||
      *partition < 0 || *partition > UINT32_MAX || result.null(row, name + 3)) {
    return false;
  }
  timer->name = std::string(result.bytes(row, name));
  timer->due_ms = *due;
  timer->partition = static_cast<uint32_t>(*partition);
  timer->record = std::string(result.bytes(row, name + 3));
  return true;
}

// An event from columns first..first+4 of `row`: sequence, type, payload, timestamp, metadata.
bool DecodeEvent(const Result& result, int row, int first, Event* event) {
  const std::optional<int64_t> sequence = result.int64(row, first);
  const std::optional<int64_t> timestamp = result.int64(row, first + 3);
  if (!sequence.has_value() || !timestamp.has_value() || result.null(row, first + 1) ||
      result.null(row, first + 2) || result.null(row, first + 4)) {
    return false;
  }
  event->sequence = static_cast<uint64_t>(*sequence);
  event->type = std::string(result.bytes(row, first + 1));
  event->payload = std::string(result.bytes(row, first + 2));
  event->timestamp_ms = *timestamp;
  return postgres::DecodeMetadata(result.bytes(row, first + 4), &event->metadata);
}

absl::Status Corrupt(std::string_view what, std::string_view entity_type, std::string_view key) {
  return absl::InternalError(absl::StrCat("store: malformed ", std::string(what), " of ",
                                          internal::EntityName(entity_type, key),
                                          " in PostgreSQL"));
}

// Limits and starting points beyond bigint: nothing is stored there.
int64_t ClampToBigint(uint64_t v) { return static_cast<int64_t>(std::min(v, kMaxBigint)); }

class PostgresStore final : public Store {
 public:
  PostgresStore(ConnectSpec spec, std::chrono::milliseconds connect_timeout,
                std::vector<std::unique_ptr<Connection>> writers, size_t readers,
                std::unique_ptr<Connection> first_reader)
      : spec_(std::move(spec)),
        readers_(spec_, connect_timeout, readers, std::move(first_reader)) {
    for (std::unique_ptr<Connection>& conn : writers) {
      shards_.push_back(
          std::make_unique<Shard>(spec_, connect_timeout, counters_, std::move(conn)));
    }
  }

  ~PostgresStore() override {
    closed_.store(true);
    // Each finishes its queue; callbacks may still use the store meanwhile.
    for (const std::unique_ptr<Shard>& shard : shards_) shard->Stop();
  }

  absl::StatusOr<VersionedValue> ReadValue(std::string_view entity_type,
                                           std::string_view key) override {
    Params params;
    params.Bytes(entity_type).Bytes(key);
    absl::StatusOr<Result> result = readers_.Query(Statement::kReadValue, params, "a value");
    if (!result.ok()) return result.status();
    if (result->rows() == 0) return VersionedValue{std::nullopt, 0};
    const std::optional<int64_t> version = result->int64(0, 1);
    if (!version.has_value()) return Corrupt("value version", entity_type, key);
    VersionedValue out;
    if (!result->null(0, 0)) {
      out.value = std::string(result->bytes(0, 0));
      out.expires_ms = result->int64(0, 2).value_or(0);
    }
    out.version = static_cast<uint64_t>(*version);
    return out;
  }

  absl::StatusOr<std::optional<IdempotencyRecord>> ReadIdempotency(
      std::string_view entity_type, std::string_view key,
      std::string_view idempotency_key) override {
    Params params;
    params.Bytes(entity_type).Bytes(key).Bytes(idempotency_key);
    absl::StatusOr<Result> result =
        readers_.Query(Statement::kReadIdempotency, params, "an idempotency record");
    if (!result.ok()) return result.status();
    if (result->rows() == 0) return std::nullopt;
    const std::optional<int64_t> expires = result->int64(0, 1);
    if (result->null(0, 0) || !expires.has_value()) {
      return Corrupt("idempotency record", entity_type, key);
    }
    return IdempotencyRecord{std::string(entity_type), std::string(key),
                             std::string(idempotency_key), std::string(result->bytes(0, 0)),
                             *expires};
  }

  absl::StatusOr<bool> HasIdempotencyRecords(std::string_view entity_type,
                                             std::string_view key) override {
    Params params;
    params.Bytes(entity_type).Bytes(key);
    absl::StatusOr<Result> result =
        readers_.Query(Statement::kHasIdempotency, params, "idempotency records");
    if (!result.ok()) return result.status();
    return result->rows() > 0;
  }

  absl::StatusOr<std::vector<TimerRecord>> ReadTimers(std::string_view entity_type,
                                                      std::string_view key) override {
    Params params;
    params.Bytes(entity_type).Bytes(key);
    absl::StatusOr<Result> result = readers_.Query(Statement::kReadTimers, params, "timers");
    if (!result.ok()) return result.status();
    std::vector<TimerRecord> out(static_cast<size_t>(result->rows()));
    for (int row = 0; row < result->rows(); ++row) {
      out[row].entity_type = std::string(entity_type);
      out[row].key = std::string(key);
      if (!DecodeTimer(*result, row, 0, &out[row])) return Corrupt("timer", entity_type, key);
    }
    return out;
  }

  absl::StatusOr<std::vector<TimerRecord>> ReadDueTimers(uint32_t partition, int64_t before_ms,
                                                         size_t limit) override {
    std::vector<TimerRecord> out;
    if (limit == 0) return out;
    Params params;
    params.Int64(partition).Int64(before_ms).Int64(ClampToBigint(limit));
    absl::StatusOr<Result> result =
        readers_.Query(Statement::kReadDueTimers, params, "due timers");
    if (!result.ok()) return result.status();
    out.resize(static_cast<size_t>(result->rows()));
    for (int row = 0; row < result->rows(); ++row) {
      if (result->null(row, 0) || result->null(row, 1) || !DecodeTimer(*result, row, 2, &out[row])) {
        return absl::InternalError("store: malformed timer in PostgreSQL's due index");
      }
      out[row].entity_type = std::string(result->bytes(row, 0));
      out[row].key = std::string(result->bytes(row, 1));
    }
    return out;
  }

  absl::StatusOr<std::vector<OutboxRecord>> ReadOutbox(uint32_t partition, int64_t before_ms,
                                                       size_t limit) override {
    std::vector<OutboxRecord> out;
    if (limit == 0) return out;
    Params params;
    params.Int64(partition).Int64(before_ms).Int64(ClampToBigint(limit));
    absl::StatusOr<Result> result = readers_.Query(Statement::kReadOutbox, params, "the outbox");
    if (!result.ok()) return result.status();
    out.resize(static_cast<size_t>(result->rows()));
    for (int row = 0; row < result->rows(); ++row) {
      const std::optional<int64_t> due = result->int64(row, 1);
      const std::optional<int64_t> part = result->int64(row, 2);
      if (result->null(row, 0) || !due.has_value() || !part.has_value() ||
          result->null(row, 3)) {
        return absl::InternalError("store: malformed outbox record in PostgreSQL");
      }
      out[row] = OutboxRecord{std::string(result->bytes(row, 0)), *due,
                              static_cast<uint32_t>(*part), std::string(result->bytes(row, 3))};
    }
    return out;
  }

  absl::StatusOr<size_t> SweepExpired(int64_t now_ms, size_t limit) override {
    size_t swept = 0;
    for (Statement statement : {Statement::kSweepIdempotency, Statement::kSweepValues}) {
      if (swept >= limit) break;
      Params params;
      params.Int64(now_ms).Int64(ClampToBigint(limit - swept));
      absl::StatusOr<Result> result = readers_.Query(statement, params, "expired records");
      if (!result.ok()) return result.status();
      const std::optional<int64_t> count = result->rows() == 1 ? result->int64(0, 0) : std::nullopt;
      if (!count.has_value()) {
        return absl::InternalError("store: unexpected result of a sweep from PostgreSQL");
      }
      swept += static_cast<size_t>(*count);
    }
    return swept;
  }

  absl::StatusOr<std::vector<Event>> ReadEvents(std::string_view entity_type, std::string_view key,
                                                uint64_t from_sequence, size_t limit) override {
    std::vector<Event> out;
    if (limit == 0 || from_sequence > kMaxBigint) return out;
    Params params;
    params.Bytes(entity_type)
        .Bytes(key)
        .Int64(ClampToBigint(from_sequence))
        .Int64(ClampToBigint(limit));
    absl::StatusOr<Result> result = readers_.Query(Statement::kReadEvents, params, "events");
    if (!result.ok()) return result.status();
    out.resize(static_cast<size_t>(result->rows()));
    for (int row = 0; row < result->rows(); ++row) {
      if (!DecodeEvent(*result, row, 0, &out[row])) return Corrupt("event", entity_type, key);
    }
    return out;
  }

  absl::StatusOr<uint64_t> ReadLastSequence(std::string_view entity_type,
                                            std::string_view key) override {
    Params params;
    params.Bytes(entity_type).Bytes(key);
    absl::StatusOr<Result> result =
        readers_.Query(Statement::kReadLastSequence, params, "a journal head");
    if (!result.ok()) return result.status();
    if (result->rows() == 0) return 0;
    const std::optional<int64_t> last = result->int64(0, 0);
    if (!last.has_value()) return Corrupt("journal head", entity_type, key);
    return static_cast<uint64_t>(*last);
  }

  absl::StatusOr<std::optional<Snapshot>> ReadSnapshot(std::string_view entity_type,
                                                       std::string_view key) override {
    Params params;
    params.Bytes(entity_type).Bytes(key);
    absl::StatusOr<Result> result = readers_.Query(Statement::kReadSnapshot, params, "a snapshot");
    if (!result.ok()) return result.status();
    if (result->rows() == 0 || result->null(0, 0)) return std::nullopt;
    const std::optional<int64_t> sequence = result->int64(0, 0);
    if (!sequence.has_value() || result->null(0, 1)) {
      return Corrupt("snapshot", entity_type, key);
    }
    return Snapshot{static_cast<uint64_t>(*sequence), std::string(result->bytes(0, 1))};
  }

  absl::StatusOr<std::vector<StreamEvent>> ReadStream(std::string_view entity_type,
                                                      uint64_t from_offset, size_t limit) override {
    std::vector<StreamEvent> out;
    if (limit == 0 || from_offset > kMaxBigint) return out;
    Params params;
    params.Bytes(entity_type).Int64(ClampToBigint(from_offset)).Int64(ClampToBigint(limit));
    absl::StatusOr<Result> result = readers_.Query(Statement::kReadStream, params, "a stream");
    if (!result.ok()) return result.status();
    out.resize(static_cast<size_t>(result->rows()));
    for (int row = 0; row < result->rows(); ++row) {
      const std::optional<int64_t> offset = result->int64(row, 0);
      if (!offset.has_value() || result->null(row, 1) ||
          !DecodeEvent(*result, row, 2, &out[row].event)) {
        return absl::InternalError(absl::StrCat("store: malformed event in the stream of ",
                                                internal::EscapedName(entity_type),
                                                " in PostgreSQL"));
      }
      out[row].offset = static_cast<uint64_t>(*offset);
      out[row].key = std::string(result->bytes(row, 1));
    }
    return out;
  }

  void Write(WriteBatch batch, WriteCallback done) override {
    if (closed_.load()) {
      std::move(done)(absl::UnavailableError("store: the PostgreSQL store is closed"));
      return;
    }
    if (batch.empty()) {
      auto barrier = std::make_shared<Barrier>(shards_.size(), std::move(done));
      for (const std::unique_ptr<Shard>& shard : shards_) {
        Pending part;
        part.barrier = barrier;
        part.decided = true;
        if (!shard->Enqueue(part)) PassBarrier(*barrier, counters_);
      }
      return;
    }
    Pending p;
    p.status = CheckBatch(batch);
    p.decided = !p.status.ok();
    p.bytes = BytesOf(batch);
    Shard& shard = *shards_[ShardHashOf(batch) % shards_.size()];
    p.batch = std::move(batch);
    p.done = std::move(done);
    if (!shard.Enqueue(p)) {
      std::move(p.done)(absl::UnavailableError("store: the PostgreSQL store is closed"));
    }
  }

  // Where a batch's writes are queued: by its first entity, so that one entity's writes stay in
  // order; a batch of outbox records alone by its first record's id.
  static size_t ShardHashOf(const WriteBatch& batch) {
    const std::vector<EntityRef> entities = EntitiesOf(batch);
    if (!entities.empty()) return absl::HashOf(entities[0].first, entities[0].second);
    return absl::HashOf(batch.outbox.empty() ? batch.outbox_done[0] : batch.outbox[0].id);
  }

  StoreStats stats() const override {
    return {counters_.writes.load(std::memory_order_relaxed),
            counters_.flushes.load(std::memory_order_relaxed)};
  }

  absl::Status Health() const override {
    for (const std::unique_ptr<Shard>& shard : shards_) {
      absl::Status status = shard->Health();
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  const ConnectSpec spec_;
  Counters counters_;
  std::atomic<bool> closed_{false};
  ReaderPool readers_;
  std::vector<std::unique_ptr<Shard>> shards_;  // last: their threads use everything above
};

// The first connection, retried with backoff until `deadline`.
absl::StatusOr<std::unique_ptr<Connection>> ConnectUntil(const ConnectSpec& spec,
                                                         Clock::time_point deadline) {
  std::chrono::milliseconds backoff = kFirstBackoff;
  for (;;) {
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    absl::StatusOr<std::unique_ptr<Connection>> conn =
        Connection::Open(spec, std::clamp(remaining, std::chrono::milliseconds(1),
                                          kMaxAttemptTimeout));
    if (conn.ok()) return conn;
    if (Clock::now() + backoff >= deadline) {
      return absl::UnavailableError(absl::StrCat("store: PostgreSQL at ", spec.server(),
                                                 " was not reachable in time: ",
                                                 conn.status().message()));
    }
    spdlog::info("{}; retrying", std::string(conn.status().message()));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace

absl::StatusOr<StorePtr> OpenPostgresStore(const PostgresOptions& options) {
  absl::StatusOr<ConnectSpec> spec = ConnectSpec::Parse(options);
  if (!spec.ok()) return spec.status();
  if (options.connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("store: PostgreSQL connections must be at least 1, not ", options.connections));
  }
  // Half the connections write (one shard each), the rest read; at least one of each.
  const auto connections = static_cast<size_t>(options.connections);
  const size_t writers = std::max<size_t>(1, (connections + 1) / 2);
  const size_t readers = std::max<size_t>(1, connections - writers);

  absl::StatusOr<std::unique_ptr<Connection>> first =
      ConnectUntil(*spec, Clock::now() + options.connect_timeout);
  if (!first.ok()) return first.status();
  absl::Status status = postgres::MigrateSchema(**first);
  if (status.ok()) status = postgres::PrepareStatements(**first);
  if (!status.ok()) return status;
  std::vector<std::unique_ptr<Connection>> writer_connections;
  for (size_t i = 0; i < writers; ++i) {
    absl::StatusOr<std::unique_ptr<Connection>> conn =
        OpenPrepared(*spec, std::min(options.connect_timeout, kMaxAttemptTimeout),
                     /*pipeline=*/true);
    if (!conn.ok()) return conn.status();
    writer_connections.push_back(*std::move(conn));
  }
  return std::make_unique<PostgresStore>(*std::move(spec), options.connect_timeout,
                                         std::move(writer_connections), readers,
                                         *std::move(first));
}

}  // namespace massa::store
