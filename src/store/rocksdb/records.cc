#include "store/rocksdb/records.h"

#include <cstddef>
#include <climits>
#include <cstdint>
#include <utility>

namespace massa::store::records {
namespace {

constexpr size_t kEventOffsetPos = 1;  // where the be64 stream offset sits in an event record

void PutBigEndian64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (56 - 8 * i));
}

void AppendString(std::string* out, std::string_view s) {
  AppendVarint(out, s.size());
  out->append(s);
}

std::string KindAnd(char kind, std::string_view rest) {
  std::string out;
  out.reserve(1 + rest.size() + 8);
  out.push_back(kind);
  out.append(rest);
  return out;
}

// kind | varint(len(entity_type)) | entity_type | key
std::string ValueKeyOfKind(char kind, std::string_view entity_type, std::string_view key) {
  std::string out;
  out.reserve(1 + 10 + entity_type.size() + key.size());
  out.push_back(kind);
  AppendString(&out, entity_type);
  out.append(key);
  return out;
}

// Reads records; every method returns false on truncated or malformed input.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  bool Format() { return Format(kFormatV1); }

  bool Format(char format) {
    if (in_.empty() || in_[0] != format) return false;
    in_.remove_prefix(1);
    return true;
  }

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63 && !in_.empty(); shift += 7) {
      const auto byte = static_cast<unsigned char>(in_[0]);
      in_.remove_prefix(1);
      if (shift == 63 && byte > 1) return false;  // more than 64 bits
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  bool BigEndian64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = GetBigEndian64(in_.data());
    in_.remove_prefix(8);
    return true;
  }

  bool String(std::string* s) {
    uint64_t size = 0;
    if (!Varint(&size) || size > in_.size()) return false;
    s->assign(in_.data(), size);
    in_.remove_prefix(size);
    return true;
  }

  std::string_view Rest() { return std::exchange(in_, std::string_view()); }

  bool done() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

}  // namespace

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void AppendBigEndian64(std::string* out, uint64_t v) {
  char bytes[8];
  PutBigEndian64(bytes, v);
  out->append(bytes, 8);
}

uint64_t GetBigEndian64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string VersionedValueKey(std::string_view entity_type, std::string_view key) {
  return ValueKeyOfKind(kVersionedValueKind, entity_type, key);
}

std::string ValueKey(std::string_view entity_type, std::string_view key) {
  return ValueKeyOfKind(kValueKind, entity_type, key);
}

namespace {

void AppendBigEndian32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (24 - 8 * i)));
}

uint32_t GetBigEndian32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// Reads a varint-prefixed string off the front of `in`; false when malformed.
bool TakeString(std::string_view* in, std::string_view* out) {
  uint64_t size = 0;
  int shift = 0;
  size_t i = 0;
  for (; i < in->size() && shift <= 63; ++i, shift += 7) {
    const auto byte = static_cast<unsigned char>((*in)[i]);
    size |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) break;
  }
  if (i == in->size()) return false;
  in->remove_prefix(i + 1);
  if (size > in->size()) return false;
  *out = in->substr(0, size);
  in->remove_prefix(size);
  return true;
}

}  // namespace

std::string IdempotencyKey(std::string_view id, std::string_view idempotency_key) {
  std::string out = KindAnd(kIdempotencyKind, id);
  AppendString(&out, idempotency_key);
  return out;
}

std::string IdempotencyPrefix(std::string_view id) { return KindAnd(kIdempotencyKind, id); }

std::string TimerPrefix(std::string_view id) { return KindAnd(kTimerKind, id); }

std::string TimerKey(std::string_view id, std::string_view name) {
  std::string out = TimerPrefix(id);
  AppendString(&out, name);
  return out;
}

std::string TimerDuePrefix(uint32_t partition) {
  std::string out(1, kTimerDueKind);
  AppendBigEndian32(&out, partition);
  return out;
}

std::string TimerDueKey(uint32_t partition, uint64_t due, std::string_view id,
                        std::string_view name) {
  std::string out = TimerDuePrefix(partition);
  AppendBigEndian64(&out, due);
  out.append(id);
  AppendString(&out, name);
  return out;
}

std::string OutboxKey(std::string_view id) {
  std::string out(1, kOutboxKind);
  AppendString(&out, id);
  return out;
}

std::string OutboxDuePrefix(uint32_t partition) {
  std::string out(1, kOutboxDueKind);
  AppendBigEndian32(&out, partition);
  return out;
}

std::string OutboxDueKey(uint32_t partition, uint64_t due, std::string_view id) {
  std::string out = OutboxDuePrefix(partition);
  AppendBigEndian64(&out, due);
  out.append(id);
  return out;
}

std::string ExpiryKey(uint64_t expires, std::string_view key) {
  std::string out(1, kExpiryKind);
  AppendBigEndian64(&out, expires);
  out.append(key);
  return out;
}

bool DecodeEntityId(std::string_view id, std::string_view* entity_type, std::string_view* key) {
  return TakeString(&id, entity_type) && TakeString(&id, key) && id.empty();
}

bool DecodeTimerDueKey(std::string_view key, uint64_t* due, std::string_view* id,
                       std::string_view* name) {
  if (key.size() < 13 || key[0] != kTimerDueKind) return false;
  (void)GetBigEndian32(key.data() + 1);
  *due = GetBigEndian64(key.data() + 5);
  std::string_view rest = key.substr(13);
  const std::string_view start = rest;
  std::string_view type_part, key_part;
  if (!TakeString(&rest, &type_part) || !TakeString(&rest, &key_part)) return false;
  *id = start.substr(0, start.size() - rest.size());
  return TakeString(&rest, name) && rest.empty();
}

std::string EntityId(std::string_view entity_type, std::string_view key) {
  std::string out;
  out.reserve(20 + entity_type.size() + key.size());
  AppendString(&out, entity_type);
  AppendString(&out, key);
  return out;
}

std::string JournalPrefix(std::string_view id) { return KindAnd(kEventKind, id); }

std::string JournalKey(std::string_view id, uint64_t sequence) {
  std::string out = JournalPrefix(id);
  AppendBigEndian64(&out, sequence);
  return out;
}

std::string HeadKey(std::string_view id) { return KindAnd(kHeadKind, id); }

std::string SnapshotKey(std::string_view id) { return KindAnd(kSnapshotKind, id); }

std::string StreamPrefix(std::string_view entity_type) {
  std::string out(1, kStreamKind);
  AppendString(&out, entity_type);
  return out;
}

std::string StreamKey(std::string_view entity_type, uint64_t offset) {
  std::string out = StreamPrefix(entity_type);
  AppendBigEndian64(&out, offset);
  return out;
}

std::string OffsetKey(std::string_view entity_type) {
  std::string out(1, kOffsetKind);
  AppendString(&out, entity_type);
  return out;
}

std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

std::string EncodeEvent(const Event& event) {
  size_t size = 1 + 8 + 10 + 10 + event.type.size() + 10 + event.payload.size() + 10 + 10;
  for (const auto& [name, value] : event.metadata) size += 20 + name.size() + value.size();
  std::string out;
  out.reserve(size);
  out.push_back(kFormatV1);
  AppendBigEndian64(&out, 0);
  AppendVarint(&out, event.sequence);
  AppendString(&out, event.type);
  AppendString(&out, event.payload);
  AppendVarint(&out, static_cast<uint64_t>(event.timestamp_ms));
  AppendVarint(&out, event.metadata.size());
  for (const auto& [name, value] : event.metadata) {
    AppendString(&out, name);
    AppendString(&out, value);
  }
  return out;
}

void SetEventOffset(std::string* record, uint64_t offset) {
  PutBigEndian64(record->data() + kEventOffsetPos, offset);
}

std::string EncodeHead(const Head& head) {
  std::string out(1, kFormatV2);
  AppendVarint(&out, head.last);
  AppendVarint(&out, head.deleted_through);
  AppendVarint(&out, head.fence);
  return out;
}

std::string EncodeValueHeader(uint64_t version, bool present, uint64_t expires) {
  std::string out(1, expires == 0 ? kFormatV1 : kFormatV2);
  AppendVarint(&out, version);
  if (expires != 0) AppendVarint(&out, expires);
  out.push_back(present ? 1 : 0);
  return out;
}

std::string EncodeIdempotency(uint64_t expires, std::string_view record) {
  std::string out(1, kFormatV1);
  AppendVarint(&out, expires);
  out.append(record);
  return out;
}

std::string EncodeTimer(uint64_t due, uint32_t partition, std::string_view record) {
  std::string out(1, kFormatV1);
  AppendVarint(&out, due);
  AppendVarint(&out, partition);
  out.append(record);
  return out;
}

std::string EncodeOutbox(uint64_t due, uint32_t partition, std::string_view record) {
  return EncodeTimer(due, partition, record);
}

std::string EncodeSnapshot(const Snapshot& snapshot) {
  std::string out;
  out.reserve(1 + 10 + snapshot.state.size());
  out.push_back(kFormatV1);
  AppendVarint(&out, snapshot.sequence);
  out.append(snapshot.state);
  return out;
}

std::string EncodeStreamPointer(std::string_view key, uint64_t sequence) {
  std::string out(1, kFormatV1);
  AppendString(&out, key);
  AppendVarint(&out, sequence);
  return out;
}

std::string EncodeOffset(uint64_t offset) {
  std::string out(1, kFormatV1);
  AppendVarint(&out, offset);
  return out;
}

bool DecodeEvent(std::string_view record, Event* event, uint64_t* offset) {
  Decoder d(record);
  uint64_t timestamp = 0;
  uint64_t pairs = 0;
  if (!d.Format() || !d.BigEndian64(offset) || !d.Varint(&event->sequence) ||
      !d.String(&event->type) || !d.String(&event->payload) || !d.Varint(&timestamp) ||
      !d.Varint(&pairs)) {
    return false;
  }
  event->timestamp_ms = static_cast<int64_t>(timestamp);
  event->metadata.clear();
  // A pair takes at least two bytes: this bounds the reservation by the record's size.
  if (pairs > d.remaining() / 2) return false;
  event->metadata.reserve(pairs);
  for (uint64_t i = 0; i < pairs; ++i) {
    std::pair<std::string, std::string>& pair = event->metadata.emplace_back();
    if (!d.String(&pair.first) || !d.String(&pair.second)) return false;
  }
  return d.done();
}

bool DecodeEventOffset(std::string_view record, uint64_t* offset) {
  Decoder d(record);
  return d.Format() && d.BigEndian64(offset);
}

bool DecodeHead(std::string_view record, Head* head) {
  Decoder d(record);
  const bool with_fence = !d.Format(kFormatV1);
  if (with_fence && !d.Format(kFormatV2)) return false;
  if (!d.Varint(&head->last) || !d.Varint(&head->deleted_through)) return false;
  head->fence = 0;
  if (with_fence && !d.Varint(&head->fence)) return false;
  return d.done() && head->deleted_through <= head->last;
}

bool DecodeValue(std::string_view record, uint64_t* version,
                 std::optional<std::string_view>* value, uint64_t* expires) {
  Decoder d(record);
  uint64_t expiry = 0;
  if (!record.empty() && record[0] == kFormatV2) {
    if (!d.Format(kFormatV2) || !d.Varint(version) || !d.Varint(&expiry) || d.done()) {
      return false;
    }
  } else if (!d.Format() || !d.Varint(version) || d.done()) {
    return false;
  }
  if (expires != nullptr) *expires = expiry;
  const std::string_view rest = d.Rest();
  if (rest[0] == 0 && rest.size() == 1) {
    *value = std::nullopt;
    return true;
  }
  if (rest[0] != 1) return false;
  *value = rest.substr(1);
  return true;
}

bool DecodeIdempotency(std::string_view encoded, uint64_t* expires, std::string_view* record) {
  Decoder d(encoded);
  if (!d.Format() || !d.Varint(expires)) return false;
  *record = d.Rest();
  return true;
}

bool DecodeScheduled(std::string_view encoded, uint64_t* due, uint32_t* partition,
                     std::string_view* record) {
  Decoder d(encoded);
  uint64_t p = 0;
  if (!d.Format() || !d.Varint(due) || !d.Varint(&p) || p > UINT32_MAX) return false;
  *partition = static_cast<uint32_t>(p);
  *record = d.Rest();
  return true;
}

bool DecodeSnapshot(std::string_view record, Snapshot* snapshot) {
  Decoder d(record);
  if (!d.Format() || !d.Varint(&snapshot->sequence)) return false;
  const std::string_view state = d.Rest();
  snapshot->state.assign(state.data(), state.size());
  return true;
}

bool DecodeStreamPointer(std::string_view record, std::string* key, uint64_t* sequence) {
  Decoder d(record);
  return d.Format() && d.String(key) && d.Varint(sequence) && d.done();
}

bool DecodeOffset(std::string_view record, uint64_t* offset) {
  Decoder d(record);
  return d.Format() && d.Varint(offset) && d.done();
}

}  // namespace massa::store::records
