// Partitions and rendezvous placement: the hashes every node of a cluster must compute alike,
// pinned by golden values (a change would move every entity of an existing cluster).
#include "cluster/partition.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace massa::cluster {
namespace {

TEST(PartitionTest, Fnv1aMatchesItsPublishedVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(PartitionTest, GoldenPartitions) {
  EXPECT_EQ(PartitionOf("example.shoppingcart.ShoppingCart", "c1", 1024), 79u);
  EXPECT_EQ(PartitionOf("example.bank.Accounts", "a42", 1024), 166u);
  EXPECT_EQ(PartitionOf("spawn.bench.account", "a0", 1024), 566u);
  EXPECT_EQ(PartitionOf("t", "", 1024), 761u);
  EXPECT_EQ(PartitionOf("example.shoppingcart.ShoppingCart", "c1", 64), 15u);
  EXPECT_EQ(PartitionOf("example.bank.Accounts", "a42", 64), 38u);
  // The 0 byte between type and key keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(PartitionOf("ab", "c", 1u << 31), PartitionOf("a", "bc", 1u << 31));
}

TEST(PartitionTest, EntitiesSpreadOverPartitions) {
  std::vector<int> counts(64);
  for (int i = 0; i < 64'000; ++i) ++counts[PartitionOf("t", "k" + std::to_string(i), 64)];
  for (int count : counts) {
    EXPECT_GT(count, 800);   // 1,000 expected
    EXPECT_LT(count, 1200);
  }
}

std::vector<std::string> Members(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("node-" + std::to_string(i));
  return out;
}

TEST(PartitionTest, RendezvousIsGoldenAndIndependentOfMemberOrder) {
  const std::vector<std::string> members = Members(3);
  const std::vector<std::string> reversed(members.rbegin(), members.rend());
  for (uint32_t p = 0; p < 1024; ++p) EXPECT_EQ(DesiredOwner(p, members), DesiredOwner(p, reversed));
  EXPECT_EQ(DesiredOwner(0, {}), "");
  EXPECT_EQ(DesiredOwner(7, {"only"}), "only");
  EXPECT_EQ(RendezvousWeight("node-0", 0), RendezvousWeight("node-0", 0));
  EXPECT_NE(RendezvousWeight("node-0", 0), RendezvousWeight("node-0", 1));
}

TEST(PartitionTest, AJoinMovesAboutOneNthOnlyToTheNewMemberAndALeaveOnlyTheLeavers) {
  constexpr uint32_t kPartitions = 1024;
  const std::vector<std::string> four = Members(4);
  const std::vector<std::string> five = Members(5);
  std::map<std::string, int> owned;
  int moved = 0;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    const std::string before = DesiredOwner(p, four);
    const std::string after = DesiredOwner(p, five);
    ++owned[before];
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, "node-4") << "partition " << p << " moved between old members";
    }
  }
  EXPECT_GT(moved, kPartitions / 5 - 60);  // about 205
  EXPECT_LT(moved, kPartitions / 5 + 60);
  for (const auto& [member, count] : owned) {
    EXPECT_GT(count, 200) << member;  // 256 expected
    EXPECT_LT(count, 312) << member;
  }
  // node-2 leaves: only its partitions move.
  const std::vector<std::string> three = {"node-0", "node-1", "node-3"};
  for (uint32_t p = 0; p < kPartitions; ++p) {
    const std::string before = DesiredOwner(p, four);
    if (before != "node-2") {
      EXPECT_EQ(DesiredOwner(p, three), before) << "partition " << p;
    }
  }
}

}  // namespace
}  // namespace massa::cluster
