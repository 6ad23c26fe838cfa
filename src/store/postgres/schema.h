// File: store/postgres/schema.h
//
// Massa's tables in PostgreSQL, how they are created and migrated, and the prepared statements
// the store runs against them. The DDL and the functions are in schema.cc.
//
// Tables (entity types, keys and all payloads are bytea: they are arbitrary bytes):
//   massa_schema_version  one row: the schema version this database is at
//   massa_entities        one row per entity (entity_type, entity_key): its value (NULL when
//                         deleted) and version, its journal head (last sequence, deleted
//                         through, snapshot), and its fencing token, shared by value and journal
//   massa_events          the journaled events, primary key (entity_type, entity_key, sequence),
//                         with their offset in the type's stream (unique per type, indexed)
//   massa_streams         per entity type, the last stream offset handed out
//   massa_idempotency     requests applied under an idempotency key, per entity, with expiry
//   massa_timers          an entity's timers by name, indexed by (partition, due time)
//   massa_outbox          messages to deliver, by id, indexed by (partition, due time)
//
// Values may expire (massa_entities.expires_ms, indexed when set); the sweeps clear expired
// values (keeping their version) and delete expired idempotency records.
//
// Writes go through PL/pgSQL functions that check and apply one mutation, append or timer
// change in one statement. Each returns (code, detail): code 0 = applied; otherwise nothing was
// changed and code is kFenced, kStaleVersion, kStaleSequence or kStaleTimer with the entity's
// token, version, last sequence or the timer's due time (0 = none) as detail. Called with raise = true, a failed check raises SQLSTATE "MA00<code>"
// (detail in the error's DETAIL) instead, aborting the transaction.
#pragma once

#include "absl/status/status.h"
#include "store/postgres/connection.h"

namespace massa::store::postgres {

// The schema version this massa creates and understands.
inline constexpr int kSchemaVersion = 2;

// Check results of the write functions (see above).
inline constexpr int kFenced = 1;
inline constexpr int kStaleVersion = 2;
inline constexpr int kStaleSequence = 3;
inline constexpr int kStaleTimer = 4;
inline constexpr char kCheckFailedSqlStatePrefix[] = "MA00";

// Creates the schema or migrates it to kSchemaVersion, in one transaction under an advisory
// lock so that nodes starting together do it once. `conn` must be in blocking mode.
// Errors: FAILED_PRECONDITION when the database's schema is newer than kSchemaVersion (naming
// both), UNAVAILABLE when the connection fails, INTERNAL when a statement fails.
// `target_version` (1..kSchemaVersion) stops earlier: tests build an old database with it.
[[nodiscard]] absl::Status MigrateSchema(Connection& conn, int target_version = kSchemaVersion);

// The prepared statements, on every connection of the store.
enum class Statement {
  // massa_put(type, key, value or NULL = delete, expected version or NULL, fence, raise,
  //           expires ms or 0)
  kPut,
  // massa_append(type, key, expected sequence, fence, raise, snapshot sequence or NULL,
  //              snapshot, delete covered, event types[], payloads[], timestamps[], metadata[])
  kAppend,
  // massa_fence(type, key, fence, raise): checks the entity's token and raises it to `fence`
  kFence,
  // massa_lock_streams(types[]): locks the types' stream counters in one order
  kLockStreams,
  kReadValue,         // (type, key) -> value, version
  kReadLastSequence,  // (type, key) -> last_sequence
  kReadSnapshot,      // (type, key) -> snapshot_sequence, snapshot
  kReadEvents,        // (type, key, from sequence, limit) -> sequence, event columns
  kReadStream,        // (type, from offset, limit) -> offset, key, sequence, event columns
  // massa_timer(type, key, name, remove, due, partition, record, expected due or NULL, raise)
  kTimer,
  kPutIdempotency,    // (type, key, idempotency key, record, expires ms): insert or replace
  kPutOutbox,         // (id, due, partition, record): insert or replace
  kDeleteOutbox,      // (ids[])
  kReadIdempotency,   // (type, key, idempotency key) -> record, expires_ms
  kHasIdempotency,    // (type, key) -> a row if the entity has any idempotency record
  kReadTimers,        // (type, key) -> name, due_ms, partition, record
  kReadDueTimers,     // (partition, before, limit) -> type, key, name, due, partition, record
  kReadOutbox,        // (partition, before, limit) -> id, due, partition, record
  kSweepValues,       // (now, limit) -> how many values were cleared
  kSweepIdempotency,  // (now, limit) -> how many records were deleted
};

// The name under which `statement` is prepared.
const char* StatementName(Statement statement);

// Prepares every statement on `conn` (blocking mode).
[[nodiscard]] absl::Status PrepareStatements(Connection& conn);

}  // namespace massa::store::postgres
