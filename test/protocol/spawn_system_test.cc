// A registered Spawn actor system in Massa's terms: services and methods the catalog accepts,
// names spelled as identifiers without collisions, built-in reads, Massa's own methods.
#include "protocol/spawn/system.h"

#include <string>

#include "entity/catalog.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::spawn {
namespace {

using ::testing::HasSubstr;

ActorDefinition Named(const std::string& name, std::vector<std::string> actions) {
  ActorDefinition actor;
  actor.name = name;
  actor.stateful = true;
  actor.actions = std::move(actions);
  return actor;
}

TEST(SpawnSystemTest, IdentifiersKeepValidNamesAndSpellOthersOut) {
  EXPECT_EQ(Identifier("joe"), "joe");
  EXPECT_EQ(Identifier("set_language"), "set_language");
  EXPECT_EQ(Identifier("spawn-system"), "spawn_x2dsystem");
  EXPECT_EQ(Identifier("a.b"), "a_x2eb");
  EXPECT_EQ(Identifier("9lives"), "_9lives");
  EXPECT_EQ(Identifier(""), "_");
}

TEST(SpawnSystemTest, EveryKindBecomesAServiceTheCatalogAccepts) {
  Registration registration;
  registration.system = "spawn-system";
  ActorDefinition joe = Named("joe", {"setLanguage", "init", "get"});
  joe.timers.push_back(TimerAction{"tick", std::chrono::milliseconds(500)});
  joe.channels.push_back(ChannelSubscription{"news", "onNews"});
  ActorDefinition room = Named("chat-room", {"say"});
  room.kind = ActorKind::kUnnamed;
  ActorDefinition pool = Named("worker", {"work"});
  pool.kind = ActorKind::kPooled;
  pool.stateful = false;
  pool.max_pool_size = 3;
  registration.actors = {joe, room, pool};

  absl::StatusOr<std::shared_ptr<const System>> system = System::Build(registration);
  ASSERT_TRUE(system.ok()) << system.status();
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build((*system)->spec());
  ASSERT_TRUE(catalog.ok()) << catalog.status();

  const Actor* named = (*system)->FindActor("joe");
  ASSERT_NE(named, nullptr);
  EXPECT_EQ(named->service, "spawn.spawn_x2dsystem.joe");
  EXPECT_EQ(named->init_action, "init");
  // Timer and channel actions are methods even when not listed as actions.
  EXPECT_EQ(named->MethodOf("tick"), "tick");
  EXPECT_EQ(named->MethodOf("onNews"), "onNews");
  // Its own `get` is an action; the other built-in reads are Massa's.
  std::string action;
  EXPECT_EQ(named->RoleOf("get", &action), MethodRole::kAction);
  EXPECT_EQ(action, "get");
  EXPECT_EQ(named->RoleOf(named->MethodOf("getState"), nullptr), MethodRole::kGet);
  EXPECT_EQ(named->RoleOf(kScheduleMethod, nullptr), MethodRole::kSchedule);
  EXPECT_EQ(named->RoleOf(kReceiveMethod, nullptr), MethodRole::kReceive);
  EXPECT_EQ(named->ChannelAction("news", ""), "onNews");

  const ServiceInfo* joe_service = (*catalog)->FindService(named->service);
  ASSERT_NE(joe_service, nullptr);
  EXPECT_EQ(joe_service->spec.kind, EntityKind::kValueEntity);
  EXPECT_EQ(joe_service->spec.actor_name, "joe");
  EXPECT_EQ(joe_service->spec.state_type, kStateType);
  EXPECT_NE((*catalog)->FindMethod(named->service, "setLanguage"), nullptr);
  EXPECT_EQ((*catalog)->SubscribersOf("news").size(), 1u);

  const Actor* unnamed = (*system)->FindActor("chat-room");
  ASSERT_NE(unnamed, nullptr);
  const ServiceInfo* room_service = (*catalog)->FindService(unnamed->service);
  ASSERT_NE(room_service, nullptr);
  EXPECT_TRUE(room_service->spec.spawned);

  const ServiceInfo* pool_service = (*catalog)->FindService((*system)->FindActor("worker")->service);
  ASSERT_NE(pool_service, nullptr);
  EXPECT_EQ(pool_service->spec.kind, EntityKind::kAction);
  EXPECT_EQ(pool_service->spec.max_concurrency, 3u);
  EXPECT_EQ((*system)->FindActor("nobody"), nullptr);
}

TEST(SpawnSystemTest, ChannelActionFallsBackToTheBroadcastsLegacyActionThenReceive) {
  Registration registration;
  registration.system = "s";
  ActorDefinition listener = Named("listener", {"receive", "onAlert"});
  listener.channels.push_back(ChannelSubscription{"alerts", "receive"});  // a plain topic string
  registration.actors = {listener};
  absl::StatusOr<std::shared_ptr<const System>> system = System::Build(registration);
  ASSERT_TRUE(system.ok()) << system.status();
  const Actor* actor = (*system)->FindActor("listener");
  EXPECT_EQ(actor->ChannelAction("alerts", "onAlert"), "onAlert");
  EXPECT_EQ(actor->ChannelAction("alerts", ""), "receive");
}

TEST(SpawnSystemTest, CollidingOrReservedNamesAreRefusedNamingBoth) {
  Registration registration;
  registration.system = "s";
  registration.actors = {Named("a-b", {"x"}), Named("a_x2db", {"x"})};
  absl::StatusOr<std::shared_ptr<const System>> system = System::Build(registration);
  ASSERT_FALSE(system.ok());
  EXPECT_EQ(system.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(system.status().message()), HasSubstr("'a-b' and 'a_x2db'"));

  registration.actors = {Named("joe", {"do-it", "do_x2dit"})};
  system = System::Build(registration);
  ASSERT_FALSE(system.ok());
  EXPECT_THAT(std::string(system.status().message()), HasSubstr("'do-it' and 'do_x2dit'"));

  registration.actors = {Named("joe", {"MassaSchedule"})};
  system = System::Build(registration);
  ASSERT_FALSE(system.ok());
  EXPECT_THAT(std::string(system.status().message()), HasSubstr("MassaSchedule"));
}

}  // namespace
}  // namespace massa::spawn
