#include "entity/state_codec.h"

#include <algorithm>
#include <cstdint>

#include "zlib.h"

namespace massa {
namespace {

constexpr char kFormatV1 = 1;  // format, varint type size, type, bytes
constexpr char kFormatV2 = 2;  // as V1, then CRC-32 (zlib) of everything before, little endian
constexpr size_t kCrcSize = 4;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

uint32_t Crc(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; states are far below 4 GiB but feed it in chunks regardless.
  while (!bytes.empty()) {
    const auto chunk = static_cast<uInt>(std::min<size_t>(bytes.size(), 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), chunk);
    bytes.remove_prefix(chunk);
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

std::string EncodeState(const TypedValue& state) {
  std::string out;
  out.reserve(1 + 5 + state.type.size() + state.bytes.size() + kCrcSize);
  out.push_back(kFormatV2);
  PutVarint(out, state.type.size());
  out += state.type;
  out += state.bytes;
  const uint32_t crc = Crc(out);
  for (size_t i = 0; i < kCrcSize; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

absl::StatusOr<TypedValue> DecodeState(std::string_view bytes) {
  if (bytes.empty() || (bytes.front() != kFormatV1 && bytes.front() != kFormatV2)) {
    return absl::DataLossError("stored state has an unknown format");
  }
  if (bytes.front() == kFormatV2) {
    if (bytes.size() < 1 + kCrcSize) return absl::DataLossError("stored state is truncated");
    std::string_view body = bytes.substr(0, bytes.size() - kCrcSize);
    uint32_t stored = 0;
    for (size_t i = 0; i < kCrcSize; ++i) {
      stored |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[body.size() + i])) << (8 * i);
    }
    if (Crc(body) != stored) return absl::DataLossError("stored state fails its checksum");
    bytes = body;
  }
  bytes.remove_prefix(1);
  uint64_t type_size = 0;
  if (!GetVarint(bytes, type_size) || type_size > bytes.size()) {
    return absl::DataLossError("stored state is truncated");
  }
  TypedValue state;
  state.type = std::string(bytes.substr(0, type_size));
  state.bytes = std::string(bytes.substr(type_size));
  return state;
}

}  // namespace massa
