// File: cluster/etcd.h
//
// A node's membership in a cluster and its partition ownership claims, kept on etcd
// (docs/cluster.md). The node registers /massa/<cluster>/members/<node_id> (value: its peer
// address) on a lease it keeps alive, watches the other members, and claims a partition by
// creating /massa/<cluster>/claims/<partition> (value: its node id) on the same lease. When the
// node dies or freezes, etcd expires the lease and its membership and claims go with it.
//
//   absl::StatusOr<std::unique_ptr<EtcdCluster>> node = EtcdCluster::Start(
//       {.endpoint = "127.0.0.1:2379", .node_id = "n1", .peer_address = "10.0.0.1:7000"},
//       [](const std::vector<Member>& members) { /* recompute desired owners */ });
//   absl::StatusOr<int64_t> token = (*node)->Claim(17);  // the fencing token of partition 17
//
// The client is gRPC's, generated from etcd's protos; no gRPC or etcd type appears here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace massa::cluster {

// A live node of the cluster.
struct Member {
  std::string id;       // node id
  std::string address;  // its peer address (host:port)

  friend bool operator==(const Member&, const Member&) = default;
};

struct EtcdOptions {
  std::string endpoint;           // "127.0.0.1:2379" (one endpoint)
  std::string cluster = "massa";  // keys live under /massa/<cluster>/
  std::string node_id;            // unique per live node
  std::string peer_address;       // what other nodes dial
  // The lease's TTL (etcd counts whole seconds: rounded up, and etcd may raise it to its
  // minimum); a keep-alive is sent every ttl/3.
  std::chrono::milliseconds ttl{5000};
  // The bound of every call to etcd.
  std::chrono::milliseconds rpc_timeout{2000};
  // Whether Start lists the node among the members; false: it starts withdrawn (SetMember).
  bool listed = true;
};

// Thread-safe. Owns two threads: one keeps the lease alive, one watches the members (and calls
// `on_members`). Both reconnect on their own, with backoff, when etcd goes away and comes back.
class EtcdCluster {
 public:
  // Connects, grants a lease, registers this node on it, reads the members and starts watching
  // them and keeping the lease alive. `on_members` gets the full member list, sorted by id, each
  // time it changes; the first call (the initial list, including this node) comes soon after
  // Start returns. It is called from the watching thread, one call at a time; it must not block
  // and must not call Leave() or AbandonForTest().
  // Errors: UNAVAILABLE when etcd cannot be reached within rpc_timeout; ALREADY_EXISTS when
  // another live node holds `node_id`; INVALID_ARGUMENT for an empty endpoint or node id.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      EtcdOptions options, std::function<void(const std::vector<Member>&)> on_members);

  ~EtcdCluster();  // Leave()
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // The members as last read or watched, sorted by id.
  std::vector<Member> members() const;

  // Whether this node's lease is known to be alive: false from the moment a keep-alive fails
  // or etcd cannot be reached until a keep-alive succeeds again. False for good once the lease
  // expired, which is when etcd says so or when the lease's TTL ran out since the last
  // confirmed keep-alive (the others may have seen it expire): the node must then stop serving
  // and call Rejoin(). Never blocks.
  bool healthy() const;

  // The current lease (changes on Rejoin()).
  int64_t lease_id() const;

  // Claims `partition` for this node: creates /massa/<cluster>/claims/<partition> on this
  // node's lease only if it does not exist. Returns the claim's fencing token (the key's create
  // revision: a later claim of any partition has a larger one); claiming a partition this node
  // already holds returns its existing token. FAILED_PRECONDITION naming the holder when another
  // node holds it, or when this node's lease expired or it left; UNAVAILABLE when etcd does not
  // answer within rpc_timeout (the claim may then have been made: Holder() tells).
  [[nodiscard]] absl::StatusOr<int64_t> Claim(uint32_t partition);

  // Deletes this node's claim of `partition` if it holds it; OK when it holds nothing.
  [[nodiscard]] absl::Status Release(uint32_t partition);

  // The cluster's partition count, recorded by its first node in /massa/<cluster>/partitions
  // (no lease: it outlives every node). OK when `count` is the recorded one or this node
  // records it; FAILED_PRECONDITION naming both when the cluster has another (a node that
  // hashed with another count would place entities elsewhere); UNAVAILABLE when etcd does not
  // answer.
  [[nodiscard]] absl::Status RecordPartitions(uint32_t count);

  // The cluster's shared secret (/massa/<cluster>/secret, no lease): 32 random hex digits made
  // by the first node that asks, the same for every node after. UNAVAILABLE when etcd does not
  // answer.
  [[nodiscard]] absl::StatusOr<std::string> ClusterSecret();

  // The holder of `partition`'s claim ("" when free) and its token (0 when free), read from etcd.
  [[nodiscard]] absl::StatusOr<std::pair<std::string, int64_t>> Holder(uint32_t partition);

  // After the lease expired: revokes the old lease (if etcd still has it: its claims go), grants
  // a new one and registers this node again. FAILED_PRECONDITION while the lease has not
  // expired or after Leave(); ALREADY_EXISTS when another live node took this node id meanwhile;
  // UNAVAILABLE when etcd cannot be reached (try again).
  [[nodiscard]] absl::Status Rejoin();

  // Lists this node among the members (true) or withdraws it (false: deletes its member key,
  // while its lease and claims stay, so that it can hand its partitions over before it goes,
  // or while its function is down). A withdrawn node stays withdrawn across Rejoin().
  // Idempotent. FAILED_PRECONDITION after Leave() or while the lease is expired (for true);
  // UNAVAILABLE when etcd does not answer.
  [[nodiscard]] absl::Status SetMember(bool member);

  // Stops keeping the lease alive and watching, and revokes the lease: this node's membership
  // and claims go at once. Idempotent.
  void Leave();

  // For tests: stops keep-alives and watching WITHOUT revoking, which is what a crash or a
  // freeze looks like to the others: the keys go when the TTL runs out. Then like Leave().
  void AbandonForTest();

 private:
  struct Impl;
  // Creates `key` = `value` (no lease) unless it exists; returns the key's value either way.
  absl::StatusOr<std::string> CreateOrRead(const std::string& key, const std::string& value);
  explicit EtcdCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa::cluster
