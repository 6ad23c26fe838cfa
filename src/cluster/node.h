// One massa node of a cluster (docs/cluster.md): its membership and claims on etcd
// (etcd.h), which partitions it owns, and the placement of every entity command: run here when
// this node holds the claim of the entity's partition, else forwarded to the partition's owner
// (peer.h). The owner of a partition is the member that rendezvous hashing picks (partition.h)
// once it holds the claim; the claim's token fences every write of the partition's entities.
//
// Consistency over availability: while this node's lease is not known alive (etcd lost), it
// serves no entity command (UNAVAILABLE) and its writes carry no token it may have lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/peer.h"
#include "entity/router.h"

namespace massa {
enum class WriteConsistency;  // crdt/change.h
}  // namespace massa

namespace massa::cluster {

struct ClusterOptions {
  std::string etcd_endpoint;  // host:port of an etcd member
  std::string cluster = "massa";
  std::string node_id;
  std::string peer_address;  // host:port where this node serves the Peer service (its gRPC)
  uint32_t partitions = 64;
  std::chrono::milliseconds lease_ttl{5000};
  // How long a command waits for its partition to get an owner (claims move) before
  // UNAVAILABLE; bounded by the command's deadline.
  std::chrono::milliseconds owner_wait{2000};
  // How long a handoff waits for the partition's commands on this node to finish before it
  // releases the claim anyway (their writes are then fenced by the new owner's).
  std::chrono::milliseconds drain_timeout{2000};
  // Drops this node's cached entities of `partition` (idle ones now, busy ones once idle: the
  // next command reloads them) and returns how many of them still run or write here. Called
  // when the node gives a partition up (until it returns 0 or drain_timeout passes) and when it
  // takes one (a copy cached from an earlier ownership is stale). Unset = nothing is cached.
  std::function<size_t(uint32_t partition)> release_entities;
  // Whether this node's function answers. A node whose function stays down for a second
  // withdraws from the members (the others take its partitions; it still forwards what it
  // receives) and is listed again once the function is back. Unset = always up.
  std::function<bool()> function_up;
  // Where the node puts the cluster's secret once it read it from etcd: the node's Peer
  // service checks every call against it (peer.h). Unset = the node keeps its own.
  std::shared_ptr<PeerSecret> secret;
};

struct ClusterStats {
  bool healthy = false;    // lease known alive
  size_t members = 0;
  size_t owned = 0;        // partitions this node holds
  uint64_t forwarded = 0;  // commands sent to other nodes
  uint64_t claims = 0;     // partitions claimed since start
  uint64_t releases = 0;   // partitions released since start (handoffs)
};

// What a node knows of the cluster, for the admin endpoint.
struct ClusterView {
  std::string node_id;
  std::string cluster;
  bool healthy = false;
  std::vector<std::pair<std::string, std::string>> members;  // (id, peer address), by id
  uint32_t partitions = 0;
  std::vector<uint32_t> owned;  // held by this node
  ClusterStats stats;
};

// Thread-safe.
class ClusterNode final : public Placement {
 public:
  // Connects to the cluster (etcd.h) with a lease, not yet listed among the members: until
  // Serve(), no partition comes here and the node forwards every entity command.
  // UNAVAILABLE when etcd cannot be reached.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ClusterNode>> Start(ClusterOptions options);

  // Once this node answers its peers (its gRPC serves): lists it among the members, and it
  // starts claiming the partitions it should own. ALREADY_EXISTS for a node id in use.
  [[nodiscard]] absl::Status Serve();
  ~ClusterNode() override;  // Stop()

  bool TakeRemote(std::string_view entity_type, Command& command, ResultCallback& done) override;

  // The fencing token of a write of entity (entity_type, key): its partition's claim token when
  // this node holds the claim and its lease is alive, else 0 (the store refuses the write if the
  // entity was written under any claim).
  uint64_t FenceOf(std::string_view entity_type, std::string_view key) const;

  // Sends a CRDT change's delta to every other member's replica of the entity (a command like
  // `like` carrying Command::crdt_merge) and calls `done` once as many of them confirmed it as
  // `consistency` needs beside this node (none for LOCAL, a majority of all for MAJORITY,
  // every one for ALL), or with UNAVAILABLE saying how many did. The sends are bounded by the
  // command's deadline and 2 s.
  void ReplicateCrdt(const Command& like, std::string delta, WriteConsistency consistency,
                     absl::AnyInvocable<void(absl::Status) &&> done);

  // The partitions this node owns and serves now, sorted: whose timers and outbox it fires.
  // None while its lease is not known alive; a partition being handed over is not among them.
  std::vector<uint32_t> Owned() const;

  ClusterStats stats() const;
  ClusterView View() const;
  // Ready to serve: lease alive (readiness).
  bool healthy() const;

  // The node's router: a command waiting for its partition's owner is dispatched there again.
  // Set before serving.
  void SetLocal(Dispatcher* local);

  // A planned leave (SIGTERM), before the node stops serving: withdraws from the members and
  // waits, at most `timeout`, until it handed every partition over (the others claim them;
  // meanwhile it forwards what it receives). Returns whether it did within `timeout`.
  bool Depart(std::chrono::milliseconds timeout);

  // Releases every claim and leaves the cluster. Idempotent.
  void Stop();

 public:
  struct Impl;  // internal

 private:
  explicit ClusterNode(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace massa::cluster
