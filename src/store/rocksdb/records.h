// File: store/rocksdb/records.h
//
// The keys and records of the RocksDB store: how journals, snapshots, streams and values are
// laid out in its one key space. Plain byte strings; no RocksDB types, so tests can build and
// check keys and records directly.
//
// Keys. A kind byte keeps record families apart; varint length prefixes make (entity_type,
// key) pairs unambiguous even when either contains '\0' or one is a prefix of another
// ("a"+"bc" vs "ab"+"c", key "a" vs key "ab"), and keep the keys of one entity type (and of
// one entity) contiguous for prefix scans. `id` is varint(len(entity_type)) | entity_type |
// varint(len(key)) | key (prefix-free), and be64 a big-endian uint64, so that bytewise order
// is numeric order.
//
//   'w' varint(len(type)) type key           -> value record (value entities)
//   'v' varint(len(type)) type key           -> legacy value: the bytes as given, no version
//   'e' id be64(sequence)                    -> event record: one journaled event
//   'h' id                                   -> head record: journal head and fencing token
//   's' id                                   -> snapshot record
//   't' varint(len(type)) type be64(offset)  -> stream record
//   'o' varint(len(type)) type               -> offset record
//   'i' id str(idempotency key)              -> idempotency record
//   'm' id str(name)                         -> timer record
//   'd' be32(partition) be64(due) id str(name) -> "" (due index of timers)
//   'q' str(id)                              -> outbox record
//   'r' be32(partition) be64(due) id-bytes   -> "" (due index of the outbox)
//   'x' be64(expires) key                    -> "" (expiry index: `key` is the 'w' key of an
//                                               expiring value or the 'i' key of an
//                                               idempotency record)
//
// Due times and expiries are Unix milliseconds, never negative (stored as uint64). An index
// entry is written and deleted with its record, in the same batch, so a due index holds
// exactly the records' due times; the expiry index may hold entries of records rewritten
// since (the sweep checks the record before it deletes anything).
//
// The head (the journal's last sequence) is stored apart from the events so that retention
// never lowers it; the type stream's last offset is stored apart from the stream for the same
// reason (deriving it from the last 't' key would reuse offsets once retention had deleted
// the stream's tail).
//
// Versions. A value record starts with the value's version (the puts and deletes it has
// seen), so a value write is one record, as before versions, and the value and its version
// can never disagree. A delete writes a value record without a value, so a version never goes
// back. Before versions, values were stored bare under 'v' (and no 'w' record exists): such a
// value counts as version kUnversionedValueVersion (1: it was written at least once), a
// missing one as 0. The first write of such an entity's value writes its 'w' record and
// deletes its 'v' record in the same batch; 'v' records are never written any more. So data
// dirs from before versions stay readable and writable; a massa from before versions no
// longer sees values written since.
//
// Fences. The highest fencing token that wrote an entity (its value or its journal) is kept in
// its head record, which is written only when the token rises or the journal changes: a
// value write under an unchanged fence writes nothing but its value record. Heads of format 1
// (from before fences) read as fence 0.
//
// The stream holds pointers, (key, sequence), not copies of the events: an event's payload
// (possibly megabytes) is written once, so the WAL, memtable and compactions carry it once,
// and ReadStream pays a point lookup per event instead, off the write path. Each event record
// holds its stream offset, so that retention can find and delete the stream records of the
// events it deletes in the same batch; a stream record whose event is missing is therefore
// corruption, not something to skip.
//
// Records start with a format byte (kFormatV1) and use varints and length-prefixed strings
// (str = varint(len) bytes). Decoders accept only input that parses exactly.
//   event:    format | be64(offset) | varint(sequence) | str(type) | str(payload)
//             | varint(uint64(timestamp_ms)) | varint(n) | n x (str(name) str(value))
//             (the offset has a fixed width so that the flusher can fill it in place)
//   head:     kFormatV2 | varint(last sequence) | varint(deleted through: retention deleted
//             the events up to this sequence) | varint(fence)
//             (written before fences: kFormatV1 | varint(last) | varint(deleted through))
//   value:    format | varint(version) | byte(1: value follows, 0: deleted) | the value (the
//             rest of the record; empty when deleted); with an expiry, kFormatV2 |
//             varint(version) | varint(expires) | byte | value
//   idempotency: format | varint(expires) | record (the rest)
//   timer:    format | varint(due) | varint(partition) | record (the rest)
//   outbox:   format | varint(due) | varint(partition) | record (the rest)
//   snapshot: format | varint(sequence) | state (the rest of the record)
//   stream:   format | str(key) | varint(sequence)
//   offset:   format | varint(last offset)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "massa/entity/command.h"
#include "massa/store/store.h"

namespace massa::store::records {

inline constexpr char kVersionedValueKind = 'w';
inline constexpr char kValueKind = 'v';  // legacy: read, deleted, never written
inline constexpr char kEventKind = 'e';
inline constexpr char kHeadKind = 'h';
inline constexpr char kSnapshotKind = 's';
inline constexpr char kStreamKind = 't';
inline constexpr char kOffsetKind = 'o';
inline constexpr char kIdempotencyKind = 'i';
inline constexpr char kTimerKind = 'm';
inline constexpr char kTimerDueKind = 'd';
inline constexpr char kOutboxKind = 'q';
inline constexpr char kOutboxDueKind = 'r';
inline constexpr char kExpiryKind = 'x';

inline constexpr char kFormatV1 = 1;
inline constexpr char kFormatV2 = 2;  // head records with a fence

// The version of a legacy 'v' value, written before versions existed (see above).
inline constexpr uint64_t kUnversionedValueVersion = 1;

void AppendVarint(std::string* out, uint64_t v);
void AppendBigEndian64(std::string* out, uint64_t v);
// Reads 8 bytes at `in`.
uint64_t GetBigEndian64(const char* in);

// ---- Keys ----

std::string VersionedValueKey(std::string_view entity_type, std::string_view key);
std::string ValueKey(std::string_view entity_type, std::string_view key);  // legacy
std::string EntityId(std::string_view entity_type, std::string_view key);
// 'e' id: the prefix of all the entity's journal keys, each followed by be64(sequence).
std::string JournalPrefix(std::string_view id);
std::string JournalKey(std::string_view id, uint64_t sequence);
std::string HeadKey(std::string_view id);
std::string SnapshotKey(std::string_view id);
// 't' varint(len(type)) type: the prefix of the type's stream keys, each then be64(offset).
std::string StreamPrefix(std::string_view entity_type);
std::string StreamKey(std::string_view entity_type, uint64_t offset);
std::string OffsetKey(std::string_view entity_type);

std::string IdempotencyKey(std::string_view id, std::string_view idempotency_key);
// 'i' id: the prefix of every idempotency record of the entity.
std::string IdempotencyPrefix(std::string_view id);
// 'm' id: the prefix of the entity's timer keys, each followed by str(name).
std::string TimerPrefix(std::string_view id);
std::string TimerKey(std::string_view id, std::string_view name);
// 'd' be32(partition): the prefix of the partition's timer due index.
std::string TimerDuePrefix(uint32_t partition);
std::string TimerDueKey(uint32_t partition, uint64_t due, std::string_view id,
                        std::string_view name);
std::string OutboxKey(std::string_view id);
std::string OutboxDuePrefix(uint32_t partition);
std::string OutboxDueKey(uint32_t partition, uint64_t due, std::string_view id);
std::string ExpiryKey(uint64_t expires, std::string_view key);

// Splits a timer due key: its due time, the entity id and the timer name (points into `key`).
[[nodiscard]] bool DecodeTimerDueKey(std::string_view key, uint64_t* due, std::string_view* id,
                                     std::string_view* name);
// Splits an entity id (EntityId) into its type and key (pointing into `id`).
[[nodiscard]] bool DecodeEntityId(std::string_view id, std::string_view* entity_type,
                                  std::string_view* key);

// The smallest key greater than every key starting with `prefix`, which must contain a byte
// other than 0xff (every prefix above starts with a kind byte).
std::string PrefixSuccessor(std::string prefix);

// ---- Records ----

// An entity's head record.
struct Head {
  uint64_t last = 0;             // the journal's last sequence
  uint64_t deleted_through = 0;  // retention deleted the events up to this sequence
  uint64_t fence = 0;            // the highest fencing token that wrote the entity

  friend bool operator==(const Head&, const Head&) = default;
};

// The event record, with stream offset 0 until SetEventOffset fills it in.
std::string EncodeEvent(const Event& event);
void SetEventOffset(std::string* record, uint64_t offset);
// Always format 2.
std::string EncodeHead(const Head& head);
// A value record is this header followed by the value (nothing when `present` is false), so
// that a large value can go into a write batch without being copied into a record first.
// Format 1 without an expiry, 2 with one.
std::string EncodeValueHeader(uint64_t version, bool present, uint64_t expires = 0);
std::string EncodeIdempotency(uint64_t expires, std::string_view record);
std::string EncodeTimer(uint64_t due, uint32_t partition, std::string_view record);
std::string EncodeOutbox(uint64_t due, uint32_t partition, std::string_view record);
std::string EncodeSnapshot(const Snapshot& snapshot);
std::string EncodeStreamPointer(std::string_view key, uint64_t sequence);
std::string EncodeOffset(uint64_t offset);

// Each returns false when `record` is not exactly one well-formed record of its kind.
[[nodiscard]] bool DecodeEvent(std::string_view record, Event* event, uint64_t* offset);
// Reads only the stream offset of an event record.
[[nodiscard]] bool DecodeEventOffset(std::string_view record, uint64_t* offset);
// Reads both formats; a format 1 record reads with fence 0.
[[nodiscard]] bool DecodeHead(std::string_view record, Head* head);
// `*value` points into `record`, or is nullopt for a deleted value; `*expires` is 0 when the
// value does not expire (when given).
[[nodiscard]] bool DecodeValue(std::string_view record, uint64_t* version,
                               std::optional<std::string_view>* value,
                               uint64_t* expires = nullptr);
// `*record` points into `encoded`.
[[nodiscard]] bool DecodeIdempotency(std::string_view encoded, uint64_t* expires,
                                     std::string_view* record);
// Timer and outbox records (the same layout).
[[nodiscard]] bool DecodeScheduled(std::string_view encoded, uint64_t* due, uint32_t* partition,
                                   std::string_view* record);
[[nodiscard]] bool DecodeSnapshot(std::string_view record, Snapshot* snapshot);
[[nodiscard]] bool DecodeStreamPointer(std::string_view record, std::string* key,
                                       uint64_t* sequence);
[[nodiscard]] bool DecodeOffset(std::string_view record, uint64_t* offset);

}  // namespace massa::store::records
