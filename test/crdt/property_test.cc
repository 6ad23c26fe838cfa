// Randomized convergence: random operations on 2-5 replicas, every delta delivered to every
// other replica in random order, some duplicated, some dropped and resent later. Afterwards all
// replicas hold equal values, the sequential answer where one exists, and bounded sizes.
#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crdt/crdt.h"
#include "gtest/gtest.h"

namespace massa::crdt {
namespace {

struct Message {
  size_t to;
  Crdt delta;
};

// A cluster of replicas and the deltas travelling between them.
class Network {
 public:
  Network(Type type, size_t replicas, uint32_t seed) : rng_(seed) {
    for (size_t i = 0; i < replicas; ++i) {
      values_.emplace_back(type);
      ids_.push_back("r" + std::to_string(i));
    }
  }

  // Applies `op` at replica `at` and sends its delta to every other replica.
  bool Apply(size_t at, const Operation& op) {
    absl::StatusOr<Crdt> delta = values_[at].Apply(op, ids_[at], ++clock_);
    if (!delta.ok()) return false;
    for (size_t to = 0; to < values_.size(); ++to) {
      if (to == at) continue;
      in_flight_.push_back(Message{to, *delta});
      if (Chance(10)) in_flight_.push_back(Message{to, *delta});  // duplicated
    }
    return true;
  }

  // Delivers a few messages in random order; some are dropped, to be resent at the end.
  void DeliverSome() {
    for (int n = Uniform(4); n > 0 && !in_flight_.empty(); --n) {
      const size_t i = static_cast<size_t>(Uniform(static_cast<int>(in_flight_.size())));
      Message message = std::move(in_flight_[i]);
      in_flight_.erase(in_flight_.begin() + static_cast<std::ptrdiff_t>(i));
      if (Chance(10)) {
        dropped_.push_back(std::move(message));
        continue;
      }
      ASSERT_TRUE(values_[message.to].Merge(message.delta).ok());
    }
  }

  void DeliverAll() {
    in_flight_.insert(in_flight_.end(), dropped_.begin(), dropped_.end());
    dropped_.clear();
    std::shuffle(in_flight_.begin(), in_flight_.end(), rng_);
    for (Message& message : in_flight_) ASSERT_TRUE(values_[message.to].Merge(message.delta).ok());
    in_flight_.clear();
  }

  void ExpectConverged() {
    for (size_t i = 1; i < values_.size(); ++i) {
      EXPECT_EQ(values_[i].Serialize(), values_[0].Serialize()) << "replica " << i;
      EXPECT_EQ(values_[i].value(), values_[0].value()) << "replica " << i;
    }
    // A fresh replica merging a whole value holds the same; the serialized form round-trips.
    Crdt fresh(values_[0].type());
    ASSERT_TRUE(fresh.Merge(values_[0]).ok());
    EXPECT_EQ(fresh, values_[0]);
    absl::StatusOr<Crdt> parsed = Crdt::Parse(values_[0].Serialize());
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, values_[0]);
  }

  int Uniform(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Uniform(100) < percent; }
  size_t size() const { return values_.size(); }
  const Crdt& value(size_t i) const { return values_[i]; }
  int64_t clock() const { return clock_; }

 private:
  std::mt19937 rng_;
  std::vector<Crdt> values_;
  std::vector<std::string> ids_;
  std::vector<Message> in_flight_;
  std::vector<Message> dropped_;
  int64_t clock_ = 1000;
};

constexpr uint32_t kSeeds[] = {1, 7, 42, 1234, 99991};
constexpr int kSteps = 300;

std::string Element(Network& net) { return "e" + std::to_string(net.Uniform(6)); }

TEST(CrdtPropertyTest, CountersConvergeToTheSum) {
  for (uint32_t seed : kSeeds) {
    for (Type type : {Type::kGCounter, Type::kPNCounter}) {
      Network net(type, 2 + seed % 4, seed);
      int64_t sum = 0;
      for (int step = 0; step < kSteps; ++step) {
        const int64_t by = type == Type::kGCounter ? net.Uniform(5) : net.Uniform(11) - 5;
        if (net.Apply(static_cast<size_t>(net.Uniform(static_cast<int>(net.size()))),
                      Increment{by})) {
          sum += by;
        }
        net.DeliverSome();
      }
      net.DeliverAll();
      net.ExpectConverged();
      EXPECT_EQ(net.value(0).value().counter, sum) << "seed " << seed;
    }
  }
}

TEST(CrdtPropertyTest, GSetConvergesToTheUnion) {
  for (uint32_t seed : kSeeds) {
    Network net(Type::kGSet, 2 + seed % 4, seed);
    std::set<std::string> all;
    for (int step = 0; step < kSteps; ++step) {
      const std::string e = "g" + std::to_string(net.Uniform(50));
      net.Apply(static_cast<size_t>(net.Uniform(static_cast<int>(net.size()))),
                SetChange{false, {}, {e}});
      all.insert(e);
      net.DeliverSome();
    }
    net.DeliverAll();
    net.ExpectConverged();
    EXPECT_EQ(net.value(0).value().elements, std::vector<std::string>(all.begin(), all.end()));
  }
}

TEST(CrdtPropertyTest, ORSetConvergesWithConcurrentAddsAndRemoves) {
  for (uint32_t seed : kSeeds) {
    Network net(Type::kORSet, 2 + seed % 4, seed);
    for (int step = 0; step < kSteps; ++step) {
      const size_t at = static_cast<size_t>(net.Uniform(static_cast<int>(net.size())));
      const int kind = net.Uniform(10);
      if (kind < 5) {
        net.Apply(at, SetChange{false, {}, {Element(net)}});
      } else if (kind < 9) {
        net.Apply(at, SetChange{false, {Element(net)}, {}});
      } else {
        net.Apply(at, SetChange{true, {}, {}});
      }
      net.DeliverSome();
    }
    net.DeliverAll();
    net.ExpectConverged();
  }
}

TEST(CrdtPropertyTest, ORSetDrivenByOneReplicaIsTheSequentialSet) {
  for (uint32_t seed : kSeeds) {
    Network net(Type::kORSet, 3, seed);
    std::set<std::string> model;
    for (int step = 0; step < kSteps; ++step) {
      const std::string e = Element(net);
      if (net.Chance(60)) {
        net.Apply(0, SetChange{false, {}, {e}});
        model.insert(e);
      } else {
        net.Apply(0, SetChange{false, {e}, {}});
        model.erase(e);
      }
      net.DeliverSome();
    }
    net.DeliverAll();
    net.ExpectConverged();
    EXPECT_EQ(net.value(1).value().elements, std::vector<std::string>(model.begin(), model.end()));
  }
}

TEST(CrdtPropertyTest, LWWRegisterConvergesToTheLatestWrite) {
  for (uint32_t seed : kSeeds) {
    Network net(Type::kLWWRegister, 2 + seed % 4, seed);
    std::string last;
    for (int step = 0; step < kSteps; ++step) {
      last = "v" + std::to_string(step);
      net.Apply(static_cast<size_t>(net.Uniform(static_cast<int>(net.size()))), Assign{last});
      net.DeliverSome();
    }
    net.DeliverAll();
    net.ExpectConverged();
    EXPECT_EQ(net.value(0).value().register_value, last) << "every write has a later clock";
  }
}

TEST(CrdtPropertyTest, FlagsAndVotesConverge) {
  for (uint32_t seed : kSeeds) {
    Network flags(Type::kFlag, 2 + seed % 4, seed);
    Network votes(Type::kVote, 2 + seed % 4, seed);
    std::map<size_t, bool> last_vote;
    for (int step = 0; step < kSteps; ++step) {
      if (flags.Chance(5)) flags.Apply(static_cast<size_t>(flags.Uniform(2)), Enable{});
      const size_t voter = static_cast<size_t>(votes.Uniform(static_cast<int>(votes.size())));
      const bool vote = votes.Chance(50);
      votes.Apply(voter, CastVote{vote});
      last_vote[voter] = vote;
      flags.DeliverSome();
      votes.DeliverSome();
    }
    flags.DeliverAll();
    votes.DeliverAll();
    flags.ExpectConverged();
    votes.ExpectConverged();
    uint32_t votes_for = 0;
    for (const auto& [voter, vote] : last_vote) votes_for += vote ? 1 : 0;
    EXPECT_EQ(votes.value(0).value().vote.votes_for, votes_for);
    EXPECT_EQ(votes.value(0).value().vote.voters, last_vote.size());
  }
}

TEST(CrdtPropertyTest, ORMapConvergesAndOneDriverGivesTheSequentialMap) {
  for (uint32_t seed : kSeeds) {
    Network net(Type::kORMap, 2 + seed % 4, seed);
    for (int step = 0; step < kSteps; ++step) {
      const size_t at = static_cast<size_t>(net.Uniform(static_cast<int>(net.size())));
      MapChange change;
      if (net.Chance(70)) {
        change.update.push_back(
            MapUpdate::Of(Element(net), Type::kPNCounter, Increment{net.Uniform(7) - 3}));
      } else {
        change.remove.push_back(Element(net));
      }
      net.Apply(at, change);
      net.DeliverSome();
    }
    net.DeliverAll();
    net.ExpectConverged();

    Network single(Type::kORMap, 3, seed);
    std::map<std::string, int64_t> model;
    for (int step = 0; step < kSteps; ++step) {
      const std::string key = Element(single);
      MapChange change;
      if (single.Chance(70)) {
        const int64_t by = single.Uniform(7) - 3;
        change.update.push_back(MapUpdate::Of(key, Type::kPNCounter, Increment{by}));
        model[key] += by;
      } else {
        change.remove.push_back(key);
        model.erase(key);
      }
      single.Apply(0, change);
      single.DeliverSome();
    }
    single.DeliverAll();
    single.ExpectConverged();
    Value value = single.value(2).value();
    ASSERT_EQ(value.entries.size(), model.size());
    size_t i = 0;
    for (const auto& [key, counter] : model) {
      EXPECT_EQ(value.entries[i].key, key);
      EXPECT_EQ(value.entries[i].value.counter, counter) << key;
      ++i;
    }
  }
}

TEST(CrdtPropertyTest, SizeStaysBoundedUnderLongChurn) {
  for (Type type : {Type::kORSet, Type::kORMap}) {
    Network net(type, 3, 5);
    for (int step = 0; step < 10000; ++step) {
      const size_t at = static_cast<size_t>(step % 3);
      const std::string e = "e" + std::to_string(step % 10);
      if (type == Type::kORSet) {
        net.Apply(at, step % 2 == 0 ? SetChange{false, {}, {e}} : SetChange{false, {e}, {}});
      } else {
        MapChange change;
        if (step % 2 == 0) {
          change.update.push_back(MapUpdate::Of(e, Type::kPNCounter, Increment{1}));
        } else {
          change.remove.push_back(e);
        }
        net.Apply(at, change);
      }
      net.DeliverSome();
      if (step % 100 == 99) net.DeliverAll();
    }
    net.DeliverAll();
    net.ExpectConverged();
    EXPECT_LT(net.value(0).ByteSize(), 2048u) << TypeName(type);
  }
}

}  // namespace
}  // namespace massa::crdt
