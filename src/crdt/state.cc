#include "crdt/state.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace massa::crdt::internal {
namespace {

const char* OperationName(const Operation& op) {
  static constexpr const char* kNames[] = {"Increment", "SetChange", "Assign",
                                           "Enable",    "CastVote",  "MapChange"};
  return kNames[op.index()];
}

absl::Status DoesNotApply(const Operation& op, Type type) {
  return absl::InvalidArgumentError(
      absl::StrCat(OperationName(op), " does not apply to ", WithArticle(type)));
}

// A map key or element for an error message (they are opaque bytes).
std::string Quote(const Bytes& key) {
  constexpr size_t kMax = 48;
  std::string shown = absl::CHexEscape(key.substr(0, kMax));
  return absl::StrCat("\"", shown, key.size() > kMax ? "...\"" : "\"");
}

bool ValidType(Type type) {
  return static_cast<int>(type) >= static_cast<int>(Type::kGCounter) &&
         static_cast<int>(type) <= static_cast<int>(Type::kVote);
}

// The dot-store join, in place, of one element's (or flag's, or ORMap key's) dots: a dot stays
// when both sides hold it, or one holds it and the other has not seen it (had it seen it, it
// removed it). `Store` is a std::set<Dot> or a std::map<Dot, Slice>.
template <typename Store>
void JoinDotsInto(Store& into, const CausalContext& seen_into, const Store& other,
                  const CausalContext& seen_other) {
  const auto dot_of = [](const auto& item) -> const Dot& {
    if constexpr (std::is_same_v<std::decay_t<decltype(item)>, Dot>) {
      return item;
    } else {
      return item.first;
    }
  };
  for (auto it = into.begin(); it != into.end();) {
    const Dot& dot = dot_of(*it);
    it = !other.contains(dot) && seen_other.Contains(dot) ? into.erase(it) : std::next(it);
  }
  for (const auto& item : other) {
    if (!seen_into.Contains(dot_of(item))) into.insert(item);
  }
}

// Joins keyed dot stores (ORSet elements, ORMap entries), dropping keys left without dots.
template <typename Store>
void JoinKeyed(std::map<Bytes, Store>& into, const CausalContext& seen_into,
               const std::map<Bytes, Store>& other, const CausalContext& seen_other) {
  static const Store kNone;
  for (auto it = into.begin(); it != into.end();) {
    auto found = other.find(it->first);
    JoinDotsInto(it->second, seen_into, found == other.end() ? kNone : found->second, seen_other);
    it = it->second.empty() ? into.erase(it) : std::next(it);
  }
  for (const auto& [key, store] : other) {
    if (into.contains(key)) continue;
    Store joined;
    JoinDotsInto(joined, seen_into, store, seen_other);
    if (!joined.empty()) into.emplace(key, std::move(joined));
  }
}

void MaxCounts(std::map<Replica, uint64_t>& into, const std::map<Replica, uint64_t>& other) {
  for (const auto& [replica, n] : other) {
    uint64_t& mine = into[replica];
    mine = std::max(mine, n);
  }
}

// A fresh dot for `writer` in `state`'s context, recorded in both contexts.
Dot NewDot(State& state, State& delta, const Writer& writer) {
  Dot dot = state.context.Next(writer.actor);
  state.context.Add(dot);
  delta.context.Add(dot);
  return dot;
}

// Removes the dots of `it` (an ORSet element or ORMap entry) from `store`, recording them as
// seen-and-removed in `delta`.
template <typename Map>
typename Map::iterator Drop(Map& store, typename Map::iterator it, State& delta) {
  for (const auto& dot : it->second) {
    if constexpr (std::is_same_v<std::decay_t<decltype(dot)>, Dot>) {
      delta.context.Add(dot);
    } else {
      delta.context.Add(dot.first);
    }
  }
  return store.erase(it);
}

absl::Status ApplyIncrement(State& state, const Increment& inc, const Writer& writer,
                            State& delta) {
  if (state.type == Type::kGCounter && inc.by < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a GCounter can only grow (Increment by ", inc.by, ")"));
  }
  if (inc.by == 0) return absl::OkStatus();
  const bool up = inc.by > 0;
  // |by| without overflow for INT64_MIN.
  const uint64_t by = up ? static_cast<uint64_t>(inc.by) : static_cast<uint64_t>(-(inc.by + 1)) + 1;
  auto& counts = up ? state.positive : state.negative;
  auto& delta_counts = up ? delta.positive : delta.negative;
  uint64_t& mine = counts[writer.actor];
  // Saturates rather than wraps: a replica's count only grows (merges take the maximum).
  mine = by > std::numeric_limits<uint64_t>::max() - mine ? std::numeric_limits<uint64_t>::max()
                                                          : mine + by;
  delta_counts[writer.actor] = mine;
  return absl::OkStatus();
}

absl::Status ApplySetChange(State& state, const SetChange& change, const Writer& writer,
                            State& delta) {
  if (state.type == Type::kGSet) {
    if (change.clear || !change.remove.empty()) {
      return absl::InvalidArgumentError("a GSet can only grow (no remove or clear)");
    }
    for (const Bytes& element : change.add) {
      state.grow_only.insert(element);
      delta.grow_only.insert(element);
    }
    return absl::OkStatus();
  }
  if (change.clear) {
    for (auto it = state.elements.begin(); it != state.elements.end();) {
      it = Drop(state.elements, it, delta);
    }
  }
  for (const Bytes& element : change.remove) {
    if (auto it = state.elements.find(element); it != state.elements.end()) {
      Drop(state.elements, it, delta);
    }
  }
  for (const Bytes& element : change.add) {
    if (auto it = state.elements.find(element); it != state.elements.end()) {
      Drop(state.elements, it, delta);  // the new add replaces the adds seen
    }
    const Dot dot = NewDot(state, delta, writer);
    state.elements[element] = {dot};
    delta.elements[element] = {dot};
  }
  return absl::OkStatus();
}

int64_t ClockOf(const State& state, const Assign& assign, int64_t now_ms) {
  switch (assign.clock) {
    case ClockKind::kDefault: return now_ms;
    case ClockKind::kReverse:
      return now_ms == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max()
                                                           : -now_ms;
    case ClockKind::kCustom: return assign.custom_clock;
    case ClockKind::kCustomAutoIncrement:
      if (!state.lww.has_value() || state.lww->clock == std::numeric_limits<int64_t>::max()) {
        return state.lww.has_value() ? state.lww->clock : assign.custom_clock;
      }
      return std::max(assign.custom_clock, state.lww->clock + 1);
  }
  return now_ms;
}

absl::Status ApplyMapChange(State& state, const MapChange& change, const Writer& writer,
                            int64_t now_ms, State& delta) {
  State next = state;  // slices are shared: a cheap copy, so that a refused change changes nothing
  State out(Type::kORMap);
  if (change.clear) {
    for (auto it = next.entries.begin(); it != next.entries.end();) {
      it = Drop(next.entries, it, out);
    }
  }
  for (const Bytes& key : change.remove) {
    if (auto it = next.entries.find(key); it != next.entries.end()) Drop(next.entries, it, out);
  }
  for (const MapUpdate& update : change.update) {
    if (update.operation == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("an ORMap update of ", Quote(update.key), " has no operation"));
    }
    if (!ValidType(update.type)) {
      return absl::InvalidArgumentError(absl::StrCat("an ORMap update of ", Quote(update.key),
                                                     " names an unknown type ",
                                                     static_cast<int>(update.type)));
    }
    State joined(update.type);
    const Slice* own = nullptr;
    auto it = next.entries.find(update.key);
    if (it != next.entries.end()) {
      Type shown = update.type;
      joined = JoinSlices(it->second, &shown);
      if (shown != update.type) {
        return absl::InvalidArgumentError(absl::StrCat("the ORMap entry ", Quote(update.key),
                                                       " is ", WithArticle(shown), ", not ",
                                                       WithArticle(update.type)));
      }
      for (const auto& [dot, slice] : it->second) {
        if (dot.first == writer.actor && slice.value->type == update.type) own = &slice;
      }
    }
    const Dot dot = next.context.Next(writer.actor);
    const uint64_t run = own != nullptr ? own->run : dot.second;
    const Writer inner{writer.identity, absl::StrCat(writer.actor, "#", run)};
    State change_delta(update.type);
    if (absl::Status applied = ApplyTo(joined, *update.operation, inner, now_ms, change_delta);
        !applied.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ORMap entry ", Quote(update.key), ": ", applied.message()));
    }
    State value = own != nullptr ? *own->value : State(update.type);
    MergeInto(value, change_delta);
    if (it != next.entries.end()) {
      // The new slice replaces this replica's previous one and the slices of other types seen.
      for (auto slice = it->second.begin(); slice != it->second.end();) {
        if (slice->first.first == writer.actor || slice->second.value->type != update.type) {
          out.context.Add(slice->first);
          slice = it->second.erase(slice);
        } else {
          ++slice;
        }
      }
    }
    next.context.Add(dot);
    out.context.Add(dot);
    const Slice made{run, std::make_shared<const State>(std::move(value))};
    next.entries[update.key][dot] = made;
    out.entries[update.key] = {{dot, made}};
  }
  state = std::move(next);
  delta = std::move(out);
  return absl::OkStatus();
}

}  // namespace

std::string WithArticle(Type type) {
  const bool an = type == Type::kORSet || type == Type::kORMap || type == Type::kLWWRegister;
  return absl::StrCat(an ? "an " : "a ", TypeName(type));
}

bool operator==(const Slice& a, const Slice& b) {
  if (a.run != b.run) return false;
  if (a.value == b.value) return true;
  return a.value != nullptr && b.value != nullptr && *a.value == *b.value;
}

CausalContext CausalContext::FromParts(std::map<Replica, uint64_t> prefix, std::set<Dot> cloud) {
  CausalContext out;
  std::erase_if(prefix, [](const auto& entry) { return entry.second == 0; });
  std::erase_if(cloud, [](const Dot& dot) { return dot.second == 0; });
  std::set<Replica> replicas;
  for (const Dot& dot : cloud) replicas.insert(dot.first);
  out.prefix_ = std::move(prefix);
  out.cloud_ = std::move(cloud);
  for (const Replica& replica : replicas) out.Compact(replica);
  return out;
}

bool CausalContext::Contains(const Dot& dot) const {
  auto it = prefix_.find(dot.first);
  if (it != prefix_.end() && dot.second <= it->second) return true;
  return cloud_.contains(dot);
}

void CausalContext::Add(const Dot& dot) {
  if (dot.second == 0 || Contains(dot)) return;
  cloud_.insert(dot);
  Compact(dot.first);
}

void CausalContext::Merge(const CausalContext& other) {
  for (const auto& [replica, n] : other.prefix_) {
    uint64_t& mine = prefix_[replica];
    mine = std::max(mine, n);
  }
  cloud_.insert(other.cloud_.begin(), other.cloud_.end());
  std::set<Replica> touched;
  for (const auto& [replica, n] : other.prefix_) touched.insert(replica);
  for (const Dot& dot : other.cloud_) touched.insert(dot.first);
  for (const Replica& replica : touched) Compact(replica);
}

void CausalContext::Compact(const Replica& replica) {
  auto found = prefix_.find(replica);
  uint64_t n = found == prefix_.end() ? 0 : found->second;
  for (auto it = cloud_.lower_bound(Dot(replica, 0)); it != cloud_.end() && it->first == replica;) {
    if (it->second <= n) {
      it = cloud_.erase(it);
    } else if (it->second == n + 1) {
      ++n;
      it = cloud_.erase(it);
    } else {
      break;  // a gap; the later dots sort after this one
    }
  }
  if (n > 0) prefix_[replica] = n;
}

Dot CausalContext::Next(const Replica& replica) const {
  uint64_t top = 0;
  if (auto it = prefix_.find(replica); it != prefix_.end()) top = it->second;
  for (auto it = cloud_.lower_bound(Dot(replica, 0)); it != cloud_.end() && it->first == replica;
       ++it) {
    top = std::max(top, it->second);
  }
  return Dot(replica, top + 1);
}

State JoinSlices(const std::map<Dot, Slice>& slices, Type* type) {
  Type shown = *type;
  bool first = true;
  for (const auto& [dot, slice] : slices) {
    if (first || slice.value->type < shown) shown = slice.value->type;
    first = false;
  }
  State out(shown);
  for (const auto& [dot, slice] : slices) {
    if (slice.value->type == shown) MergeInto(out, *slice.value);
  }
  *type = shown;
  return out;
}

void MergeInto(State& into, const State& other) {
  switch (into.type) {
    case Type::kGCounter:
    case Type::kPNCounter:
      MaxCounts(into.positive, other.positive);
      MaxCounts(into.negative, other.negative);
      return;
    case Type::kGSet: into.grow_only.insert(other.grow_only.begin(), other.grow_only.end()); return;
    case Type::kORSet:
      JoinKeyed(into.elements, into.context, other.elements, other.context);
      into.context.Merge(other.context);
      return;
    case Type::kFlag:
      JoinDotsInto(into.flag, into.context, other.flag, other.context);
      into.context.Merge(other.context);
      return;
    case Type::kORMap:
      JoinKeyed(into.entries, into.context, other.entries, other.context);
      into.context.Merge(other.context);
      return;
    case Type::kLWWRegister:
      if (other.lww.has_value() && (!into.lww.has_value() || other.lww->Key() > into.lww->Key())) {
        into.lww = other.lww;
      }
      return;
    case Type::kVote:
      for (const auto& [replica, ballot] : other.votes) {
        auto [it, inserted] = into.votes.emplace(replica, ballot);
        Ballot& mine = it->second;
        // A replica's versions only grow; a tie (impossible unless a replica lost its state)
        // goes to true, the same everywhere.
        if (!inserted && (ballot.version > mine.version ||
                          (ballot.version == mine.version && ballot.vote && !mine.vote))) {
          mine = ballot;
        }
      }
      return;
  }
}

absl::Status ApplyTo(State& state, const Operation& op, const Writer& writer, int64_t now_ms,
                     State& delta) {
  const Type type = state.type;
  if (const auto* inc = std::get_if<Increment>(&op)) {
    if (type != Type::kGCounter && type != Type::kPNCounter) return DoesNotApply(op, type);
    return ApplyIncrement(state, *inc, writer, delta);
  }
  if (const auto* change = std::get_if<SetChange>(&op)) {
    if (type != Type::kGSet && type != Type::kORSet) return DoesNotApply(op, type);
    return ApplySetChange(state, *change, writer, delta);
  }
  if (const auto* assign = std::get_if<Assign>(&op)) {
    if (type != Type::kLWWRegister) return DoesNotApply(op, type);
    Register written{assign->value, ClockOf(state, *assign, now_ms), std::string(writer.identity)};
    if (!state.lww.has_value() || written.Key() > state.lww->Key()) state.lww = written;
    delta.lww = std::move(written);
    return absl::OkStatus();
  }
  if (std::holds_alternative<Enable>(op)) {
    if (type != Type::kFlag) return DoesNotApply(op, type);
    for (const Dot& dot : state.flag) delta.context.Add(dot);  // replaced by the new enabling
    const Dot dot = NewDot(state, delta, writer);
    state.flag = {dot};
    delta.flag = {dot};
    return absl::OkStatus();
  }
  if (const auto* vote = std::get_if<CastVote>(&op)) {
    if (type != Type::kVote) return DoesNotApply(op, type);
    Ballot& mine = state.votes[std::string(writer.identity)];
    mine.vote = vote->vote;
    ++mine.version;
    delta.votes[std::string(writer.identity)] = mine;
    return absl::OkStatus();
  }
  if (type != Type::kORMap) return DoesNotApply(op, type);
  return ApplyMapChange(state, std::get<MapChange>(op), writer, now_ms, delta);
}

Value ValueOf(const State& state, std::string_view replica) {
  Value out;
  out.type = state.type;
  switch (state.type) {
    case Type::kGCounter:
    case Type::kPNCounter: {
      uint64_t sum = 0;
      for (const auto& [id, n] : state.positive) sum += n;
      for (const auto& [id, n] : state.negative) sum -= n;
      out.counter = static_cast<int64_t>(sum);
      break;
    }
    case Type::kGSet: out.elements.assign(state.grow_only.begin(), state.grow_only.end()); break;
    case Type::kORSet:
      out.elements.reserve(state.elements.size());
      for (const auto& [element, dots] : state.elements) out.elements.push_back(element);
      break;
    case Type::kLWWRegister:
      if (state.lww.has_value()) out.register_value = state.lww->value;
      break;
    case Type::kFlag: out.flag = !state.flag.empty(); break;
    case Type::kVote:
      for (const auto& [voter, ballot] : state.votes) {
        ++out.vote.voters;
        if (ballot.vote) ++out.vote.votes_for;
        if (voter == replica) out.vote.self_vote = ballot.vote;
      }
      break;
    case Type::kORMap:
      out.entries.reserve(state.entries.size());
      for (const auto& [key, slices] : state.entries) {
        Type shown = Type::kGCounter;
        out.entries.push_back(MapEntry{key, ValueOf(JoinSlices(slices, &shown), replica)});
      }
      break;
  }
  return out;
}

}  // namespace massa::crdt::internal
