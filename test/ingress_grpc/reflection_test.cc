// Server reflection (v1 and v1alpha) over a catalog built from the test services, served by an
// in-process grpc::Server and driven through the generated stubs, the way grpcurl drives it.

#include "ingress_grpc/local_server.h"
#include "ingress/grpc/reflection.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "entity/catalog.h"
#include "fakes/fake_function.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ingress/grpc/health.h"
#include "massa/admin/v1/admin.pb.h"
#include "test/ingress_grpc/reflection_test.pb.h"

namespace massa {
namespace {

namespace pb = google::protobuf;
using ::testing::ElementsAre;
using ::testing::IsSupersetOf;
using ::testing::UnorderedElementsAre;

constexpr char kOrdersFile[] = "test/ingress_grpc/reflection_test.proto";
constexpr char kServicesFile[] = "test/fakes/test_services.proto";
constexpr char kOptionsFile[] = "massa/protocol/v1/options.proto";
constexpr char kDescriptorFile[] = "google/protobuf/descriptor.proto";
constexpr int kNotFound = 5;        // grpc::StatusCode::NOT_FOUND
constexpr int kUnimplemented = 12;  // grpc::StatusCode::UNIMPLEMENTED

FunctionSpec TestSpec() {
  FunctionSpec spec;
  spec.descriptor_set =
      testing::DescriptorSetOf(*massa::test::reflection::Order::descriptor()->file());
  spec.function_name = "reflection-test";
  ServiceSpec counter;
  counter.name = "massa.test.Counter";
  counter.kind = EntityKind::kValueEntity;
  counter.state_type = "massa.test.CounterState";
  ServiceSpec echo;
  echo.name = "massa.test.Echo";
  ServiceSpec orders;
  orders.name = "massa.test.reflection.Orders";
  spec.services = {counter, echo, orders};
  return spec;
}

// The generated types of one protocol version.
struct V1 {
  using Service = grpc::reflection::v1::ServerReflection;
  using Request = grpc::reflection::v1::ServerReflectionRequest;
  using Response = grpc::reflection::v1::ServerReflectionResponse;
};
struct V1Alpha {
  using Service = grpc::reflection::v1alpha::ServerReflection;
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;
};

// The names of the files in a file_descriptor_response, in order.
template <typename Response>
std::vector<std::string> FileNames(const Response& response) {
  std::vector<std::string> names;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    pb::FileDescriptorProto file;
    EXPECT_TRUE(file.ParseFromString(bytes));
    names.push_back(file.name());
  }
  return names;
}

template <typename Version>
class ReflectionTest : public ::testing::Test {
 protected:
  using Request = typename Version::Request;
  using Response = typename Version::Response;

  void SetUp() override {
    // Links admin.pb.o, so the binary has the admin service's descriptors (as massa does).
    ASSERT_NE(admin::v1::GetSpecRequest::descriptor(), nullptr);
    absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(TestSpec());
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = *std::move(catalog);
    v1_ = NewReflectionService(*catalog_, ReflectionVersion::kV1);
    v1alpha_ = NewReflectionService(*catalog_, ReflectionVersion::kV1Alpha);
    health_service_ = NewHealthService(health_);

    server_ = testing::LocalServer::Start({v1_.get(), v1alpha_.get(), health_service_.get()});
    ASSERT_NE(server_, nullptr);
    stub_ = Version::Service::NewStub(server_->channel());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Sends `requests` on one stream and returns the answers, one per request.
  std::vector<Response> AskAll(const std::vector<Request>& requests) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub_->ServerReflectionInfo(&context);
    std::vector<Response> responses;
    for (const Request& request : requests) {
      EXPECT_TRUE(stream->Write(request));
      Response response;
      if (!stream->Read(&response)) break;
      responses.push_back(std::move(response));
    }
    stream->WritesDone();
    Response extra;
    EXPECT_FALSE(stream->Read(&extra)) << "an answer nobody asked for";
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(responses.size(), requests.size());
    return responses;
  }

  Response Ask(const Request& request) {
    std::vector<Response> responses = AskAll({request});
    return responses.empty() ? Response() : responses.front();
  }

  static Request Symbol(const std::string& symbol) {
    Request request;
    request.set_file_containing_symbol(symbol);
    return request;
  }

  static Request File(const std::string& name) {
    Request request;
    request.set_file_by_filename(name);
    return request;
  }

  static Request Extension(const std::string& type, int number) {
    Request request;
    request.mutable_file_containing_extension()->set_containing_type(type);
    request.mutable_file_containing_extension()->set_extension_number(number);
    return request;
  }

  static Request ExtensionNumbers(const std::string& type) {
    Request request;
    request.set_all_extension_numbers_of_type(type);
    return request;
  }

  // Loads the files of `response` into a fresh pool, resolving imports by name the way a
  // reflection client does; nullptr (and a test failure) if they do not all link.
  std::unique_ptr<pb::DescriptorPool> LoadFiles(const Response& response) {
    database_ = std::make_unique<pb::SimpleDescriptorDatabase>();
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      pb::FileDescriptorProto file;
      if (!file.ParseFromString(bytes) || !database_->Add(file)) {
        ADD_FAILURE() << "a file does not parse or comes twice";
        return nullptr;
      }
    }
    auto pool = std::make_unique<pb::DescriptorPool>(database_.get());
    for (const std::string& name : FileNames(response)) {
      if (pool->FindFileByName(name) == nullptr) {
        ADD_FAILURE() << name << " does not link";
        return nullptr;
      }
    }
    return pool;
  }

  HealthState health_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<rpc::LoopService> v1_;
  std::unique_ptr<rpc::LoopService> v1alpha_;
  std::unique_ptr<rpc::LoopService> health_service_;
  std::unique_ptr<testing::LocalServer> server_;
  std::unique_ptr<typename Version::Service::Stub> stub_;
  std::unique_ptr<pb::SimpleDescriptorDatabase> database_;
};

using Versions = ::testing::Types<V1, V1Alpha>;
TYPED_TEST_SUITE(ReflectionTest, Versions);

TYPED_TEST(ReflectionTest, ListsUserAndOwnServices) {
  typename TestFixture::Request request;
  request.set_host("localhost:9000");
  request.set_list_services("*");
  auto response = this->Ask(request);
  EXPECT_EQ(response.valid_host(), "localhost:9000");
  EXPECT_EQ(response.original_request().list_services(), "*");
  ASSERT_TRUE(response.has_list_services_response()) << response.DebugString();
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_THAT(names, ElementsAre("massa.test.Counter", "massa.test.Echo",
                                 "massa.test.reflection.Orders", "massa.admin.v1.Admin",
                                 "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                                 "grpc.reflection.v1alpha.ServerReflection"));
}

TYPED_TEST(ReflectionTest, ServiceComesWithAllItsImportsOnce) {
  auto response = this->Ask(this->Symbol("massa.test.reflection.Orders"));
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  std::vector<std::string> names = FileNames(response);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), kOrdersFile);  // the requested file first
  EXPECT_THAT(names,
              UnorderedElementsAre(kOrdersFile, kServicesFile, kOptionsFile, kDescriptorFile));

  // A client can build the service from what it got.
  std::unique_ptr<pb::DescriptorPool> pool = this->LoadFiles(response);
  ASSERT_NE(pool, nullptr);
  const pb::ServiceDescriptor* orders = pool->FindServiceByName("massa.test.reflection.Orders");
  ASSERT_NE(orders, nullptr);
  ASSERT_EQ(orders->method_count(), 1);
  EXPECT_EQ(orders->method(0)->input_type()->full_name(), "massa.test.reflection.Order");
  EXPECT_EQ(orders->method(0)->output_type()->full_name(), "massa.test.Ping");
  const pb::FieldDescriptor* key = pool->FindFieldByName("massa.test.IncrementRequest.id");
  ASSERT_NE(key, nullptr);
  EXPECT_NE(pool->FindExtensionByName("massa.protocol.v1.entity_key"), nullptr);
}

TYPED_TEST(ReflectionTest, ResolvesEveryKindOfSymbol) {
  struct Case {
    std::string symbol;
    std::string file;
  };
  const std::vector<Case> cases = {
      {"massa.test.Counter", kServicesFile},                      // service
      {"massa.test.Counter.Increment", kServicesFile},            // method
      {"massa.test.IncrementRequest", kServicesFile},             // message
      {"massa.test.IncrementRequest.by", kServicesFile},          // field
      {"massa.test.reflection.Order.Line", kOrdersFile},          // nested message
      {"massa.test.reflection.Order.Line.sku", kOrdersFile},      // field of a nested message
      {"massa.test.reflection.Order.State", kOrdersFile},         // nested enum
      {"massa.test.reflection.Order.STATE_CLOSED", kOrdersFile},  // enum value
      {"massa.test.reflection.Order.payment", kOrdersFile},       // oneof
      {"massa.test.reflection.priority", kOrdersFile},            // extension
      {"massa.protocol.v1.entity_key", kOptionsFile},             // an imported file's symbol
      {"google.protobuf.FieldOptions", kDescriptorFile},
  };
  std::vector<typename TestFixture::Request> requests;
  for (const Case& c : cases) requests.push_back(this->Symbol(c.symbol));
  auto responses = this->AskAll(requests);  // one stream, many requests
  ASSERT_EQ(responses.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].symbol);
    EXPECT_EQ(responses[i].original_request().file_containing_symbol(), cases[i].symbol);
    ASSERT_TRUE(responses[i].has_file_descriptor_response()) << responses[i].DebugString();
    std::vector<std::string> names = FileNames(responses[i]);
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names.front(), cases[i].file);
    EXPECT_EQ(absl::flat_hash_set<std::string>(names.begin(), names.end()).size(), names.size())
        << "a file sent twice";
  }
}

TYPED_TEST(ReflectionTest, MethodFileLoadsIntoFreshPool) {
  auto response = this->Ask(this->Symbol("massa.test.Counter.Increment"));
  EXPECT_THAT(FileNames(response), ElementsAre(kServicesFile, kOptionsFile, kDescriptorFile));
  std::unique_ptr<pb::DescriptorPool> pool = this->LoadFiles(response);
  ASSERT_NE(pool, nullptr);
  const pb::MethodDescriptor* increment = pool->FindMethodByName("massa.test.Counter.Increment");
  ASSERT_NE(increment, nullptr);
  EXPECT_EQ(increment->input_type()->full_name(), "massa.test.IncrementRequest");
}

TYPED_TEST(ReflectionTest, UnknownSymbolIsNotFoundAndStreamGoesOn) {
  auto responses =
      this->AskAll({this->Symbol("massa.test.Nope"), this->Symbol("massa.test.Counter.Nope"),
                    this->Symbol(""), this->Symbol("massa.test.Echo")});
  ASSERT_EQ(responses.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(responses[i].has_error_response()) << responses[i].DebugString();
    EXPECT_EQ(responses[i].error_response().error_code(), kNotFound);
    EXPECT_FALSE(responses[i].error_response().error_message().empty());
  }
  EXPECT_TRUE(responses[3].has_file_descriptor_response());
}

TYPED_TEST(ReflectionTest, SymbolsOfTheBinaryOutsideOwnServicesAreHidden) {
  // google/protobuf/timestamp.proto is in the binary but in neither the user's descriptors
  // nor the files of Massa's own services.
  auto response = this->Ask(this->Symbol("google.protobuf.Timestamp"));
  ASSERT_TRUE(response.has_error_response()) << response.DebugString();
  EXPECT_EQ(response.error_response().error_code(), kNotFound);
}

TYPED_TEST(ReflectionTest, OwnServicesResolveFromTheBinary) {
  auto responses = this->AskAll({this->Symbol("grpc.health.v1.Health"),
                                 this->Symbol("massa.admin.v1.Admin.GetSpec"),
                                 this->Symbol("grpc.reflection.v1alpha.ServerReflection"),
                                 this->File("grpc/reflection/v1/reflection.proto")});
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_THAT(FileNames(responses[0]), ElementsAre("grpc/health/v1/health.proto"));
  EXPECT_THAT(FileNames(responses[1]), ElementsAre("massa/admin/v1/admin.proto"));
  EXPECT_THAT(FileNames(responses[2]), ElementsAre("grpc/reflection/v1alpha/reflection.proto"));
  EXPECT_THAT(FileNames(responses[3]), ElementsAre("grpc/reflection/v1/reflection.proto"));
  std::unique_ptr<pb::DescriptorPool> pool = this->LoadFiles(responses[0]);
  ASSERT_NE(pool, nullptr);
  const pb::ServiceDescriptor* health = pool->FindServiceByName("grpc.health.v1.Health");
  ASSERT_NE(health, nullptr);
  EXPECT_NE(health->FindMethodByName("Watch"), nullptr);
}

TYPED_TEST(ReflectionTest, FileByName) {
  auto responses = this->AskAll(
      {this->File(kServicesFile), this->File(kDescriptorFile), this->File("no/such/file.proto")});
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_THAT(FileNames(responses[0]), ElementsAre(kServicesFile, kOptionsFile, kDescriptorFile));
  EXPECT_THAT(FileNames(responses[1]), ElementsAre(kDescriptorFile));
  ASSERT_TRUE(responses[2].has_error_response()) << responses[2].DebugString();
  EXPECT_EQ(responses[2].error_response().error_code(), kNotFound);

  // The bytes are the function's own FileDescriptorProto.
  pb::FileDescriptorProto sent;
  ASSERT_TRUE(
      sent.ParseFromString(responses[0].file_descriptor_response().file_descriptor_proto(0)));
  pb::FileDescriptorProto compiled;
  massa::test::Ping::descriptor()->file()->CopyTo(&compiled);
  EXPECT_EQ(sent.SerializeAsString(), compiled.SerializeAsString());
}

TYPED_TEST(ReflectionTest, FileContainingExtension) {
  auto responses = this->AskAll({this->Extension("massa.test.reflection.Order", 150),
                                 this->Extension("google.protobuf.FieldOptions", 50510),
                                 this->Extension("massa.test.reflection.Order", 101),
                                 this->Extension("massa.test.Nope", 100)});
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_THAT(FileNames(responses[0]),
              ElementsAre(kOrdersFile, kServicesFile, kOptionsFile, kDescriptorFile));
  EXPECT_THAT(FileNames(responses[1]), ElementsAre(kOptionsFile, kDescriptorFile));
  for (int i : {2, 3}) {
    ASSERT_TRUE(responses[i].has_error_response()) << responses[i].DebugString();
    EXPECT_EQ(responses[i].error_response().error_code(), kNotFound);
  }
}

TYPED_TEST(ReflectionTest, AllExtensionNumbersOfType) {
  auto responses = this->AskAll({this->ExtensionNumbers("massa.test.reflection.Order"),
                                 this->ExtensionNumbers("google.protobuf.FieldOptions"),
                                 this->ExtensionNumbers("massa.test.Nope")});
  ASSERT_EQ(responses.size(), 3u);
  ASSERT_TRUE(responses[0].has_all_extension_numbers_response()) << responses[0].DebugString();
  EXPECT_EQ(responses[0].all_extension_numbers_response().base_type_name(),
            "massa.test.reflection.Order");
  EXPECT_THAT(responses[0].all_extension_numbers_response().extension_number(),
              ElementsAre(100, 150));
  ASSERT_TRUE(responses[1].has_all_extension_numbers_response()) << responses[1].DebugString();
  EXPECT_THAT(responses[1].all_extension_numbers_response().extension_number(),
              IsSupersetOf({50510}));
  ASSERT_TRUE(responses[2].has_error_response()) << responses[2].DebugString();
  EXPECT_EQ(responses[2].error_response().error_code(), kNotFound);
}

TYPED_TEST(ReflectionTest, EmptyRequestIsUnimplemented) {
  auto response = this->Ask(typename TestFixture::Request());
  ASSERT_TRUE(response.has_error_response()) << response.DebugString();
  EXPECT_EQ(response.error_response().error_code(), kUnimplemented);
}

TYPED_TEST(ReflectionTest, ManyConcurrentStreams) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 5; ++i) {
        auto response = this->Ask(this->Symbol("massa.test.reflection.Order.Line"));
        EXPECT_EQ(FileNames(response).size(), 4u);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

// Own services the binary has no descriptors for are not listed.
TEST(ReflectionOptionsTest, UnknownOwnServicesAreLeftOut) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = Catalog::Build(TestSpec());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  ReflectionOptions options;
  options.own_services = {"massa.NoSuchService", "grpc.reflection.v1.ServerReflection"};
  std::unique_ptr<rpc::LoopService> service =
      NewReflectionService(**catalog, ReflectionVersion::kV1, options);
  std::unique_ptr<testing::LocalServer> server = testing::LocalServer::Start({service.get()});
  ASSERT_NE(server, nullptr);
  auto stub = grpc::reflection::v1::ServerReflection::NewStub(server->channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->ServerReflectionInfo(&context);
  grpc::reflection::v1::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names,
              ElementsAre("massa.test.Counter", "massa.test.Echo", "massa.test.reflection.Orders",
                          "grpc.reflection.v1.ServerReflection"));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  server->Shutdown();
}

}  // namespace
}  // namespace massa
