// The Spawn driver's decoding of an SDK's reply to an invocation, with the SDKs' wire habits.
#include "protocol/spawn/invocation.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "gtest/gtest.h"
#include "spawn/actors/protocol.pb.h"

namespace massa::spawn {
namespace {

using ::testing::HasSubstr;

google::protobuf::Any AnyOf(const std::string& type, const std::string& bytes) {
  google::protobuf::Any any;
  any.set_type_url("type.googleapis.com/" + type);
  any.set_value(bytes);
  return any;
}

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

TEST(SpawnInvocationTest, AnInvocationAlwaysCarriesItsContextAndItsActorsIdentity) {
  Invocation invocation;
  invocation.system = "spawn-system";
  invocation.actor = "room-7";
  invocation.parent = "room";
  invocation.action = "post";
  invocation.payload = AnyOf("user.Note", "n").SerializeAsString();
  invocation.state = AnyOf("user.Room", "s").SerializeAsString();
  invocation.tags = {{"k", "v"}};
  invocation.metadata = {{"request-timeout", "5000"}};
  invocation.caller = "lobby";
  ::spawn::ActorInvocation sent;
  ASSERT_TRUE(sent.ParseFromString(EncodeInvocation(invocation)));
  EXPECT_EQ(sent.actor().name(), "room-7");
  EXPECT_EQ(sent.actor().system(), "spawn-system");
  EXPECT_EQ(sent.actor().parent(), "room");
  EXPECT_EQ(sent.action_name(), "post");
  EXPECT_EQ(sent.value().type_url(), "type.googleapis.com/user.Note");
  ASSERT_TRUE(sent.has_current_context());
  EXPECT_EQ(sent.current_context().state().value(), "s");
  EXPECT_EQ(sent.current_context().tags().at("k"), "v");
  EXPECT_EQ(sent.current_context().metadata().at("request-timeout"), "5000");
  EXPECT_EQ(sent.current_context().self().name(), "room-7");
  EXPECT_EQ(sent.current_context().caller().name(), "lobby");
  EXPECT_EQ(sent.caller().name(), "lobby");

  Invocation bare;
  bare.system = "spawn-system";
  bare.actor = "joe";
  bare.action = "get";
  ASSERT_TRUE(sent.ParseFromString(EncodeInvocation(bare)));
  EXPECT_TRUE(sent.has_noop()) << "no payload: the noop field";
  EXPECT_TRUE(sent.has_current_context()) << "always, even empty";
  EXPECT_FALSE(sent.current_context().has_state());
  EXPECT_FALSE(sent.has_caller());
}

TEST(SpawnInvocationTest, ReplyStateTagsAndAWholeWorkflow) {
  ::spawn::ActorInvocationResponse response;
  *response.mutable_value() = AnyOf("user.Reply", "r");
  *response.mutable_updated_context()->mutable_state() = AnyOf("user.State", "s");
  (*response.mutable_updated_context()->mutable_tags())["k"] = "v";
  ::spawn::InvocationRequest* effect =
      response.mutable_workflow()->add_effects()->mutable_request();
  effect->mutable_system()->set_name("spawn-system");
  effect->mutable_actor()->mutable_id()->set_name("bob");
  effect->set_action_name("hello");
  *effect->mutable_value() = AnyOf("user.Hi", "h");
  effect->set_async(true);
  effect->set_scheduled_to(1'800'000'000'000);
  (*effect->mutable_metadata())["trace"] = "t1";
  ::spawn::Broadcast* broadcast = response.mutable_workflow()->mutable_broadcast();
  broadcast->set_channel_group("news");
  broadcast->set_action_name("onNews");  // the Python SDK's legacy field
  *broadcast->mutable_value() = AnyOf("user.News", "n");
  response.mutable_workflow()->mutable_pipe()->set_actor("auditor");
  response.mutable_workflow()->mutable_pipe()->set_action_name("record");

  absl::StatusOr<InvocationResult> result = ParseInvocationResult(response.SerializeAsString());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reply, AnyOf("user.Reply", "r").SerializeAsString());
  EXPECT_EQ(result->state, AnyOf("user.State", "s").SerializeAsString());
  ASSERT_TRUE(result->tags.has_value());
  EXPECT_EQ(result->tags->at("k"), "v");
  ASSERT_EQ(result->effects.size(), 1u);
  EXPECT_EQ(result->effects[0].actor, "bob");
  EXPECT_EQ(result->effects[0].action, "hello");
  EXPECT_EQ(result->effects[0].scheduled_to_ms, 1'800'000'000'000);
  EXPECT_EQ(result->effects[0].metadata.at("trace"), "t1");
  ASSERT_TRUE(result->broadcast.has_value());
  EXPECT_EQ(result->broadcast->channel, "news");
  EXPECT_EQ(result->broadcast->action, "onNews");
  ASSERT_TRUE(result->routing.has_value());
  EXPECT_TRUE(result->routing->pipe);
  EXPECT_EQ(result->routing->actor, "auditor");
}

TEST(SpawnInvocationTest, NodeStyleNoopsAndAnEmptyWorkflow) {
  ::spawn::ActorInvocationResponse response;
  response.mutable_updated_context();         // no state: unchanged
  response.mutable_workflow();                // every Node reply carries an empty workflow
  *response.mutable_value() = AnyOf("eigr.functions.protocol.Noop", "");  // a Noop in `value`
  absl::StatusOr<InvocationResult> result = ParseInvocationResult(response.SerializeAsString());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->reply.has_value());
  EXPECT_FALSE(result->state.has_value());
  EXPECT_FALSE(result->tags.has_value());
  EXPECT_TRUE(result->effects.empty());
  EXPECT_FALSE(result->broadcast.has_value());
  EXPECT_FALSE(result->routing.has_value());
  EXPECT_TRUE(IsNoop(AnyOf("spawn.Noop", "").SerializeAsString()));
  EXPECT_FALSE(IsNoop(AnyOf("user.Reply", "").SerializeAsString()));
}

TEST(SpawnInvocationTest, RepliesTheDriverCannotUseAreRefused) {
  EXPECT_THAT(MessageOf(ParseInvocationResult("").status()), HasSubstr("empty"));
  EXPECT_THAT(MessageOf(ParseInvocationResult("\xff\x01 junk").status()),
              HasSubstr("not a spawn.ActorInvocationResponse"));
  ::spawn::ActorInvocationResponse no_context;
  *no_context.mutable_value() = AnyOf("user.Reply", "r");
  EXPECT_THAT(MessageOf(ParseInvocationResult(no_context.SerializeAsString()).status()),
              HasSubstr("no updated_context"));
  ::spawn::ActorInvocationResponse headless;
  headless.mutable_updated_context();
  headless.mutable_workflow()->add_effects()->mutable_request()->set_action_name("x");
  EXPECT_THAT(MessageOf(ParseInvocationResult(headless.SerializeAsString()).status()),
              HasSubstr("without a target actor"));
  ::spawn::ActorInvocationResponse nowhere;
  nowhere.mutable_updated_context();
  nowhere.mutable_workflow()->mutable_forward()->set_action_name("x");
  EXPECT_THAT(MessageOf(ParseInvocationResult(nowhere.SerializeAsString()).status()),
              HasSubstr("forward without an actor"));
}

}  // namespace
}  // namespace massa::spawn
