// Conversions between the native protocol's wire messages and Massa's own types. Internal to
// the native driver; exposed for its tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "massa/entity/command.h"
#include "massa/protocol/user_function.h"
#include "massa/protocol/v1/protocol.pb.h"

namespace massa::native {

inline constexpr uint32_t kProtocolMajor = 1;
inline constexpr uint32_t kProtocolMinor = 2;  // 1.2: timers, state TTL, idempotency keys

// Checks the version and kinds. Errors: FAILED_PRECONDITION for another major version
// (naming both), INVALID_ARGUMENT for an unknown entity kind (naming the service).
[[nodiscard]] absl::StatusOr<FunctionSpec> SpecFromProto(const protocol::v1::Spec& spec);

void CommandToProto(const Command& command, std::string_view request_type,
                    protocol::v1::Command& out);

// Errors: INTERNAL for a response Massa cannot use (e.g. an effect it does not support yet).
[[nodiscard]] absl::StatusOr<Outcome> OutcomeFromProto(
    const protocol::v1::ClientAction& action, const protocol::v1::Effects& effects);

// The outcome of a value entity command: as OutcomeFromProto, plus the state update.
[[nodiscard]] absl::StatusOr<Outcome> ValueEntityOutcomeFromProto(
    const protocol::v1::ValueEntityResponse& response);

// The outcome of an event-sourced command: as OutcomeFromProto, plus the events and the state
// after them. Errors: INTERNAL for events without the resulting state.
[[nodiscard]] absl::StatusOr<Outcome> EventSourcedOutcomeFromProto(
    const protocol::v1::EventSourcedResponse& response);

void FoldRequestToProto(const std::string& service, const std::string& entity_key,
                        const std::optional<TypedValue>& state, const std::vector<Event>& events,
                        protocol::v1::FoldRequest& out);

// Metadata from and to the wire (`-bin` keys as bytes).
Metadata MetadataOf(const protocol::v1::Metadata& metadata);
void MetadataInto(const Metadata& metadata, protocol::v1::Metadata& out);

std::string_view TypeNameOf(std::string_view type_url);
std::string TypeUrlOf(std::string_view type_name);

}  // namespace massa::native
