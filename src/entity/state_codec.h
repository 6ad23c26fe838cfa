// How a value entity's state is laid out in the store: a format byte, the state's message
// type, and its protobuf bytes. The type is kept so that state can be read back (admin
// tools, migrations) without the function.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "massa/entity/command.h"

namespace massa {

std::string EncodeState(const TypedValue& state);

// Errors: DATA_LOSS when `bytes` is not something EncodeState wrote.
[[nodiscard]] absl::StatusOr<TypedValue> DecodeState(std::string_view bytes);

}  // namespace massa
