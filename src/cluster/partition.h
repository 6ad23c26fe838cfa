// Partitions and their desired owners: the two hashes a cluster of massa nodes agrees on
// without talking (docs/cluster.md).
//
// An entity's partition is a stable function of its entity type and key, documented so that
// any tool can compute it: FNV-1a (64 bits) over the bytes of the entity type, one 0 byte, and
// the bytes of the key, modulo the cluster's partition count. The count is fixed when a cluster
// is created; changing the function or the count would move every entity, so both are pinned
// by golden tests.
//
// A partition's desired owner is chosen by rendezvous (highest random weight) hashing over the
// live members: each member's weight for partition p is splitmix64(FNV-1a(member id) ^ p), and
// the highest weight wins (ties, which need equal ids, go to the smaller id). No coordinator is
// needed, every node computes the same owner from the same membership, and a join moves about
// 1/N of the partitions (only to the new member), a leave only the leaver's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace massa::cluster {

// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3), continuing from
// `hash`.
uint64_t Fnv1a64(std::string_view bytes, uint64_t hash = 0xcbf29ce484222325ULL);

// The partition of entity (entity_type, key) among `count` (> 0) partitions.
uint32_t PartitionOf(std::string_view entity_type, std::string_view key, uint32_t count);

// The weight of `member` for `partition` in rendezvous hashing.
uint64_t RendezvousWeight(std::string_view member, uint32_t partition);

// The member with the highest weight for `partition`; empty when there are no members.
std::string DesiredOwner(uint32_t partition, const std::vector<std::string>& members);

}  // namespace massa::cluster
