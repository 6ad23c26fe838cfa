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
//   'v' varint(len(type)) type key           -> the value (value entities)
//   'e' id be64(sequence)                    -> event record: one journaled event
//   'h' id                                   -> head record
//   's' id                                   -> snapshot record
//   't' varint(len(type)) type be64(offset)  -> stream record
//   'o' varint(len(type)) type               -> offset record
//
// The head (the journal's last sequence) is stored apart from the events so that retention
// never lowers it; the type stream's last offset is stored apart from the stream for the same
// reason (deriving it from the last 't' key would reuse offsets once retention had deleted
// the stream's tail).
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
//   head:     format | varint(last sequence) | varint(deleted through: retention deleted
//             the events up to this sequence)
//   snapshot: format | varint(sequence) | state (the rest of the record)
//   stream:   format | str(key) | varint(sequence)
//   offset:   format | varint(last offset)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "massa/entity/command.h"
#include "massa/store/store.h"

namespace massa::store::records {

inline constexpr char kValueKind = 'v';
inline constexpr char kEventKind = 'e';
inline constexpr char kHeadKind = 'h';
inline constexpr char kSnapshotKind = 's';
inline constexpr char kStreamKind = 't';
inline constexpr char kOffsetKind = 'o';

inline constexpr char kFormatV1 = 1;

void AppendVarint(std::string* out, uint64_t v);
void AppendBigEndian64(std::string* out, uint64_t v);
// Reads 8 bytes at `in`.
uint64_t GetBigEndian64(const char* in);

// ---- Keys ----

std::string ValueKey(std::string_view entity_type, std::string_view key);
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

// The smallest key greater than every key starting with `prefix`, which must contain a byte
// other than 0xff (every prefix above starts with a kind byte).
std::string PrefixSuccessor(std::string prefix);

// ---- Records ----

struct Head {
  uint64_t last = 0;             // the journal's last sequence
  uint64_t deleted_through = 0;  // retention deleted the events up to this sequence

  friend bool operator==(const Head&, const Head&) = default;
};

// The event record, with stream offset 0 until SetEventOffset fills it in.
std::string EncodeEvent(const Event& event);
void SetEventOffset(std::string* record, uint64_t offset);
std::string EncodeHead(const Head& head);
std::string EncodeSnapshot(const Snapshot& snapshot);
std::string EncodeStreamPointer(std::string_view key, uint64_t sequence);
std::string EncodeOffset(uint64_t offset);

// Each returns false when `record` is not exactly one well-formed record of its kind.
[[nodiscard]] bool DecodeEvent(std::string_view record, Event* event, uint64_t* offset);
// Reads only the stream offset of an event record.
[[nodiscard]] bool DecodeEventOffset(std::string_view record, uint64_t* offset);
[[nodiscard]] bool DecodeHead(std::string_view record, Head* head);
[[nodiscard]] bool DecodeSnapshot(std::string_view record, Snapshot* snapshot);
[[nodiscard]] bool DecodeStreamPointer(std::string_view record, std::string* key,
                                       uint64_t* sequence);
[[nodiscard]] bool DecodeOffset(std::string_view record, uint64_t* offset);

}  // namespace massa::store::records
