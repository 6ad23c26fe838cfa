// The Spawn driver's registration decoding: what real SDKs send (including their wire habits)
// becomes actor definitions; a bad registration is refused naming the actor.
#include "protocol/spawn/registration.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spawn/actors/protocol.pb.h"

namespace massa::spawn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

::spawn::actors::Actor& AddActor(::spawn::RegistrationRequest& request, const std::string& name,
                                 ::spawn::actors::Kind kind) {
  request.mutable_actor_system()->set_name("spawn-system");
  ::spawn::actors::Actor& actor =
      (*request.mutable_actor_system()->mutable_registry()->mutable_actors())[name];
  actor.mutable_id()->set_name(name);
  actor.mutable_id()->set_system("spawn-system");
  actor.mutable_settings()->set_kind(kind);
  return actor;
}

// A Channel message, serialized, as current SDKs put it in Metadata.channel_group.
std::string ChannelBytes(const std::string& topic, const std::string& action) {
  ::spawn::actors::Channel channel;
  channel.set_topic(topic);
  channel.set_action(action);
  return channel.SerializeAsString();
}

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

TEST(SpawnRegistrationTest, ActorsOfEveryKindWithTheirSettings) {
  ::spawn::RegistrationRequest request;
  request.mutable_service_info()->set_support_library_name("spawn-node-sdk");
  request.mutable_service_info()->set_support_library_version("1.4.0");
  ::spawn::actors::Actor& joe = AddActor(request, "joe", ::spawn::actors::NAMED);
  joe.mutable_settings()->set_stateful(true);
  joe.mutable_settings()->set_state_type("user.JoeState");
  joe.mutable_settings()->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(30000);
  joe.add_actions()->set_name("setLanguage");
  joe.add_actions()->set_name("init");
  ::spawn::actors::FixedTimerAction* timer = joe.add_timer_actions();
  timer->set_seconds(1500);  // milliseconds, whatever the field's name says
  timer->mutable_action()->set_name("tick");
  joe.mutable_metadata()->add_channel_group(ChannelBytes("news", "onNews"));
  joe.mutable_metadata()->add_channel_group(ChannelBytes("alerts", ""));
  (*joe.mutable_state()->mutable_tags())["team"] = "blue";
  joe.mutable_state()->mutable_state()->set_type_url("type.googleapis.com/spawn.JSONType");
  ::spawn::actors::Actor& room = AddActor(request, "room", ::spawn::actors::UNNAMED);
  room.mutable_id()->set_parent("room");  // the Node SDK names the template its own parent
  ::spawn::actors::Actor& pool = AddActor(request, "worker", ::spawn::actors::POOLED);
  pool.mutable_settings()->set_max_pool_size(4);

  absl::StatusOr<Registration> registration = ParseRegistration(request.SerializeAsString());
  ASSERT_TRUE(registration.ok()) << registration.status();
  EXPECT_EQ(registration->system, "spawn-system");
  EXPECT_EQ(registration->sdk, "spawn-node-sdk 1.4.0");
  ASSERT_EQ(registration->actors.size(), 3u);
  const ActorDefinition& j = registration->actors[0];
  EXPECT_EQ(j.name, "joe");
  EXPECT_EQ(j.kind, ActorKind::kNamed);
  EXPECT_TRUE(j.stateful);
  EXPECT_EQ(j.state_type, "user.JoeState");
  EXPECT_EQ(j.deactivate_after, std::chrono::milliseconds(30000));
  EXPECT_EQ(j.snapshot_every, std::chrono::milliseconds(2000)) << "Spawn's default";
  EXPECT_THAT(j.actions, ElementsAre("setLanguage", "init"));
  ASSERT_EQ(j.timers.size(), 1u);
  EXPECT_EQ(j.timers[0].every, std::chrono::milliseconds(1500));
  ASSERT_EQ(j.channels.size(), 2u);
  EXPECT_EQ(j.channels[0].topic, "news");
  EXPECT_EQ(j.channels[0].action, "onNews");
  EXPECT_EQ(j.channels[1].action, "receive") << "the default action";
  EXPECT_EQ(j.tags.at("team"), "blue");
  EXPECT_TRUE(j.initial_state.has_value());
  EXPECT_EQ(registration->actors[1].name, "room");
  EXPECT_EQ(registration->actors[1].kind, ActorKind::kUnnamed);
  EXPECT_EQ(registration->actors[2].kind, ActorKind::kPooled);
  EXPECT_EQ(registration->actors[2].max_pool_size, 4u);
}

TEST(SpawnRegistrationTest, APythonStyleChannelGivenAsAPlainTopicString) {
  ::spawn::RegistrationRequest request;
  ::spawn::actors::Actor& joe = AddActor(request, "joe", ::spawn::actors::NAMED);
  joe.mutable_metadata()->add_channel_group("joe");  // a string where a Channel is declared
  joe.mutable_metadata()->add_channel_group("fleet-events");
  absl::StatusOr<Registration> registration = ParseRegistration(request.SerializeAsString());
  ASSERT_TRUE(registration.ok()) << registration.status();
  ASSERT_EQ(registration->actors[0].channels.size(), 2u);
  EXPECT_EQ(registration->actors[0].channels[0].topic, "joe");
  EXPECT_EQ(registration->actors[0].channels[0].action, "receive");
  EXPECT_EQ(registration->actors[0].channels[1].topic, "fleet-events");
}

TEST(SpawnRegistrationTest, BadRegistrationsAreRefusedNamingTheActor) {
  EXPECT_THAT(MessageOf(ParseRegistration("\xff\xff not protobuf").status()),
              HasSubstr("not a spawn.RegistrationRequest"));
  ::spawn::RegistrationRequest no_system;
  EXPECT_THAT(MessageOf(ParseRegistration(no_system.SerializeAsString()).status()),
              HasSubstr("no actor system name"));

  const auto refused = [](::spawn::RegistrationRequest request) {
    absl::StatusOr<Registration> parsed = ParseRegistration(request.SerializeAsString());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    return MessageOf(parsed.status());
  };
  ::spawn::RegistrationRequest projection;
  AddActor(projection, "view", ::spawn::actors::PROJECTION);
  EXPECT_THAT(refused(projection), AllOf(HasSubstr("'view'"), HasSubstr("PROJECTION")));
  ::spawn::RegistrationRequest zero_timer;
  ::spawn::actors::FixedTimerAction* timer =
      AddActor(zero_timer, "joe", ::spawn::actors::NAMED).add_timer_actions();
  timer->mutable_action()->set_name("tick");
  EXPECT_THAT(refused(zero_timer), AllOf(HasSubstr("'joe'"), HasSubstr("'tick'")));
  ::spawn::RegistrationRequest twice;
  ::spawn::actors::Actor& joe = AddActor(twice, "joe", ::spawn::actors::NAMED);
  joe.add_actions()->set_name("hi");
  joe.add_actions()->set_name("hi");
  EXPECT_THAT(refused(twice), HasSubstr("'hi' is listed twice"));
  ::spawn::RegistrationRequest renamed;
  AddActor(renamed, "joe", ::spawn::actors::NAMED).mutable_id()->set_name("bob");
  EXPECT_THAT(refused(renamed), HasSubstr("another name"));
  ::spawn::RegistrationRequest negative;
  AddActor(negative, "joe", ::spawn::actors::NAMED)
      .mutable_settings()
      ->mutable_deactivation_strategy()
      ->mutable_timeout()
      ->set_timeout(-5);
  EXPECT_THAT(refused(negative), HasSubstr("negative"));
  ::spawn::RegistrationRequest unknown_kind;
  AddActor(unknown_kind, "joe", static_cast<::spawn::actors::Kind>(42));
  EXPECT_THAT(refused(unknown_kind), HasSubstr("unknown kind 42"));
}

}  // namespace
}  // namespace massa::spawn
