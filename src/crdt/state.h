// File: crdt/state.h (private to src/crdt)
//
// The state behind a crdt::Crdt: one struct for every type (only the type's fields are used),
// kept canonical so that equal replicated states compare equal field by field and serialize to
// equal bytes: no zero counts, no element or key without dots, causal contexts compacted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "crdt/crdt.h"

namespace massa::crdt::internal {

using Replica = std::string;
using Dot = std::pair<Replica, uint64_t>;  // (replica, n >= 1)

// The dots a value has seen: per replica a contiguous prefix 1..n (n >= 1), plus the dots beyond
// a gap (the cloud). Compact: no cloud dot is covered by or extends a prefix.
class CausalContext {
 public:
  // A compacted context of the prefixes 1..n (zeros ignored) and the cloud dots.
  static CausalContext FromParts(std::map<Replica, uint64_t> prefix, std::set<Dot> cloud);

  bool Contains(const Dot& dot) const;
  void Add(const Dot& dot);
  void Merge(const CausalContext& other);
  // The replica's next fresh dot: one past the highest of its dots seen.
  Dot Next(const Replica& replica) const;
  bool empty() const { return prefix_.empty() && cloud_.empty(); }

  const std::map<Replica, uint64_t>& prefix() const { return prefix_; }
  const std::set<Dot>& cloud() const { return cloud_; }

  friend bool operator==(const CausalContext&, const CausalContext&) = default;

 private:
  void Compact(const Replica& replica);

  std::map<Replica, uint64_t> prefix_;
  std::set<Dot> cloud_;
};

struct Register {  // LWWRegister
  Bytes value;
  int64_t clock = 0;
  Replica replica;

  // The order of writes: (clock, replica), then the bytes, so that every replica picks one.
  auto Key() const { return std::tie(clock, replica, value); }
  friend bool operator==(const Register&, const Register&) = default;
};

struct Ballot {  // Vote: one replica's
  bool vote = false;
  uint64_t version = 0;

  friend bool operator==(const Ballot&, const Ballot&) = default;
};

struct State;

// One replica's slice of an ORMap entry, under the dot of its latest write there. Immutable
// once made (a dot always carries the same slice), hence shared.
struct Slice {
  uint64_t run = 0;  // its values' dots and counters are "<replica>#<run>"
  std::shared_ptr<const State> value;

  friend bool operator==(const Slice& a, const Slice& b);
};

struct State {
  explicit State(Type t) : type(t) {}

  Type type;
  std::map<Replica, uint64_t> positive;           // GCounter, PNCounter (no zeros)
  std::map<Replica, uint64_t> negative;           // PNCounter (no zeros)
  std::set<Bytes> grow_only;                      // GSet
  std::map<Bytes, std::set<Dot>> elements;        // ORSet (no empty dot sets)
  std::set<Dot> flag;                             // Flag
  std::map<Bytes, std::map<Dot, Slice>> entries;  // ORMap (no empty slice maps)
  CausalContext context;                          // ORSet, Flag, ORMap
  std::optional<Register> lww;                    // LWWRegister
  std::map<Replica, Ballot> votes;                // Vote

  friend bool operator==(const State&, const State&) = default;
};

// Who applies an operation: `identity` is the replica's id (votes, register ties); dots and
// counters are per `actor`, the identity itself at the top and "<id>#<run>" inside ORMap values.
struct Writer {
  std::string_view identity;
  Replica actor;
};

// "a PNCounter", "an ORSet": for messages.
std::string WithArticle(Type type);

// Joins `other` into `into` (same type; checked by the caller).
void MergeInto(State& into, const State& other);

// Applies `op` to `state`, writing the change into `delta` (an empty state of the same type).
// On error (INVALID_ARGUMENT) neither is changed.
absl::Status ApplyTo(State& state, const Operation& op, const Writer& writer, int64_t now_ms,
                     State& delta);

Value ValueOf(const State& state, std::string_view replica);

// The join of the ORMap entry's slices of its shown type (the lowest one); sets `*type`.
State JoinSlices(const std::map<Dot, Slice>& slices, Type* type);

// The durable form (massa.internal.v1.CrdtState).
std::string Encode(const State& state);
// INVALID_ARGUMENT for bytes that are not an encoded state.
absl::StatusOr<State> Decode(std::string_view bytes);

}  // namespace massa::crdt::internal
