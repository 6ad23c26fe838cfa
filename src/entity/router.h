// The router: resolves a Command's service and method, checks the request and extracts the
// entity key, then hands the command to the entity runtime. Local only for now; the cluster
// issue adds placement and forwarding to the owner here.
#pragma once

#include <atomic>
#include <string_view>

#include <vector>

#include "absl/status/status.h"
#include "entity/outbox.h"
#include "massa/entity/dispatcher.h"

namespace massa {

class Catalog;
class EntityRuntime;
struct MethodInfo;

// Where an entity's commands run in a cluster (src/cluster/node.h): on this node, or on the
// node that owns the entity's partition, which the command is forwarded to.
class Placement {
 public:
  virtual ~Placement() = default;
  // For `command`, routed (its entity key known) to an entity of `entity_type`: when another
  // node owns the entity (or none does yet), takes the command and `done` and answers through
  // `done`, returning true; when this node owns it, returns false (the router runs it here).
  virtual bool TakeRemote(std::string_view entity_type, Command& command, ResultCallback& done) = 0;
};

// Thread-safe.
class Router final : public Dispatcher {
 public:
  static constexpr uint32_t kMaxHops = 32;
  static constexpr size_t kMaxCallDepth = 32;  // entities waiting in one chain of calls
  static constexpr size_t kMaxActorName = 1024;
  // The metadata (gRPC) or header (HTTP) that addresses a command to an entity by key.
  static constexpr std::string_view kEntityKeyHeader = "massa-entity-key";

  Router(const Catalog& catalog, EntityRuntime& runtime) : catalog_(&catalog), runtime_(runtime) {}

  // Serves `catalog` from now on (a Spawn SDK registered again). Commands already routed keep
  // what they resolved: the old catalog must outlive them (the server keeps every catalog).
  void SetCatalog(const Catalog& catalog) { catalog_.store(&catalog, std::memory_order_release); }
  const Catalog& catalog() const { return *catalog_.load(std::memory_order_acquire); }

  // In a cluster: entity commands (and spawns) whose entity another node owns go there. Set
  // before the first Dispatch; must outlive the router.
  void SetPlacement(Placement* placement) { placement_ = placement; }

  // Errors (through `done`): UNIMPLEMENTED for an unknown service or method or a streaming
  // method; INVALID_ARGUMENT for a request that does not decode or lacks its entity key (or,
  // addressed to an entity, names another), or for a malformed `idempotency-key`;
  // FAILED_PRECONDITION for a chain of more than kMaxHops forwards and side effects, or of
  // calls nested more than kMaxCallDepth deep; ABORTED, naming the chain, for a call to an
  // entity that is waiting for its reply (Command::call_chain), which would never be answered,
  // unless the method is read-only (then the command is marked reentrant). Actors: NOT_FOUND for
  // a named actor's service addressed to another key (and, from the runtime, for a spawned
  // actor never spawned); INVALID_ARGUMENT for a command to an actor whose request has no key
  // fields and that is not addressed (`massa-entity-key`). A Command::spawn spawns; it fails
  // with FAILED_PRECONDITION for a service that does not spawn actors.
  void Dispatch(Command command, ResultCallback done) override;

  // Whether `method` of `service` exists and takes `payload_type` (unchecked when empty):
  // what the runtime checks when a handler sets a timer (TargetCheck).
  absl::Status CheckTarget(std::string_view service, std::string_view method,
                           std::string_view payload_type) const;

  // The subscribers of `channel`, as the outbox delivers broadcasts to them.
  std::vector<ChannelSubscriber> SubscribersOf(std::string_view channel) const;

 private:
  absl::Status CheckCallChain(Command& command, const MethodInfo& method) const;
  // Moves a `massa-entity-key` metadata entry into the command's address.
  static void TakeAddress(Command& command);
  void Spawn(Command command, ResultCallback done);

  std::atomic<const Catalog*> catalog_;
  EntityRuntime& runtime_;
  Placement* placement_ = nullptr;
};

}  // namespace massa
