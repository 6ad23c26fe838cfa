#include "entity/idempotency.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "massa/internal/v1/records.pb.h"

#define XXH_INLINE_ALL
#include "xxhash.h"

namespace massa::idempotency {
namespace {

namespace v1 = internal::v1;

// Hashes length-prefixed parts, so that ("ab", "c") and ("a", "bc") differ.
class Hasher {
 public:
  Hasher() { XXH3_128bits_reset(&state_); }
  Hasher& Add(std::string_view part) {
    const uint64_t size = part.size();
    XXH3_128bits_update(&state_, &size, sizeof(size));
    XXH3_128bits_update(&state_, part.data(), part.size());
    return *this;
  }
  std::string Digest() {
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(&state_));
    return std::string(reinterpret_cast<const char*>(canonical.digest), sizeof(canonical.digest));
  }

 private:
  XXH3_state_t state_;
};

void ToPairs(const Metadata& metadata,
             google::protobuf::RepeatedPtrField<v1::MetadataPair>& out) {
  for (const auto& [key, value] : metadata) {
    v1::MetadataPair* pair = out.Add();
    pair->set_key(key);
    pair->set_value(value);
  }
}

Metadata FromPairs(const google::protobuf::RepeatedPtrField<v1::MetadataPair>& pairs) {
  Metadata out;
  out.reserve(pairs.size());
  for (const v1::MetadataPair& pair : pairs) out.emplace_back(pair.key(), pair.value());
  return out;
}

void ToTarget(std::string_view service, std::string_view method, std::string_view payload,
              const Metadata& metadata, v1::Target& out) {
  out.set_service(std::string(service));
  out.set_method(std::string(method));
  out.set_payload(std::string(payload));
  ToPairs(metadata, *out.mutable_metadata());
}

}  // namespace

absl::Status TakeKey(Command& command) {
  auto is_key = [](const auto& entry) { return entry.first == kMetadataKey; };
  const auto count = std::count_if(command.metadata.begin(), command.metadata.end(), is_key);
  if (count == 0) return absl::OkStatus();
  if (!command.idempotency_key.empty()) {
    std::erase_if(command.metadata, is_key);
    return absl::OkStatus();
  }
  if (count > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(kMetadataKey, ": given ", count, " times; send one key per request"));
  }
  auto it = std::find_if(command.metadata.begin(), command.metadata.end(), is_key);
  std::string key = std::move(it->second);
  command.metadata.erase(it);
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(kMetadataKey, " is empty"));
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(kMetadataKey, " is ", key.size(),
                                                   " bytes long; at most ", kMaxKeyBytes,
                                                   " are allowed"));
  }
  for (char c : key) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(kMetadataKey, " holds a byte that is not printable ASCII"));
    }
  }
  command.idempotency_key = std::move(key);
  return absl::OkStatus();
}

std::string RequestHash(std::string_view service, std::string_view method,
                        std::string_view payload) {
  return Hasher().Add(service).Add(method).Add(payload).Digest();
}

std::string Derive(std::string_view entity_type, std::string_view entity_key,
                   std::string_view base, std::string_view what) {
  const std::string digest = Hasher().Add(entity_type).Add(entity_key).Add(base).Digest();
  return absl::StrCat("m1:", absl::BytesToHexString(digest), ":", std::string(what));
}

std::string Encode(std::string_view request_hash, const Outcome& outcome, int64_t created_ms) {
  v1::IdempotencyEntry entry;
  entry.set_request_hash(std::string(request_hash));
  entry.set_created_ms(created_ms);
  if (const auto* status = std::get_if<absl::Status>(&outcome.result)) {
    entry.set_code(static_cast<int32_t>(status->code()));
    entry.set_message(std::string(status->message()));
  } else if (const auto* reply = std::get_if<Reply>(&outcome.result)) {
    entry.set_payload(reply->payload);
    ToPairs(reply->metadata, *entry.mutable_metadata());
  } else if (const auto* forward = std::get_if<Forward>(&outcome.result)) {
    ToTarget(forward->service, forward->method, forward->payload, forward->metadata,
             *entry.mutable_forward());
  } else if (const auto* pipe = std::get_if<Pipe>(&outcome.result)) {
    ToTarget(pipe->service, pipe->method, pipe->payload, pipe->metadata,
             *entry.mutable_forward());
    entry.set_pipe(true);
  }
  for (const SideEffect& effect : outcome.side_effects) {
    if (!effect.synchronous) continue;
    ToTarget(effect.service, effect.method, effect.payload, effect.metadata,
             *entry.add_sync_effects());
  }
  return entry.SerializeAsString();
}

absl::StatusOr<StoredResult> Decode(std::string_view record) {
  v1::IdempotencyEntry entry;
  if (!entry.ParseFromArray(record.data(), static_cast<int>(record.size())) ||
      entry.request_hash().empty()) {
    return absl::InternalError("stored idempotency record is unreadable");
  }
  StoredResult out;
  out.request_hash = entry.request_hash();
  if (entry.code() != 0) {
    const int code = entry.code();
    out.outcome.result = absl::Status(
        code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown,
        entry.message());
  } else if (entry.has_forward()) {
    const v1::Target& t = entry.forward();
    if (entry.pipe()) {
      out.outcome.result = Pipe{t.service(), t.method(), t.payload(), FromPairs(t.metadata())};
    } else {
      out.outcome.result = Forward{t.service(), t.method(), t.payload(), FromPairs(t.metadata())};
    }
  } else {
    out.outcome.result = Reply{entry.payload(), FromPairs(entry.metadata())};
  }
  for (const v1::Target& t : entry.sync_effects()) {
    out.outcome.side_effects.push_back(
        SideEffect{t.service(), t.method(), t.payload(), /*synchronous=*/true,
                   FromPairs(t.metadata())});
  }
  return out;
}

bool Transient(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

bool Recorded(const Outcome& outcome) {
  const absl::Status* failure = std::get_if<absl::Status>(&outcome.result);
  return failure == nullptr || !Transient(failure->code());
}

}  // namespace massa::idempotency
