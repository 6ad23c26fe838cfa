#include "store/postgres/schema.h"

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
      {"massa_put", "SELECT code, detail FROM massa_put($1, $2, $3, $4, $5, $6)",
       {kBytea, kBytea, kBytea, kInt8, kInt8, kBool}},
      {"massa_append",
       "SELECT code, detail FROM massa_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
       {kBytea, kBytea, kInt8, kInt8, kBool, kInt8, kBytea, kBool, kByteaArrayOid,
        kByteaArrayOid, kInt8ArrayOid, kByteaArrayOid}},
      {"massa_fence", "SELECT code, detail FROM massa_fence($1, $2, $3, $4)",
       {kBytea, kBytea, kInt8, kBool}},
      {"massa_lock_streams", "SELECT massa_lock_streams($1)", {kByteaArrayOid}},
      {"massa_read_value",
       "SELECT value, version FROM massa_entities WHERE entity_type = $1 AND entity_key = $2",
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
  };
  return kSpecs[static_cast<int>(statement)];
}

constexpr Statement kAllStatements[] = {
    Statement::kPut,         Statement::kAppend,           Statement::kFence,
    Statement::kLockStreams, Statement::kReadValue,        Statement::kReadLastSequence,
    Statement::kReadSnapshot, Statement::kReadEvents,      Statement::kReadStream,
};

// The status for a failed statement: UNAVAILABLE when the connection went, INTERNAL otherwise.
absl::Status Failed(Connection& conn, const Result& result, std::string_view what) {
  const std::string message =
      absl::StrCat("store: ", std::string(what), " on ", conn.server(), ": ", conn.Describe(result));
  return conn.good() ? absl::InternalError(message) : absl::UnavailableError(message);
}

}  // namespace

absl::Status MigrateSchema(Connection& conn) {
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
  for (int v = version; status.ok() && v < kSchemaVersion; ++v) {
    status = run(kMigrations[v], absl::StrCat("migrating the schema to version ", v + 1));
  }
  if (status.ok() && version < kSchemaVersion) {
    status = run(absl::StrCat("INSERT INTO massa_schema_version (version) VALUES (",
                              kSchemaVersion,
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
