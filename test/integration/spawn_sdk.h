// A Spawn SDK for the tests: an HTTP server in the test process that plays the user-function
// side of Spawn's protocol v1 (POST /api/v1/actors/actions, binary protobuf), with the actors
// of the actor system "test-system" below, and the client helpers to register them with a
// sidecar and to invoke actors through it. Written from the protocol's facts
// (../shared/notes/protocols.md sections 1 and 5), with the wire habits of the real SDKs where
// an actor says so.
//
// Actors (every one registered with an ActorState, as real SDKs do; states are
// google.protobuf.Int64Value packed into an Any unless said otherwise):
//   counter   NAMED, stateful, tags {kind: counter}. init (counts; tag initialized=yes; noop),
//             add n (state += n; replies the total), slow (1 s, then add), fail (500 text/html,
//             the Python SDK's way), fail400 (400 empty, the Node SDK's way), garbage (200, not
//             protobuf), nocontext (200 without updated_context).
//   worker    UNNAMED template (ActorId.parent = its own name, the Node way); add.
//   pool      POOLED, max 2, stateless; echo, slow_echo (300 ms).
//   flow      NAMED, stateless; workflows: effects, scheduled (metadata delay_ms, default 1500),
//             broadcast, pipe, forward, pipe_fail; call_back (calls flow2.call_flow through the
//             sidecar, which calls flow.effects: a call cycle). A failed call through the
//             sidecar fails the action as the Node SDK does: 400, empty body.
//   flow2     NAMED, stateless; call_flow.
//   listener  NAMED, stateful; subscribed to "news" with a Channel (action on_news).
//   room      UNNAMED, stateful, deactivation 100 ms; subscribed to "news" the Python SDK's way
//             (a plain topic string in Metadata.channel_group); receive.
//   ticker    NAMED, stateful; timer action tick every 200 (ms, as SDKs send it); tick adds 1.
//   jsonish   NAMED, stateful, state a JSONType Any under the old package (the Node SDK's way);
//             set stores the payload, replies a Noop packed into `value`, with an empty workflow.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "google/protobuf/any.pb.h"
#include "integration/process.h"
#include "net/http_server.h"
#include "spawn/actors/actor.pb.h"
#include "spawn/actors/protocol.pb.h"

namespace massa::testing {

inline constexpr char kSpawnSystem[] = "test-system";
inline constexpr char kInt64TypeUrl[] = "type.googleapis.com/google.protobuf.Int64Value";
inline constexpr char kOldJsonTypeUrl[] = "type.googleapis.com/eigr.functions.protocol.JSONType";
inline constexpr char kOldNoopTypeUrl[] = "type.googleapis.com/eigr.functions.protocol.Noop";

// An Any packing google.protobuf.Int64Value `value`.
google::protobuf::Any Int64Any(int64_t value);
// The value of an Any packing Int64Value, or nullopt for anything else.
std::optional<int64_t> Int64Of(const google::protobuf::Any& any);
// An Any packing JSONType{content} under the old package name (the Node SDK's state).
google::protobuf::Any OldJsonAny(const std::string& content);

// What a sidecar sent to the SDK, as the SDK received it.
struct SpawnInvocationRecord {
  uint64_t seq = 0;                                // order of arrival, from 1
  std::chrono::steady_clock::time_point received;  // when it arrived
  std::string actor;                               // ActorId.name
  std::string system;                              // ActorId.system
  std::string parent;                              // ActorId.parent
  std::string action;
  bool noop = false;                            // the noop field was set
  std::optional<google::protobuf::Any> value;   // the value field, when set
  bool has_context = false;                     // current_context was set
  std::optional<google::protobuf::Any> state;   // current_context.state, when set
  std::map<std::string, std::string> tags;      // current_context.tags
  std::map<std::string, std::string> metadata;  // current_context.metadata
  std::string caller;                           // ActorInvocation.caller.name ("" when absent)
  std::string caller_system;                    // ActorInvocation.caller.system
  std::string context_caller;                   // current_context.caller.name
  std::string self;                             // current_context.self.name

  // The payload as an Int64Value, when it is one.
  std::optional<int64_t> value_int64() const;
  std::optional<int64_t> state_int64() const;
};

// How to build an InvocationRequest (see MakeInvocationRequest).
struct SpawnInvokeOptions {
  std::optional<int64_t> value;              // an Int64Value payload
  std::optional<google::protobuf::Any> any;  // any other payload (wins over `value`)
  bool no_payload = false;  // neither value nor noop (the Node SDK may do this); else noop
  std::string parent;       // the actor's ActorId.parent (unnamed instances)
  std::string system = kSpawnSystem;  // InvocationRequest.system.name and actor.id.system
  bool async = false;
  int64_t scheduled_to = 0;  // epoch ms
  std::string register_ref;
  std::string caller;  // caller ActorId.name in test-system; "" = no caller
  std::map<std::string, std::string> metadata;
  std::string content_type = "application/octet-stream";  // of the HTTP request
};

::spawn::InvocationRequest MakeInvocationRequest(const std::string& actor,
                                                 const std::string& action,
                                                 const SpawnInvokeOptions& options = {});

// A sidecar's answer to /invoke.
struct SpawnInvokeResult {
  int http_status = 0;   // 0: no answer
  bool decoded = false;  // the body parsed as an InvocationResponse
  ::spawn::InvocationResponse response;
  std::string body;
  std::string content_type;

  bool ok() const {
    return http_status == 200 && decoded && response.status().status() == ::spawn::OK;
  }
  bool error() const {
    return http_status == 500 && decoded && response.status().status() == ::spawn::ERROR;
  }
  const std::string& message() const { return response.status().message(); }
  // The reply as an Int64Value, when it is one.
  std::optional<int64_t> value_int64() const;
  // For the log of a failed assertion.
  std::string Describe() const;
};

// The Content-Type header of an HttpResult ("" when absent).
std::string ContentTypeOf(const HttpResult& result);
SpawnInvokeResult DecodeInvocationResponse(const HttpResult& result);

// POST /api/v1/system/<system>/actors/<actor>/invoke on 127.0.0.1:`spawn_port`.
SpawnInvokeResult SpawnInvoke(int spawn_port, const std::string& actor, const std::string& action,
                              const SpawnInvokeOptions& options = {});
// The same with a body of the caller's choosing.
SpawnInvokeResult SpawnInvokeRaw(int spawn_port, const std::string& actor, const std::string& body,
                                 const std::string& content_type = "application/octet-stream");

// The answer to POST /api/v1/system.
struct SpawnRegisterResult {
  int http_status = 0;
  bool decoded = false;
  ::spawn::RegistrationResponse response;
  std::string body;

  bool ok() const {
    return http_status == 200 && decoded && response.status().status() == ::spawn::OK;
  }
};

SpawnRegisterResult PostRegistration(int spawn_port, const std::string& body);

// The answer to POST /api/v1/system/<system>/actors/spawn[?revision=N].
struct SpawnSpawnResult {
  int http_status = 0;
  bool decoded = false;
  ::spawn::SpawnResponse response;
  std::string body;

  bool ok() const {
    return http_status == 200 && decoded && response.status().status() == ::spawn::OK;
  }
};

// Spawns unnamed instances `names` of template `parent`.
SpawnSpawnResult SpawnActors(int spawn_port, const std::vector<std::string>& names,
                             const std::string& parent, const std::string& query = "");

// The SDK's server. Thread-safe.
class SpawnSdk {
 public:
  // Starts serving on 127.0.0.1 (a port the kernel picks). nullptr when it cannot bind.
  static std::unique_ptr<SpawnSdk> Start();
  ~SpawnSdk();  // finishes the actions still running, then stops serving
  SpawnSdk(const SpawnSdk&) = delete;
  SpawnSdk& operator=(const SpawnSdk&) = delete;

  int port() const;
  // The sidecar's Spawn port, for the actions that call other actors (call_back, call_flow).
  void set_spawn_port(int port);

  // The RegistrationRequest of the actors above (system test-system), all but `room`: its
  // channel is in the Python SDK's encoding, which the message cannot hold (see
  // RegistrationBody).
  static ::spawn::RegistrationRequest Registration();
  // `request` serialized, followed by the registry entry of `room` written by hand, with
  // Metadata.channel_group as the plain string "news" (the Python SDK's encoding); protobuf
  // merges the repeated actor_system/registry fields, so the entry joins the registry.
  static std::string RegistrationBody(const ::spawn::RegistrationRequest& request);
  // Posts RegistrationBody(Registration()) to the sidecar on `spawn_port`.
  SpawnRegisterResult Register(int spawn_port) const;

  // Every invocation received, in order of arrival.
  std::vector<SpawnInvocationRecord> Invocations() const;
  // Those for ActorId.name `actor` and `action` ("" = any action).
  std::vector<SpawnInvocationRecord> Invocations(const std::string& actor,
                                                 const std::string& action = "") const;
  // How often `init` ran for ActorId.name `actor`.
  int init_count(const std::string& actor) const;
  // The most invocations of ActorId.name `actor` that ran at once.
  int max_overlap(const std::string& actor) const;
  // The most invocations of any instance of `pool` that ran at once.
  int pool_max_overlap() const;
  // Invocations of any instance of `pool` running now.
  int pool_in_flight() const;

 private:
  SpawnSdk() = default;
  void Handle(HttpRequest request, HttpResponder respond);
  // Runs the action of `invocation` on actor `type` (the registered actor: the name, or the
  // parent of an unnamed instance) and answers through Finish, now or from a thread.
  void Dispatch(const ::spawn::ActorInvocation& invocation, const std::string& type,
                HttpResponder respond);
  // Ends the invocation's overlap count and answers.
  void Finish(const ::spawn::ActorInvocation& invocation, const std::string& type,
              HttpResponse response, HttpResponder respond);
  // Runs `work` on a thread of the SDK after `delay` (cut short when the SDK stops).
  void Later(std::chrono::milliseconds delay, absl::AnyInvocable<void() &&> work);
  // A synchronous call through the sidecar, for call_back and call_flow.
  HttpResponse CallThrough(const ::spawn::ActorInvocation& invocation, const std::string& target,
                           const std::string& action, const std::string& caller);

  std::unique_ptr<HttpServer> server_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  int spawn_port_ = 0;
  uint64_t seq_ = 0;
  std::vector<SpawnInvocationRecord> log_;
  std::map<std::string, int> init_count_;
  std::map<std::string, int> in_flight_;    // by ActorId.name
  std::map<std::string, int> max_overlap_;  // by ActorId.name
  int pool_in_flight_ = 0;
  int pool_max_overlap_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace massa::testing
