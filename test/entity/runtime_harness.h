// A fixture wiring the real catalog, router and entity runtime to a FakeFunction, a
// FaultInjectingStore over the memory store and a ManualClock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "entity/catalog.h"
#include "entity/entity_runtime.h"
#include "entity/router.h"
#include "entity/test_util.h"
#include "fakes/fake_function.h"
#include "fakes/fault_store.h"
#include "gtest/gtest.h"

namespace massa::entity_test {

// A Counter: Increment adds `by` and stores the sum, Get replies with it, Delete deletes it.
absl::StatusOr<Outcome> CounterHandler(const Command& command,
                                       const std::optional<TypedValue>& state);

class RuntimeHarness : public ::testing::Test {
 protected:
  // No sweeper thread: passivation only when a test calls PassivateIdle.
  static RuntimeOptions Options();

  // Builds the catalog from `spec` and starts the runtime; installs CounterHandler on Counter.
  void Start(RuntimeOptions options = Options(), FunctionSpec spec = ValidSpec());
  // Releases whatever is held and waits for every command to be answered.
  void TearDown() override;

  // Dispatches through the router and returns the result as soon as it is called.
  ResultCatcher Send(Command command);
  // Dispatches and waits for the result (a hang fails the test).
  CommandResult Call(Command command);

  CommandResult Increment(const std::string& id, int64_t by);
  // The counter's value as the function replies to Get; -1 when Get fails.
  int64_t Get(const std::string& id);

  // The Counter state in the store: nullopt when there is none.
  std::optional<int64_t> Stored(const std::string& id);
  // Writes a Counter state straight to the store, behind the runtime's back.
  void Store(const std::string& id, int64_t value);

  testing::FakeFunction function_;
  testing::FaultInjectingStore store_{store::NewMemoryStore()};
  ManualClock clock_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<EntityRuntime> runtime_;
  std::unique_ptr<Router> router_;
};

}  // namespace massa::entity_test
