// The RocksDB store's key and record formats (src/store/rocksdb/records.h): round trips,
// key order, and rejection of anything that is not exactly one record.

#include "store/rocksdb/records.h"

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "massa/entity/command.h"
#include "massa/store/store.h"

namespace massa::store::records {
namespace {

using std::string_literals::operator""s;

Event FullEvent() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return Event{300, "a.B\0c"s, bytes, -1'234'567, {{"", ""}, {"k\0"s, bytes}, {"x", "y"}}};
}

std::string EventRecord(const Event& event, uint64_t offset) {
  std::string record = EncodeEvent(event);
  SetEventOffset(&record, offset);
  return record;
}

TEST(RecordsTest, EventRoundTripsWithItsOffset) {
  for (const Event& event :
       {FullEvent(), Event{1, "", "", 0, {}}, Event{UINT64_MAX, "t", "p", INT64_MIN, {}},
        Event{2, "t", "p", INT64_MAX, {{"a", "b"}}}}) {
    for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{0x0102030405060708}, UINT64_MAX}) {
      const std::string record = EventRecord(event, offset);
      Event decoded;
      uint64_t decoded_offset = 0;
      ASSERT_TRUE(DecodeEvent(record, &decoded, &decoded_offset));
      EXPECT_EQ(decoded, event);
      EXPECT_EQ(decoded_offset, offset);
      uint64_t only_offset = 0;
      ASSERT_TRUE(DecodeEventOffset(record, &only_offset));
      EXPECT_EQ(only_offset, offset);
    }
  }
}

TEST(RecordsTest, OtherRecordsRoundTrip) {
  Head head;
  ASSERT_TRUE(
      DecodeHead(EncodeHead({.last = 1'000'000, .deleted_through = 999, .fence = 9}), &head));
  EXPECT_EQ(head, (Head{.last = 1'000'000, .deleted_through = 999, .fence = 9}));
  ASSERT_TRUE(DecodeHead(EncodeHead({.last = UINT64_MAX, .fence = UINT64_MAX}), &head));
  EXPECT_EQ(head, (Head{.last = UINT64_MAX, .fence = UINT64_MAX}));
  Snapshot snapshot;
  ASSERT_TRUE(DecodeSnapshot(EncodeSnapshot({7, "st\0ate"s}), &snapshot));
  EXPECT_EQ(snapshot, (Snapshot{7, "st\0ate"s}));
  ASSERT_TRUE(DecodeSnapshot(EncodeSnapshot({0, ""}), &snapshot));
  EXPECT_EQ(snapshot, (Snapshot{0, ""}));
  std::string key;
  uint64_t sequence = 0;
  ASSERT_TRUE(DecodeStreamPointer(EncodeStreamPointer("k\0ey"s, 42), &key, &sequence));
  EXPECT_EQ(key, "k\0ey"s);
  EXPECT_EQ(sequence, 42u);
  uint64_t offset = 0;
  ASSERT_TRUE(DecodeOffset(EncodeOffset(UINT64_MAX), &offset));
  EXPECT_EQ(offset, UINT64_MAX);
}

TEST(RecordsTest, ValueRecordsRoundTrip) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (uint64_t version : {uint64_t{0}, uint64_t{1}, uint64_t{300}, UINT64_MAX}) {
    for (const std::string& value : {std::string(), std::string("v"), bytes}) {
      uint64_t decoded_version = 0;
      std::optional<std::string_view> decoded;
      const std::string record = EncodeValueHeader(version, true) + value;
      ASSERT_TRUE(DecodeValue(record, &decoded_version, &decoded));
      EXPECT_EQ(decoded_version, version);
      EXPECT_EQ(decoded, value);
    }
    uint64_t decoded_version = 0;
    std::optional<std::string_view> decoded = "not reset";
    ASSERT_TRUE(DecodeValue(EncodeValueHeader(version, false), &decoded_version, &decoded));
    EXPECT_EQ(decoded_version, version);
    EXPECT_EQ(decoded, std::nullopt);
  }
}

// Head records written before fences (format 1: last, deleted through) still decode, with
// fence 0.
TEST(RecordsTest, FormatOneHeadsDecodeWithoutFence) {
  Head head{.last = 5, .deleted_through = 5, .fence = 4};
  ASSERT_TRUE(DecodeHead("\x01\xac\x02\x01"s, &head));
  EXPECT_EQ(head, (Head{.last = 300, .deleted_through = 1, .fence = 0}));
  // A format 1 record with format 2's extra field is neither.
  EXPECT_FALSE(DecodeHead("\x01\xac\x02\x01\x00"s, &head));
  // Other format bytes are rejected.
  EXPECT_FALSE(DecodeHead("\x03\xac\x02\x01\x00"s, &head));
  EXPECT_FALSE(DecodeHead("\x00\xac\x02\x01"s, &head));
}

// Every record but the snapshot (whose state is the rest of the record) has an exact length:
// any strict prefix, and any record with a byte appended, is rejected.
TEST(RecordsTest, TruncatedOrExtendedRecordsAreRejected) {
  const std::string event = EventRecord(FullEvent(), 5);
  const std::string head = EncodeHead({.last = 300, .deleted_through = 200, .fence = 200});
  const std::string head_v1 = "\x01\xac\x02\xc8\x01"s;  // format 1: 300, 200
  const std::string deleted_value = EncodeValueHeader(300, false);
  const std::string pointer = EncodeStreamPointer("key", 300);
  const std::string offset_record = EncodeOffset(300);
  Event e;
  Head h;
  std::string k;
  uint64_t n = 0;
  std::optional<std::string_view> v;
  ASSERT_TRUE(DecodeHead(head_v1, &h));
  ASSERT_TRUE(DecodeValue(deleted_value, &n, &v));
  for (size_t len = 0; len < event.size(); ++len) {
    EXPECT_FALSE(DecodeEvent(event.substr(0, len), &e, &n)) << len;
  }
  for (size_t len = 0; len < 9; ++len) EXPECT_FALSE(DecodeEventOffset(event.substr(0, len), &n));
  for (size_t len = 0; len < head.size(); ++len) EXPECT_FALSE(DecodeHead(head.substr(0, len), &h));
  for (size_t len = 0; len < head_v1.size(); ++len) {
    EXPECT_FALSE(DecodeHead(head_v1.substr(0, len), &h)) << len;
  }
  // A value record's value is the rest of it, so only its header can be cut short.
  for (size_t len = 0; len < deleted_value.size(); ++len) {
    EXPECT_FALSE(DecodeValue(deleted_value.substr(0, len), &n, &v)) << len;
  }
  EXPECT_FALSE(DecodeValue(deleted_value + "x", &n, &v));
  for (size_t len = 0; len < pointer.size(); ++len) {
    EXPECT_FALSE(DecodeStreamPointer(pointer.substr(0, len), &k, &n)) << len;
  }
  for (size_t len = 0; len < offset_record.size(); ++len) {
    EXPECT_FALSE(DecodeOffset(offset_record.substr(0, len), &n)) << len;
  }
  Snapshot s;
  EXPECT_FALSE(DecodeSnapshot("", &s));
  EXPECT_FALSE(DecodeSnapshot("\x01", &s));
  EXPECT_FALSE(DecodeSnapshot("\x01\x80", &s));
  EXPECT_FALSE(DecodeEvent(event + "x", &e, &n));
  EXPECT_FALSE(DecodeHead(head + "x", &h));
  EXPECT_FALSE(DecodeStreamPointer(pointer + "x", &k, &n));
  EXPECT_FALSE(DecodeOffset(offset_record + "x", &n));
}

TEST(RecordsTest, MalformedFieldsAreRejected) {
  Event e;
  Head h;
  Snapshot s;
  uint64_t n = 0;
  // Unknown format byte.
  std::string event = EventRecord(FullEvent(), 5);
  event[0] = 2;
  EXPECT_FALSE(DecodeEvent(event, &e, &n));
  EXPECT_FALSE(DecodeEventOffset(event, &n));
  EXPECT_FALSE(DecodeSnapshot("\x02\x01state", &s));
  // A varint longer than 64 bits.
  EXPECT_FALSE(DecodeOffset("\x01" + std::string(10, '\xff') + "\x01", &n));
  EXPECT_FALSE(DecodeOffset("\x01" + std::string(9, '\xff') + "\x02", &n));
  ASSERT_TRUE(DecodeOffset("\x01" + std::string(9, '\xff') + "\x01", &n));
  EXPECT_EQ(n, UINT64_MAX);
  // A string longer than the record.
  std::string huge_type = "\x01"s + std::string(8, '\0') + "\x01";
  AppendVarint(&huge_type, uint64_t{1} << 62);
  huge_type += "abc";
  EXPECT_FALSE(DecodeEvent(huge_type, &e, &n));
  // A metadata count far beyond what the record holds.
  std::string many_pairs = "\x01"s + std::string(8, '\0') + "\x01" + "\x00\x00\x00"s;
  AppendVarint(&many_pairs, uint64_t{1} << 60);
  EXPECT_FALSE(DecodeEvent(many_pairs, &e, &n));
  // A head whose retention point is past its last sequence.
  EXPECT_FALSE(DecodeHead("\x01\x02\x03", &h));
  EXPECT_FALSE(DecodeHead("\x02\x02\x03\x00"s, &h));
  // A value record whose presence byte is neither 0 nor 1, or of an unknown format.
  std::optional<std::string_view> v;
  EXPECT_FALSE(DecodeValue("\x01\x05\x02value"s, &n, &v));
  EXPECT_FALSE(DecodeValue("\x02\x05\x01value"s, &n, &v));
}

// Random bytes never crash a decoder; what decodes re-encodes to something that decodes the
// same.
TEST(RecordsTest, RandomBytesDecodeSafely) {
  std::mt19937_64 rng(12345);
  size_t events = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string bytes(rng() % 48, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 4 == 0 ? rng() % 4 : rng());
    if (!bytes.empty() && rng() % 2 == 0) bytes[0] = rng() % 2 == 0 ? kFormatV1 : kFormatV2;
    Event e;
    uint64_t offset = 0;
    if (DecodeEvent(bytes, &e, &offset)) {
      ++events;
      Event again;
      uint64_t again_offset = 0;
      ASSERT_TRUE(DecodeEvent(EventRecord(e, offset), &again, &again_offset));
      EXPECT_EQ(again, e);
      EXPECT_EQ(again_offset, offset);
    }
    Head h;
    Snapshot s;
    std::string k;
    if (DecodeHead(bytes, &h)) {
      Head again;
      ASSERT_TRUE(DecodeHead(EncodeHead(h), &again));
      EXPECT_EQ(again, h);
    }
    std::optional<std::string_view> value;
    if (DecodeValue(bytes, &offset, &value)) {
      uint64_t version = 0;
      std::optional<std::string_view> again;
      const std::string record = EncodeValueHeader(offset, value.has_value()) +
                                 std::string(value.value_or(std::string_view()));
      ASSERT_TRUE(DecodeValue(record, &version, &again));
      EXPECT_EQ(version, offset);
      EXPECT_EQ(again, value);
    }
    (void)DecodeSnapshot(bytes, &s);
    (void)DecodeStreamPointer(bytes, &k, &offset);
    (void)DecodeOffset(bytes, &offset);
  }
  EXPECT_LT(events, 20'000u);
}

// The on-disk layout, pinned: changing it needs a migration.
TEST(RecordsTest, KeyLayout) {
  const std::string id = EntityId("cart", "c1");
  EXPECT_EQ(id,
            "\x04"
            "cart"
            "\x02"
            "c1");
  EXPECT_EQ(JournalKey(id, 0x0102),
            "e\x04"
            "cart\x02"
            "c1" +
                std::string(6, '\0') + "\x01\x02");
  EXPECT_EQ(HeadKey(id),
            "h\x04"
            "cart\x02"
            "c1");
  EXPECT_EQ(SnapshotKey(id),
            "s\x04"
            "cart\x02"
            "c1");
  EXPECT_EQ(StreamKey("cart", 3),
            "t\x04"
            "cart" +
                std::string(7, '\0') + "\x03");
  EXPECT_EQ(OffsetKey("cart"),
            "o\x04"
            "cart");
  EXPECT_EQ(ValueKey("cart", "c1"),
            "v\x04"
            "cartc1");
  EXPECT_EQ(VersionedValueKey("cart", "c1"),
            "w\x04"
            "cartc1");
  EXPECT_EQ(EncodeHead({.last = 300, .deleted_through = 1, .fence = 128}),
            "\x02\xac\x02\x01\x80\x01");
  EXPECT_EQ(EncodeValueHeader(300, true) + "val", "\x01\xac\x02\x01val");
  EXPECT_EQ(EncodeValueHeader(2, false), "\x01\x02\x00"s);
}

TEST(RecordsTest, KeysSortNumericallyAndStayApart) {
  const std::string id = EntityId("t", "a");
  EXPECT_LT(JournalKey(id, 255), JournalKey(id, 256));
  EXPECT_LT(JournalKey(id, 1), JournalKey(id, UINT64_MAX));
  EXPECT_LT(StreamKey("t", 0xff), StreamKey("t", 0x100));
  // Key "a" and key "ab" (and type "t" and "ta") have disjoint prefixes.
  const std::string a = JournalPrefix(EntityId("t", "a"));
  const std::string ab = JournalPrefix(EntityId("t", "ab"));
  EXPECT_NE(ab.compare(0, a.size(), a), 0);
  EXPECT_NE(StreamPrefix("ta").compare(0, StreamPrefix("t").size(), StreamPrefix("t")), 0);
  // Every journal key of "a" sorts below the prefix's successor and above the prefix.
  EXPECT_LT(JournalKey(id, UINT64_MAX), PrefixSuccessor(a));
  EXPECT_GT(JournalKey(id, 0), a);
  EXPECT_EQ(PrefixSuccessor("e\x01\xff\xff"s), "e\x02");
  EXPECT_EQ(PrefixSuccessor("abc"), "abd");
}

}  // namespace
}  // namespace massa::store::records
