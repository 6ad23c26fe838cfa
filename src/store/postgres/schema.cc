#include "store/postgres/schema.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/postgres/wire.h"

namespace massa::store::postgres {
namespace {

// The pg_advisory_xact_lock key under which the schema is created and migrated ("massa").
constexpr long long kSchemaLockKey = 0x6d61737361;

// kMigrations[i] takes the schema from version i to i + 1. Never change a released one: add
// the next.
//
// Version 1. Notes on the functions:
// - Each checks before it changes anything, so with raise = false a failed check leaves the
//   transaction usable and the write that failed has changed nothing.
// - Rows are locked by the statements that change them (INSERT ... ON CONFLICT DO UPDATE
//   locks the conflicting row even when its WHERE is false), so writers on several nodes
//   serialize per entity under READ COMMITTED.
// - Stream offsets come from UPDATE ... RETURNING on the type's massa_streams row, whose lock
//   is held until COMMIT: offsets have no gaps or reuse, and no reader sees offset n + 1
//   committed while n is not. The cost: transactions that append to one entity type commit
//   one after another (across shards and nodes), each holding the lock through its COMMIT's
//   WAL flush; group commit makes each turn carry many writes. massa_lock_streams takes the
//   counters a transaction needs up front, in one order, so that two transactions appending
//   to the same types cannot deadlock on them.
// - With delete_covered, the events the snapshot covers are deleted; those of the append
//   itself that it covers get their stream offsets but are never inserted.
// - massa_append uses generic plans: re-planning its statements for every call (PostgreSQL's
//   default judged custom plans cheaper) cost about 40% of its time.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE massa_entities (
  entity_type bytea NOT NULL,
  entity_key bytea NOT NULL,
  fence bigint NOT NULL DEFAULT 0,
  value bytea,
  version bigint NOT NULL DEFAULT 0,
  last_sequence bigint NOT NULL DEFAULT 0,
  deleted_through bigint NOT NULL DEFAULT 0,
  snapshot_sequence bigint,
  snapshot bytea,
  PRIMARY KEY (entity_type, entity_key));

CREATE TABLE massa_events (
  entity_type bytea NOT NULL,
  entity_key bytea NOT NULL,
  sequence bigint NOT NULL,
  stream_offset bigint NOT NULL,
  event_type bytea NOT NULL,
  payload bytea NOT NULL,
  timestamp_ms bigint NOT NULL,
  metadata bytea NOT NULL,
  PRIMARY KEY (entity_type, entity_key, sequence));
CREATE UNIQUE INDEX massa_events_stream ON massa_events (entity_type, stream_offset);

CREATE TABLE massa_streams (
  entity_type bytea PRIMARY KEY,
  last_offset bigint NOT NULL);

CREATE FUNCTION massa_check_failed(code integer, detail bigint, raise boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF raise THEN
    RAISE EXCEPTION 'massa: write check % failed', code
      USING ERRCODE = 'MA00' || code, DETAIL = detail::text;
  END IF;
END $$;

CREATE FUNCTION massa_fence(t bytea, k bytea, f bigint, raise boolean,
                            OUT code integer, OUT detail bigint)
LANGUAGE plpgsql AS $$
DECLARE
  current_fence bigint;
BEGIN
  code := 0;
  IF f > 0 THEN
    INSERT INTO massa_entities AS e (entity_type, entity_key, fence) VALUES (t, k, f)
    ON CONFLICT (entity_type, entity_key) DO UPDATE SET fence = f WHERE e.fence <= f;
    IF FOUND THEN RETURN; END IF;
  END IF;
  SELECT e.fence INTO current_fence
  FROM massa_entities e WHERE e.entity_type = t AND e.entity_key = k;
  IF current_fence > f THEN
    code := 1; detail := current_fence;
    PERFORM massa_check_failed(code, detail, raise);
  END IF;
END $$;

CREATE FUNCTION massa_put(t bytea, k bytea, v bytea, expected bigint, f bigint, raise boolean,
                          OUT code integer, OUT detail bigint)
LANGUAGE plpgsql AS $$
DECLARE
  current_fence bigint;
  current_version bigint;
BEGIN
  code := 0;
  IF expected IS NULL OR expected = 0 THEN
    INSERT INTO massa_entities AS e (entity_type, entity_key, fence, value, version)
    VALUES (t, k, f, v, 1)
    ON CONFLICT (entity_type, entity_key) DO UPDATE
      SET value = v, version = e.version + 1, fence = f
      WHERE e.fence <= f AND (expected IS NULL OR e.version = expected);
  ELSE
    UPDATE massa_entities e SET value = v, version = e.version + 1, fence = f
    WHERE e.entity_type = t AND e.entity_key = k AND e.fence <= f AND e.version = expected;
  END IF;
  IF FOUND THEN RETURN; END IF;
  SELECT e.fence, e.version INTO current_fence, current_version
  FROM massa_entities e WHERE e.entity_type = t AND e.entity_key = k;
  IF current_fence > f THEN
    code := 1; detail := current_fence;
  ELSE
    code := 2; detail := coalesce(current_version, 0);
  END IF;
  PERFORM massa_check_failed(code, detail, raise);
END $$;

CREATE FUNCTION massa_append(t bytea, k bytea, expected bigint, f bigint, raise boolean,
                             new_snapshot_sequence bigint, new_snapshot bytea,
                             delete_covered boolean, event_types bytea[], payloads bytea[],
                             timestamps bigint[], event_metadata bytea[],
                             OUT code integer, OUT detail bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  n integer := coalesce(cardinality(payloads), 0);
  current_fence bigint := 0;
  current_last bigint := 0;
  deleted bigint := 0;
  covered bigint := 0;
  first_offset bigint;
BEGIN
  code := 0;
  IF delete_covered AND new_snapshot_sequence IS NOT NULL THEN
    covered := new_snapshot_sequence;
  END IF;
  IF expected = 0 THEN
    -- A journal that never had events: nothing to delete.
    INSERT INTO massa_entities AS e (entity_type, entity_key, fence, last_sequence,
                                     deleted_through, snapshot_sequence, snapshot)
    VALUES (t, k, f, n, covered, new_snapshot_sequence, new_snapshot)
    ON CONFLICT (entity_type, entity_key) DO UPDATE
      SET fence = f, last_sequence = n, deleted_through = GREATEST(e.deleted_through, covered),
          snapshot_sequence = COALESCE(new_snapshot_sequence, e.snapshot_sequence),
          snapshot = CASE WHEN new_snapshot_sequence IS NULL THEN e.snapshot
                          ELSE new_snapshot END
      WHERE e.fence <= f AND e.last_sequence = 0;
    IF NOT FOUND THEN
      SELECT e.fence, e.last_sequence INTO current_fence, current_last
      FROM massa_entities e WHERE e.entity_type = t AND e.entity_key = k;
    END IF;
  ELSE
    SELECT e.fence, e.last_sequence, e.deleted_through
    INTO current_fence, current_last, deleted
    FROM massa_entities e WHERE e.entity_type = t AND e.entity_key = k FOR UPDATE;
    current_fence := coalesce(current_fence, 0);
    current_last := coalesce(current_last, 0);
    IF current_fence <= f AND current_last = expected THEN
      UPDATE massa_entities e
      SET fence = f, last_sequence = expected + n, deleted_through = GREATEST(deleted, covered),
          snapshot_sequence = COALESCE(new_snapshot_sequence, e.snapshot_sequence),
          snapshot = CASE WHEN new_snapshot_sequence IS NULL THEN e.snapshot
                          ELSE new_snapshot END
      WHERE e.entity_type = t AND e.entity_key = k;
      IF covered > deleted THEN
        DELETE FROM massa_events e WHERE e.entity_type = t AND e.entity_key = k
          AND e.sequence > deleted AND e.sequence <= covered;
      END IF;
    END IF;
  END IF;
  IF current_fence > f THEN
    code := 1; detail := current_fence;
  ELSIF current_last <> expected THEN
    code := 3; detail := current_last;
  END IF;
  IF code <> 0 THEN
    PERFORM massa_check_failed(code, detail, raise);
    RETURN;
  END IF;
  IF n > 0 THEN
    UPDATE massa_streams s SET last_offset = s.last_offset + n WHERE s.entity_type = t
    RETURNING s.last_offset - n + 1 INTO first_offset;
    IF NOT FOUND THEN
      INSERT INTO massa_streams AS s (entity_type, last_offset) VALUES (t, n)
      ON CONFLICT (entity_type) DO UPDATE SET last_offset = s.last_offset + n
      RETURNING s.last_offset - n + 1 INTO first_offset;
    END IF;
    INSERT INTO massa_events (entity_type, entity_key, sequence, stream_offset, event_type,
                              payload, timestamp_ms, metadata)
    SELECT t, k, expected + i, first_offset + i - 1, event_types[i], payloads[i], timestamps[i],
           event_metadata[i]
    FROM generate_series(1, n) AS i WHERE expected + i > covered;
  END IF;
END $$;

CREATE FUNCTION massa_lock_streams(types bytea[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO massa_streams AS s (entity_type, last_offset)
  SELECT DISTINCT t, 0 FROM unnest(types) AS t ORDER BY 1
  ON CONFLICT (entity_type) DO UPDATE SET last_offset = s.last_offset;
$$;
)sql",
    // Version 2: value expiry, idempotency records, timers and the outbox.
    // - A value's expires_ms (0 = never) is set by every put and cleared by a delete and by
    //   the sweep, which also clears the value but keeps its version. The old six-argument
    //   massa_put stays (a node not yet upgraded calls it) and now clears the expiry too.
    // - Timers and outbox records carry their partition from the start, and the due indexes
    //   lead with it, so that a cluster can read (and hand over) one partition's due items.
    // - massa_timer checks a change's expected due time (code 4, detail = the current due
    //   time, 0 = none) before it changes anything; the fence of the timer's entity is checked
    //   by massa_fence, which the store runs first for every entity a batch writes.
    R"sql(
ALTER TABLE massa_entities ADD COLUMN expires_ms bigint NOT NULL DEFAULT 0;
CREATE INDEX massa_entities_expiry ON massa_entities (expires_ms) WHERE expires_ms > 0;

CREATE TABLE massa_idempotency (
  entity_type bytea NOT NULL,
  entity_key bytea NOT NULL,
  idempotency_key bytea NOT NULL,
  record bytea NOT NULL,
  expires_ms bigint NOT NULL,
  PRIMARY KEY (entity_type, entity_key, idempotency_key));
CREATE INDEX massa_idempotency_expiry ON massa_idempotency (expires_ms) WHERE expires_ms > 0;

CREATE TABLE massa_timers (
  entity_type bytea NOT NULL,
  entity_key bytea NOT NULL,
  name bytea NOT NULL,
  due_ms bigint NOT NULL,
  partition bigint NOT NULL,
  record bytea NOT NULL,
  PRIMARY KEY (entity_type, entity_key, name));
CREATE INDEX massa_timers_due ON massa_timers (partition, due_ms);

CREATE TABLE massa_outbox (
  id bytea PRIMARY KEY,
  due_ms bigint NOT NULL,
  partition bigint NOT NULL,
  record bytea NOT NULL);
CREATE INDEX massa_outbox_due ON massa_outbox (partition, due_ms);

CREATE FUNCTION massa_put(t bytea, k bytea, v bytea, expected bigint, f bigint, raise boolean,
                          expires bigint, OUT code integer, OUT detail bigint)
LANGUAGE plpgsql AS $$
DECLARE
  current_fence bigint;
  current_version bigint;
  new_expires bigint := CASE WHEN v IS NULL THEN 0 ELSE expires END;
BEGIN
  code := 0;
  IF expected IS NULL OR expected = 0 THEN
    INSERT INTO massa_entities AS e (entity_type, entity_key, fence, value, version, expires_ms)
    VALUES (t, k, f, v, 1, new_expires)
    ON CONFLICT (entity_type, entity_key) DO UPDATE
      SET value = v, version = e.version + 1, fence = f, expires_ms = new_expires
      WHERE e.fence <= f AND (expected IS NULL OR e.version = expected);
  ELSE
    UPDATE massa_entities e
    SET value = v, version = e.version + 1, fence = f, expires_ms = new_expires
    WHERE e.entity_type = t AND e.entity_key = k AND e.fence <= f AND e.version = expected;
  END IF;
  IF FOUND THEN RETURN; END IF;
  SELECT e.fence, e.version INTO current_fence, current_version
  FROM massa_entities e WHERE e.entity_type = t AND e.entity_key = k;
  IF current_fence > f THEN
    code := 1; detail := current_fence;
  ELSE
    code := 2; detail := coalesce(current_version, 0);
  END IF;
  PERFORM massa_check_failed(code, detail, raise);
END $$;

CREATE OR REPLACE FUNCTION massa_put(t bytea, k bytea, v bytea, expected bigint, f bigint,
                                     raise boolean, OUT code integer, OUT detail bigint)
LANGUAGE sql AS $$
  SELECT p.code, p.detail FROM massa_put(t, k, v, expected, f, raise, 0) AS p;
$$;

CREATE FUNCTION massa_timer(t bytea, k bytea, timer_name bytea, remove boolean, due bigint,
                            part bigint, timer_record bytea, expected bigint, raise boolean,
                            OUT code integer, OUT detail bigint)
LANGUAGE plpgsql AS $$
DECLARE
  current_due bigint;
BEGIN
  code := 0;
  IF expected = 0 AND NOT remove THEN
    -- Must not exist: the insert takes the key, or finds it taken.
    INSERT INTO massa_timers (entity_type, entity_key, name, due_ms, partition, record)
    VALUES (t, k, timer_name, due, part, timer_record) ON CONFLICT DO NOTHING;
    IF FOUND THEN RETURN; END IF;
  END IF;
  SELECT m.due_ms INTO current_due FROM massa_timers m
  WHERE m.entity_type = t AND m.entity_key = k AND m.name = timer_name FOR UPDATE;
  current_due := coalesce(current_due, 0);
  IF expected IS NOT NULL AND current_due <> expected THEN
    code := 4; detail := current_due;
    PERFORM massa_check_failed(code, detail, raise);
    RETURN;
  END IF;
  IF remove THEN
    DELETE FROM massa_timers m WHERE m.entity_type = t AND m.entity_key = k AND m.name = timer_name;
  ELSE
    INSERT INTO massa_timers AS m (entity_type, entity_key, name, due_ms, partition, record)
    VALUES (t, k, timer_name, due, part, timer_record)
    ON CONFLICT (entity_type, entity_key, name) DO UPDATE
      SET due_ms = due, partition = part, record = timer_record;
  END IF;
END $$;
)sql",
};

static_assert(std::size(kMigrations) == kSchemaVersion);

struct StatementSpec {
  const char* name;
  const char* sql;
  std::vector<unsigned> types;
};

constexpr unsigned kBytea = kByteaOid;
constexpr unsigned kInt8 = kInt8Oid;
constexpr unsigned kBool = kBoolOid;

const StatementSpec& SpecOf(Statement statement) {
  static const StatementSpec kSpecs[] = {
      {"massa_put", "SELECT code, detail FROM massa_put($1, $2, $3, $4, $5, $6, $7)",
       {kBytea, kBytea, kBytea, kInt8, kInt8, kBool, kInt8}},
      {"massa_append",
       "SELECT code, detail FROM massa_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
       {kBytea, kBytea, kInt8, kInt8, kBool, kInt8, kBytea, kBool, kByteaArrayOid,
        kByteaArrayOid, kInt8ArrayOid, kByteaArrayOid}},
      {"massa_fence", "SELECT code, detail FROM massa_fence($1, $2, $3, $4)",
       {kBytea, kBytea, kInt8, kBool}},
      {"massa_lock_streams", "SELECT massa_lock_streams($1)", {kByteaArrayOid}},
      {"massa_read_value",
       "SELECT value, version, expires_ms FROM massa_entities"
       " WHERE entity_type = $1 AND entity_key = $2",
       {kBytea, kBytea}},
      {"massa_read_last_sequence",
       "SELECT last_sequence FROM massa_entities WHERE entity_type = $1 AND entity_key = $2",
       {kBytea, kBytea}},
      {"massa_read_snapshot",
       "SELECT snapshot_sequence, snapshot FROM massa_entities"
       " WHERE entity_type = $1 AND entity_key = $2",
       {kBytea, kBytea}},
      {"massa_read_events",
       "SELECT sequence, event_type, payload, timestamp_ms, metadata FROM massa_events"
       " WHERE entity_type = $1 AND entity_key = $2 AND sequence >= $3"
       " ORDER BY sequence LIMIT $4",
       {kBytea, kBytea, kInt8, kInt8}},
      {"massa_read_stream",
       "SELECT stream_offset, entity_key, sequence, event_type, payload, timestamp_ms, metadata"
       " FROM massa_events WHERE entity_type = $1 AND stream_offset >= $2"
       " ORDER BY stream_offset LIMIT $3",
       {kBytea, kInt8, kInt8}},
      {"massa_timer",
       "SELECT code, detail FROM massa_timer($1, $2, $3, $4, $5, $6, $7, $8, $9)",
       {kBytea, kBytea, kBytea, kBool, kInt8, kInt8, kBytea, kInt8, kBool}},
      {"massa_put_idempotency",
       "INSERT INTO massa_idempotency AS i"
       " (entity_type, entity_key, idempotency_key, record, expires_ms)"
       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (entity_type, entity_key, idempotency_key)"
       " DO UPDATE SET record = excluded.record, expires_ms = excluded.expires_ms",
       {kBytea, kBytea, kBytea, kBytea, kInt8}},
      {"massa_put_outbox",
       "INSERT INTO massa_outbox AS o (id, due_ms, partition, record) VALUES ($1, $2, $3, $4)"
       " ON CONFLICT (id) DO UPDATE"
       " SET due_ms = excluded.due_ms, partition = excluded.partition, record = excluded.record",
       {kBytea, kInt8, kInt8, kBytea}},
      {"massa_delete_outbox", "DELETE FROM massa_outbox WHERE id = ANY($1)", {kByteaArrayOid}},
      {"massa_read_idempotency",
       "SELECT record, expires_ms FROM massa_idempotency"
       " WHERE entity_type = $1 AND entity_key = $2 AND idempotency_key = $3",
       {kBytea, kBytea, kBytea}},
      {"massa_has_idempotency",
       "SELECT 1 FROM massa_idempotency WHERE entity_type = $1 AND entity_key = $2 LIMIT 1",
       {kBytea, kBytea}},
      {"massa_read_timers",
       "SELECT name, due_ms, partition, record FROM massa_timers"
       " WHERE entity_type = $1 AND entity_key = $2 ORDER BY name",
       {kBytea, kBytea}},
      {"massa_read_due_timers",
       "SELECT entity_type, entity_key, name, due_ms, partition, record FROM massa_timers"
       " WHERE partition = $1 AND due_ms < $2 ORDER BY due_ms LIMIT $3",
       {kInt8, kInt8, kInt8}},
      {"massa_read_outbox",
       "SELECT id, due_ms, partition, record FROM massa_outbox"
       " WHERE partition = $1 AND due_ms < $2 ORDER BY due_ms LIMIT $3",
       {kInt8, kInt8, kInt8}},
      // The sweeps pick at most $2 expired rows and re-check each as they change it (a row
      // rewritten meanwhile with a later expiry is left alone).
      {"massa_sweep_values",
       "WITH s AS (SELECT entity_type, entity_key FROM massa_entities"
       "           WHERE expires_ms > 0 AND expires_ms <= $1 LIMIT $2),"
       " d AS (UPDATE massa_entities e SET value = NULL, expires_ms = 0 FROM s"
       "       WHERE e.entity_type = s.entity_type AND e.entity_key = s.entity_key"
       "         AND e.expires_ms > 0 AND e.expires_ms <= $1 RETURNING 1)"
       " SELECT count(*) FROM d",
       {kInt8, kInt8}},
      {"massa_sweep_idempotency",
       "WITH s AS (SELECT entity_type, entity_key, idempotency_key FROM massa_idempotency"
       "           WHERE expires_ms > 0 AND expires_ms <= $1 LIMIT $2),"
       " d AS (DELETE FROM massa_idempotency i USING s"
       "       WHERE i.entity_type = s.entity_type AND i.entity_key = s.entity_key"
       "         AND i.idempotency_key = s.idempotency_key"
       "         AND i.expires_ms > 0 AND i.expires_ms <= $1 RETURNING 1)"
       " SELECT count(*) FROM d",
       {kInt8, kInt8}},
  };
  return kSpecs[static_cast<int>(statement)];
}

constexpr Statement kAllStatements[] = {
    Statement::kPut,         Statement::kAppend,           Statement::kFence,
    Statement::kLockStreams, Statement::kReadValue,        Statement::kReadLastSequence,
    Statement::kReadSnapshot, Statement::kReadEvents,      Statement::kReadStream,
    Statement::kTimer,        Statement::kPutIdempotency,  Statement::kPutOutbox,
    Statement::kDeleteOutbox, Statement::kReadIdempotency, Statement::kHasIdempotency,
    Statement::kReadTimers,
    Statement::kReadDueTimers, Statement::kReadOutbox,     Statement::kSweepValues,
    Statement::kSweepIdempotency,
};

// The status for a failed statement: UNAVAILABLE when the connection went, INTERNAL otherwise.
absl::Status Failed(Connection& conn, const Result& result, std::string_view what) {
  const std::string message =
      absl::StrCat("store: ", std::string(what), " on ", conn.server(), ": ", conn.Describe(result));
  return conn.good() ? absl::InternalError(message) : absl::UnavailableError(message);
}

}  // namespace

absl::Status MigrateSchema(Connection& conn, int target_version) {
  target_version = std::clamp(target_version, 1, kSchemaVersion);
  const auto run = [&conn](const std::string& sql, std::string_view what) -> absl::Status {
    Result result = conn.ExecuteSql(sql);
    return result.ok() ? absl::OkStatus() : Failed(conn, result, what);
  };
  absl::Status status = run("BEGIN", "starting the schema transaction");
  if (status.ok()) {
    status = run(absl::StrCat("SELECT pg_advisory_xact_lock(", kSchemaLockKey, ")"),
                 "locking the schema");
  }
  if (status.ok()) {
    status = run(
        "CREATE TABLE IF NOT EXISTS massa_schema_version ("
        " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
        " version integer NOT NULL)",
        "creating massa_schema_version");
  }
  int version = 0;
  if (status.ok()) {
    Result result = conn.ExecuteSql("SELECT version FROM massa_schema_version");
    if (!result.ok()) {
      status = Failed(conn, result, "reading the schema version");
    } else if (result.rows() > 0) {
      version = std::atoi(std::string(result.bytes(0, 0)).c_str());
    }
  }
  if (status.ok() && version > kSchemaVersion) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "store: the database's Massa schema is at version ", version,
        ", newer than version ", kSchemaVersion, ", the newest this massa knows; upgrade massa"));
  }
  for (int v = version; status.ok() && v < target_version; ++v) {
    status = run(kMigrations[v], absl::StrCat("migrating the schema to version ", v + 1));
  }
  if (status.ok() && version < target_version) {
    status = run(absl::StrCat("INSERT INTO massa_schema_version (version) VALUES (",
                              target_version,
                              ") ON CONFLICT (singleton) DO UPDATE SET version = excluded.version"),
                 "recording the schema version");
  }
  if (status.ok()) return run("COMMIT", "committing the schema");
  if (conn.good()) conn.ExecuteSql("ROLLBACK");
  return status;
}

const char* StatementName(Statement statement) { return SpecOf(statement).name; }

absl::Status PrepareStatements(Connection& conn) {
  for (Statement statement : kAllStatements) {
    const StatementSpec& spec = SpecOf(statement);
    absl::Status status = conn.Prepare(spec.name, spec.sql, spec.types);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace massa::store::postgres
