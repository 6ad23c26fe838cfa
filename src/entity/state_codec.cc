#include "entity/state_codec.h"

#include <cstdint>

namespace massa {
namespace {

constexpr char kFormatV1 = 1;

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

}  // namespace

std::string EncodeState(const TypedValue& state) {
  std::string out;
  out.reserve(1 + 5 + state.type.size() + state.bytes.size());
  out.push_back(kFormatV1);
  PutVarint(out, state.type.size());
  out += state.type;
  out += state.bytes;
  return out;
}

absl::StatusOr<TypedValue> DecodeState(std::string_view bytes) {
  if (bytes.empty() || bytes.front() != kFormatV1) {
    return absl::DataLossError("stored state has an unknown format");
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
