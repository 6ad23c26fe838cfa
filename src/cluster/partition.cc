#include "cluster/partition.h"

namespace massa::cluster {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t Fnv1a64(std::string_view bytes, uint64_t hash) {
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

uint32_t PartitionOf(std::string_view entity_type, std::string_view key, uint32_t count) {
  uint64_t hash = Fnv1a64(entity_type);
  hash = Fnv1a64(std::string_view("\0", 1), hash);
  hash = Fnv1a64(key, hash);
  return static_cast<uint32_t>(hash % count);
}

uint64_t RendezvousWeight(std::string_view member, uint32_t partition) {
  return SplitMix64(Fnv1a64(member) ^ partition);
}

std::string DesiredOwner(uint32_t partition, const std::vector<std::string>& members) {
  const std::string* best = nullptr;
  uint64_t best_weight = 0;
  for (const std::string& member : members) {
    const uint64_t weight = RendezvousWeight(member, partition);
    if (best == nullptr || weight > best_weight || (weight == best_weight && member < *best)) {
      best = &member;
      best_weight = weight;
    }
  }
  return best == nullptr ? std::string() : *best;
}

}  // namespace massa::cluster
