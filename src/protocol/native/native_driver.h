// The native protocol driver: speaks Massa protocol 1.1 (proto/massa/protocol/v1) to a user
// function over gRPC, on TCP ("host:port") or a Unix domain socket ("unix:/path").
//
// Discovery is one unary call. Commands then travel over the session transport (session.h: a
// few long-lived streams, many commands each) when the function declares protocol 1.1, or as
// one unary RPC each for a 1.0 function.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "massa/protocol/user_function.h"

namespace massa {

namespace rpc {
class CqLoop;
}  // namespace rpc

struct NativeDriverOptions {
  std::string address;                             // "unix:/run/fn.sock" or "127.0.0.1:8080"
  std::chrono::milliseconds call_timeout{30'000};  // per command, bounded by its deadline
  int max_message_bytes = 4 << 20;
  int streams = 2;                 // session streams (connections) to a 1.1 function
  uint32_t max_in_flight = 1024;   // unanswered commands per stream
  bool force_unary = false;        // call a 1.1 function with unary RPCs too (benchmarks)
};

class NativeDriver final : public UserFunction {
 public:
  explicit NativeDriver(const NativeDriverOptions& options);
  ~NativeDriver() override;  // Shutdown()

  absl::StatusOr<FunctionSpec> Discover(std::chrono::milliseconds timeout) override;

  // After a successful Discover: opens the session streams on `loop`'s completion queues (or,
  // when `loop` is null, on one thread of the driver's own). The loop must be started and
  // outlive the driver. Commands before Start fail with UNAVAILABLE.
  void Start(rpc::CqLoop* loop);

  // The transport in use: "session" or "unary" (empty before Start).
  std::string transport() const;

  void HandleAction(const Command& command, OutcomeCallback done) override;
  void HandleCrdt(const Command& command, const crdt::Value& value, OutcomeCallback done) override;
  void HandleValueEntity(const Command& command, const std::optional<TypedValue>& state,
                         OutcomeCallback done) override;
  void HandleEventSourced(const Command& command, const std::optional<TypedValue>& state,
                          uint64_t sequence, OutcomeCallback done) override;
  void Fold(const std::string& service, const std::string& entity_key,
            const std::optional<TypedValue>& state, const std::vector<Event>& events,
            FoldCallback done) override;
  bool Reachable() override;
  void Shutdown() override;
  void SetCallHandler(CallHandler handler) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace massa
