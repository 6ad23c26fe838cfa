// Randomized properties of the CRDT data types: random operations on 2-5 replicas (fixed seeds),
// every delta delivered to every other replica in random order, some duplicated, some dropped and
// resent later. Afterwards all replicas hold equal states and values, equal to the join of all the
// deltas and to the join of the whole states; the sequential answer where one exists; join laws
// on intermediate states; Parse(Serialize(x)) == x; sizes stay bounded under churn.

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "crdt/crdt.h"
#include "gtest/gtest.h"

namespace massa::crdt {
namespace {

constexpr uint32_t kSeeds[] = {1, 2, 17, 2024, 90210, 31337};
constexpr int kSteps = 250;

class Rng {
 public:
  explicit Rng(uint32_t seed) : engine_(seed) {}
  int Below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(engine_); }
  int Between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(engine_); }
  bool Percent(int p) { return Below(100) < p; }
  std::mt19937& engine() { return engine_; }

 private:
  std::mt19937 engine_;
};

void ExpectRoundTrips(const Crdt& crdt) {
  absl::StatusOr<Crdt> parsed = Crdt::Parse(crdt.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(*parsed == crdt);
  EXPECT_EQ(parsed->Serialize(), crdt.Serialize());
  EXPECT_EQ(crdt.ByteSize(), crdt.Serialize().size());
}

Crdt Join(Crdt a, const Crdt& b) {
  EXPECT_TRUE(a.Merge(b).ok());
  return a;
}

// Commutative, associative, idempotent.
void ExpectJoinLaws(const Crdt& a, const Crdt& b, const Crdt& c) {
  EXPECT_TRUE(Join(a, b) == Join(b, a));
  EXPECT_TRUE(Join(Join(a, b), c) == Join(a, Join(b, c)));
  EXPECT_TRUE(Join(a, a) == a);
  EXPECT_TRUE(Join(Join(a, b), b) == Join(a, b));
}

// Replicas of one value and the deltas travelling between them.
class Cluster {
 public:
  Cluster(Type type, size_t replicas, uint32_t seed) : type_(type), rng_(seed) {
    for (size_t i = 0; i < replicas; ++i) {
      replicas_.emplace_back(type);
      ids_.push_back("replica-" + std::to_string(i));
    }
  }

  // Applies `op` at replica `at` and sends the delta to every other replica. Checks that
  // applying equals merging the delta, and that a refused operation changes nothing.
  absl::Status Apply(size_t at, const Operation& op, int64_t now_ms) {
    const Crdt before = replicas_[at];
    absl::StatusOr<Crdt> delta = replicas_[at].Apply(op, ids_[at], now_ms);
    if (!delta.ok()) {
      EXPECT_TRUE(replicas_[at] == before) << "a refused operation changed the state";
      EXPECT_EQ(delta.status().code(), absl::StatusCode::kInvalidArgument);
      return delta.status();
    }
    EXPECT_EQ(delta->type(), type_);
    if (check_every_apply_) {
      EXPECT_TRUE(Join(before, *delta) == replicas_[at]) << "Apply != merging its delta";
      ExpectRoundTrips(*delta);
    }
    for (size_t to = 0; to < replicas_.size(); ++to) {
      if (to != at) in_flight_.push_back({to, *delta});
    }
    deltas_.push_back(*std::move(delta));
    return absl::OkStatus();
  }

  // Delivers up to `max` random messages: 10% are duplicated (delivered and kept in flight),
  // 10% dropped (resent by ResendDropped or DeliverAll).
  void DeliverSome(int max) {
    for (int n = rng_.Between(0, max); n > 0 && !in_flight_.empty(); --n) {
      const size_t i = static_cast<size_t>(rng_.Below(static_cast<int>(in_flight_.size())));
      const int fate = rng_.Below(10);
      if (fate == 0) {
        Deliver(in_flight_[i]);  // duplicated: it comes again later
        continue;
      }
      auto message = std::move(in_flight_[i]);
      in_flight_.erase(in_flight_.begin() + static_cast<std::ptrdiff_t>(i));
      if (fate == 1) {
        dropped_.push_back(std::move(message));
      } else {
        Deliver(message);
      }
    }
    if (rng_.Percent(3)) ResendDropped();
  }

  void ResendDropped() {
    for (auto& message : dropped_) in_flight_.push_back(std::move(message));
    dropped_.clear();
  }

  void DeliverAll() {
    ResendDropped();
    std::shuffle(in_flight_.begin(), in_flight_.end(), rng_.engine());
    for (const auto& message : in_flight_) Deliver(message);
    in_flight_.clear();
  }

  // Join laws and round trips on the replicas' current (diverged) states.
  void CheckIntermediate() {
    const size_t n = replicas_.size();
    const Crdt& a = replicas_[static_cast<size_t>(rng_.Below(static_cast<int>(n)))];
    const Crdt& b = replicas_[static_cast<size_t>(rng_.Below(static_cast<int>(n)))];
    const Crdt& c =
        deltas_.empty()
            ? replicas_[0]
            : deltas_[static_cast<size_t>(rng_.Below(static_cast<int>(deltas_.size())))];
    ExpectJoinLaws(a, b, c);
    ExpectRoundTrips(a);
  }

  // After DeliverAll: every replica holds the same state and value, equal to the join of all
  // the deltas (in random order unless `shuffle` is false, some twice) and to the join of the
  // whole states.
  void ExpectConverged(bool shuffle = true) {
    const Crdt& first = replicas_[0];
    for (size_t i = 1; i < replicas_.size(); ++i) {
      EXPECT_TRUE(replicas_[i] == first) << ids_[i];
      EXPECT_EQ(replicas_[i].Serialize(), first.Serialize()) << ids_[i];
      EXPECT_EQ(replicas_[i].value(ids_[0]), first.value(ids_[0])) << ids_[i];
      EXPECT_EQ(replicas_[i].value(ids_[i]), first.value(ids_[i])) << ids_[i];
    }
    std::vector<const Crdt*> order;
    for (const Crdt& delta : deltas_) {
      order.push_back(&delta);
      if (rng_.Percent(20)) order.push_back(&delta);
    }
    if (shuffle) std::shuffle(order.begin(), order.end(), rng_.engine());
    Crdt from_deltas(type_);
    for (const Crdt* delta : order) ASSERT_TRUE(from_deltas.Merge(*delta).ok());
    EXPECT_TRUE(from_deltas == first) << "the join of the deltas differs";

    Crdt from_states(type_);
    for (size_t i = replicas_.size(); i > 0; --i) {
      ASSERT_TRUE(from_states.Merge(replicas_[i - 1]).ok());
    }
    EXPECT_TRUE(from_states == first) << "the join of the whole states differs";
    ExpectRoundTrips(first);
  }

  // Whether Apply checks each delta (merging it equals applying; it round-trips); on by default.
  void set_check_every_apply(bool check) { check_every_apply_ = check; }

  Rng& rng() { return rng_; }
  size_t size() const { return replicas_.size(); }
  size_t RandomReplica() { return static_cast<size_t>(rng_.Below(static_cast<int>(size()))); }
  const Crdt& replica(size_t i) const { return replicas_[i]; }
  const std::string& id(size_t i) const { return ids_[i]; }

 private:
  struct Message {
    size_t to;
    Crdt delta;
  };

  void Deliver(const Message& message) {
    absl::Status merged = replicas_[message.to].Merge(message.delta);
    ASSERT_TRUE(merged.ok()) << merged;
  }

  Type type_;
  Rng rng_;
  std::vector<Crdt> replicas_;
  std::vector<std::string> ids_;
  std::vector<Message> in_flight_;
  std::vector<Message> dropped_;
  std::vector<Crdt> deltas_;
  bool check_every_apply_ = true;
};

size_t ReplicasFor(uint32_t seed) { return 2 + seed % 4; }  // 2..5

std::string Pick(Rng& rng, const char* prefix, int n) {
  return prefix + std::to_string(rng.Below(n));
}

std::vector<Bytes> Sorted(const std::set<Bytes>& set) { return {set.begin(), set.end()}; }

TEST(CrdtPropertyTest, CountersConvergeToTheSumOfIncrements) {
  for (uint32_t seed : kSeeds) {
    for (Type type : {Type::kGCounter, Type::kPNCounter}) {
      SCOPED_TRACE(testing::Message() << TypeName(type) << " seed " << seed);
      Cluster cluster(type, ReplicasFor(seed), seed);
      int64_t sum = 0;
      for (int step = 0; step < kSteps; ++step) {
        const int64_t by = cluster.rng().Between(-5, 9);
        absl::Status applied = cluster.Apply(cluster.RandomReplica(), Increment{by}, step);
        EXPECT_EQ(applied.ok(), type == Type::kPNCounter || by >= 0) << by;
        if (applied.ok()) sum += by;
        cluster.DeliverSome(3);
        if (step % 50 == 0) cluster.CheckIntermediate();
      }
      cluster.DeliverAll();
      cluster.ExpectConverged();
      EXPECT_EQ(cluster.replica(0).value().counter, sum);
    }
  }
}

TEST(CrdtPropertyTest, GSetConvergesToTheUnionOfAdds) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kGSet, ReplicasFor(seed), seed);
    std::set<Bytes> added;
    for (int step = 0; step < kSteps; ++step) {
      std::vector<Bytes> add;
      for (int n = cluster.rng().Below(3); n > 0; --n) add.push_back(Pick(cluster.rng(), "g", 40));
      ASSERT_TRUE(cluster.Apply(cluster.RandomReplica(), SetChange{false, {}, add}, step).ok());
      added.insert(add.begin(), add.end());
      if (cluster.rng().Percent(5)) {
        EXPECT_FALSE(cluster.Apply(0, SetChange{false, {"g1"}, {}}, step).ok());
      }
      cluster.DeliverSome(3);
      if (step % 50 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    EXPECT_EQ(cluster.replica(0).value().elements, Sorted(added));
  }
}

// A random ORSet change over `elements` elements; records which elements it touches.
SetChange RandomSetChange(Rng& rng, int elements) {
  SetChange change;
  change.clear = rng.Percent(4);
  for (int n = rng.Below(3); n > 0; --n) change.remove.push_back(Pick(rng, "e", elements));
  for (int n = rng.Below(3); n > 0; --n) change.add.push_back(Pick(rng, "e", elements));
  return change;
}

TEST(CrdtPropertyTest, ORSetConvergesAndTheLastTouchDecides) {
  constexpr int kElements = 8;
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kORSet, ReplicasFor(seed), seed);
    // The last operation (in real time) touching each element: true for an add. An element whose
    // last touch is an add is present at the end (no removal can have seen that add).
    std::map<Bytes, bool> last_touch_adds;
    for (int step = 0; step < kSteps; ++step) {
      SetChange change = RandomSetChange(cluster.rng(), kElements);
      ASSERT_TRUE(cluster.Apply(cluster.RandomReplica(), change, step).ok());
      if (change.clear) {
        for (auto& [element, adds] : last_touch_adds) adds = false;
      }
      for (const Bytes& element : change.remove) last_touch_adds[element] = false;
      for (const Bytes& element : change.add) last_touch_adds[element] = true;
      cluster.DeliverSome(4);
      if (step % 50 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    const std::vector<Bytes> elements = cluster.replica(0).value().elements;
    const std::set<Bytes> present(elements.begin(), elements.end());
    for (const auto& [element, adds] : last_touch_adds) {
      if (adds) {
        EXPECT_TRUE(present.contains(element)) << element;
      }
    }
    for (const Bytes& element : present) {
      EXPECT_TRUE(last_touch_adds.contains(element)) << element << " was never added";
    }
  }
}

TEST(CrdtPropertyTest, ORSetDrivenByOneReplicaIsTheSequentialSet) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kORSet, ReplicasFor(seed), seed);
    std::set<Bytes> model;
    for (int step = 0; step < kSteps; ++step) {
      SetChange change = RandomSetChange(cluster.rng(), 8);
      ASSERT_TRUE(cluster.Apply(0, change, step).ok());
      if (change.clear) model.clear();
      for (const Bytes& element : change.remove) model.erase(element);
      model.insert(change.add.begin(), change.add.end());
      EXPECT_EQ(cluster.replica(0).value().elements, Sorted(model));
      cluster.DeliverSome(3);
      if (step % 50 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    for (size_t i = 0; i < cluster.size(); ++i) {
      EXPECT_EQ(cluster.replica(i).value().elements, Sorted(model));
    }
  }
}

TEST(CrdtPropertyTest, LWWRegisterHoldsTheHighestClockThenReplica) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kLWWRegister, ReplicasFor(seed), seed);
    std::vector<int64_t> skew;
    for (size_t i = 0; i < cluster.size(); ++i) skew.push_back(cluster.rng().Between(-20, 20));
    // (clock, replica, value) of the winning write so far.
    std::tuple<int64_t, std::string, Bytes> best{INT64_MIN, "", ""};
    bool written = false;
    for (int step = 0; step < kSteps; ++step) {
      const size_t at = cluster.RandomReplica();
      const int64_t now = 1000 + step + skew[at];
      Assign assign{"v" + std::to_string(step)};
      int64_t clock = now;
      switch (cluster.rng().Below(3)) {
        case 0: break;
        case 1:
          assign.clock = ClockKind::kReverse;
          clock = -now;
          break;
        default:
          assign.clock = ClockKind::kCustom;
          assign.custom_clock = cluster.rng().Between(0, 1300);
          clock = assign.custom_clock;
          break;
      }
      ASSERT_TRUE(cluster.Apply(at, assign, now).ok());
      best = std::max(best, std::make_tuple(clock, cluster.id(at), assign.value));
      written = true;
      if (cluster.rng().Percent(5)) {
        EXPECT_FALSE(cluster.Apply(at, Increment{1}, now).ok());
      }
      cluster.DeliverSome(3);
      if (step % 50 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    ASSERT_TRUE(written);
    EXPECT_EQ(cluster.replica(0).value().register_value, std::get<2>(best));
  }
}

TEST(CrdtPropertyTest, LWWRegisterAutoIncrementWinsOverWhatItSaw) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kLWWRegister, ReplicasFor(seed), seed);
    for (int step = 0; step < kSteps; ++step) {
      const size_t at = cluster.RandomReplica();
      const bool automatic = cluster.rng().Percent(60);
      Assign assign{"v" + std::to_string(step),
                    automatic ? ClockKind::kCustomAutoIncrement : ClockKind::kCustom,
                    cluster.rng().Between(0, 3 * kSteps)};
      ASSERT_TRUE(cluster.Apply(at, assign, 0).ok());
      if (automatic) {
        EXPECT_EQ(cluster.replica(at).value().register_value, assign.value);
      }
      cluster.DeliverSome(3);
      if (step % 50 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    // Once converged, an auto-increment write anywhere wins everywhere.
    const size_t at = cluster.RandomReplica();
    ASSERT_TRUE(cluster.Apply(at, Assign{"last", ClockKind::kCustomAutoIncrement, 0}, 0).ok());
    cluster.DeliverAll();
    cluster.ExpectConverged();
    EXPECT_EQ(cluster.replica(0).value().register_value, "last");
  }
}

TEST(CrdtPropertyTest, FlagIsEnabledOnceAnyReplicaEnabledIt) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kFlag, ReplicasFor(seed), seed);
    bool enabled = false;
    for (int step = 0; step < 60; ++step) {
      if (cluster.rng().Percent(15)) {
        ASSERT_TRUE(cluster.Apply(cluster.RandomReplica(), Enable{}, step).ok());
        enabled = true;
      }
      cluster.DeliverSome(3);
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    EXPECT_EQ(cluster.replica(0).value().flag, enabled);
    EXPECT_EQ(cluster.replica(0).empty(), !enabled);
  }
}

TEST(CrdtPropertyTest, VoteCountsEachReplicasLastVote) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kVote, ReplicasFor(seed), seed);
    std::map<size_t, bool> last_vote;
    for (int step = 0; step < 80; ++step) {
      const size_t at = cluster.RandomReplica();
      const bool vote = cluster.rng().Percent(50);
      ASSERT_TRUE(cluster.Apply(at, CastVote{vote}, step).ok());
      last_vote[at] = vote;
      EXPECT_EQ(cluster.replica(at).value(cluster.id(at)).vote.self_vote, vote);
      cluster.DeliverSome(3);
      if (step % 20 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    uint32_t votes_for = 0;
    for (const auto& [replica, vote] : last_vote) votes_for += vote ? 1 : 0;
    for (size_t i = 0; i < cluster.size(); ++i) {
      const VoteValue value = cluster.replica(0).value(cluster.id(i)).vote;
      EXPECT_EQ(value.votes_for, votes_for);
      EXPECT_EQ(value.voters, last_vote.size());
      EXPECT_EQ(value.self_vote, last_vote.contains(i) && last_vote[i]);
    }
  }
}

// ORMap keys have a fixed type by name, so that updates fit; "x..." updates name a wrong type.
Type KeyType(const Bytes& key) {
  switch (key[0]) {
    case 'c': return Type::kPNCounter;
    case 'g': return Type::kGCounter;
    case 's': return Type::kORSet;
    case 'r': return Type::kLWWRegister;
    case 'f': return Type::kFlag;
    case 'v': return Type::kVote;
    case 'm': return Type::kORMap;
    default: return Type::kGSet;
  }
}

Operation RandomOperation(Rng& rng, Type type, int depth) {
  switch (type) {
    case Type::kGCounter: return Increment{rng.Between(0, 5)};
    case Type::kPNCounter: return Increment{rng.Between(-5, 5)};
    case Type::kGSet: return SetChange{false, {}, {Pick(rng, "e", 5)}};
    case Type::kORSet: return RandomSetChange(rng, 5);
    case Type::kLWWRegister:
      return Assign{Pick(rng, "v", 100), ClockKind::kCustomAutoIncrement, rng.Between(0, 50)};
    case Type::kFlag: return Enable{};
    case Type::kVote: return CastVote{rng.Percent(50)};
    case Type::kORMap: {
      MapChange change;
      change.clear = rng.Percent(3);
      for (int n = rng.Below(2); n > 0; --n) change.remove.push_back(Pick(rng, "c", 2));
      for (int n = rng.Between(depth == 0 ? 0 : 1, 2); n > 0; --n) {
        // Nested maps hold counters and sets only, two levels at most.
        static constexpr const char* kTop[] = {"c0", "c1", "g0", "s0", "s1",
                                               "r0", "f0", "v0", "m0", "t0"};
        static constexpr const char* kNested[] = {"c0", "c1", "s0"};
        const Bytes key = depth == 0 ? kTop[rng.Below(10)] : kNested[rng.Below(3)];
        change.update.push_back(
            MapUpdate::Of(key, KeyType(key), RandomOperation(rng, KeyType(key), depth + 1)));
      }
      if (depth == 0) {
        for (int n = rng.Below(2); n > 0; --n) change.remove.push_back(Pick(rng, "s", 2));
      }
      return change;
    }
  }
  return Increment{};
}

TEST(CrdtPropertyTest, ORMapOfEveryTypeConverges) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kORMap, ReplicasFor(seed), seed);
    std::map<Bytes, bool> last_touch_updates;
    for (int step = 0; step < kSteps; ++step) {
      const size_t at = cluster.RandomReplica();
      if (cluster.rng().Percent(5)) {  // a wrong type for an existing key is refused
        const Value value = cluster.replica(at).value();
        if (!value.entries.empty()) {
          const Bytes& key = value.entries[0].key;
          const Type wrong = KeyType(key) == Type::kFlag ? Type::kVote : Type::kFlag;
          MapChange change;
          change.update.push_back(MapUpdate::Of(
              key, wrong, wrong == Type::kFlag ? Operation(Enable{}) : CastVote{true}));
          EXPECT_FALSE(cluster.Apply(at, change, step).ok()) << key;
        }
      }
      const auto change = std::get<MapChange>(RandomOperation(cluster.rng(), Type::kORMap, 0));
      ASSERT_TRUE(cluster.Apply(at, change, step).ok());
      if (change.clear) {
        for (auto& [key, updates] : last_touch_updates) updates = false;
      }
      for (const Bytes& key : change.remove) last_touch_updates[key] = false;
      for (const MapUpdate& update : change.update) last_touch_updates[update.key] = true;
      cluster.DeliverSome(4);
      if (step % 50 == 0) cluster.CheckIntermediate();
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    std::set<Bytes> present;
    for (const MapEntry& entry : cluster.replica(0).value().entries) {
      present.insert(entry.key);
      EXPECT_EQ(entry.value.type, KeyType(entry.key)) << entry.key;
    }
    for (const auto& [key, updates] : last_touch_updates) {
      if (updates) {
        EXPECT_TRUE(present.contains(key)) << key;
      }
    }
    for (const Bytes& key : present) EXPECT_TRUE(last_touch_updates.contains(key)) << key;
  }
}

TEST(CrdtPropertyTest, ORMapOfCountersWithoutRemovesSumsPerKey) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kORMap, ReplicasFor(seed), seed);
    std::map<Bytes, int64_t> sums;
    for (int step = 0; step < kSteps; ++step) {
      const Bytes key = Pick(cluster.rng(), "c", 4);
      const int64_t by = cluster.rng().Between(-3, 6);
      MapChange change;
      change.update.push_back(MapUpdate::Of(key, Type::kPNCounter, Increment{by}));
      ASSERT_TRUE(cluster.Apply(cluster.RandomReplica(), change, step).ok());
      sums[key] += by;
      cluster.DeliverSome(3);
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    const Value value = cluster.replica(0).value();
    ASSERT_EQ(value.entries.size(), sums.size());
    size_t i = 0;
    for (const auto& [key, sum] : sums) {
      EXPECT_EQ(value.entries[i].key, key);
      EXPECT_EQ(value.entries[i].value.counter, sum) << key;
      ++i;
    }
  }
}

TEST(CrdtPropertyTest, ORMapDrivenByOneReplicaIsTheSequentialMap) {
  for (uint32_t seed : kSeeds) {
    SCOPED_TRACE(seed);
    Cluster cluster(Type::kORMap, ReplicasFor(seed), seed);
    // The model: each key's value as a standalone CRDT, made afresh when the key is created.
    std::map<Bytes, Crdt> model;
    for (int step = 0; step < kSteps; ++step) {
      const auto change = std::get<MapChange>(RandomOperation(cluster.rng(), Type::kORMap, 0));
      ASSERT_TRUE(cluster.Apply(0, change, step).ok());
      if (change.clear) model.clear();
      for (const Bytes& key : change.remove) model.erase(key);
      for (const MapUpdate& update : change.update) {
        auto [it, created] = model.try_emplace(update.key, update.type);
        ASSERT_TRUE(it->second.Apply(*update.operation, cluster.id(0), step).ok());
      }
      cluster.DeliverSome(3);
    }
    cluster.DeliverAll();
    cluster.ExpectConverged();
    for (size_t i = 0; i < cluster.size(); ++i) {
      const Value value = cluster.replica(i).value(cluster.id(0));
      ASSERT_EQ(value.entries.size(), model.size());
      auto it = model.begin();
      for (const MapEntry& entry : value.entries) {
        EXPECT_EQ(entry.key, it->first);
        EXPECT_EQ(entry.value, it->second.value(cluster.id(0))) << entry.key;
        ++it;
      }
    }
  }
}

// 10,000 add/remove rounds on the same 10 elements (keys) by 3 replicas keep the state small.
TEST(CrdtPropertyTest, SizeStaysBoundedUnderChurn) {
  for (Type type : {Type::kORSet, Type::kORMap, Type::kFlag}) {
    SCOPED_TRACE(TypeName(type));
    Cluster cluster(type, 3, 77);
    cluster.set_check_every_apply(false);  // speed: the other tests check that
    size_t largest = 0;
    for (int round = 0; round < 10000; ++round) {
      const size_t at = cluster.RandomReplica();
      const Bytes element = Pick(cluster.rng(), "element-", 10);
      const bool add = cluster.rng().Percent(50);
      Operation op = Enable{};
      if (type == Type::kORSet) {
        op = add ? SetChange{false, {}, {element}} : SetChange{false, {element}, {}};
      } else if (type == Type::kORMap) {
        MapChange change;
        if (add) {
          change.update.push_back(MapUpdate::Of(element, Type::kPNCounter, Increment{1}));
        } else {
          change.remove.push_back(element);
        }
        op = change;
      }
      ASSERT_TRUE(cluster.Apply(at, op, round).ok());
      cluster.DeliverSome(5);
      if (round % 1000 == 999) {
        cluster.DeliverAll();
        for (size_t i = 0; i < cluster.size(); ++i) {
          largest = std::max(largest, cluster.replica(i).ByteSize());
        }
      }
    }
    cluster.DeliverAll();
    cluster.ExpectConverged(/*shuffle=*/false);  // 10,000 deltas: in order, for speed
    EXPECT_LT(largest, 2048u);
    EXPECT_LT(cluster.replica(0).ByteSize(), 2048u);
  }
}

}  // namespace
}  // namespace massa::crdt
