// Helpers shared by the entity tests: the test services' spec, request builders, a manual
// clock and a result catcher for asynchronous callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fakes/manual_clock.h"
#include "massa/common/clock.h"
#include "massa/entity/command.h"
#include "massa/entity/dispatcher.h"
#include "massa/protocol/user_function.h"

namespace massa::entity_test {

inline constexpr char kCounter[] = "massa.test.Counter";
inline constexpr char kSession[] = "massa.test.Session";
inline constexpr char kEcho[] = "massa.test.Echo";
inline constexpr char kSink[] = "massa.test.Sink";
inline constexpr char kRepeatedKey[] = "massa.test.RepeatedKey";
inline constexpr char kTwoKey[] = "massa.test.TwoKey";
inline constexpr char kCounterState[] = "massa.test.CounterState";

// The serialized FileDescriptorSet of test/fakes/test_services.proto and its imports.
const std::string& TestDescriptorSet();

ServiceSpec Service(std::string name, EntityKind kind, std::string state_type = "");

// A valid spec: Counter and Session (value entities), Echo and Sink (actions), TwoKey
// (value entity with a two-field key).
FunctionSpec ValidSpec();

// Serialized requests of the test services.
std::string IncrementRequest(const std::string& id, int64_t by);
std::string GetRequest(const std::string& id);
std::string Ping(const std::string& text);
std::string TwoKeyRequest(const std::string& tenant, int64_t user);

// Counter state and replies.
TypedValue CounterState(int64_t value);
// The value of a CounterState; nullopt for no state; -1 for bytes that do not decode.
std::optional<int64_t> CounterValueOf(const std::optional<TypedValue>& state);
std::string CounterValue(int64_t value);
int64_t ParseCounterValue(const std::string& bytes);
std::string ParsePing(const std::string& bytes);

// Outcome builders.
Outcome ReplyOutcome(std::string payload);
Outcome FailureOutcome(absl::Status status);

Command MakeCommand(std::string service, std::string method, std::string payload);

using ::massa::testing::ManualClock;

// Catches the result of one command. The callback may outlive the catcher.
class ResultCatcher {
 public:
  ResultCatcher();
  ResultCallback Callback();
  bool has_result() const;
  // Waits for the result; nullopt if `timeout` passed first (a hang, reported by the caller).
  std::optional<CommandResult> Await(absl::Duration timeout = absl::Seconds(30)) const;

 private:
  struct State {
    mutable absl::Mutex mu;
    std::optional<CommandResult> result ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_;
};

}  // namespace massa::entity_test
