// Encode/Decode of crdt/state.h: State <-> massa.internal.v1.CrdtState.

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crdt/state.h"
#include "massa/internal/v1/crdt.pb.h"

namespace massa::crdt::internal {
namespace {

namespace v1 = massa::internal::v1;

// Nesting deeper than this (ORMaps in ORMaps) is refused; protobuf's own limit is 100.
constexpr int kMaxDepth = 32;

void ToProto(const Dot& dot, v1::CrdtDot& out) {
  out.set_replica(dot.first);
  out.set_counter(dot.second);
}

void ToProto(const std::map<Replica, uint64_t>& counts,
             google::protobuf::RepeatedPtrField<v1::CrdtCount>& out) {
  for (const auto& [replica, n] : counts) {
    v1::CrdtCount* count = out.Add();
    count->set_replica(replica);
    count->set_count(n);
  }
}

void ToProto(const State& state, v1::CrdtState& out) {
  out.set_type(static_cast<int>(state.type));
  ToProto(state.positive, *out.mutable_positive());
  ToProto(state.negative, *out.mutable_negative());
  for (const Bytes& element : state.grow_only) out.add_grow_only(element);
  for (const auto& [element, dots] : state.elements) {
    v1::CrdtElement* entry = out.add_elements();
    entry->set_element(element);
    for (const Dot& dot : dots) ToProto(dot, *entry->add_dots());
  }
  for (const Dot& dot : state.flag) ToProto(dot, *out.add_flag());
  for (const auto& [key, slices] : state.entries) {
    v1::CrdtMapEntry* entry = out.add_entries();
    entry->set_key(key);
    for (const auto& [dot, slice] : slices) {
      v1::CrdtSlice* made = entry->add_slices();
      ToProto(dot, *made->mutable_dot());
      made->set_run(slice.run);
      ToProto(*slice.value, *made->mutable_value());
    }
  }
  if (!state.context.empty()) {
    v1::CrdtCausalContext* context = out.mutable_context();
    ToProto(state.context.prefix(), *context->mutable_prefix());
    for (const Dot& dot : state.context.cloud()) ToProto(dot, *context->add_cloud());
  }
  if (state.lww.has_value()) {
    v1::CrdtRegister* lww = out.mutable_lww();
    lww->set_value(state.lww->value);
    lww->set_clock(state.lww->clock);
    lww->set_replica(state.lww->replica);
  }
  for (const auto& [replica, ballot] : state.votes) {
    v1::CrdtBallot* made = out.add_votes();
    made->set_replica(replica);
    made->set_vote(ballot.vote);
    made->set_version(ballot.version);
  }
}

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("the bytes are not a serialized CRDT value: ", std::string(what)));
}

absl::StatusOr<Dot> FromProto(const v1::CrdtDot& dot) {
  if (dot.replica().empty() || dot.counter() == 0)
    return Invalid("a dot without replica or counter");
  return Dot(dot.replica(), dot.counter());
}

absl::StatusOr<std::set<Dot>> FromProto(
    const google::protobuf::RepeatedPtrField<v1::CrdtDot>& dots) {
  std::set<Dot> out;
  for (const v1::CrdtDot& dot : dots) {
    absl::StatusOr<Dot> parsed = FromProto(dot);
    if (!parsed.ok()) return parsed.status();
    out.insert(*std::move(parsed));
  }
  return out;
}

std::map<Replica, uint64_t> FromProto(
    const google::protobuf::RepeatedPtrField<v1::CrdtCount>& counts) {
  std::map<Replica, uint64_t> out;
  for (const v1::CrdtCount& count : counts) {
    if (count.count() == 0) continue;  // no entry
    uint64_t& n = out[count.replica()];
    n = std::max(n, count.count());
  }
  return out;
}

absl::StatusOr<State> FromProto(const v1::CrdtState& proto, int depth) {
  const int type = proto.type();
  if (type < static_cast<int>(Type::kGCounter) || type > static_cast<int>(Type::kVote)) {
    return Invalid(absl::StrCat("unknown type ", type));
  }
  if (depth > kMaxDepth) return Invalid("nested too deep");
  State out(static_cast<Type>(type));
  // Only the fields of the type are read.
  switch (out.type) {
    case Type::kGCounter: out.positive = FromProto(proto.positive()); return out;
    case Type::kPNCounter:
      out.positive = FromProto(proto.positive());
      out.negative = FromProto(proto.negative());
      return out;
    case Type::kGSet:
      out.grow_only.insert(proto.grow_only().begin(), proto.grow_only().end());
      return out;
    case Type::kLWWRegister:
      if (proto.has_lww()) {
        out.lww = Register{proto.lww().value(), proto.lww().clock(), proto.lww().replica()};
      }
      return out;
    case Type::kVote:
      for (const v1::CrdtBallot& ballot : proto.votes()) {
        if (ballot.version() == 0) return Invalid("a vote of version 0");
        out.votes[ballot.replica()] = Ballot{ballot.vote(), ballot.version()};
      }
      return out;
    case Type::kORSet:
    case Type::kFlag:
    case Type::kORMap: break;
  }
  std::map<Replica, uint64_t> prefix = FromProto(proto.context().prefix());
  if (prefix.contains("")) return Invalid("a causal context entry without replica");
  absl::StatusOr<std::set<Dot>> cloud = FromProto(proto.context().cloud());
  if (!cloud.ok()) return cloud.status();
  out.context = CausalContext::FromParts(std::move(prefix), *std::move(cloud));
  if (out.type == Type::kORSet) {
    for (const v1::CrdtElement& element : proto.elements()) {
      absl::StatusOr<std::set<Dot>> dots = FromProto(element.dots());
      if (!dots.ok()) return dots.status();
      if (!dots->empty()) out.elements[element.element()] = *std::move(dots);
    }
  } else if (out.type == Type::kFlag) {
    absl::StatusOr<std::set<Dot>> dots = FromProto(proto.flag());
    if (!dots.ok()) return dots.status();
    out.flag = *std::move(dots);
  } else {
    for (const v1::CrdtMapEntry& entry : proto.entries()) {
      std::map<Dot, Slice> slices;
      for (const v1::CrdtSlice& slice : entry.slices()) {
        if (!slice.has_dot() || !slice.has_value())
          return Invalid("an ORMap slice without dot or value");
        absl::StatusOr<Dot> dot = FromProto(slice.dot());
        if (!dot.ok()) return dot.status();
        absl::StatusOr<State> value = FromProto(slice.value(), depth + 1);
        if (!value.ok()) return value.status();
        slices[*std::move(dot)] =
            Slice{slice.run(), std::make_shared<const State>(*std::move(value))};
      }
      if (!slices.empty()) out.entries[entry.key()] = std::move(slices);
    }
  }
  return out;
}

}  // namespace

std::string Encode(const State& state) {
  v1::CrdtState proto;
  ToProto(state, proto);
  return proto.SerializeAsString();
}

absl::StatusOr<State> Decode(std::string_view bytes) {
  v1::CrdtState proto;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Invalid("not a massa.internal.v1.CrdtState");
  }
  return FromProto(proto, 0);
}

}  // namespace massa::crdt::internal
