#include "store/postgres/wire.h"

#include <cstddef>
#include <utility>

namespace massa::store::postgres {
namespace {

constexpr char kMetadataFormat = 1;

// Reads a be32 length and that many bytes; false when `in` is too short.
bool TakeString(std::string_view* in, std::string* out) {
  if (in->size() < 4) return false;
  const uint32_t size = GetBigEndian32(in->data());
  in->remove_prefix(4);
  if (size > in->size()) return false;
  out->assign(in->data(), size);
  in->remove_prefix(size);
  return true;
}

constexpr size_t kArrayHeaderSize = 20;

// array_send's header of a one-dimensional array without NULLs, indexed from 1.
void AppendArrayHeader(std::string* out, unsigned element_oid, size_t size) {
  AppendBigEndian32(out, 1);  // dimensions
  AppendBigEndian32(out, 0);  // no NULLs
  AppendBigEndian32(out, element_oid);
  AppendBigEndian32(out, static_cast<uint32_t>(size));
  AppendBigEndian32(out, 1);  // lower bound
}

}  // namespace

void AppendBigEndian32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint32_t GetBigEndian32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

uint64_t GetBigEndian64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

std::string EncodeArray(unsigned element_oid, const std::vector<std::string_view>& elements) {
  size_t size = kArrayHeaderSize;
  for (std::string_view e : elements) size += 4 + e.size();
  std::string out;
  out.reserve(size);
  AppendArrayHeader(&out, element_oid, elements.size());
  for (std::string_view e : elements) {
    AppendBigEndian32(&out, static_cast<uint32_t>(e.size()));
    out.append(e);
  }
  return out;
}

std::string EncodeInt64Array(const std::vector<int64_t>& values) {
  std::string out;
  out.reserve(kArrayHeaderSize + 12 * values.size());
  AppendArrayHeader(&out, kInt8Oid, values.size());
  for (int64_t v : values) {
    AppendBigEndian32(&out, 8);
    AppendBigEndian64(&out, static_cast<uint64_t>(v));
  }
  return out;
}

std::string EncodeMetadata(const Metadata& metadata) {
  std::string out(1, kMetadataFormat);
  AppendBigEndian32(&out, static_cast<uint32_t>(metadata.size()));
  for (const auto& [name, value] : metadata) {
    AppendBigEndian32(&out, static_cast<uint32_t>(name.size()));
    out.append(name);
    AppendBigEndian32(&out, static_cast<uint32_t>(value.size()));
    out.append(value);
  }
  return out;
}

bool DecodeMetadata(std::string_view bytes, Metadata* metadata) {
  if (bytes.size() < 5 || bytes[0] != kMetadataFormat) return false;
  const uint32_t count = GetBigEndian32(bytes.data() + 1);
  bytes.remove_prefix(5);
  Metadata out;
  for (uint32_t i = 0; i < count; ++i) {
    std::string name;
    std::string value;
    if (!TakeString(&bytes, &name) || !TakeString(&bytes, &value)) return false;
    out.emplace_back(std::move(name), std::move(value));
  }
  if (!bytes.empty()) return false;
  *metadata = std::move(out);
  return true;
}

}  // namespace massa::store::postgres
