// File: store/postgres/wire.h
//
// The bytes the PostgreSQL store exchanges with the server in binary format (parameters and
// results: big-endian integers, one-dimensional arrays) and the encoding of an event's
// metadata in its bytea column. Plain byte strings, no libpq, so tests can check them alone.
//
// Metadata: a format byte (1), be32(number of pairs), then for each (name, value) pair in
// order: be32(len(name)) name be32(len(value)) value. Decoding accepts only input that parses
// exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "massa/entity/command.h"

namespace massa::store::postgres {

// PostgreSQL type OIDs of the parameters and columns the store uses (pg_type.dat).
inline constexpr unsigned kBoolOid = 16;
inline constexpr unsigned kByteaOid = 17;
inline constexpr unsigned kInt8Oid = 20;
inline constexpr unsigned kByteaArrayOid = 1001;
inline constexpr unsigned kInt8ArrayOid = 1016;

void AppendBigEndian32(std::string* out, uint32_t v);
void AppendBigEndian64(std::string* out, uint64_t v);
// Reads 4 or 8 bytes at `in`.
uint32_t GetBigEndian32(const char* in);
uint64_t GetBigEndian64(const char* in);

// A one-dimensional array without NULLs of elements of type `element_oid`, each given in its
// binary form: PostgreSQL's array_send format.
std::string EncodeArray(unsigned element_oid, const std::vector<std::string_view>& elements);
// An int8[] of `values`.
std::string EncodeInt64Array(const std::vector<int64_t>& values);

std::string EncodeMetadata(const Metadata& metadata);
// False when `bytes` is not exactly one well-formed metadata encoding.
[[nodiscard]] bool DecodeMetadata(std::string_view bytes, Metadata* metadata);

}  // namespace massa::store::postgres
