// The session transport of the native protocol (1.1): a few long-lived Session.Connect streams
// to the function, each on its own connection, carrying many requests tagged by id and their
// answers in any order (proto/massa/protocol/v1/protocol.proto, "Session").
//
// Requests queue per stream while a write is in flight and go out together in the next
// message, so a busy stream sends few large messages and a quiet one sends each request at
// once. Memory is bounded: at most `max_in_flight` unanswered requests and `max_queued_bytes`
// unsent bytes per stream; beyond that Send answers RESOURCE_EXHAUSTED. A stream that breaks
// fails exactly the requests unanswered on it (UNAVAILABLE) and is reopened with backoff; one
// whose writes stall for longer than the call timeout (a function that stopped reading) is
// reset the same way.
//
// Internal to the native driver; exposed for its tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace massa::protocol::v1 {
class ProxyFrame;
class FunctionFrame;
class ActorCall;
class ActorCallResult;
}  // namespace massa::protocol::v1

namespace massa::rpc {
class CqLoop;
}  // namespace massa::rpc

namespace massa::native {

struct SessionOptions {
  std::string address;  // gRPC target: "unix:/path" or "host:port"
  int streams = 2;      // connections to the function, each carrying one stream
  uint32_t max_in_flight = 1024;              // unanswered requests per stream
  size_t max_queued_bytes = 32 << 20;         // requests not yet handed to gRPC, per stream
  std::chrono::milliseconds call_timeout{30'000};  // per request, bounded by its deadline
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{1'000};
  std::string proxy_version;  // sent in SessionOpen, for the function's logs
};

// The answer frame to one request, or why there is none: UNAVAILABLE (no stream, or the stream
// broke), DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (too much queued), FAILED_PRECONDITION (the
// function refused the protocol version), or the status of a FrameError the function sent.
using FrameCallback = absl::AnyInvocable<void(absl::StatusOr<protocol::v1::FunctionFrame>) &&>;

// What the sender of a request attaches to it, for the calls the function makes while it
// handles the request (the actor mesh); opaque to the transport.
struct RequestOrigin {
  virtual ~RequestOrigin() = default;
};

// Answers one ActorCall; thread-safe, may be called once, from any thread, also after the
// stream is gone (then it does nothing).
using CallReply = absl::AnyInvocable<void(protocol::v1::ActorCallResult) &&>;
// Runs an ActorCall the function made while handling the request sent with `origin` (null when
// the request had none); must not block, and must call `reply` once.
using CallHandler = absl::AnyInvocable<void(std::shared_ptr<const RequestOrigin> origin,
                                            protocol::v1::ActorCall call, CallReply reply)>;

// Thread-safe. Callbacks run on the loop's threads (or inline in Send when it fails at once)
// and must not block.
class SessionTransport {
 public:
  // The streams run on `loop`'s completion queues (stream i on queue i % loop.size()); the
  // loop must be started and outlive the transport.
  SessionTransport(SessionOptions options, rpc::CqLoop& loop);
  ~SessionTransport();  // Shutdown()
  SessionTransport(const SessionTransport&) = delete;
  SessionTransport& operator=(const SessionTransport&) = delete;

  // Where the function's calls go (set before Start); without it they fail with UNIMPLEMENTED.
  void SetCallHandler(CallHandler handler);

  // Opens the streams. Requests sent before the first stream is accepted wait for it.
  void Start();

  // Sends `frame` (its body set; the id is assigned here) on the open stream with the fewest
  // requests in flight, and calls `done` once with the answer. `deadline` (steady clock) is
  // capped at call_timeout from now.
  void Send(protocol::v1::ProxyFrame frame, std::chrono::steady_clock::time_point deadline,
            FrameCallback done, std::shared_ptr<const RequestOrigin> origin = nullptr);

  // Whether some stream is open (for readiness). Never blocks.
  bool Connected() const;
  // How many streams are open (accepted by the function). Never blocks.
  size_t OpenStreams() const;

  // Per stream: requests in flight (for tests and metrics).
  std::vector<size_t> InFlight() const;

  // Closes every stream: requests in flight fail with UNAVAILABLE, later Sends too. Returns
  // once no callback will run any more and no operation of the transport is pending on the
  // loop. Idempotent.
  void Shutdown();

 private:
  class Stream;
  const SessionOptions options_;
  CallHandler call_handler_;  // set before Start, read by the streams
  std::vector<std::unique_ptr<Stream>> streams_;
};

}  // namespace massa::native
