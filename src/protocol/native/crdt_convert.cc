#include "protocol/native/crdt_convert.h"

#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crdt/change.h"
#include "protocol/native/convert.h"

namespace massa::native {
namespace {

namespace v1 = protocol::v1;

void AnyInto(const crdt::Bytes& bytes, google::protobuf::Any& out) {
  if (!out.ParseFromString(bytes)) out.Clear();  // only ever written from an Any
}

// The data type a delta is written for; nullopt when it holds none.
std::optional<crdt::Type> TypeOf(const v1::CrdtDelta& delta) {
  switch (delta.delta_case()) {
    case v1::CrdtDelta::kGCounter: return crdt::Type::kGCounter;
    case v1::CrdtDelta::kPnCounter: return crdt::Type::kPNCounter;
    case v1::CrdtDelta::kGSet: return crdt::Type::kGSet;
    case v1::CrdtDelta::kOrSet: return crdt::Type::kORSet;
    case v1::CrdtDelta::kLwwRegister: return crdt::Type::kLWWRegister;
    case v1::CrdtDelta::kFlag: return crdt::Type::kFlag;
    case v1::CrdtDelta::kOrMap: return crdt::Type::kORMap;
    case v1::CrdtDelta::kVote: return crdt::Type::kVote;
    case v1::CrdtDelta::DELTA_NOT_SET: return std::nullopt;
  }
  return std::nullopt;
}

crdt::ClockKind ClockOf(v1::CrdtClock clock) {
  switch (clock) {
    case v1::CRDT_CLOCK_REVERSE: return crdt::ClockKind::kReverse;
    case v1::CRDT_CLOCK_CUSTOM: return crdt::ClockKind::kCustom;
    case v1::CRDT_CLOCK_CUSTOM_AUTO_INCREMENT: return crdt::ClockKind::kCustomAutoIncrement;
    default: return crdt::ClockKind::kDefault;
  }
}

template <typename Items>
std::vector<crdt::Bytes> BytesOf(const Items& items) {
  std::vector<crdt::Bytes> out;
  out.reserve(items.size());
  for (const google::protobuf::Any& item : items) out.push_back(item.SerializeAsString());
  return out;
}

// The operation a delta asks for (of TypeOf(delta)); nullopt when it changes nothing.
absl::StatusOr<std::optional<crdt::Operation>> OperationOf(const v1::CrdtDelta& delta) {
  switch (delta.delta_case()) {
    case v1::CrdtDelta::kGCounter: {
      const uint64_t by = delta.g_counter().increment();
      if (by > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError("a GCounter increment must fit in int64");
      }
      return crdt::Operation(crdt::Increment{static_cast<int64_t>(by)});
    }
    case v1::CrdtDelta::kPnCounter:
      return crdt::Operation(crdt::Increment{delta.pn_counter().change()});
    case v1::CrdtDelta::kGSet:
      return crdt::Operation(crdt::SetChange{false, {}, BytesOf(delta.g_set().added())});
    case v1::CrdtDelta::kOrSet:
      return crdt::Operation(crdt::SetChange{delta.or_set().cleared(),
                                             BytesOf(delta.or_set().removed()),
                                             BytesOf(delta.or_set().added())});
    case v1::CrdtDelta::kLwwRegister: {
      const v1::LWWRegisterDelta& r = delta.lww_register();
      return crdt::Operation(crdt::Assign{r.value().SerializeAsString(), ClockOf(r.clock()),
                                          r.custom_clock_value()});
    }
    case v1::CrdtDelta::kFlag:
      if (!delta.flag().enable()) return std::optional<crdt::Operation>();
      return crdt::Operation(crdt::Enable{});
    case v1::CrdtDelta::kVote:
      return crdt::Operation(crdt::CastVote{delta.vote().self_vote()});
    case v1::CrdtDelta::kOrMap: {
      const v1::ORMapDelta& m = delta.or_map();
      crdt::MapChange change;
      change.clear = m.cleared();
      change.remove = BytesOf(m.removed());
      for (const auto* entries : {&m.updated(), &m.added()}) {
        for (const v1::ORMapEntryDelta& entry : *entries) {
          std::optional<crdt::Type> type = TypeOf(entry.delta());
          if (!type.has_value()) {
            return absl::InvalidArgumentError("an ORMap entry update has no delta");
          }
          absl::StatusOr<std::optional<crdt::Operation>> op = OperationOf(entry.delta());
          if (!op.ok()) return op.status();
          if (!op->has_value()) continue;
          change.update.push_back(
              crdt::MapUpdate::Of(entry.key().SerializeAsString(), *type, **std::move(op)));
        }
      }
      return crdt::Operation(std::move(change));
    }
    case v1::CrdtDelta::DELTA_NOT_SET:
      return std::optional<crdt::Operation>();
  }
  return std::optional<crdt::Operation>();
}

}  // namespace

std::optional<crdt::Type> CrdtTypeFromProto(v1::CrdtType type) {
  switch (type) {
    case v1::CRDT_TYPE_G_COUNTER: return crdt::Type::kGCounter;
    case v1::CRDT_TYPE_PN_COUNTER: return crdt::Type::kPNCounter;
    case v1::CRDT_TYPE_G_SET: return crdt::Type::kGSet;
    case v1::CRDT_TYPE_OR_SET: return crdt::Type::kORSet;
    case v1::CRDT_TYPE_LWW_REGISTER: return crdt::Type::kLWWRegister;
    case v1::CRDT_TYPE_FLAG: return crdt::Type::kFlag;
    case v1::CRDT_TYPE_OR_MAP: return crdt::Type::kORMap;
    case v1::CRDT_TYPE_VOTE: return crdt::Type::kVote;
    default: return std::nullopt;
  }
}

void CrdtValueToProto(const crdt::Value& value, v1::CrdtValue& out) {
  switch (value.type) {
    case crdt::Type::kGCounter:
      out.mutable_g_counter()->set_value(static_cast<uint64_t>(value.counter));
      break;
    case crdt::Type::kPNCounter:
      out.mutable_pn_counter()->set_value(value.counter);
      break;
    case crdt::Type::kGSet:
      for (const crdt::Bytes& item : value.elements) AnyInto(item, *out.mutable_g_set()->add_items());
      out.mutable_g_set();
      break;
    case crdt::Type::kORSet:
      for (const crdt::Bytes& item : value.elements) AnyInto(item, *out.mutable_or_set()->add_items());
      out.mutable_or_set();
      break;
    case crdt::Type::kLWWRegister:
      out.mutable_lww_register();
      if (value.register_value.has_value()) {
        AnyInto(*value.register_value, *out.mutable_lww_register()->mutable_value());
      }
      break;
    case crdt::Type::kFlag:
      out.mutable_flag()->set_value(value.flag);
      break;
    case crdt::Type::kVote:
      out.mutable_vote()->set_self_vote(value.vote.self_vote);
      out.mutable_vote()->set_votes_for(value.vote.votes_for);
      out.mutable_vote()->set_total_voters(value.vote.voters);
      break;
    case crdt::Type::kORMap:
      out.mutable_or_map();
      for (const crdt::MapEntry& map_entry : value.entries) {
        const crdt::Bytes& key = map_entry.key;
        const crdt::Value& entry = map_entry.value;
        v1::ORMapEntry* e = out.mutable_or_map()->add_entries();
        AnyInto(key, *e->mutable_key());
        CrdtValueToProto(entry, *e->mutable_value());
      }
      break;
  }
}

absl::StatusOr<Outcome> CrdtOutcomeFromProto(const v1::CrdtResponse& response) {
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(response.client_action(), response.effects());
  if (!outcome.ok() || outcome->failed()) return outcome;
  auto change = std::make_shared<CrdtChange>();
  change->remove = response.delete_();
  switch (response.write_consistency()) {
    case v1::WRITE_CONSISTENCY_MAJORITY: change->consistency = WriteConsistency::kMajority; break;
    case v1::WRITE_CONSISTENCY_ALL: change->consistency = WriteConsistency::kAll; break;
    default: break;
  }
  if (response.has_delta()) {
    absl::StatusOr<std::optional<crdt::Operation>> op = OperationOf(response.delta());
    if (!op.ok()) return op.status();
    change->operation = *std::move(op);
    if (std::optional<crdt::Type> type = TypeOf(response.delta())) change->operation_type = *type;
  }
  if (change->operation.has_value() || change->remove) outcome->crdt = std::move(change);
  return outcome;
}

}  // namespace massa::native
