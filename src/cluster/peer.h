// Forwarding between the nodes of a cluster (docs/cluster.md): the Peer service a node serves
// to the others (it runs a forwarded command through the node's own router), and the client
// that sends a command to another node. One command per call, carrying what the command's
// owner needs to run it as if it had arrived there: the remaining deadline, the hop count, the
// call chain, the idempotency key and the address.
#pragma once

#include <memory>
#include <string>

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

// The Peer service: forwarded commands go to `local` (the node's router), their results back.
std::unique_ptr<rpc::LoopService> NewPeerService(Dispatcher& local);

// Thread-safe. One channel per peer address, kept for the client's life.
class PeerClients {
 public:
  PeerClients();
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
