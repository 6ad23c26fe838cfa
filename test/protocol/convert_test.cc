// Native protocol conversions: discovery spec, commands out, outcomes in.

#include "protocol/native/convert.h"

#include <string>

#include "crdt/change.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/native/crdt_convert.h"

namespace massa::native {
namespace {

namespace v1 = protocol::v1;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

v1::Spec SpecWithVersion(uint32_t major, uint32_t minor) {
  v1::Spec spec;
  spec.mutable_protocol()->set_major(major);
  spec.mutable_protocol()->set_minor(minor);
  return spec;
}

v1::ServiceSpec* AddService(v1::Spec& spec, const std::string& name, v1::EntityKind kind) {
  v1::ServiceSpec* service = spec.add_services();
  service->set_service_name(name);
  service->set_kind(kind);
  return service;
}

google::protobuf::Any AnyOf(const std::string& type, const std::string& bytes) {
  google::protobuf::Any any;
  any.set_type_url(TypeUrlOf(type));
  any.set_value(bytes);
  return any;
}

// ---- SpecFromProto ------------------------------------------------------------------------

TEST(SpecFromProtoTest, OtherMajorVersionIsFailedPreconditionNamingBoth) {
  absl::StatusOr<FunctionSpec> spec = SpecFromProto(SpecWithVersion(2, 0));
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(MessageOf(spec.status()),
              AllOf(HasSubstr("2.0"), HasSubstr(std::to_string(kProtocolMajor) + "." +
                                                std::to_string(kProtocolMinor))));
}

TEST(SpecFromProtoTest, MissingVersionIsFailedPrecondition) {
  EXPECT_EQ(SpecFromProto(v1::Spec()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SpecFromProtoTest, NewerMinorVersionIsAccepted) {
  absl::StatusOr<FunctionSpec> spec = SpecFromProto(SpecWithVersion(kProtocolMajor, 7));
  EXPECT_TRUE(spec.ok()) << spec.status();
}

TEST(SpecFromProtoTest, UnknownKindIsInvalidArgumentNamingTheService) {
  for (int kind : {static_cast<int>(v1::ENTITY_KIND_UNSPECIFIED), 99}) {
    SCOPED_TRACE(kind);
    v1::Spec proto = SpecWithVersion(kProtocolMajor, kProtocolMinor);
    AddService(proto, "example.Good", v1::ENTITY_KIND_ACTION);
    AddService(proto, "example.Strange", static_cast<v1::EntityKind>(kind));
    absl::StatusOr<FunctionSpec> spec = SpecFromProto(proto);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(MessageOf(spec.status()), HasSubstr("'example.Strange'"));
  }
}

TEST(SpecFromProtoTest, FieldsAreMapped) {
  v1::Spec proto = SpecWithVersion(kProtocolMajor, kProtocolMinor);
  proto.set_descriptor_set("descriptor bytes");
  proto.mutable_function()->set_function_name("cart");
  proto.mutable_function()->set_sdk_name("massa-cpp");
  proto.mutable_function()->set_sdk_version("0.3.1");
  AddService(proto, "example.Action", v1::ENTITY_KIND_ACTION);
  v1::ServiceSpec* cart = AddService(proto, "example.Cart", v1::ENTITY_KIND_VALUE_ENTITY);
  cart->set_entity_type("carts");
  cart->set_passivation_timeout_ms(1500);
  cart->set_state_type("example.CartState");
  cart->set_snapshot_every(10);
  v1::ServiceSpec* journal = AddService(proto, "example.Journal", v1::ENTITY_KIND_EVENT_SOURCED);
  journal->set_delete_events_on_snapshot(true);
  AddService(proto, "example.Votes", v1::ENTITY_KIND_CRDT)->set_crdt_type(v1::CRDT_TYPE_VOTE);

  absl::StatusOr<FunctionSpec> spec = SpecFromProto(proto);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->descriptor_set, "descriptor bytes");
  EXPECT_EQ(spec->function_name, "cart");
  EXPECT_EQ(spec->sdk, "massa-cpp 0.3.1");
  ASSERT_EQ(spec->services.size(), 4u);
  EXPECT_EQ(spec->services[0].name, "example.Action");
  EXPECT_EQ(spec->services[0].kind, EntityKind::kAction);
  const ServiceSpec& service = spec->services[1];
  EXPECT_EQ(service.name, "example.Cart");
  EXPECT_EQ(service.kind, EntityKind::kValueEntity);
  EXPECT_EQ(service.entity_type, "carts");
  EXPECT_EQ(service.passivation_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(service.state_type, "example.CartState");
  EXPECT_EQ(service.snapshot_every, 10u);
  EXPECT_EQ(spec->services[2].kind, EntityKind::kEventSourced);
  EXPECT_TRUE(spec->services[2].delete_events_on_snapshot);
  EXPECT_FALSE(service.delete_events_on_snapshot);
  EXPECT_EQ(spec->services[3].kind, EntityKind::kCrdt);
  EXPECT_EQ(spec->services[3].crdt_type, crdt::Type::kVote);
}

TEST(SpecFromProtoTest, ACrdtServiceWithoutItsTypeIsRefusedNamingIt) {
  v1::Spec proto = SpecWithVersion(1, 2);
  AddService(proto, "example.Likes", v1::ENTITY_KIND_CRDT);
  absl::StatusOr<FunctionSpec> spec = SpecFromProto(proto);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("example.Likes"));
}

// ---- CRDT responses --------------------------------------------------------------------------

TEST(CrdtOutcomeFromProtoTest, DeltasBecomeOperationsOfTheirType) {
  v1::CrdtResponse response;
  response.mutable_client_action()->mutable_reply();
  v1::ORSetDelta& set = *response.mutable_delta()->mutable_or_set();
  *set.add_added() = AnyOf("x.Item", "a");
  *set.add_removed() = AnyOf("x.Item", "b");
  response.set_write_consistency(v1::WRITE_CONSISTENCY_MAJORITY);
  absl::StatusOr<Outcome> outcome = CrdtOutcomeFromProto(response);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_NE(outcome->crdt, nullptr);
  EXPECT_EQ(outcome->crdt->operation_type, crdt::Type::kORSet);
  EXPECT_EQ(outcome->crdt->consistency, WriteConsistency::kMajority);
  const auto* change = std::get_if<crdt::SetChange>(&*outcome->crdt->operation);
  ASSERT_NE(change, nullptr);
  ASSERT_EQ(change->add.size(), 1u);
  EXPECT_EQ(change->add[0], AnyOf("x.Item", "a").SerializeAsString());

  v1::CrdtResponse map;
  v1::ORMapEntryDelta* entry = map.mutable_delta()->mutable_or_map()->add_updated();
  *entry->mutable_key() = AnyOf("x.Key", "k");
  entry->mutable_delta()->mutable_pn_counter()->set_change(-3);
  outcome = CrdtOutcomeFromProto(map);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const auto& updates = std::get<crdt::MapChange>(*outcome->crdt->operation).update;
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].type, crdt::Type::kPNCounter);
  EXPECT_EQ(std::get<crdt::Increment>(*updates[0].operation).by, -3);

  v1::CrdtResponse no_delta;
  no_delta.mutable_delta()->mutable_or_map()->add_updated();
  EXPECT_EQ(CrdtOutcomeFromProto(no_delta).status().code(), absl::StatusCode::kInvalidArgument);
  v1::CrdtResponse deleted;
  deleted.set_delete_(true);
  outcome = CrdtOutcomeFromProto(deleted);
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->crdt->remove);
}

TEST(CrdtValueToProtoTest, ValuesOfEveryShape) {
  crdt::Value map;
  map.type = crdt::Type::kORMap;
  crdt::Value counter;
  counter.type = crdt::Type::kPNCounter;
  counter.counter = -2;
  map.entries.push_back(crdt::MapEntry{AnyOf("x.Key", "k").SerializeAsString(), counter});
  v1::CrdtValue out;
  CrdtValueToProto(map, out);
  ASSERT_EQ(out.or_map().entries_size(), 1);
  EXPECT_EQ(out.or_map().entries(0).key().type_url(), "type.googleapis.com/x.Key");
  EXPECT_EQ(out.or_map().entries(0).value().pn_counter().value(), -2);
  crdt::Value vote;
  vote.type = crdt::Type::kVote;
  vote.vote = crdt::VoteValue{true, 2, 3};
  out.Clear();
  CrdtValueToProto(vote, out);
  EXPECT_TRUE(out.vote().self_vote());
  EXPECT_EQ(out.vote().total_voters(), 3u);
}

// ---- CommandToProto -----------------------------------------------------------------------

TEST(CommandToProtoTest, FieldsAndMetadata) {
  Command command;
  command.service = "example.Cart";
  command.method = "AddItem";
  command.entity_key = "cart-1";
  command.payload = std::string("\x0a\x01x", 3);
  command.metadata = {{"x-user", "ann"}, {"trace-bin", std::string("\0\xff", 2)}};
  v1::Command out;
  CommandToProto(command, "example.AddItemRequest", out);
  EXPECT_EQ(out.service_name(), "example.Cart");
  EXPECT_EQ(out.method(), "AddItem");
  EXPECT_EQ(out.entity_key(), "cart-1");
  EXPECT_EQ(out.payload().type_url(), "type.googleapis.com/example.AddItemRequest");
  EXPECT_EQ(out.payload().value(), command.payload);
  ASSERT_EQ(out.metadata().entries_size(), 2);
  EXPECT_EQ(out.metadata().entries(0).key(), "x-user");
  EXPECT_EQ(out.metadata().entries(0).string_value(), "ann");
  EXPECT_EQ(out.metadata().entries(1).key(), "trace-bin");
  EXPECT_TRUE(out.metadata().entries(1).has_bytes_value());
  EXPECT_EQ(out.metadata().entries(1).bytes_value(), std::string("\0\xff", 2));
}

TEST(TypeUrlTest, RoundTrip) {
  EXPECT_EQ(TypeUrlOf("a.B"), "type.googleapis.com/a.B");
  EXPECT_EQ(TypeNameOf("type.googleapis.com/a.B"), "a.B");
  EXPECT_EQ(TypeNameOf("example.com/x/y/a.B"), "a.B");
  EXPECT_EQ(TypeNameOf("a.B"), "a.B");
}

// ---- OutcomeFromProto ---------------------------------------------------------------------

TEST(OutcomeFromProtoTest, Reply) {
  v1::ClientAction action;
  *action.mutable_reply()->mutable_payload() = AnyOf("example.Cart", "cart bytes");
  auto* entry = action.mutable_reply()->mutable_metadata()->add_entries();
  entry->set_key("x-a");
  entry->set_string_value("1");
  entry = action.mutable_reply()->mutable_metadata()->add_entries();
  entry->set_key("x-b-bin");
  entry->set_bytes_value("\x01\x02");
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, v1::Effects());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const Reply* reply = std::get_if<Reply>(&outcome->result);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->payload, "cart bytes");
  EXPECT_EQ(reply->metadata, (Metadata{{"x-a", "1"}, {"x-b-bin", "\x01\x02"}}));
  EXPECT_FALSE(outcome->failed());
  EXPECT_FALSE(outcome->state_update.has_value());
}

TEST(OutcomeFromProtoTest, NoActionIsAnEmptyReply) {
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(v1::ClientAction(), v1::Effects());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const Reply* reply = std::get_if<Reply>(&outcome->result);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->payload, "");
}

TEST(OutcomeFromProtoTest, Forward) {
  v1::ClientAction action;
  v1::Forward* forward = action.mutable_forward();
  forward->set_service_name("example.Other");
  forward->set_method("Do");
  *forward->mutable_payload() = AnyOf("example.DoRequest", "req");
  auto* entry = forward->mutable_metadata()->add_entries();
  entry->set_key("x-f");
  entry->set_string_value("v");
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, v1::Effects());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const Forward* out = std::get_if<Forward>(&outcome->result);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->service, "example.Other");
  EXPECT_EQ(out->method, "Do");
  EXPECT_EQ(out->payload, "req");
  EXPECT_EQ(out->metadata, (Metadata{{"x-f", "v"}}));
}

TEST(OutcomeFromProtoTest, Pipe) {
  v1::ClientAction action;
  v1::Pipe* pipe = action.mutable_pipe();
  pipe->set_service_name("example.Next");
  pipe->set_method("Take");
  *pipe->mutable_payload() = AnyOf("example.Reply", "reply bytes");
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, v1::Effects());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const Pipe* out = std::get_if<Pipe>(&outcome->result);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->service, "example.Next");
  EXPECT_EQ(out->method, "Take");
  EXPECT_EQ(out->payload, "reply bytes");
}

TEST(OutcomeFromProtoTest, FailureCodeMapping) {
  struct Case {
    int code;
    absl::StatusCode expected;
  };
  const Case cases[] = {
      {0, absl::StatusCode::kUnknown},           // OK is no failure code
      {3, absl::StatusCode::kInvalidArgument},
      {5, absl::StatusCode::kNotFound},
      {16, absl::StatusCode::kUnauthenticated},  // the last gRPC code
      {17, absl::StatusCode::kUnknown},
      {-1, absl::StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.code);
    v1::ClientAction action;
    action.mutable_failure()->set_code(c.code);
    action.mutable_failure()->set_message("no such item");
    absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, v1::Effects());
    ASSERT_TRUE(outcome.ok()) << outcome.status();  // a function failure is not a transport error
    ASSERT_TRUE(outcome->failed());
    const absl::Status& status = std::get<absl::Status>(outcome->result);
    EXPECT_EQ(status.code(), c.expected);
    EXPECT_EQ(MessageOf(status), "no such item");
  }
}

TEST(OutcomeFromProtoTest, FailureWithoutMessageGetsOne) {
  v1::ClientAction action;
  action.mutable_failure()->set_code(9);
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, v1::Effects());
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const absl::Status& status = std::get<absl::Status>(outcome->result);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(status.message().empty());
}

TEST(OutcomeFromProtoTest, FailureDropsEffects) {
  v1::ClientAction action;
  action.mutable_failure()->set_code(5);
  v1::Effects effects;
  effects.add_side_effects()->set_service_name("example.Audit");
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, effects);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->failed());
  EXPECT_TRUE(outcome->side_effects.empty());
}

TEST(OutcomeFromProtoTest, SideEffects) {
  v1::ClientAction action;
  action.mutable_reply();
  v1::Effects effects;
  v1::SideEffect* sync = effects.add_side_effects();
  sync->set_service_name("example.Audit");
  sync->set_method("Log");
  *sync->mutable_payload() = AnyOf("example.LogRequest", "log");
  sync->set_synchronous(true);
  v1::SideEffect* async = effects.add_side_effects();
  async->set_service_name("example.Mail");
  async->set_method("Send");
  auto* entry = async->mutable_metadata()->add_entries();
  entry->set_key("x-m");
  entry->set_string_value("1");
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, effects);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->side_effects.size(), 2u);
  EXPECT_EQ(outcome->side_effects[0].service, "example.Audit");
  EXPECT_EQ(outcome->side_effects[0].method, "Log");
  EXPECT_EQ(outcome->side_effects[0].payload, "log");
  EXPECT_TRUE(outcome->side_effects[0].synchronous);
  EXPECT_EQ(outcome->side_effects[1].service, "example.Mail");
  EXPECT_FALSE(outcome->side_effects[1].synchronous);
  EXPECT_EQ(outcome->side_effects[1].metadata, (Metadata{{"x-m", "1"}}));
}

TEST(OutcomeFromProtoTest, TimersBecomeTimerEffects) {
  v1::ClientAction action;
  action.mutable_reply();
  v1::Effects effects;
  v1::Timer* timer = effects.add_timers();
  timer->set_name("tick");
  timer->set_method("Tick");
  timer->mutable_payload()->set_type_url("type.googleapis.com/example.Tick");
  timer->mutable_payload()->set_value("t");
  timer->set_delay_ms(-5);  // kept as is: the runtime refuses it, naming the field
  timer->set_interval_ms(60'000);
  timer->set_at_ms(7);
  timer->set_cron("@daily");
  timer->set_missed(v1::MISSED_TICKS_SKIP);
  v1::Timer* cancel = effects.add_timers();
  cancel->set_name("old");
  cancel->set_cancel(true);
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, effects);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->timers.size(), 2u);
  const TimerEffect& t = outcome->timers[0];
  EXPECT_EQ(t.name, "tick");
  EXPECT_EQ(t.service, "") << "empty: the entity's own service";
  EXPECT_EQ(t.method, "Tick");
  EXPECT_EQ(t.payload, (TypedValue{"example.Tick", "t"}));
  EXPECT_EQ(t.delay_ms, -5);
  EXPECT_EQ(t.interval_ms, 60'000);
  EXPECT_EQ(t.at_ms, 7);
  EXPECT_EQ(t.cron, "@daily");
  EXPECT_EQ(t.missed, MissedTicks::kSkip);
  EXPECT_TRUE(outcome->timers[1].cancel);
}

TEST(OutcomeFromProtoTest, StateTtlAndServiceSettingsAreRead) {
  v1::ValueEntityResponse response;
  response.mutable_client_action()->mutable_reply();
  response.mutable_state_action()->mutable_update()->set_type_url("type.googleapis.com/x.S");
  response.mutable_state_action()->set_ttl_ms(5000);
  absl::StatusOr<Outcome> outcome = ValueEntityOutcomeFromProto(response);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_TRUE(outcome->state_update.has_value());
  EXPECT_EQ(outcome->state_update->ttl_ms, 5000);

  v1::Spec spec;
  spec.mutable_protocol()->set_major(kProtocolMajor);
  v1::ServiceSpec* service = spec.add_services();
  service->set_service_name("x.Svc");
  service->set_kind(v1::ENTITY_KIND_VALUE_ENTITY);
  service->set_idempotency_retention_ms(3'600'000);
  service->set_state_ttl_ms(60'000);
  absl::StatusOr<FunctionSpec> converted = SpecFromProto(spec);
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->services[0].idempotency_retention, std::chrono::hours(1));
  EXPECT_EQ(converted->services[0].state_ttl, std::chrono::minutes(1));
}

TEST(CommandToProtoTest, CarriesTheIdempotencyKey) {
  Command command;
  command.service = "x.Svc";
  command.method = "Do";
  command.idempotency_key = "k-1";
  v1::Command out;
  CommandToProto(command, "x.Req", out);
  EXPECT_EQ(out.idempotency_key(), "k-1");
}

TEST(OutcomeFromProtoTest, BroadcastsKeepTheirChannelTypeAndMetadata) {
  v1::ClientAction action;
  action.mutable_reply();
  v1::Effects effects;
  v1::Broadcast* broadcast = effects.add_broadcasts();
  broadcast->set_channel("news");
  *broadcast->mutable_payload() = AnyOf("x.News", "\x0a\x01a");
  v1::MetadataEntry* entry = broadcast->mutable_metadata()->add_entries();
  entry->set_key("k");
  entry->set_string_value("v");
  absl::StatusOr<Outcome> outcome = OutcomeFromProto(action, effects);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->broadcasts.size(), 1u);
  EXPECT_EQ(outcome->broadcasts[0].channel, "news");
  EXPECT_EQ(outcome->broadcasts[0].payload, (TypedValue{"x.News", "\x0a\x01a"}));
  EXPECT_EQ(outcome->broadcasts[0].metadata, (Metadata{{"k", "v"}}));
}

// ---- Value entity and event-sourced answers ------------------------------------------------

TEST(ValueEntityOutcomeFromProtoTest, UpdateDeleteAndUnchanged) {
  v1::ValueEntityResponse update;
  *update.mutable_state_action()->mutable_update() = AnyOf("x.State", "\x08\x01");
  absl::StatusOr<Outcome> updated = ValueEntityOutcomeFromProto(update);
  ASSERT_TRUE(updated.ok() && updated->state_update.has_value());
  EXPECT_EQ(updated->state_update->value, (TypedValue{"x.State", "\x08\x01"}));

  v1::ValueEntityResponse remove;
  remove.mutable_state_action()->mutable_delete_();
  absl::StatusOr<Outcome> removed = ValueEntityOutcomeFromProto(remove);
  ASSERT_TRUE(removed.ok() && removed->state_update.has_value());
  EXPECT_FALSE(removed->state_update->value.has_value());

  absl::StatusOr<Outcome> unchanged = ValueEntityOutcomeFromProto(v1::ValueEntityResponse());
  ASSERT_TRUE(unchanged.ok());
  EXPECT_FALSE(unchanged->state_update.has_value());
}

TEST(EventSourcedOutcomeFromProtoTest, EventsAndTheirState) {
  v1::EventSourcedResponse response;
  *response.add_events() = AnyOf("x.Added", "a");
  *response.add_events() = AnyOf("x.Removed", "r");
  *response.mutable_state() = AnyOf("x.State", "s");
  absl::StatusOr<Outcome> outcome = EventSourcedOutcomeFromProto(response);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->events,
            (std::vector<TypedValue>{{"x.Added", "a"}, {"x.Removed", "r"}}));
  ASSERT_TRUE(outcome->state_update.has_value());
  EXPECT_EQ(outcome->state_update->value, (TypedValue{"x.State", "s"}));
}

TEST(EventSourcedOutcomeFromProtoTest, EventsWithoutStateAreInternal) {
  v1::EventSourcedResponse response;
  *response.add_events() = AnyOf("x.Added", "a");
  absl::StatusOr<Outcome> outcome = EventSourcedOutcomeFromProto(response);
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(outcome.status().message()), HasSubstr("without the state"));
}

TEST(EventSourcedOutcomeFromProtoTest, EventWithoutTypeIsInternal) {
  v1::EventSourcedResponse response;
  response.add_events()->set_value("a");
  *response.mutable_state() = AnyOf("x.State", "s");
  EXPECT_EQ(EventSourcedOutcomeFromProto(response).status().code(), absl::StatusCode::kInternal);
}

TEST(EventSourcedOutcomeFromProtoTest, StateWithoutEventsIsIgnored) {
  v1::EventSourcedResponse response;
  *response.mutable_state() = AnyOf("x.State", "changed behind the journal's back");
  absl::StatusOr<Outcome> outcome = EventSourcedOutcomeFromProto(response);
  ASSERT_TRUE(outcome.ok());
  EXPECT_FALSE(outcome->state_update.has_value());
}

TEST(EventSourcedOutcomeFromProtoTest, FailureCarriesNoEvents) {
  v1::EventSourcedResponse response;
  response.mutable_client_action()->mutable_failure()->set_message("no");
  *response.add_events() = AnyOf("x.Added", "a");
  *response.mutable_state() = AnyOf("x.State", "s");
  absl::StatusOr<Outcome> outcome = EventSourcedOutcomeFromProto(response);
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(outcome->failed());
  EXPECT_TRUE(outcome->events.empty());
  EXPECT_FALSE(outcome->state_update.has_value());
}

TEST(FoldRequestToProtoTest, StateAndEvents) {
  v1::FoldRequest request;
  FoldRequestToProto("x.Svc", "k1", TypedValue{"x.State", "s"},
                     {Event{3, "x.Added", "a", 1700, {{"massa-command", "/x.Svc/Add"}}},
                      Event{4, "x.Removed", "r", 1701, {}}},
                     request);
  EXPECT_EQ(request.service_name(), "x.Svc");
  EXPECT_EQ(request.entity_key(), "k1");
  EXPECT_EQ(request.state().type_url(), "type.googleapis.com/x.State");
  ASSERT_EQ(request.events_size(), 2);
  EXPECT_EQ(request.events(0).sequence(), 3u);
  EXPECT_EQ(request.events(0).payload().type_url(), "type.googleapis.com/x.Added");
  EXPECT_EQ(request.events(0).payload().value(), "a");
  EXPECT_EQ(request.events(0).timestamp_ms(), 1700);
  ASSERT_EQ(request.events(0).metadata().entries_size(), 1);
  EXPECT_EQ(request.events(0).metadata().entries(0).string_value(), "/x.Svc/Add");
  EXPECT_FALSE(request.events(1).has_metadata());

  v1::FoldRequest initial;
  FoldRequestToProto("x.Svc", "k1", std::nullopt, {}, initial);
  EXPECT_FALSE(initial.has_state());
}

}  // namespace
}  // namespace massa::native
