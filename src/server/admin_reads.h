// Read-only admin endpoints over what the store keeps, for operators and tests:
//   GET /v1/entities/{entity_type}/{key}/events?from=1&limit=100
//       one entity's journal: last sequence, snapshot sequence, events from `from`
//   GET /v1/entity-types/{entity_type}/events?from=1&limit=100
//       the entity type's stream of events of all its entities, from offset `from`
//   GET /v1/entities/{entity_type}/{key}/timers
//       one entity's timers (an action's: /v1/entities/{service}//timers)
//   GET /v1/timers?limit=100
//       the timers due next that this node fires (in a cluster: those of its partitions),
//       soonest first
//   GET /v1/outbox?limit=100
//       the messages waiting for delivery (attempts, last error, next attempt) and the
//       outbox's counters (in a cluster: those of this node's partitions)
// Path segments are percent-decoded (a key with '/' is sent as %2F). Payloads are rendered as
// JSON with the function's descriptors, or as base64 when their type is unknown.
#pragma once

#include <string_view>

#include "net/http_server.h"

namespace massa {

class Catalog;
class Outbox;
class TimerScheduler;
namespace store {
class Store;
}  // namespace store

struct AdminReads {
  store::Store& store;
  const Catalog& catalog;
  const Outbox& outbox;
  const TimerScheduler& timers;
};

// Whether `path` (without the query) is one of these endpoints.
bool IsAdminReadPath(std::string_view path);

// The response for an endpoint's `path` and `query`. Reads the store, which may block on disk
// or the network: call it on a thread of its own, not on a server's I/O thread.
HttpResponse AdminReadEndpoint(const AdminReads& reads, std::string_view path,
                               std::string_view query);

}  // namespace massa
