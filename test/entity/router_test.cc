// Router: resolution, request checks and the hop limit, in front of the real runtime.

#include "entity/router.h"

#include <string>

#include "entity/runtime_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::entity_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class RouterTest : public RuntimeHarness {
 protected:
  void SetUp() override { Start(); }
};

std::string MessageOf(const CommandResult& result) { return std::string(result.status.message()); }

TEST_F(RouterTest, UnknownServiceIsUnimplemented) {
  CommandResult result = Call(MakeCommand("massa.test.Nope", "Get", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(MessageOf(result), HasSubstr("'massa.test.Nope'"));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, UnknownMethodIsUnimplemented) {
  CommandResult result = Call(MakeCommand(kCounter, "Reset", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("'Reset'"), HasSubstr(kCounter)));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, MissingKeyIsInvalidArgument) {
  CommandResult result = Call(MakeCommand(kCounter, "Increment", IncrementRequest("", 1)));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(result),
              AllOf(HasSubstr("/massa.test.Counter/Increment"), HasSubstr("'id'")));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, MalformedRequestIsInvalidArgument) {
  CommandResult result =
      Call(MakeCommand(kCounter, "Increment", std::string("\x0a\x05" "ab", 4)));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("/massa.test.Counter/Increment"),
                                       HasSubstr("does not decode")));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, MalformedActionRequestIsInvalidArgument) {
  CommandResult result = Call(MakeCommand(kEcho, "Say", std::string("\x0a\x05" "ab", 4)));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, StreamingMethodIsUnimplemented) {
  CommandResult result = Call(MakeCommand(kCounter, "Watch", GetRequest("a")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(MessageOf(result), AllOf(HasSubstr("/massa.test.Counter/Watch"),
                                       HasSubstr("streaming")));
  EXPECT_EQ(function_.call_count(), 0u);
}

TEST_F(RouterTest, HopLimit) {
  Command over = MakeCommand(kCounter, "Get", GetRequest("a"));
  over.hops = Router::kMaxHops + 1;
  CommandResult result = Call(over);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(result), HasSubstr("/massa.test.Counter/Get"));
  EXPECT_EQ(function_.call_count(), 0u);

  Command at_limit = MakeCommand(kCounter, "Get", GetRequest("a"));
  at_limit.hops = Router::kMaxHops;
  EXPECT_TRUE(Call(at_limit).status.ok());
  EXPECT_EQ(function_.call_count(), 1u);
}

TEST_F(RouterTest, RoutedCommandCarriesKeyAndRequestType) {
  ASSERT_TRUE(Increment("c-1", 2).status.ok());
  function_.OnValueEntity(kTwoKey, [](const Command&, const std::optional<TypedValue>&) {
    return ReplyOutcome(Ping("ok"));
  });
  ASSERT_TRUE(Call(MakeCommand(kTwoKey, "Do", TwoKeyRequest("acme", 42))).status.ok());
  std::vector<testing::FakeFunction::Call> calls = function_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[0].entity);
  EXPECT_EQ(calls[0].command.entity_key, "c-1");
  EXPECT_EQ(calls[0].command.request_type, "massa.test.IncrementRequest");
  EXPECT_EQ(calls[0].command.payload, IncrementRequest("c-1", 2));
  EXPECT_EQ(calls[1].command.entity_key, "acme/42");
  EXPECT_EQ(calls[1].command.request_type, "massa.test.TwoKeyRequest");
}

TEST_F(RouterTest, ActionHasNoKey) {
  function_.OnAction(kEcho, [](const Command& command) { return ReplyOutcome(command.payload); });
  CommandResult result = Call(MakeCommand(kEcho, "Say", Ping("hi")));
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(ParsePing(result.payload), "hi");
  std::vector<testing::FakeFunction::Call> calls = function_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].entity);
  EXPECT_EQ(calls[0].command.entity_key, "");
  EXPECT_EQ(calls[0].command.request_type, "massa.test.Ping");
}

}  // namespace
}  // namespace massa::entity_test

namespace massa::entity_test {
namespace {

TEST_F(RouterTest, ACallToAnEntityWaitingInTheChainIsAbortedNamingTheChain) {
  Command call = MakeCommand(kCounter, "Increment", IncrementRequest("a", 1));
  call.call_chain = {"massa.test.Counter/a", "massa.test.Other/b"};
  CommandResult result = Call(std::move(call));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(MessageOf(result),
              HasSubstr("massa.test.Counter/a -> massa.test.Other/b -> massa.test.Counter/a"));
  EXPECT_EQ(function_.call_count(), 0u);
  EXPECT_EQ(Stored("a"), std::nullopt);
}

TEST_F(RouterTest, AnEntityOutsideTheChainIsCalledAndSeesItselfWaiting) {
  Command call = MakeCommand(kCounter, "Increment", IncrementRequest("b", 1));
  call.call_chain = {"massa.test.Counter/a"};
  ASSERT_TRUE(Call(std::move(call)).status.ok());
  const auto calls = function_.CallsTo(kCounter);
  ASSERT_EQ(calls.size(), 1u);
  // While its handler runs, the entity is in the chain of the calls it makes.
  EXPECT_THAT(calls[0].command.call_chain,
              ::testing::ElementsAre("massa.test.Counter/a", "massa.test.Counter/b"));
}

TEST_F(RouterTest, AForwardCarriesTheChainSoItCannotCloseACycle) {
  // b, called by a (which waits), forwards to a: a could never run it.
  function_.OnValueEntity(kCounter, [](const Command& command,
                                       const std::optional<TypedValue>& state) {
    if (command.entity_key != "b") return CounterHandler(command, state);
    Outcome outcome;
    outcome.result = Forward{kCounter, "Get", GetRequest("a"), {}};
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  Command call = MakeCommand(kCounter, "Get", GetRequest("b"));
  call.call_chain = {"massa.test.Counter/a"};
  CommandResult result = Call(std::move(call));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kAborted) << result.status;
  EXPECT_THAT(MessageOf(result), HasSubstr("massa.test.Counter/a -> massa.test.Counter/a"));
}

TEST_F(RouterTest, AFailingForwardTargetsErrorReachesTheCaller) {
  function_.OnValueEntity(kCounter, [](const Command& command,
                                       const std::optional<TypedValue>& state) {
    if (command.entity_key == "broken") {
      return absl::StatusOr<Outcome>(
          FailureOutcome(absl::FailedPreconditionError("account broken is frozen")));
    }
    if (command.entity_key != "b") return CounterHandler(command, state);
    Outcome outcome;
    outcome.result = Pipe{kCounter, "Get", GetRequest("broken"), {}};
    return absl::StatusOr<Outcome>(std::move(outcome));
  });
  CommandResult result = Call(MakeCommand(kCounter, "Get", GetRequest("b")));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(result), HasSubstr("account broken is frozen"));
}

TEST_F(RouterTest, CallsNestedTooDeepAreRefused) {
  Command call = MakeCommand(kCounter, "Increment", IncrementRequest("x", 1));
  for (size_t i = 0; i < Router::kMaxCallDepth; ++i) {
    call.call_chain.push_back("massa.test.Counter/n" + std::to_string(i));
  }
  CommandResult result = Call(std::move(call));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(result), HasSubstr("nested more than 32 deep"));
}

}  // namespace
}  // namespace massa::entity_test
