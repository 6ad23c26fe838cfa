// File: crdt/crdt.h
//
// Conflict-free replicated data types as plain values (no I/O, no threads, no clock of their
// own): GCounter, PNCounter, GSet, ORSet, LWWRegister, Flag, ORMap and Vote, in delta-state
// form. A local operation (Crdt::Apply) changes a replica's value and returns a delta: a value of
// the same type that holds just that change. Merging (Crdt::Merge) a delta or a whole value is one
// join, commutative, associative and idempotent, so replicas that have merged the same deltas, in
// any order and any number of times, hold equal values. Applying an operation gives the same
// state as merging its delta into the state it was applied to.
//
// Replicas are named by non-empty ids (a node's id). Observed-remove types (ORSet, Flag, ORMap)
// give every add a dot (replica, n: that replica's n-th event) and keep a causal context: every
// dot the value has seen, as per replica a contiguous prefix 1..n plus the dots beyond a gap. A
// dot seen but absent was removed; a dot not seen yet is an add the remover did not observe, and
// survives (add-wins). No tombstone is kept per removed element: an observed-remove value's size
// is bounded by its live elements, the replicas, and the gaps of deltas not delivered yet.
//
// Types:
// - GCounter: per-replica counts; the value is their sum. Increments must be >= 0.
// - PNCounter: two GCounters, increments (by >= 0) and decrements (by < 0).
// - GSet: grow-only set; SetChange with `remove` or `clear` is refused.
// - ORSet: observed-remove, add-wins set. SetChange applies clear, then removes, then adds; a
//   remove removes the adds of the element this replica has seen (a concurrent add survives); a
//   removed element comes back only when added again.
// - LWWRegister: a value with (clock, replica) ordering; the highest wins, ties of both broken by
//   the value's bytes. Clocks: kDefault the wall clock (now_ms); kReverse -now_ms (the earliest
//   write wins); kCustom custom_clock; kCustomAutoIncrement max(custom_clock, clock + 1), so a
//   write wins over the value it saw.
// - Flag: enable-wins flag (a dot per enabling, like an ORSet of one element); there is no
//   disable operation, so once enabled it stays enabled.
// - Vote: per replica (vote, version); a replica's higher version wins. votes_for counts the
//   replicas voting true, voters those that ever voted.
// - ORMap: keys are observed-remove like ORSet elements (an update concurrent with a removal of
//   its key wins); values are CRDTs. See "ORMap" below for how values are kept.
//
// ORMap values. Each replica's writes to an entry go into that replica's slice of the entry: a
// value of the entry's type holding the replica's own deltas to it, under the dot of the
// replica's latest write (each write makes a new dot and replaces the replica's previous one).
// The entry's value is the join of its slices. Removing a key removes the slices it has seen.
// Limitations, precisely:
// - An update concurrent with a removal of its key survives with its replica's whole slice: the
//   entry comes back holding that replica's earlier writes to it (also those the removal saw),
//   not only the concurrent update. Other replicas' removed writes do not come back.
// - Within a value nested in an ORMap, a replica's counter and dot ids are "<replica>#<n>" (one
//   n per run of its slice), so that a key removed and created again never reuses dots. A Vote
//   nested in an ORMap keeps plain replica ids (it reports self_vote by them).
// - Concurrent creations of one key with different types: the value shows the slices of the
//   lowest Type only (the same on every replica); the others stay until a write of the shown
//   type replaces the ones it has seen. An update naming another type than the shown one is
//   INVALID_ARGUMENT.
//
// Thread-safety: none; a Crdt is a value owned by one thread at a time (an entity's command).
//
// Example:
//   Crdt a(Type::kORSet), b(Type::kORSet);
//   absl::StatusOr<Crdt> delta = a.Apply(SetChange{.add = {"x"}}, "node-a", now_ms);
//   if (delta.ok()) (void)b.Merge(*delta);  // b.value().elements == {"x"}
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace massa::crdt {

enum class Type : uint8_t {
  kGCounter = 1,
  kPNCounter,
  kGSet,
  kORSet,
  kLWWRegister,
  kFlag,
  kORMap,
  kVote
};
// "GCounter", "PNCounter", "GSet", "ORSet", "LWWRegister", "Flag", "ORMap", "Vote"; "unknown
// type" for a value outside the enum.
const char* TypeName(Type type);

// Set elements, map keys and register values are opaque bytes (the runtime passes serialized
// google.protobuf.Any messages), compared bytewise.
using Bytes = std::string;

enum class ClockKind { kDefault, kReverse, kCustom, kCustomAutoIncrement };

// The operations: what a function asks to do to an entity's value, one per command.
struct Increment {  // GCounter (by >= 0, else INVALID_ARGUMENT) and PNCounter
  int64_t by = 0;
};
struct SetChange {  // GSet (add only) and ORSet: clear, then the removes, then the adds
  bool clear = false;
  std::vector<Bytes> remove;
  std::vector<Bytes> add;
};
struct Assign {  // LWWRegister
  Bytes value;
  ClockKind clock = ClockKind::kDefault;
  int64_t custom_clock = 0;
};
struct Enable {};  // Flag
struct CastVote {  // Vote: this replica's vote
  bool vote = false;
};
struct MapChange;  // ORMap
struct MapUpdate;
using Operation = std::variant<Increment, SetChange, Assign, Enable, CastVote, MapChange>;

// ORMap: applies `*operation` to the entry `key`, creating it with type `type` when absent
// (INVALID_ARGUMENT when the entry exists with another type, the operation does not fit the
// type, or `operation` is null). The operation is shared and immutable, so MapUpdate copies are
// cheap.
//
// Example: MapUpdate::Of("likes", Type::kGCounter, Increment{1})
struct MapUpdate {
  Bytes key;
  Type type = Type::kPNCounter;
  std::shared_ptr<const Operation> operation;

  static MapUpdate Of(Bytes key, Type type, Operation operation);
};
struct MapChange {  // clear, then the removes, then the updates (in order)
  bool clear = false;
  std::vector<Bytes> remove;
  std::vector<MapUpdate> update;
};

// A value as a function sees it.
struct VoteValue {
  bool self_vote = false;
  uint32_t votes_for = 0;
  uint32_t voters = 0;

  friend bool operator==(const VoteValue&, const VoteValue&) = default;
};
struct MapEntry;
struct Value {
  Type type = Type::kGCounter;
  int64_t counter = 0;                  // GCounter, PNCounter (wraps around past int64)
  std::vector<Bytes> elements;          // GSet, ORSet: sorted bytewise, no duplicates
  std::optional<Bytes> register_value;  // LWWRegister: nullopt until assigned
  bool flag = false;                    // Flag
  VoteValue vote;                       // Vote
  std::vector<MapEntry> entries;        // ORMap: sorted by key, no duplicates

  friend bool operator==(const Value& a, const Value& b);
};
struct MapEntry {
  Bytes key;
  Value value;

  friend bool operator==(const MapEntry& a, const MapEntry& b) {
    return a.key == b.key && a.value == b.value;
  }
};

namespace internal {
struct State;  // crdt/state.h
}  // namespace internal

// One CRDT value with its replication metadata. A copyable value type; not thread-safe.
class Crdt {
 public:
  explicit Crdt(Type type);  // the empty value of `type`
  Crdt(const Crdt& other);
  Crdt& operator=(const Crdt& other);
  Crdt(Crdt&& other) noexcept;
  Crdt& operator=(Crdt&& other) noexcept;
  ~Crdt();

  Type type() const;

  // Applies `op` as replica `replica` (a non-empty id) whose wall clock reads `now_ms` (the
  // LWWRegister's default clock) and returns the delta: a Crdt of the same type holding just
  // this change, to be merged into the other replicas. INVALID_ARGUMENT naming the type, and
  // nothing changed, when the operation does not fit it ("SetChange does not apply to a
  // PNCounter", "a GCounter can only grow", an empty replica id, an ORMap update of an entry of
  // another type). An operation that changes nothing (Increment{0}) returns an empty delta.
  [[nodiscard]] absl::StatusOr<Crdt> Apply(const Operation& op, std::string_view replica,
                                           int64_t now_ms);

  // Joins `other`: a delta or a whole value of the same type (INVALID_ARGUMENT naming both
  // types otherwise; nothing changed). Commutative, associative and idempotent.
  [[nodiscard]] absl::Status Merge(const Crdt& other);

  // The value; `replica` is whose vote a Vote (also one nested in an ORMap) reports as self_vote.
  Value value(std::string_view replica = "") const;

  // Whether the state is the empty one: no change was ever applied or merged (Increment{0} and
  // merging empty deltas are no changes).
  bool empty() const;

  // The durable form (massa.internal.v1.CrdtState), replication metadata included.
  // Deterministic: equal states serialize to equal bytes.
  std::string Serialize() const;
  // INVALID_ARGUMENT for bytes that are not a serialized state (not the message, an unknown
  // type, a dot counter of 0, an ORMap slice without a value).
  [[nodiscard]] static absl::StatusOr<Crdt> Parse(std::string_view bytes);
  // The size of Serialize(), for size bounds.
  size_t ByteSize() const;

  // Equal replicated state: true exactly when Serialize() is equal.
  friend bool operator==(const Crdt& a, const Crdt& b);

 private:
  explicit Crdt(std::unique_ptr<internal::State> state);

  std::unique_ptr<internal::State> state_;  // never null
};

}  // namespace massa::crdt
