// Idempotency keys: what the runtime keeps so that a request carrying `idempotency-key` is
// applied at most once per entity, and the keys it derives for the effects of such a request.
//
// A request's record holds a hash of the request (service, method, payload) and its result:
// the status and reply, or the forward or pipe it answered with, and its synchronous side
// effects. A retry with the same key and request is answered from the record: the reply as
// stored, or the forward/pipe and synchronous side effects sent again, each under the key
// derived for it, so that their targets apply them once. The same key with another request is
// INVALID_ARGUMENT.
//
// Derived keys name their source: Derive(entity type, entity key, base key, what) is a hash of
// the three (so that two entities' requests under the same client key never collide at a
// target) followed by what it is for ("s0" the first synchronous side effect, "o1" the second
// asynchronous one, "f" a forward or pipe, "t..." a timer tick). A caller's key is never
// passed on as is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "massa/entity/command.h"

namespace massa::idempotency {

inline constexpr char kMetadataKey[] = "idempotency-key";
// Set to "true" in the metadata of a reply that was answered from a stored record.
inline constexpr char kReplayedMetadata[] = "massa-idempotent-replay";
inline constexpr size_t kMaxKeyBytes = 256;

// Moves the `idempotency-key` metadata entry into command.idempotency_key (when the command
// has no key yet; otherwise the entry is dropped). INVALID_ARGUMENT, naming the header, for a
// key that is empty, over kMaxKeyBytes, not printable ASCII, or given twice.
[[nodiscard]] absl::Status TakeKey(Command& command);

// 16 bytes identifying the request: its service, method and payload.
std::string RequestHash(std::string_view service, std::string_view method,
                        std::string_view payload);

// The key for `what` of the request applied under `base` by entity (entity_type, entity_key).
std::string Derive(std::string_view entity_type, std::string_view entity_key,
                   std::string_view base, std::string_view what);

// Whether a failure with `code` is transient: it applied nothing and a retry may succeed
// (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN,
// UNIMPLEMENTED, CANCELLED). A transient failure is not recorded under the request's key, so
// that a retry runs the command again; the outbox retries deliveries that fail so.
bool Transient(absl::StatusCode code);

// Whether `outcome` is recorded under its request's key: a reply, or a failure that is not
// transient (the answer a retry would get again).
bool Recorded(const Outcome& outcome);

// A stored record: the request's hash and an Outcome holding its result and synchronous side
// effects (nothing else).
struct StoredResult {
  std::string request_hash;
  Outcome outcome;
};

std::string Encode(std::string_view request_hash, const Outcome& outcome, int64_t created_ms);
// INTERNAL for a record that does not decode.
[[nodiscard]] absl::StatusOr<StoredResult> Decode(std::string_view record);

}  // namespace massa::idempotency
