// Forwarding between the nodes of a cluster (docs/cluster.md): the Peer service a node serves
// to the others (it runs a forwarded command through the node's own router), and the client
// that sends a command to another node. One command per call, carrying what the command's
// owner needs to run it as if it had arrived there: the remaining deadline, the hop count, the
// call chain, the idempotency key and the address.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"

#include "massa/entity/dispatcher.h"

namespace massa {
namespace rpc {
class CqLoop;
class LoopService;
}  // namespace rpc

namespace cluster {

// The metadata of an UNAVAILABLE answer from a node that does not own the entity: the peer
// address of the owner it knows, where the sender retries once.
inline constexpr char kOwnerHintMetadata[] = "massa-owner-hint";

// The cluster's shared secret, kept in etcd (EtcdCluster::ClusterSecret): every forwarded
// command carries it, and the Peer service refuses a call without it (PERMISSION_DENIED), so
// that a client of the public gRPC port cannot pass for a node. Empty until the node has read
// it: every call is refused until then. Thread-safe.
class PeerSecret {
 public:
  void Set(std::string secret);
  std::string Get() const;
  // Whether `offered` is the secret (compared in constant time); false while it is empty.
  bool Admits(std::string_view offered) const;

 private:
  mutable absl::Mutex mu_;
  std::string secret_ ABSL_GUARDED_BY(mu_);
};

// The Peer service: forwarded commands that carry `secret` go to `local` (the node's router),
// their results back.
std::unique_ptr<rpc::LoopService> NewPeerService(Dispatcher& local,
                                                 std::shared_ptr<const PeerSecret> secret);

// Thread-safe. One channel per peer address, kept for the client's life.
class PeerClients {
 public:
  // Every command sent carries `secret`.
  explicit PeerClients(std::shared_ptr<const PeerSecret> secret);
  ~PeerClients();  // only once no call is in flight (every callback has run)
  PeerClients(const PeerClients&) = delete;
  PeerClients& operator=(const PeerClients&) = delete;

  // Sends `command` to the node at `address` (host:port) and calls `done` once with its result:
  // the owner's answer, or UNAVAILABLE when the node cannot be reached, DEADLINE_EXCEEDED when
  // the command's deadline passed on the way.
  void Forward(const std::string& address, Command command, ResultCallback done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cluster
}  // namespace massa
