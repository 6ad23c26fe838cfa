// File: fakes/fake_function.h
//
// FakeFunction is a UserFunction for tests: the test registers a handler per service, and the
// fake records every call (the command and, for value entities, the state it was given),
// optionally completes calls on its own threads (like a real driver, whose callbacks come
// from a driver thread), can park calls until the test releases them, and measures how many
// calls for one entity were in progress at once.
//
// Example:
//   massa::testing::FakeFunction function;
//   function.OnValueEntity("example.Counter",
//       [](const Command& command, const std::optional<TypedValue>& state)
//           -> absl::StatusOr<Outcome> { ... });
//   function.Hold();                    // calls from now on are parked
//   runtime.Submit(...);                // the call reaches the function and waits there
//   ASSERT_TRUE(function.AwaitParked(1));
//   function.Release();                 // handlers run, callbacks fire
//   EXPECT_EQ(function.max_concurrency_per_key(), 1);
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "massa/entity/command.h"
#include "massa/protocol/user_function.h"

namespace google::protobuf {
class FileDescriptor;
}  // namespace google::protobuf

namespace massa {
class ThreadPool;
}  // namespace massa

namespace massa::testing {

// A serialized google.protobuf.FileDescriptorSet holding `file` and everything it imports,
// every file after its dependencies (what `protoc --include_imports` writes).
std::string DescriptorSetOf(const google::protobuf::FileDescriptor& file);

// The state a CRDT entity's handler is given: the value's counter as decimal text (the fake
// gives no other part of a CRDT value).
inline constexpr std::string_view kCrdtCounterType = "massa.test.crdt-counter";

// Thread-safe.
class FakeFunction final : public UserFunction {
 public:
  // Returns the outcome, or a transport error (e.g. UNAVAILABLE: "the function is down").
  using ActionHandler = std::function<absl::StatusOr<Outcome>(const Command& command)>;
  using EntityHandler = std::function<absl::StatusOr<Outcome>(
      const Command& command, const std::optional<TypedValue>& state)>;

  // Event-sourced commands get the entity's sequence too.
  using EventSourcedHandler = std::function<absl::StatusOr<Outcome>(
      const Command& command, const std::optional<TypedValue>& state, uint64_t sequence)>;
  // Folds events into a state; nullopt = the initial state.
  using FoldHandler = std::function<absl::StatusOr<std::optional<TypedValue>>(
      const std::optional<TypedValue>& state, const std::vector<Event>& events)>;

  // One call as the fake received it.
  struct Call {
    Command command;  // command.request_type points into the runtime's catalog
    std::optional<TypedValue> state;  // entities: the state the runtime passed
    bool entity = false;              // HandleValueEntity/HandleEventSourced, or HandleAction
    bool event_sourced = false;       // HandleEventSourced
    uint64_t sequence = 0;            // event sourced: the sequence the runtime passed
  };

  // One Fold call as the fake received it.
  struct FoldCall {
    std::string service;
    std::string entity_key;
    std::optional<TypedValue> state;
    std::vector<Event> events;
  };

  // `async_threads`: size of the pool that runs handlers and callbacks in async mode.
  explicit FakeFunction(int async_threads = 4);
  // Parked calls are dropped without calling their callbacks: release them (and let the
  // runtime drain) before destroying the fake.
  ~FakeFunction() override;
  FakeFunction(const FakeFunction&) = delete;
  FakeFunction& operator=(const FakeFunction&) = delete;

  // What Discover returns; by default UNAVAILABLE.
  void SetSpec(absl::StatusOr<FunctionSpec> spec);

  // Handlers for every method of `service`, replacing earlier ones. A call to a service with
  // no handler of its kind gets an UNIMPLEMENTED transport error.
  void OnAction(std::string service, ActionHandler handler);
  void OnValueEntity(std::string service, EntityHandler handler);
  void OnEventSourced(std::string service, EventSourcedHandler handler);
  // Fold calls for `service` run `handler` (inline, or on the fake's threads in async mode;
  // they are never held). Without one, Fold answers UNIMPLEMENTED.
  void OnFold(std::string service, FoldHandler handler);
  std::vector<FoldCall> fold_calls() const;

  // Off (the default): handlers run and callbacks fire inline, on the caller's thread.
  // On: both happen on the fake's own threads, after Handle* has returned.
  void SetAsync(bool async);

  // From now on, calls to `service` (to any service when empty) are recorded and parked: no
  // handler runs and no callback fires until Release or ReleaseOne.
  void Hold(std::string service = "");
  // Stops holding and runs the parked calls in arrival order.
  void Release();
  // Runs the oldest parked call and keeps holding. False when nothing is parked.
  bool ReleaseOne();
  size_t parked() const;
  // Waits until at least `n` calls are parked; false if `timeout` passed first.
  bool AwaitParked(size_t n, absl::Duration timeout = absl::Seconds(30)) const;

  // Every call received so far, in arrival order (parked ones included).
  std::vector<Call> calls() const;
  // The calls to one service, in arrival order.
  std::vector<Call> CallsTo(const std::string& service) const;
  size_t call_count() const;
  // Waits until at least `n` calls have arrived; false if `timeout` passed first.
  bool AwaitCalls(size_t n, absl::Duration timeout = absl::Seconds(30)) const;
  // Waits until at least `n` calls have been answered (callback fired and returned).
  bool AwaitCompleted(size_t n, absl::Duration timeout = absl::Seconds(30)) const;
  int discover_calls() const;

  // The most value-entity calls for one (service, entity key) that were in progress at once.
  // A call is in progress from its arrival until its outcome is handed to the callback.
  int max_concurrency_per_key() const;
  // The most calls (of any kind and key) in progress at once.
  int max_concurrency() const;

  // UserFunction.
  absl::StatusOr<FunctionSpec> Discover(std::chrono::milliseconds timeout) override;
  void HandleAction(const Command& command, OutcomeCallback done) override;
  // CRDT commands go to the service's OnValueEntity handler, with no state.
  void HandleCrdt(const Command& command, const crdt::Value& value, OutcomeCallback done) override;
  void HandleValueEntity(const Command& command, const std::optional<TypedValue>& state,
                         OutcomeCallback done) override;
  void HandleEventSourced(const Command& command, const std::optional<TypedValue>& state,
                          uint64_t sequence, OutcomeCallback done) override;
  void Fold(const std::string& service, const std::string& entity_key,
            const std::optional<TypedValue>& state, const std::vector<Event>& events,
            FoldCallback done) override;

 private:
  struct Pending {
    Call call;
    std::string concurrency_key;  // empty for actions
    OutcomeCallback done;
  };

  void Accept(Call call, OutcomeCallback done);
  void Start(std::unique_ptr<Pending> pending);
  void Run(std::unique_ptr<Pending> pending);

  mutable absl::Mutex mu_;
  absl::StatusOr<FunctionSpec> spec_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ActionHandler> actions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, EntityHandler> entities_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, EventSourcedHandler> event_sourced_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, FoldHandler> folds_ ABSL_GUARDED_BY(mu_);
  std::vector<FoldCall> fold_calls_ ABSL_GUARDED_BY(mu_);
  bool async_ ABSL_GUARDED_BY(mu_) = false;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  std::string hold_service_ ABSL_GUARDED_BY(mu_);
  std::deque<std::unique_ptr<Pending>> parked_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  size_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  int discover_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> in_progress_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int max_per_key_ ABSL_GUARDED_BY(mu_) = 0;
  int max_running_ ABSL_GUARDED_BY(mu_) = 0;

  // Last member: destroyed (and joined) first, while the state above is still alive.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace massa::testing
