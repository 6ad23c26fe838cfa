// CRDT data types: examples per type (operations, values, merges, refused operations),
// Serialize/Parse.

#include "crdt/crdt.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::crdt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Applies `op` and returns the delta; fails the test when refused.
Crdt MustApply(Crdt& crdt, const Operation& op, std::string_view replica, int64_t now_ms = 0) {
  absl::StatusOr<Crdt> delta = crdt.Apply(op, replica, now_ms);
  EXPECT_TRUE(delta.ok()) << delta.status();
  return delta.ok() ? *std::move(delta) : Crdt(crdt.type());
}

void MustMerge(Crdt& into, const Crdt& other) {
  absl::Status merged = into.Merge(other);
  ASSERT_TRUE(merged.ok()) << merged;
}

// Expects `op` refused with INVALID_ARGUMENT naming `needle`, leaving the state unchanged.
void ExpectRefused(Crdt& crdt, const Operation& op, std::string_view needle) {
  const Crdt before = crdt;
  absl::StatusOr<Crdt> delta = crdt.Apply(op, "r1", 5);
  ASSERT_FALSE(delta.ok());
  EXPECT_EQ(delta.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(delta.status().message()), HasSubstr(std::string(needle)));
  EXPECT_TRUE(crdt == before);
  EXPECT_EQ(crdt.Serialize(), before.Serialize());
}

Crdt RoundTrip(const Crdt& crdt) {
  absl::StatusOr<Crdt> parsed = Crdt::Parse(crdt.Serialize());
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *std::move(parsed) : Crdt(crdt.type());
}

SetChange Add(std::vector<Bytes> add) { return SetChange{false, {}, std::move(add)}; }
SetChange Remove(std::vector<Bytes> remove) { return SetChange{false, std::move(remove), {}}; }

TEST(CrdtTest, TypeNames) {
  EXPECT_STREQ(TypeName(Type::kGCounter), "GCounter");
  EXPECT_STREQ(TypeName(Type::kPNCounter), "PNCounter");
  EXPECT_STREQ(TypeName(Type::kGSet), "GSet");
  EXPECT_STREQ(TypeName(Type::kORSet), "ORSet");
  EXPECT_STREQ(TypeName(Type::kLWWRegister), "LWWRegister");
  EXPECT_STREQ(TypeName(Type::kFlag), "Flag");
  EXPECT_STREQ(TypeName(Type::kORMap), "ORMap");
  EXPECT_STREQ(TypeName(Type::kVote), "Vote");
  EXPECT_STREQ(TypeName(static_cast<Type>(42)), "unknown type");
}

TEST(CrdtTest, EmptyValues) {
  for (Type type : {Type::kGCounter, Type::kPNCounter, Type::kGSet, Type::kORSet,
                    Type::kLWWRegister, Type::kFlag, Type::kORMap, Type::kVote}) {
    Crdt crdt(type);
    EXPECT_EQ(crdt.type(), type);
    EXPECT_TRUE(crdt.empty());
    Value value = crdt.value();
    EXPECT_EQ(value.type, type);
    EXPECT_EQ(value.counter, 0);
    EXPECT_THAT(value.elements, IsEmpty());
    EXPECT_FALSE(value.register_value.has_value());
    EXPECT_FALSE(value.flag);
    EXPECT_EQ(value.vote, VoteValue{});
    EXPECT_THAT(value.entries, IsEmpty());
    EXPECT_TRUE(RoundTrip(crdt) == crdt);
    EXPECT_FALSE(crdt == Crdt(type == Type::kVote ? Type::kGCounter : Type::kVote));
  }
}

TEST(CrdtTest, GCounter) {
  Crdt a(Type::kGCounter), b(Type::kGCounter);
  Crdt d1 = MustApply(a, Increment{2}, "a");
  Crdt d2 = MustApply(a, Increment{3}, "a");
  Crdt d3 = MustApply(b, Increment{10}, "b");
  EXPECT_EQ(a.value().counter, 5);
  EXPECT_FALSE(a.empty());
  // Deltas in any order, duplicated: the sum of the increments.
  MustMerge(b, d2);
  MustMerge(b, d1);
  MustMerge(b, d2);
  MustMerge(a, d3);
  EXPECT_EQ(a.value().counter, 15);
  EXPECT_EQ(b.value().counter, 15);
  EXPECT_TRUE(a == b);

  ExpectRefused(a, Increment{-1}, "a GCounter can only grow");
  ExpectRefused(a, SetChange{}, "SetChange does not apply to a GCounter");
  ExpectRefused(a, Enable{}, "Enable does not apply to a GCounter");

  // Increment{0} changes nothing.
  Crdt fresh(Type::kGCounter);
  Crdt zero = MustApply(fresh, Increment{0}, "a");
  EXPECT_TRUE(zero.empty());
  EXPECT_TRUE(fresh.empty());
}

TEST(CrdtTest, PNCounter) {
  Crdt a(Type::kPNCounter), b(Type::kPNCounter);
  Crdt d1 = MustApply(a, Increment{7}, "a");
  Crdt d2 = MustApply(b, Increment{-10}, "b");
  Crdt d3 = MustApply(b, Increment{1}, "b");
  MustMerge(a, d3);
  MustMerge(a, d2);
  MustMerge(b, d1);
  EXPECT_EQ(a.value().counter, -2);
  EXPECT_EQ(b.value().counter, -2);
  EXPECT_TRUE(a == b);
  ExpectRefused(a, Assign{"x"}, "Assign does not apply to a PNCounter");
  ExpectRefused(a, CastVote{true}, "CastVote does not apply to a PNCounter");

  Crdt extreme(Type::kPNCounter);
  MustApply(extreme, Increment{INT64_MIN}, "a");
  EXPECT_EQ(extreme.value().counter, INT64_MIN);
  EXPECT_TRUE(RoundTrip(extreme) == extreme);
}

TEST(CrdtTest, GSet) {
  Crdt a(Type::kGSet), b(Type::kGSet);
  Crdt d1 = MustApply(a, Add({"y", "x"}), "a");
  Crdt d2 = MustApply(b, Add({"z", "x"}), "b");
  MustMerge(a, d2);
  MustMerge(b, d1);
  EXPECT_THAT(a.value().elements, ElementsAre("x", "y", "z"));
  EXPECT_TRUE(a == b);
  ExpectRefused(a, Remove({"x"}), "a GSet can only grow");
  ExpectRefused(a, SetChange{true, {}, {}}, "a GSet can only grow");
  ExpectRefused(a, Increment{1}, "Increment does not apply to a GSet");
}

TEST(CrdtTest, ElementsAreSortedBytewise) {
  Crdt set(Type::kORSet);
  MustApply(set, Add({"\xff", "b", std::string("\0a", 2), "a"}), "r");
  EXPECT_THAT(set.value().elements, ElementsAre(std::string("\0a", 2), "a", "b", "\xff"));
}

TEST(CrdtTest, ORSetAddRemove) {
  Crdt a(Type::kORSet), b(Type::kORSet);
  Crdt add = MustApply(a, Add({"x", "y"}), "a");
  MustMerge(b, add);
  Crdt remove = MustApply(b, Remove({"x", "never-added"}), "b");
  EXPECT_THAT(b.value().elements, ElementsAre("y"));
  MustMerge(a, remove);
  EXPECT_THAT(a.value().elements, ElementsAre("y"));
  // The old add delivered again does not bring x back.
  MustMerge(a, add);
  MustMerge(b, add);
  EXPECT_THAT(a.value().elements, ElementsAre("y"));
  EXPECT_TRUE(a == b);
  // Added again, it is back.
  MustMerge(b, MustApply(a, Add({"x"}), "a"));
  EXPECT_THAT(b.value().elements, ElementsAre("x", "y"));
  ExpectRefused(a, Increment{1}, "Increment does not apply to an ORSet");
  ExpectRefused(a, MapChange{}, "MapChange does not apply to an ORSet");
}

TEST(CrdtTest, ORSetConcurrentAddWins) {
  Crdt a(Type::kORSet), b(Type::kORSet);
  MustMerge(b, MustApply(a, Add({"x"}), "a"));
  Crdt remove = MustApply(a, Remove({"x"}), "a");  // a removes the add it saw...
  Crdt add = MustApply(b, Add({"x"}), "b");        // ...while b adds x again
  MustMerge(a, add);
  MustMerge(b, remove);
  EXPECT_THAT(a.value().elements, ElementsAre("x"));
  EXPECT_TRUE(a == b);
}

TEST(CrdtTest, ORSetRemoveBeforeAddArrives) {
  // c sees a's add only through b's remove: the add, arriving later, stays removed.
  Crdt a(Type::kORSet), b(Type::kORSet), c(Type::kORSet);
  Crdt add = MustApply(a, Add({"x"}), "a");
  MustMerge(b, add);
  Crdt remove = MustApply(b, Remove({"x"}), "b");
  MustMerge(c, remove);
  MustMerge(c, add);
  EXPECT_THAT(c.value().elements, IsEmpty());
}

TEST(CrdtTest, ORSetClearThenAdd) {
  Crdt a(Type::kORSet), b(Type::kORSet);
  MustMerge(b, MustApply(a, Add({"x", "y"}), "a"));
  Crdt late = MustApply(a, Add({"z"}), "a");  // not seen by b's clear
  Crdt clear = MustApply(b, SetChange{true, {}, {"w"}}, "b");
  EXPECT_THAT(b.value().elements, ElementsAre("w"));
  MustMerge(a, clear);
  MustMerge(b, late);
  EXPECT_THAT(a.value().elements, ElementsAre("w", "z"));
  EXPECT_TRUE(a == b);
}

TEST(CrdtTest, LWWRegisterDefaultClock) {
  Crdt a(Type::kLWWRegister), b(Type::kLWWRegister);
  EXPECT_FALSE(a.value().register_value.has_value());
  Crdt early = MustApply(a, Assign{"early"}, "a", 100);
  Crdt late = MustApply(b, Assign{"late"}, "b", 200);
  MustMerge(a, late);
  MustMerge(b, early);
  EXPECT_EQ(a.value().register_value, "late");
  EXPECT_TRUE(a == b);
  // A tie on the clock goes to the higher replica id (whatever the values).
  Crdt x(Type::kLWWRegister), y(Type::kLWWRegister);
  Crdt from_b = MustApply(x, Assign{"aaa"}, "b", 300);
  Crdt from_a = MustApply(y, Assign{"zzz"}, "a", 300);
  MustMerge(x, from_a);
  MustMerge(y, from_b);
  EXPECT_EQ(x.value().register_value, "aaa");
  EXPECT_EQ(y.value().register_value, "aaa");
  ExpectRefused(a, Add({"x"}), "SetChange does not apply to an LWWRegister");
}

TEST(CrdtTest, LWWRegisterClocks) {
  // Reverse: the earliest write wins.
  Crdt r(Type::kLWWRegister);
  MustApply(r, Assign{"first", ClockKind::kReverse}, "a", 100);
  MustApply(r, Assign{"second", ClockKind::kReverse}, "a", 200);
  EXPECT_EQ(r.value().register_value, "first");
  // Custom: the highest custom clock wins, whatever the wall clock.
  Crdt c(Type::kLWWRegister);
  MustApply(c, Assign{"seven", ClockKind::kCustom, 7}, "a", 1000);
  MustApply(c, Assign{"three", ClockKind::kCustom, 3}, "a", 2000);
  EXPECT_EQ(c.value().register_value, "seven");
  // Custom auto-increment: a write wins over the value it saw.
  MustApply(c, Assign{"auto", ClockKind::kCustomAutoIncrement, 1}, "a", 0);
  EXPECT_EQ(c.value().register_value, "auto");
  Crdt other(Type::kLWWRegister);
  MustMerge(other, MustApply(c, Assign{"auto2", ClockKind::kCustomAutoIncrement, 0}, "a", 0));
  // It is ordered after "seven" (clock 8, then 9): a write with custom clock 8 loses to it.
  MustMerge(other, MustApply(r, Assign{"eight", ClockKind::kCustom, 8}, "z", 0));
  EXPECT_EQ(other.value().register_value, "auto2");
}

TEST(CrdtTest, LWWRegisterLocalWriteLosesToLaterClock) {
  // A default-clock write from a replica whose clock is behind does not replace a later value.
  Crdt a(Type::kLWWRegister);
  Crdt ahead(Type::kLWWRegister);
  MustMerge(a, MustApply(ahead, Assign{"ahead"}, "b", 500));
  Crdt delta = MustApply(a, Assign{"behind"}, "a", 400);
  EXPECT_EQ(a.value().register_value, "ahead");
  MustMerge(ahead, delta);
  EXPECT_TRUE(a == ahead);
}

TEST(CrdtTest, Flag) {
  Crdt a(Type::kFlag), b(Type::kFlag);
  EXPECT_FALSE(a.value().flag);
  Crdt on = MustApply(a, Enable{}, "a");
  EXPECT_TRUE(a.value().flag);
  Crdt again = MustApply(b, Enable{}, "b");
  MustMerge(b, on);
  MustMerge(a, again);
  MustMerge(a, on);
  EXPECT_TRUE(a.value().flag);
  EXPECT_TRUE(a == b);
  ExpectRefused(a, CastVote{true}, "CastVote does not apply to a Flag");
  // Enabling many times keeps one dot per enabling replica at most.
  for (int i = 0; i < 100; ++i) MustApply(a, Enable{}, "a");
  EXPECT_LT(a.ByteSize(), 64u);
}

TEST(CrdtTest, Vote) {
  Crdt a(Type::kVote), b(Type::kVote), c(Type::kVote);
  Crdt a1 = MustApply(a, CastVote{true}, "a");
  Crdt b1 = MustApply(b, CastVote{true}, "b");
  Crdt b2 = MustApply(b, CastVote{false}, "b");
  Crdt c1 = MustApply(c, CastVote{true}, "c");
  for (Crdt* replica : {&a, &b, &c}) {
    for (const Crdt* delta : {&b2, &c1, &a1, &b1}) MustMerge(*replica, *delta);
  }
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(b == c);
  EXPECT_EQ(a.value("a"), (Value{Type::kVote, 0, {}, {}, false, VoteValue{true, 2, 3}, {}}));
  EXPECT_EQ(a.value("b").vote, (VoteValue{false, 2, 3}));  // b's later vote wins
  EXPECT_EQ(a.value("nobody").vote, (VoteValue{false, 2, 3}));
  ExpectRefused(a, Enable{}, "Enable does not apply to a Vote");
}

MapChange Update(Bytes key, Type type, Operation op) {
  MapChange change;
  change.update.push_back(MapUpdate::Of(std::move(key), type, std::move(op)));
  return change;
}

MapChange RemoveKey(Bytes key) { return MapChange{false, {std::move(key)}, {}}; }

TEST(CrdtTest, ORMapEntries) {
  Crdt a(Type::kORMap), b(Type::kORMap);
  MustMerge(b, MustApply(a, Update("likes", Type::kGCounter, Increment{2}), "a"));
  MustMerge(a, MustApply(b, Update("likes", Type::kGCounter, Increment{3}), "b"));
  MustMerge(a, MustApply(b, Update("tags", Type::kORSet, Add({"t1"})), "b"));
  MustMerge(a, MustApply(b, Update("who", Type::kVote, CastVote{true}), "b"));
  Value value = a.value("b");
  ASSERT_EQ(value.entries.size(), 3u);
  EXPECT_EQ(value.entries[0].key, "likes");
  EXPECT_EQ(value.entries[0].value.type, Type::kGCounter);
  EXPECT_EQ(value.entries[0].value.counter, 5);
  EXPECT_EQ(value.entries[1].key, "tags");
  EXPECT_THAT(value.entries[1].value.elements, ElementsAre("t1"));
  EXPECT_EQ(value.entries[2].value.vote, (VoteValue{true, 1, 1}));
  EXPECT_FALSE(a.value("a").entries[2].value.vote.self_vote);
  MustMerge(b, a);
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(RoundTrip(a) == a);
}

TEST(CrdtTest, ORMapRefusals) {
  Crdt map(Type::kORMap);
  MustApply(map, Update("n", Type::kPNCounter, Increment{1}), "a");
  ExpectRefused(map, Update("n", Type::kORSet, Add({"x"})), "is a PNCounter, not an ORSet");
  ExpectRefused(map, Update("m", Type::kGCounter, Increment{-1}), "a GCounter can only grow");
  ExpectRefused(map, Update("m", Type::kFlag, Increment{1}), "Increment does not apply to a Flag");
  ExpectRefused(map, Increment{1}, "Increment does not apply to an ORMap");
  MapChange null_op;
  null_op.update.push_back(MapUpdate{"k", Type::kFlag, nullptr});
  ExpectRefused(map, null_op, "has no operation");
  // The second update fails: the first is not applied either.
  MapChange two = Update("fresh", Type::kFlag, Enable{});
  two.update.push_back(MapUpdate::Of("fresh", Type::kVote, CastVote{true}));
  ExpectRefused(map, two, "is a Flag, not a Vote");
  // Removed first, the key may come back with another type.
  MapChange retype = RemoveKey("n");
  retype.update.push_back(MapUpdate::Of("n", Type::kFlag, Enable{}));
  MustApply(map, retype, "a");
  ASSERT_EQ(map.value().entries.size(), 1u);
  EXPECT_EQ(map.value().entries[0].value.type, Type::kFlag);
}

TEST(CrdtTest, ORMapRemove) {
  Crdt a(Type::kORMap), b(Type::kORMap);
  Crdt add = MustApply(a, Update("k", Type::kPNCounter, Increment{5}), "a");
  MustMerge(b, add);
  Crdt remove = MustApply(b, RemoveKey("k"), "b");
  EXPECT_THAT(b.value().entries, IsEmpty());
  MustMerge(a, remove);
  MustMerge(a, add);  // redelivered: stays removed
  EXPECT_THAT(a.value().entries, IsEmpty());
  // Created again, it starts from an empty value.
  MustMerge(b, MustApply(a, Update("k", Type::kPNCounter, Increment{1}), "a"));
  ASSERT_EQ(b.value().entries.size(), 1u);
  EXPECT_EQ(b.value().entries[0].value.counter, 1);
  EXPECT_TRUE(a == b);
}

TEST(CrdtTest, ORMapUpdateConcurrentWithRemoveSurvives) {
  Crdt a(Type::kORMap), b(Type::kORMap), c(Type::kORMap);
  MustMerge(b, MustApply(a, Update("k", Type::kPNCounter, Increment{5}), "a"));
  MustMerge(c, b);
  Crdt remove = MustApply(a, RemoveKey("k"), "a");
  Crdt update = MustApply(b, Update("k", Type::kPNCounter, Increment{1}), "b");
  for (Crdt* replica : {&a, &b, &c}) {
    MustMerge(*replica, update);
    MustMerge(*replica, remove);
  }
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(b == c);
  ASSERT_EQ(a.value().entries.size(), 1u);
  // a's removed increment does not come back; b's concurrent one stays.
  EXPECT_EQ(a.value().entries[0].value.counter, 1);
}

TEST(CrdtTest, ORMapNestedORSetAcrossRecreation) {
  // A key removed and created again by the same replica: the new value's dots do not collide
  // with the old one's on a replica that has not seen the removal yet.
  Crdt a(Type::kORMap), c(Type::kORMap);
  MustMerge(c, MustApply(a, Update("s", Type::kORSet, Add({"old"})), "a"));
  Crdt remove = MustApply(a, RemoveKey("s"), "a");
  Crdt recreate = MustApply(a, Update("s", Type::kORSet, Add({"new"})), "a");
  MustMerge(c, recreate);
  ASSERT_EQ(c.value().entries.size(), 1u);
  EXPECT_THAT(c.value().entries[0].value.elements, ElementsAre("new", "old"));
  MustMerge(c, remove);
  ASSERT_EQ(c.value().entries.size(), 1u);
  EXPECT_THAT(c.value().entries[0].value.elements, ElementsAre("new"));
  EXPECT_TRUE(a == c);
}

TEST(CrdtTest, ORMapConcurrentCreationWithDifferentTypes) {
  Crdt a(Type::kORMap), b(Type::kORMap);
  Crdt as_pn = MustApply(a, Update("k", Type::kPNCounter, Increment{7}), "a");
  Crdt as_counter = MustApply(b, Update("k", Type::kGCounter, Increment{4}), "b");
  MustMerge(a, as_counter);
  MustMerge(b, as_pn);
  EXPECT_TRUE(a == b);
  ASSERT_EQ(a.value().entries.size(), 1u);
  EXPECT_EQ(a.value().entries[0].value.type, Type::kGCounter);  // the lower type shows
  EXPECT_EQ(a.value().entries[0].value.counter, 4);
  ExpectRefused(a, Update("k", Type::kPNCounter, Increment{1}), "is a GCounter, not a PNCounter");
  // A write of the shown type replaces the writer's slice and the other type's slice it has
  // seen: one slice fewer.
  const size_t before = b.ByteSize();
  Crdt replace = MustApply(b, Update("k", Type::kGCounter, Increment{1}), "b");
  EXPECT_LT(b.ByteSize() + 10, before);
  EXPECT_EQ(b.value().entries[0].value.counter, 5);
  MustMerge(a, replace);
  EXPECT_TRUE(a == b);
}

TEST(CrdtTest, ORMapClearAndNestedMap) {
  Crdt map(Type::kORMap);
  MustApply(map, Update("inner", Type::kORMap, Update("n", Type::kPNCounter, Increment{-3})), "a");
  MustApply(map, Update("inner", Type::kORMap, Update("n", Type::kPNCounter, Increment{1})), "a");
  MustApply(map, Update("f", Type::kFlag, Enable{}), "a");
  Value value = map.value();
  ASSERT_EQ(value.entries.size(), 2u);
  EXPECT_EQ(value.entries[1].key, "inner");
  ASSERT_EQ(value.entries[1].value.entries.size(), 1u);
  EXPECT_EQ(value.entries[1].value.entries[0].value.counter, -2);
  EXPECT_TRUE(RoundTrip(map) == map);
  Crdt delta = MustApply(map, MapChange{true, {}, {}}, "a");
  EXPECT_THAT(map.value().entries, IsEmpty());
  EXPECT_FALSE(delta.empty());
}

TEST(CrdtTest, MergeRefusesAnotherType) {
  Crdt set(Type::kORSet);
  MustApply(set, Add({"x"}), "a");
  const Crdt before = set;
  absl::Status merged = set.Merge(Crdt(Type::kGSet));
  EXPECT_EQ(merged.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(merged.message()), HasSubstr("cannot merge a GSet into an ORSet"));
  EXPECT_TRUE(set == before);
}

TEST(CrdtTest, ApplyNeedsAReplica) {
  Crdt counter(Type::kPNCounter);
  absl::StatusOr<Crdt> delta = counter.Apply(Increment{1}, "", 0);
  ASSERT_FALSE(delta.ok());
  EXPECT_EQ(delta.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(delta.status().message()), HasSubstr("PNCounter"));
  EXPECT_TRUE(counter.empty());
}

TEST(CrdtTest, ApplyEqualsMergingTheDelta) {
  Crdt set(Type::kORSet);
  MustApply(set, Add({"a", "b"}), "r1");
  const Crdt before = set;
  Crdt delta = MustApply(set, SetChange{false, {"a"}, {"c", "b"}}, "r2");
  Crdt merged = before;
  MustMerge(merged, delta);
  EXPECT_TRUE(merged == set);
  // The delta holds the change only.
  EXPECT_THAT(delta.value().elements, ElementsAre("b", "c"));
  EXPECT_LT(delta.ByteSize(), set.ByteSize() + 16);
}

TEST(CrdtTest, SerializeParseRoundTrip) {
  std::vector<Crdt> values;
  Crdt g(Type::kGCounter);
  MustApply(g, Increment{3}, "a");
  values.push_back(g);
  Crdt pn(Type::kPNCounter);
  MustApply(pn, Increment{-3}, "a");
  MustApply(pn, Increment{4}, "b");
  values.push_back(pn);
  Crdt gset(Type::kGSet);
  MustApply(gset, Add({"x", std::string("\0\1", 2)}), "a");
  values.push_back(gset);
  Crdt orset(Type::kORSet);
  MustApply(orset, Add({"x", "y"}), "a");
  MustApply(orset, Remove({"x"}), "b");
  Crdt gap(Type::kORSet);  // a causal context with a gap: b's dot 2 without its dot 1
  Crdt other(Type::kORSet);
  MustApply(other, Add({"p"}), "b");
  MustMerge(gap, MustApply(other, Add({"q"}), "b"));
  values.push_back(orset);
  values.push_back(gap);
  Crdt lww(Type::kLWWRegister);
  MustApply(lww, Assign{"v", ClockKind::kReverse}, "a", 10);
  values.push_back(lww);
  Crdt flag(Type::kFlag);
  MustApply(flag, Enable{}, "a");
  values.push_back(flag);
  Crdt vote(Type::kVote);
  MustApply(vote, CastVote{true}, "a");
  values.push_back(vote);
  Crdt map(Type::kORMap);
  MustApply(map, Update("k", Type::kLWWRegister, Assign{"v"}), "a", 3);
  values.push_back(map);
  for (const Crdt& value : values) {
    SCOPED_TRACE(TypeName(value.type()));
    EXPECT_FALSE(value.empty());
    Crdt parsed = RoundTrip(value);
    EXPECT_TRUE(parsed == value);
    EXPECT_EQ(parsed.Serialize(), value.Serialize());
    EXPECT_EQ(parsed.value("a"), value.value("a"));
    EXPECT_EQ(value.ByteSize(), value.Serialize().size());
  }
  EXPECT_THAT(gap.value().elements, ElementsAre("q"));
  EXPECT_THAT(RoundTrip(gap).value().elements, ElementsAre("q"));
}

TEST(CrdtTest, ParseRefusesGarbage) {
  for (const std::string& garbage :
       {std::string("\xff\xff\xff"), std::string("not a crdt"), std::string(),  // type 0
        std::string("\x08\x63", 2),                                             // type 99
        std::string("\x08\x04\x2a\x05\x0a\x01x\x12\x00", 9)}) {  // ORSet element, empty dot
    absl::StatusOr<Crdt> parsed = Crdt::Parse(garbage);
    EXPECT_FALSE(parsed.ok()) << garbage;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(CrdtTest, MovedFromIsEmpty) {
  Crdt a(Type::kORSet);
  MustApply(a, Add({"x"}), "r");
  Crdt b = std::move(a);
  EXPECT_THAT(b.value().elements, ElementsAre("x"));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(a.type(), Type::kORSet);
}

}  // namespace
}  // namespace massa::crdt
