// How an entity's state is laid out in the store (value entities' states and event-sourced
// snapshots): a format byte, the state's message type, its protobuf bytes and a CRC-32 of all
// that. The type is kept so that state can be read back (admin tools, migrations) without
// the function; the checksum turns a damaged record into DATA_LOSS instead of wrong state.
// Format 1 (no checksum, written before snapshots existed) is still read.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "massa/entity/command.h"

namespace massa {

std::string EncodeState(const TypedValue& state);

// Errors: DATA_LOSS when `bytes` is not something EncodeState wrote (unknown format,
// truncated, checksum mismatch).
[[nodiscard]] absl::StatusOr<TypedValue> DecodeState(std::string_view bytes);

}  // namespace massa
