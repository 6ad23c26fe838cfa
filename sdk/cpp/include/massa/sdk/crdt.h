// File: massa/sdk/crdt.h
//
// CRDT entities (Massa protocol 1.2): an entity whose value is a replicated data type that
// merges without conflicts. Massa owns the value: a handler gets the current value through a
// typed handle and asks for one kind of change (increment, add, remove, set, enable, vote, map
// updates, delete); Massa applies it, makes the new value durable before the reply, and keeps
// the change for replication between nodes.
//
//   function.AddCrdtEntity("example.likes.Likes", CrdtType::kPNCounter)
//       .Handle("Like", [](CrdtContext& ctx, const Like&) -> Result<Count> {
//         PNCounter likes = ctx.pn_counter();
//         likes.Increment(1);
//         Count count;
//         count.set_likes(likes.value());  // the value after this command's change
//         return count;
//       });
//
// A handle of another type than the entity's fails the command with INTERNAL (a programming
// error). Elements, keys and register values are protobuf messages of one type T per handle;
// elements of other types are not listed by that handle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "massa/sdk/context.h"

namespace massa::sdk {

enum class CrdtType { kGCounter = 1, kPNCounter, kGSet, kORSet, kLWWRegister, kFlag, kORMap, kVote };

// How many replicas must hold a change before the reply. On one node, every level means that
// node (the change is durable there before the reply).
enum class WriteConsistency { kLocal, kMajority, kAll };

// Which clock orders an LWWRegister's writes.
enum class Clock { kDefault, kReverse, kCustom, kCustomAutoIncrement };

namespace detail {
// The non-template core of the handles, on the command being handled (context.cc).
bool CrdtIs(Call& call, CrdtType type, const char* handle);
int64_t CrdtCounter(const Call& call);
void CrdtIncrement(Call& call, int64_t by);
// Set elements (or map keys) of message type `type_name`, serialized.
std::vector<std::string> CrdtElements(const Call& call, std::string_view type_name);
void CrdtSetChange(Call& call, const google::protobuf::Message& element, bool add);
void CrdtClear(Call& call);
std::optional<std::string> CrdtRegister(const Call& call, std::string_view type_name);
void CrdtAssign(Call& call, const google::protobuf::Message& value, Clock clock, int64_t custom);
bool CrdtFlag(const Call& call);
void CrdtEnable(Call& call);
void CrdtVoteValue(const Call& call, bool* self, uint32_t* votes_for, uint32_t* voters);
void CrdtVote(Call& call, bool vote);
int64_t CrdtMapCounter(const Call& call, const google::protobuf::Message& key);
void CrdtMapIncrement(Call& call, const google::protobuf::Message& key, int64_t by);
void CrdtMapRemove(Call& call, const google::protobuf::Message& key);
const std::string& TypeNameOf(const google::protobuf::Message& message);

template <typename T>
std::vector<T> ParseAll(const std::vector<std::string>& bytes) {
  std::vector<T> out;
  out.reserve(bytes.size());
  for (const std::string& b : bytes) {
    T item;
    if (item.ParseFromString(b)) out.push_back(std::move(item));
  }
  return out;
}
}  // namespace detail

// A handle on the value of the entity being handled. Valid during the handler only.
class CrdtHandle {
 protected:
  CrdtHandle(detail::Call& call, CrdtType type, const char* name)
      : call_(call), ok_(detail::CrdtIs(call, type, name)) {}
  detail::Call& call_;
  const bool ok_;  // the entity is of this handle's type
};

// A counter that only grows. value() includes this command's increments.
class GCounter : public CrdtHandle {
 public:
  explicit GCounter(detail::Call& call) : CrdtHandle(call, CrdtType::kGCounter, "GCounter") {}
  uint64_t value() const { return ok_ ? static_cast<uint64_t>(detail::CrdtCounter(call_)) : 0; }
  void Increment(uint64_t by = 1) {
    if (ok_) detail::CrdtIncrement(call_, static_cast<int64_t>(by));
  }
};

// A counter that grows and shrinks.
class PNCounter : public CrdtHandle {
 public:
  explicit PNCounter(detail::Call& call) : CrdtHandle(call, CrdtType::kPNCounter, "PNCounter") {}
  int64_t value() const { return ok_ ? detail::CrdtCounter(call_) : 0; }
  void Increment(int64_t by = 1) {
    if (ok_) detail::CrdtIncrement(call_, by);
  }
  void Decrement(int64_t by = 1) { Increment(-by); }
};

// A set that only grows (GSet) or an observed-remove set (ORSet: a remove removes the adds it
// has seen; a concurrent add wins). elements() includes this command's changes.
template <typename T>
class SetHandle : public CrdtHandle {
 public:
  std::vector<T> elements() const {
    if (!ok_) return {};
    return detail::ParseAll<T>(detail::CrdtElements(call_, T::descriptor()->full_name()));
  }
  bool contains(const T& element) const {
    const std::string bytes = element.SerializeAsString();
    for (const std::string& item : detail::CrdtElements(call_, T::descriptor()->full_name())) {
      if (item == bytes) return true;
    }
    return false;
  }
  void Add(const T& element) {
    if (ok_) detail::CrdtSetChange(call_, element, /*add=*/true);
  }

 protected:
  using CrdtHandle::CrdtHandle;
};

template <typename T>
class GSet : public SetHandle<T> {
 public:
  explicit GSet(detail::Call& call) : SetHandle<T>(call, CrdtType::kGSet, "GSet") {}
};

template <typename T>
class ORSet : public SetHandle<T> {
 public:
  explicit ORSet(detail::Call& call) : SetHandle<T>(call, CrdtType::kORSet, "ORSet") {}
  void Remove(const T& element) {
    if (this->ok_) detail::CrdtSetChange(this->call_, element, /*add=*/false);
  }
  void Clear() {
    if (this->ok_) detail::CrdtClear(this->call_);
  }
};

// The last write wins (by the clock chosen, ties broken by replica).
template <typename T>
class LWWRegister : public CrdtHandle {
 public:
  explicit LWWRegister(detail::Call& call)
      : CrdtHandle(call, CrdtType::kLWWRegister, "LWWRegister") {}
  std::optional<T> value() const {
    if (!ok_) return std::nullopt;
    std::optional<std::string> bytes = detail::CrdtRegister(call_, T::descriptor()->full_name());
    if (!bytes.has_value()) return std::nullopt;
    T out;
    if (!out.ParseFromString(*bytes)) return std::nullopt;
    return out;
  }
  void Set(const T& value, Clock clock = Clock::kDefault, int64_t custom_clock = 0) {
    if (ok_) detail::CrdtAssign(call_, value, clock, custom_clock);
  }
};

// A flag that, once enabled anywhere, stays enabled.
class Flag : public CrdtHandle {
 public:
  explicit Flag(detail::Call& call) : CrdtHandle(call, CrdtType::kFlag, "Flag") {}
  bool enabled() const { return ok_ && detail::CrdtFlag(call_); }
  void Enable() {
    if (ok_) detail::CrdtEnable(call_);
  }
};

// Every replica (node) votes; its latest vote counts. self_vote() includes this command's vote;
// votes_for() and voters() are the counts Massa sent, before it.
class Vote : public CrdtHandle {
 public:
  explicit Vote(detail::Call& call) : CrdtHandle(call, CrdtType::kVote, "Vote") {}
  bool self_vote() const { return Get().self; }
  uint32_t votes_for() const { return Get().votes_for; }
  uint32_t voters() const { return Get().voters; }
  void Cast(bool vote) {
    if (ok_) detail::CrdtVote(call_, vote);
  }

 private:
  struct Counts {
    bool self = false;
    uint32_t votes_for = 0;
    uint32_t voters = 0;
  };
  Counts Get() const {
    Counts c;
    if (ok_) detail::CrdtVoteValue(call_, &c.self, &c.votes_for, &c.voters);
    return c;
  }
};

// An observed-remove map from keys of message type K to CRDT values. This handle serves maps
// of PNCounter values (per-key counters); other value types are served by the protocol (an
// ORMapDelta) but not by this SDK yet.
template <typename K>
class ORMap : public CrdtHandle {
 public:
  explicit ORMap(detail::Call& call) : CrdtHandle(call, CrdtType::kORMap, "ORMap") {}
  std::vector<K> keys() const {
    if (!ok_) return {};
    return detail::ParseAll<K>(detail::CrdtElements(call_, K::descriptor()->full_name()));
  }
  // The counter under `key` (0 when absent), with this command's increments.
  int64_t counter(const K& key) const { return ok_ ? detail::CrdtMapCounter(call_, key) : 0; }
  void Increment(const K& key, int64_t by = 1) {
    if (ok_) detail::CrdtMapIncrement(call_, key, by);
  }
  void Remove(const K& key) {
    if (ok_) detail::CrdtMapRemove(call_, key);
  }
  void Clear() {
    if (ok_) detail::CrdtClear(call_);
  }
};

// The context of a CRDT entity's handler.
class CrdtContext : public EntityContext {
 public:
  using EntityContext::EntityContext;

  GCounter g_counter() { return GCounter(call_); }
  PNCounter pn_counter() { return PNCounter(call_); }
  template <typename T>
  GSet<T> g_set() {
    return GSet<T>(call_);
  }
  template <typename T>
  ORSet<T> or_set() {
    return ORSet<T>(call_);
  }
  template <typename T>
  LWWRegister<T> lww_register() {
    return LWWRegister<T>(call_);
  }
  Flag flag() { return Flag(call_); }
  sdk::Vote vote() { return sdk::Vote(call_); }
  template <typename K>
  ORMap<K> or_map() {
    return ORMap<K>(call_);
  }

  // Deletes the entity once the command succeeds: its value reads as empty afterwards.
  void Delete();
  // How many replicas must hold this command's change before the reply (default: local).
  void SetWriteConsistency(WriteConsistency consistency);
};

}  // namespace massa::sdk
