#include "entity/test_util.h"

#include <utility>

#include "fakes/fake_function.h"
#include "test/fakes/test_services.pb.h"

namespace massa::entity_test {

const std::string& TestDescriptorSet() {
  static const std::string* set = new std::string(
      testing::DescriptorSetOf(*massa::test::CounterState::descriptor()->file()));
  return *set;
}

ServiceSpec Service(std::string name, EntityKind kind, std::string state_type) {
  ServiceSpec spec;
  spec.name = std::move(name);
  spec.kind = kind;
  spec.state_type = std::move(state_type);
  return spec;
}

FunctionSpec ValidSpec() {
  FunctionSpec spec;
  spec.descriptor_set = TestDescriptorSet();
  spec.function_name = "test-function";
  spec.sdk = "fake 0";
  spec.services = {
      Service(kCounter, EntityKind::kValueEntity, kCounterState),
      Service(kSession, EntityKind::kValueEntity),
      Service(kEcho, EntityKind::kAction),
      Service(kSink, EntityKind::kAction),
      Service(kTwoKey, EntityKind::kValueEntity),
  };
  return spec;
}

std::string IncrementRequest(const std::string& id, int64_t by) {
  massa::test::IncrementRequest request;
  request.set_id(id);
  request.set_by(by);
  return request.SerializeAsString();
}

std::string GetRequest(const std::string& id) {
  massa::test::GetRequest request;
  request.set_id(id);
  return request.SerializeAsString();
}

std::string Ping(const std::string& text) {
  massa::test::Ping ping;
  ping.set_text(text);
  return ping.SerializeAsString();
}

std::string TwoKeyRequest(const std::string& tenant, int64_t user) {
  massa::test::TwoKeyRequest request;
  request.set_tenant(tenant);
  request.set_user(user);
  request.set_note("ignored");
  return request.SerializeAsString();
}

TypedValue CounterState(int64_t value) {
  massa::test::CounterState state;
  state.set_value(value);
  return TypedValue{kCounterState, state.SerializeAsString()};
}

std::optional<int64_t> CounterValueOf(const std::optional<TypedValue>& state) {
  if (!state.has_value()) return std::nullopt;
  massa::test::CounterState parsed;
  if (state->type != kCounterState || !parsed.ParseFromString(state->bytes)) return -1;
  return parsed.value();
}

std::string CounterValue(int64_t value) {
  massa::test::CounterValue reply;
  reply.set_value(value);
  return reply.SerializeAsString();
}

int64_t ParseCounterValue(const std::string& bytes) {
  massa::test::CounterValue reply;
  if (!reply.ParseFromString(bytes)) return -1;
  return reply.value();
}

std::string ParsePing(const std::string& bytes) {
  massa::test::Ping ping;
  if (!ping.ParseFromString(bytes)) return "<does not decode>";
  return ping.text();
}

Outcome ReplyOutcome(std::string payload) {
  Outcome outcome;
  outcome.result = Reply{std::move(payload), {}};
  return outcome;
}

Outcome FailureOutcome(absl::Status status) {
  Outcome outcome;
  outcome.result = std::move(status);
  return outcome;
}

Command MakeCommand(std::string service, std::string method, std::string payload) {
  Command command;
  command.service = std::move(service);
  command.method = std::move(method);
  command.payload = std::move(payload);
  return command;
}

ResultCatcher::ResultCatcher() : state_(std::make_shared<State>()) {}

ResultCallback ResultCatcher::Callback() {
  return [state = state_](CommandResult result) {
    absl::MutexLock lock(&state->mu);
    state->result = std::move(result);
  };
}

bool ResultCatcher::has_result() const {
  absl::MutexLock lock(&state_->mu);
  return state_->result.has_value();
}

std::optional<CommandResult> ResultCatcher::Await(absl::Duration timeout) const {
  absl::MutexLock lock(&state_->mu);
  State* state = state_.get();
  auto ready = [state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
    return state->result.has_value();
  };
  if (!state_->mu.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
  return state_->result;
}

}  // namespace massa::entity_test
