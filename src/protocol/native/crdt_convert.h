// Conversions between the native protocol's CRDT messages (CrdtValue, CrdtDelta, CrdtResponse)
// and the CRDT library's values and operations. Set elements, map keys and register values
// travel as google.protobuf.Any and are kept as the Any's serialized bytes.
#pragma once

#include "absl/status/statusor.h"
#include "crdt/crdt.h"
#include "massa/entity/command.h"
#include "massa/protocol/v1/protocol.pb.h"

namespace massa::native {

// nullopt for CRDT_TYPE_UNSPECIFIED or an unknown value.
std::optional<crdt::Type> CrdtTypeFromProto(protocol::v1::CrdtType type);

void CrdtValueToProto(const crdt::Value& value, protocol::v1::CrdtValue& out);

// The outcome of a CRDT command: as OutcomeFromProto, plus the change to the value
// (Outcome::crdt). Errors: INVALID_ARGUMENT for a delta that cannot be an operation (a
// GCounter increment beyond int64, an ORMap entry without a delta).
[[nodiscard]] absl::StatusOr<Outcome> CrdtOutcomeFromProto(
    const protocol::v1::CrdtResponse& response);

}  // namespace massa::native
