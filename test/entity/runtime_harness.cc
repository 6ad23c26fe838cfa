#include "entity/runtime_harness.h"

#include <utility>

#include "entity/state_codec.h"
#include "test/fakes/test_services.pb.h"

namespace massa::entity_test {

absl::StatusOr<Outcome> CounterHandler(const Command& command,
                                       const std::optional<TypedValue>& state) {
  int64_t value = CounterValueOf(state).value_or(0);
  Outcome outcome;
  if (command.method == "Increment") {
    massa::test::IncrementRequest request;
    if (!request.ParseFromString(command.payload)) {
      return FailureOutcome(absl::InvalidArgumentError("bad IncrementRequest"));
    }
    value += request.by();
    outcome.state_update = StateUpdate{CounterState(value)};
  } else if (command.method == "Delete") {
    value = 0;
    outcome.state_update = StateUpdate{std::nullopt};
  }
  outcome.result = Reply{CounterValue(value), {}};
  return outcome;
}

RuntimeOptions RuntimeHarness::Options() {
  RuntimeOptions options;
  options.sweep_interval = std::chrono::milliseconds(0);
  options.expiry_sweep_interval = std::chrono::milliseconds(0);
  options.outbox.scan_interval = std::chrono::milliseconds(0);  // tests call Scan
  options.timers.tick = std::chrono::milliseconds(0);           // tests call FireDue
  options.default_passivation_timeout = std::chrono::seconds(10);
  return options;
}

void RuntimeHarness::Start(RuntimeOptions options, FunctionSpec spec) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(std::move(spec));
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  catalog_ = *std::move(catalog);
  function_.OnValueEntity(kCounter, CounterHandler);
  runtime_ = std::make_unique<EntityRuntime>(options, function_, store_, clock_);
  router_ = std::make_unique<Router>(*catalog_, *runtime_);
  runtime_->SetDispatcher(router_.get());
  runtime_->SetTargetCheck([this](std::string_view service, std::string_view method,
                                  std::string_view type) {
    return router_->CheckTarget(service, method, type);
  });
  runtime_->outbox().SetSubscribers(
      [this](std::string_view channel) { return router_->SubscribersOf(channel); });
  runtime_->StartBackground();
}

void RuntimeHarness::TearDown() {
  if (runtime_ == nullptr) return;
  function_.Release();
  store_.Heal();
  store_.ReleaseWrites();
  EXPECT_TRUE(runtime_->Drain(std::chrono::seconds(30))) << runtime_->in_flight()
                                                         << " commands never answered";
}

ResultCatcher RuntimeHarness::Send(Command command) {
  ResultCatcher catcher;
  router_->Dispatch(std::move(command), catcher.Callback());
  return catcher;
}

CommandResult RuntimeHarness::Call(Command command) {
  std::string what = command.service + "/" + command.method;
  std::optional<CommandResult> result = Send(std::move(command)).Await();
  if (!result.has_value()) {
    ADD_FAILURE() << what << ": no result";
    return CommandResult{absl::DeadlineExceededError("test: no result"), {}, {}};
  }
  return *std::move(result);
}

CommandResult RuntimeHarness::Increment(const std::string& id, int64_t by) {
  return Call(MakeCommand(kCounter, "Increment", IncrementRequest(id, by)));
}

int64_t RuntimeHarness::Get(const std::string& id) {
  CommandResult result = Call(MakeCommand(kCounter, "Get", GetRequest(id)));
  if (!result.status.ok()) return -1;
  return ParseCounterValue(result.payload);
}

std::optional<int64_t> RuntimeHarness::Stored(const std::string& id) {
  absl::StatusOr<std::optional<std::string>> bytes = store_.GetValue(kCounter, id);
  if (!bytes.ok()) {
    ADD_FAILURE() << bytes.status();
    return -1;
  }
  if (!bytes->has_value()) return std::nullopt;
  absl::StatusOr<TypedValue> state = DecodeState(**bytes);
  if (!state.ok()) {
    ADD_FAILURE() << state.status();
    return -1;
  }
  return CounterValueOf(*state);
}

void RuntimeHarness::Store(const std::string& id, int64_t value) {
  store::WriteBatch batch;
  batch.Put(kCounter, id, EncodeState(CounterState(value)));
  std::optional<absl::Status> written;
  store_.Write(std::move(batch), [&](absl::Status status) { written = std::move(status); });
  ASSERT_TRUE(written.has_value() && written->ok());  // the memory store writes inline
}

}  // namespace massa::entity_test
