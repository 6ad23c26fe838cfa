// Catalog: validation of the function's spec and entity key extraction.

#include "entity/catalog.h"

#include <memory>
#include <string>

#include "crdt/crdt.h"
#include "entity/test_util.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "massa/common/status.h"
#include "test/fakes/test_services.pb.h"

namespace massa::entity_test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

// Builds `spec` and returns the error, or OK when it built.
absl::Status BuildError(FunctionSpec spec) { return Catalog::Build(std::move(spec)).status(); }

FunctionSpec SpecWith(std::vector<ServiceSpec> services) {
  FunctionSpec spec;
  spec.descriptor_set = TestDescriptorSet();
  spec.services = std::move(services);
  return spec;
}

TEST(CatalogTest, ValidSpecBuilds) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(ValidSpec());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_EQ((*catalog)->services().size(), 5u);
  EXPECT_EQ((*catalog)->spec().function_name, "test-function");

  const ServiceInfo* counter = (*catalog)->FindService(kCounter);
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ(counter->spec.kind, EntityKind::kValueEntity);
  EXPECT_EQ(counter->spec.entity_type, kCounter);  // defaults to the service name
  EXPECT_EQ(counter->methods.size(), 4u);

  const MethodInfo* increment = (*catalog)->FindMethod(kCounter, "Increment");
  ASSERT_NE(increment, nullptr);
  EXPECT_EQ(increment->service, counter);
  EXPECT_EQ(increment->path, "/massa.test.Counter/Increment");
  EXPECT_EQ(increment->request_type, "massa.test.IncrementRequest");
  ASSERT_EQ(increment->key_fields.size(), 1u);
  EXPECT_EQ(increment->key_fields[0]->name(), "id");
  EXPECT_FALSE(increment->streaming);

  const MethodInfo* watch = (*catalog)->FindMethod(kCounter, "Watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->streaming);

  const MethodInfo* say = (*catalog)->FindMethod(kEcho, "Say");
  ASSERT_NE(say, nullptr);
  EXPECT_TRUE(say->key_fields.empty());

  EXPECT_EQ((*catalog)->FindMethod(kCounter, "Nope"), nullptr);
  EXPECT_EQ((*catalog)->FindMethod("massa.test.Nope", "Increment"), nullptr);
  EXPECT_EQ((*catalog)->FindService("massa.test.Nope"), nullptr);
  EXPECT_NE((*catalog)->pool().FindMessageTypeByName(kCounterState), nullptr);
}

TEST(CatalogTest, ExplicitEntityTypeIsKept) {
  ServiceSpec counter = Service(kCounter, EntityKind::kValueEntity);
  counter.entity_type = "counters";
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(SpecWith({counter}));
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_EQ((*catalog)->FindService(kCounter)->spec.entity_type, "counters");
}

TEST(CatalogTest, DescriptorsThatDoNotParse) {
  FunctionSpec spec = ValidSpec();
  spec.descriptor_set = "\xff\xff\xff not a descriptor set";
  absl::Status status = BuildError(std::move(spec));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), HasSubstr("descriptor set does not parse"));
}

TEST(CatalogTest, DescriptorsThatDoNotLinkNameTheFile) {
  // Only the test file, without the options.proto it imports.
  google::protobuf::FileDescriptorSet files;
  massa::test::CounterState::descriptor()->file()->CopyTo(files.add_file());
  FunctionSpec spec = ValidSpec();
  spec.descriptor_set = files.SerializeAsString();
  absl::Status status = BuildError(std::move(spec));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr(kCounter), HasSubstr("test_services.proto"),
                                       HasSubstr("options.proto")));
}

TEST(CatalogTest, FileInDescriptorSetTwice) {
  google::protobuf::FileDescriptorSet files;
  ASSERT_TRUE(files.ParseFromString(TestDescriptorSet()));
  *files.add_file() = files.file(files.file_size() - 1);
  FunctionSpec spec = ValidSpec();
  spec.descriptor_set = files.SerializeAsString();
  google::protobuf::LogSilencer silence;  // the descriptor database logs the duplicate too
  absl::Status status = BuildError(std::move(spec));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr("test_services.proto"), HasSubstr("twice")));
}

TEST(CatalogTest, ServiceNotInDescriptors) {
  absl::Status status =
      BuildError(SpecWith({Service("massa.test.Missing", EntityKind::kAction)}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status),
              AllOf(HasSubstr("'massa.test.Missing'"), HasSubstr("not in the descriptors")));
}

TEST(CatalogTest, ServiceListedTwice) {
  absl::Status status = BuildError(SpecWith(
      {Service(kEcho, EntityKind::kAction), Service(kEcho, EntityKind::kAction)}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr(kEcho), HasSubstr("listed twice")));
}

TEST(CatalogTest, ACrdtServiceNeedsItsDataType) {
  absl::Status status = BuildError(SpecWith({Service(kCounter, EntityKind::kCrdt)}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr(kCounter), HasSubstr("data type")));
  ServiceSpec likes = Service(kCounter, EntityKind::kCrdt);
  likes.crdt_type = crdt::Type::kPNCounter;
  EXPECT_TRUE(BuildError(SpecWith({likes})).ok());
}

TEST(CatalogTest, EventSourcedServiceIsServedWithItsKeyAndStateType) {
  ServiceSpec ledger = Service("massa.test.Ledger", EntityKind::kEventSourced, kCounterState);
  ledger.snapshot_every = 7;
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(SpecWith({ledger}));
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  const MethodInfo* deposit = (*catalog)->FindMethod("massa.test.Ledger", "Deposit");
  ASSERT_NE(deposit, nullptr);
  EXPECT_EQ(deposit->service->spec.kind, EntityKind::kEventSourced);
  EXPECT_EQ(deposit->service->spec.snapshot_every, 7u);
  EXPECT_EQ(deposit->key_fields.size(), 1u);
}

TEST(CatalogTest, EventSourcedAndValueEntityCannotShareAnEntityType) {
  ServiceSpec ledger = Service("massa.test.Ledger", EntityKind::kEventSourced, kCounterState);
  ledger.entity_type = kCounter;
  absl::Status status =
      BuildError(SpecWith({Service(kCounter, EntityKind::kValueEntity, kCounterState), ledger}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), HasSubstr(kCounter));
}

TEST(CatalogTest, EntityMethodWithoutKeyFieldNamesMethodAndType) {
  absl::Status status = BuildError(SpecWith({Service(kEcho, EntityKind::kValueEntity)}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr("massa.test.Echo.Say"),
                                       HasSubstr("'massa.test.Ping'"), HasSubstr("entity_key")));
}

TEST(CatalogTest, ActionNeedsNoKeyField) {
  EXPECT_TRUE(BuildError(SpecWith({Service(kEcho, EntityKind::kAction)})).ok());
}

TEST(CatalogTest, RepeatedKeyFieldIsRejected) {
  absl::Status status = BuildError(SpecWith({Service(kRepeatedKey, EntityKind::kValueEntity)}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr("massa.test.RepeatedKey.Do"),
                                       HasSubstr("massa.test.RepeatedKeyRequest.ids"),
                                       HasSubstr("single string or integer")));
}

TEST(CatalogTest, UnknownStateType) {
  absl::Status status = BuildError(
      SpecWith({Service(kCounter, EntityKind::kValueEntity, "massa.test.NoSuchState")}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr(kCounter), HasSubstr("massa.test.NoSuchState")));
}

TEST(CatalogTest, EntityTypeSharedByDifferentKinds) {
  ServiceSpec counter = Service(kCounter, EntityKind::kValueEntity);
  counter.entity_type = "shared";
  ServiceSpec echo = Service(kEcho, EntityKind::kAction);
  echo.entity_type = "shared";
  absl::Status status = BuildError(SpecWith({counter, echo}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), AllOf(HasSubstr("'shared'"), HasSubstr("different kinds")));
}

TEST(CatalogTest, NamedAndSpawnedActorsNeedNoKeyFields) {
  ServiceSpec named = Service(kEcho, EntityKind::kValueEntity);
  named.actor_name = "echo";
  EXPECT_TRUE(BuildError(SpecWith({named})).ok());
  ServiceSpec spawned = Service(kEcho, EntityKind::kEventSourced);
  spawned.spawned = true;
  EXPECT_TRUE(BuildError(SpecWith({spawned})).ok());
}

TEST(CatalogTest, ActorSettingsThatDoNotFitTheKindAreRefused) {
  ServiceSpec named_action = Service(kEcho, EntityKind::kAction);
  named_action.actor_name = "echo";
  EXPECT_THAT(MessageOf(BuildError(SpecWith({named_action}))),
              AllOf(HasSubstr(kEcho), HasSubstr("named actors")));
  ServiceSpec both = Service(kCounter, EntityKind::kValueEntity);
  both.actor_name = "c";
  both.spawned = true;
  EXPECT_THAT(MessageOf(BuildError(SpecWith({both}))), HasSubstr("not both"));
  ServiceSpec pooled_entity = Service(kCounter, EntityKind::kValueEntity);
  pooled_entity.max_concurrency = 4;
  EXPECT_THAT(MessageOf(BuildError(SpecWith({pooled_entity}))),
              HasSubstr("only actions can be pooled"));
}

TEST(CatalogTest, SubscriptionsAreIndexedByChannel) {
  ServiceSpec echo = Service(kEcho, EntityKind::kAction);
  echo.subscriptions = {{"news", "Say"}, {"alerts", "Relay"}};
  ServiceSpec sink = Service(kSink, EntityKind::kAction);
  sink.subscriptions = {{"news", "Put"}};
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(SpecWith({echo, sink}));
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  const std::vector<const MethodInfo*>& news = (*catalog)->SubscribersOf("news");
  ASSERT_EQ(news.size(), 2u);
  EXPECT_EQ(news[0]->path, "/massa.test.Echo/Say");
  EXPECT_EQ(news[1]->path, "/massa.test.Sink/Put");
  EXPECT_EQ((*catalog)->SubscribersOf("alerts").size(), 1u);
  EXPECT_TRUE((*catalog)->SubscribersOf("nobody").empty());
}

TEST(CatalogTest, ASubscriptionNeedsAnExistingMethodAndAChannelName) {
  ServiceSpec echo = Service(kEcho, EntityKind::kAction);
  echo.subscriptions = {{"news", "Shout"}};
  EXPECT_THAT(MessageOf(BuildError(SpecWith({echo}))),
              AllOf(HasSubstr("'news'"), HasSubstr("'Shout'"), HasSubstr("does not have")));
  echo.subscriptions = {{"", "Say"}};
  EXPECT_THAT(MessageOf(BuildError(SpecWith({echo}))), HasSubstr("channel name"));
  echo.subscriptions = {{"news", "Say"}, {"news", "Say"}};
  EXPECT_THAT(MessageOf(BuildError(SpecWith({echo}))), HasSubstr("twice"));
}

class ExtractKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(ValidSpec());
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = *std::move(catalog);
  }

  const MethodInfo& Method(const char* service, const char* method) {
    const MethodInfo* info = catalog_->FindMethod(service, method);
    MASSA_CHECK(info != nullptr);
    return *info;
  }

  std::unique_ptr<Catalog> catalog_;
};

TEST_F(ExtractKeyTest, KeyValue) {
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kCounter, "Increment"), IncrementRequest("c-1", 7));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "c-1");
}

TEST_F(ExtractKeyTest, TwoKeyFieldsJoinedInFieldNumberOrder) {
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kTwoKey, "Do"), TwoKeyRequest("acme", 42));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "acme/42");
}

TEST_F(ExtractKeyTest, SlashesInsideKeyPartsAreEscaped) {
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kTwoKey, "Do"), TwoKeyRequest("a/b", 42));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "a\\/b/42");  // never the same as the parts ("a", "b/42")
  key = catalog_->ExtractKey(Method(kTwoKey, "Do"), TwoKeyRequest("a\\", 42));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "a\\\\/42");
}

TEST_F(ExtractKeyTest, EmptyKeyNamesTheField) {
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kCounter, "Increment"), IncrementRequest("", 7));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(key.status()), AllOf(HasSubstr("'id'"), HasSubstr("empty")));
}

TEST_F(ExtractKeyTest, EmptySecondKeyPartNamesThatField) {
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kTwoKey, "Do"), TwoKeyRequest("", 42));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(key.status()), HasSubstr("'tenant'"));
}

TEST_F(ExtractKeyTest, BytesThatDoNotDecode) {
  // Field 1, length-delimited, says 5 bytes follow but only 2 do.
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kCounter, "Increment"), std::string("\x0a\x05" "ab", 4));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(key.status()), HasSubstr("massa.test.IncrementRequest"));
}

TEST_F(ExtractKeyTest, ActionHasEmptyKey) {
  absl::StatusOr<std::string> key = catalog_->ExtractKey(Method(kEcho, "Say"), Ping("hi"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "");
}

TEST_F(ExtractKeyTest, ActionRequestMustStillDecode) {
  absl::StatusOr<std::string> key =
      catalog_->ExtractKey(Method(kEcho, "Say"), std::string("\x0a\x05" "ab", 4));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace massa::entity_test
