// State codec: what EncodeState writes, DecodeState reads back; anything else is DATA_LOSS.

#include "entity/state_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace massa {
namespace {

TEST(StateCodecTest, RoundTrip) {
  const TypedValue cases[] = {
      {"massa.test.CounterState", "\x08\x2a"},
      {"", ""},
      {"t", std::string("\0\x01\xff\0", 4)},               // binary bytes, NULs included
      {std::string(300, 'x'), std::string(100'000, 'b')},  // type length needs 2 varint bytes
      {std::string(20'000, 'y'), ""},                      // 3 varint bytes
  };
  for (const TypedValue& state : cases) {
    SCOPED_TRACE(state.type.substr(0, 30));
    absl::StatusOr<TypedValue> decoded = DecodeState(EncodeState(state));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, state);
  }
}

TEST(StateCodecTest, DistinctStatesEncodeDistinctly) {
  // The type/bytes split is recoverable: moving bytes across it changes the encoding.
  EXPECT_NE(EncodeState({"ab", "c"}), EncodeState({"a", "bc"}));
}

TEST(StateCodecTest, CorruptInputIsDataLoss) {
  const std::string valid = EncodeState({"massa.test.CounterState", "\x08\x01"});
  const std::string cases[] = {
      "",                                   // nothing stored
      std::string("\x03", 1) + valid.substr(1),  // unknown format byte
      "\x01",                               // no type length
      "\x01\x80",                           // type length varint never ends
      std::string("\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12),  // over 64 bits
      "\x01\x05" "abc",                     // type length beyond the end
      valid.substr(0, 10),                  // truncated inside the type
      valid.substr(0, valid.size() - 1),    // checksum cut short
      "\x02\x01",                           // too short for a checksum
  };
  for (const std::string& bytes : cases) {
    SCOPED_TRACE(::testing::PrintToString(bytes));
    absl::StatusOr<TypedValue> decoded = DecodeState(bytes);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(StateCodecTest, AnyFlippedByteIsDetected) {
  const std::string valid = EncodeState({"massa.test.CounterState", "\x08\x2a\x10\x07"});
  for (size_t i = 0; i < valid.size(); ++i) {
    std::string damaged = valid;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x40);
    SCOPED_TRACE(i);
    EXPECT_EQ(DecodeState(damaged).status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(StateCodecTest, ReadsFormatOneWithoutChecksum) {
  // What massa wrote before checksums: format 1, type size, type, bytes.
  absl::StatusOr<TypedValue> decoded = DecodeState(std::string("\x01\x01t\x08\x05", 5));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, (TypedValue{"t", "\x08\x05"}));
}

}  // namespace
}  // namespace massa
