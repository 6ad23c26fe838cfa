// The transcoder over http_test.proto: build-time checks, routing, request transcoding (path,
// body, query) and response transcoding.

#include "ingress/http/transcoder.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "entity/catalog.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "ingress_http/http_test_util.h"
#include "test/ingress_http/http_test.pb.h"

namespace massa::http {
namespace {

namespace pb = google::protobuf;
using http_testing::CatalogOf;
using http_testing::CatalogWithProbe;
using http_testing::kByName;
using http_testing::kLibrary;
using http_testing::kMessaging;
using http_testing::kProbe;
using http_testing::RuleEncoding;
using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace t = massa::http_test;

std::string MessageOf(const absl::Status& status) { return std::string(status.message()); }

HttpRequest Request(std::string_view method, std::string_view path, std::string_view body = "") {
  HttpRequest request;
  request.method = method;
  request.path = path;
  request.body = body;
  return request;
}

// `text` (text format) parsed as T.
template <typename T>
T Proto(const std::string& text) {
  T message;
  EXPECT_TRUE(pb::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

// Asserts that `payload` decodes as T and equals `expected_text`.
template <typename T>
void ExpectPayload(const std::string& payload, const std::string& expected_text) {
  T got;
  ASSERT_TRUE(got.ParseFromString(payload));
  T expected = Proto<T>(expected_text);
  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(got, expected))
      << "got:      " << got.ShortDebugString() << "\nexpected: " << expected.ShortDebugString();
}

// A catalog with the probe method carrying `rule`, and a transcoder over it (which keeps
// pointers into the catalog, so both live together).
struct Probe {
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<Transcoder> transcoder;
};

absl::StatusOr<Probe> BuildProbe(const std::string& rule) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = CatalogWithProbe(rule);
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(**catalog);
  if (!transcoder.ok()) return transcoder.status();
  return Probe{*std::move(catalog), *std::move(transcoder)};
}

// ---------------------------------------------------------------------------------------------
// Build-time checks

struct BuildErrorCase {
  std::string rule;  // of the probe method Call(GetMessageRequest) returns (Message)
  std::string error;
  std::vector<std::string> services = {};
};

class BuildErrorTest : public ::testing::TestWithParam<BuildErrorCase> {};

TEST_P(BuildErrorTest, Fails) {
  const BuildErrorCase& c = GetParam();
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = CatalogWithProbe(c.rule, c.services);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(**catalog);
  ASSERT_FALSE(transcoder.ok()) << c.rule;
  EXPECT_EQ(transcoder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(transcoder.status()), StartsWith("massa.http_test.Probe.Call: "));
  EXPECT_THAT(MessageOf(transcoder.status()), HasSubstr(c.error)) << c.rule;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BuildErrorTest,
    ::testing::Values(
        BuildErrorCase{R"(get: "/v1/{nope}")",
                       "http rule \"GET /v1/{nope}\": path variable 'nope': "
                       "massa.http_test.GetMessageRequest has no field 'nope'"},
        BuildErrorCase{R"(get: "/v1/{sub.nope}")",
                       "path variable 'sub.nope': massa.http_test.GetMessageRequest.SubMessage "
                       "has no field 'nope'"},
        BuildErrorCase{R"(get: "/v1/{ids}")", "path variable 'ids': 'ids' is a repeated field"},
        BuildErrorCase{R"(get: "/v1/{subs.subfield}")",
                       "path variable 'subs.subfield': 'subs' is a repeated field"},
        BuildErrorCase{R"(get: "/v1/{labels}")", "path variable 'labels': 'labels' is a map field"},
        BuildErrorCase{R"(get: "/v1/{sub}")",
                       "path variable 'sub' is a message "
                       "(massa.http_test.GetMessageRequest.SubMessage)"},
        BuildErrorCase{R"(get: "/v1/{at}")",
                       "path variable 'at' is a message (google.protobuf.Timestamp)"},
        BuildErrorCase{R"(get: "/v1/{revision.x}")",
                       "path variable 'revision.x': 'revision' is not a message"},
        BuildErrorCase{R"(get: "/v1/{first}/{second}")",
                       "path variables 'first' and 'second' are in the same oneof"},
        BuildErrorCase{R"(get: "/v1/{message_id")",
                       "http rule \"GET /v1/{message_id\": invalid path template "
                       "\"/v1/{message_id\": unterminated variable at offset 4"},
        BuildErrorCase{R"(get: "v1")", "it must start with '/'"},
        BuildErrorCase{R"(get: "")", "it must start with '/'"},
        BuildErrorCase{R"(post: "/v1" body: "nope")",
                       "http rule \"POST /v1\": body 'nope' is not a field of "
                       "massa.http_test.GetMessageRequest"},
        BuildErrorCase{R"(post: "/v1" body: "sub.subfield")", "(it must be a top-level field)"},
        BuildErrorCase{R"(get: "/v1" response_body: "nope")",
                       "response_body 'nope' is not a field of massa.http_test.Message"},
        BuildErrorCase{R"(get: "/v1" additional_bindings { get: "/v2/{nope}" })",
                       "http rule \"GET /v2/{nope}\": path variable 'nope'"},
        BuildErrorCase{R"(body: "*")", "google.api.http option: the rule has no pattern"},
        // Conflicts: same HTTP method and template shape (variable names do not matter).
        BuildErrorCase{R"(get: "/v1/{message_id}" additional_bindings { get: "/v1/{user_id}" })",
                       "http rule \"GET /v1/{user_id}\" conflicts with GET /v1/{message_id} "
                       "(massa.http_test.Probe.Call): same HTTP method and template"},
        BuildErrorCase{R"(get: "/v1/x:%63ount" additional_bindings { get: "/v1/%78:count" })",
                       "conflicts with GET /v1/x:%63ount"},
        BuildErrorCase{R"(get: "/v1/messages/{user_id}")",
                       "http rule \"GET /v1/messages/{user_id}\" conflicts with "
                       "GET /v1/messages/{message_id} (massa.http_test.Messaging.GetMessage)",
                       {kMessaging}},
        BuildErrorCase{R"(post: "/massa.http_test.Library/Echo" body: "*")",
                       "conflicts with the implicit route POST /massa.http_test.Library/Echo "
                       "(massa.http_test.Library.Echo)",
                       {kLibrary}}));

TEST(TranscoderBuildTest, SameShapeForDifferentServicesConflicts) {
  // The two templates of the spec's first examples match the same paths.
  std::unique_ptr<Catalog> catalog = CatalogOf({kMessaging, kByName});
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(*catalog);
  ASSERT_FALSE(transcoder.ok());
  EXPECT_EQ(MessageOf(transcoder.status()),
            "massa.http_test.ByName.GetMessage: http rule \"GET /v1/{name=messages/*}\" "
            "conflicts with GET /v1/messages/{message_id} "
            "(massa.http_test.Messaging.GetMessage): same HTTP method and template");
}

TEST(TranscoderBuildTest, SameTemplateForOtherMethodsOrAnyMethodIsFine) {
  absl::StatusOr<Probe> probe = BuildProbe(
      R"(get: "/p/{message_id}" additional_bindings { put: "/p/{message_id}" }
         additional_bindings { custom { kind: "*" path: "/p/{message_id}" } })");
  EXPECT_TRUE(probe.ok()) << probe.status();
}

TEST(TranscoderBuildTest, DescribesRoutesMostSpecificFirst) {
  std::unique_ptr<Catalog> catalog = CatalogOf({kMessaging, kLibrary});
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(*catalog);
  ASSERT_TRUE(transcoder.ok()) << transcoder.status();
  std::vector<std::string> routes = (*transcoder)->DescribeRoutes();
  // 5 Messaging routes, 13 Library routes (Watch streams: not served; Echo: implicit).
  EXPECT_EQ(routes.size(), 18u);
  auto index = [&](const std::string& line) {
    auto it = std::find(routes.begin(), routes.end(), line);
    EXPECT_NE(it, routes.end()) << line;
    return it - routes.begin();
  };
  EXPECT_EQ(index("POST /v1/{name=operations/**}:cancel -> massa.http_test.Library.Cancel"), 0);
  EXPECT_EQ(index("GET /v1/shelves/{parent}/messages:count -> "
                  "massa.http_test.Library.CountMessages"),
            1);
  EXPECT_LT(index("GET /v1/files/README -> massa.http_test.Library.GetReadme"),
            index("GET /v1/files/{name=**} -> massa.http_test.Library.GetFile"));
  EXPECT_LT(index("DELETE /v1/any/{name} -> massa.http_test.Library.DeleteAny"),
            index("* /v1/any/{name} -> massa.http_test.Library.Anything"));
  EXPECT_EQ(index("POST /massa.http_test.Library/Echo -> massa.http_test.Library.Echo"),
            index("POST /massa.http_test.Library/Echo -> massa.http_test.Library.Echo"));
}

// ---------------------------------------------------------------------------------------------
// Routing and request transcoding

class TranscoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = CatalogOf({kMessaging, kLibrary});
    absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(*catalog_);
    ASSERT_TRUE(transcoder.ok()) << transcoder.status();
    transcoder_ = *std::move(transcoder);
  }

  // `target` is path[?query].
  absl::StatusOr<TranscodedRequest> Call(const std::string& method, const std::string& target,
                                         const std::string& body = "",
                                         const std::string& content_type = "application/json") {
    const size_t q = target.find('?');
    HttpRequest request;
    request.method = method;
    request.path = std::string_view(target).substr(0, q);
    request.query = q == std::string::npos ? "" : std::string_view(target).substr(q + 1);
    request.content_type = content_type;
    request.body = body;
    return transcoder_->TranscodeRequest(request);
  }

  // "Service.Method" of the route `method target` takes, or the error code and message.
  std::string RouteOf(const std::string& method, const std::string& target) {
    absl::StatusOr<TranscodedRequest> r = Call(method, target);
    if (!r.ok()) return absl::StatusCodeToString(r.status().code()) + ": " + MessageOf(r.status());
    EXPECT_EQ(r->method->name, r->method_name);
    EXPECT_EQ(r->method->service->spec.name, r->service);
    EXPECT_NE(r->route, nullptr);
    return r->service.substr(r->service.rfind('.') + 1) + "." + r->method_name;
  }

  // The error of `method target` (OK when it transcodes).
  absl::Status ErrorOf(const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::string& content_type = "application/json") {
    return Call(method, target, body, content_type).status();
  }

  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<Transcoder> transcoder_;
};

TEST_F(TranscoderTest, Routes) {
  EXPECT_EQ(RouteOf("GET", "/v1/messages/1"), "Messaging.GetMessage");
  EXPECT_EQ(RouteOf("GET", "/v1/users/me/messages/1"), "Messaging.GetMessage");
  EXPECT_EQ(RouteOf("PATCH", "/v1/messages/1"), "Messaging.UpdateMessage");
  EXPECT_EQ(RouteOf("PATCH", "/v2/messages/1"), "Messaging.UpdateMessageAll");
  EXPECT_EQ(RouteOf("GET", "/v1/messages/1/foo"), "Messaging.GetSub");
  EXPECT_EQ(RouteOf("GET", "/v1/shelves/s/messages"), "Library.ListMessages");
  EXPECT_EQ(RouteOf("GET", "/v1/shelves/s/messages:count"), "Library.CountMessages");
  EXPECT_EQ(RouteOf("GET", "/v1/counts"), "Library.CountMessages");
  EXPECT_EQ(RouteOf("POST", "/v1/operations/a/b:cancel"), "Library.Cancel");
  EXPECT_EQ(RouteOf("GET", "/v1/files/README"), "Library.GetReadme");  // literal beats **
  EXPECT_EQ(RouteOf("GET", "/v1/files/README/x"), "Library.GetFile");
  EXPECT_EQ(RouteOf("GET", "/v1/files"), "Library.GetFile");  // ** matches zero segments
  EXPECT_EQ(RouteOf("HEAD", "/v1/files/a/b"), "Library.Head");
  EXPECT_EQ(RouteOf("PUT", "/v1/messages/1/tags"), "Library.SetTags");
  EXPECT_EQ(RouteOf("GET", "/v1/any/x"), "Library.Anything");  // custom "*": any method
  EXPECT_EQ(RouteOf("POST", "/v1/any/x"), "Library.Anything");
  EXPECT_EQ(RouteOf("DELETE", "/v1/any/x"), "Library.DeleteAny");  // exact method wins
  EXPECT_EQ(RouteOf("POST", "/massa.http_test.Library/Echo"), "Library.Echo");
  EXPECT_EQ(RouteOf("GET", "/v1/%6Dessages/1"), "Messaging.GetMessage");  // normalized
}

TEST_F(TranscoderTest, UnknownRoutesAreUnimplemented) {
  EXPECT_EQ(RouteOf("GET", "/nope"), "UNIMPLEMENTED: no HTTP route for GET /nope");
  EXPECT_EQ(RouteOf("GET", "/v1/messages"), "UNIMPLEMENTED: no HTTP route for GET /v1/messages");
  EXPECT_EQ(RouteOf("GET", "/v1/messages/1/"),  // trailing slash
            "UNIMPLEMENTED: no HTTP route for GET /v1/messages/1/");
  // A method with a rule has no implicit route; a streaming method none at all.
  EXPECT_EQ(RouteOf("POST", "/massa.http_test.Messaging/GetMessage"),
            "UNIMPLEMENTED: no HTTP route for POST /massa.http_test.Messaging/GetMessage");
  EXPECT_EQ(RouteOf("GET", "/v1/watch/x"), "UNIMPLEMENTED: no HTTP route for GET /v1/watch/x");
  EXPECT_EQ(RouteOf("POST", "/v1/operations/a:get"),
            "UNIMPLEMENTED: no HTTP route for POST /v1/operations/a:get");
  // Long or unprintable paths are shortened in the message.
  std::string long_path = "/" + std::string(1000, 'a');
  EXPECT_LT(RouteOf("GET", long_path).size(), 300u);
  EXPECT_EQ(RouteOf("G\nT", "/x\x01"), "UNIMPLEMENTED: no HTTP route for G?T /x?");
}

TEST_F(TranscoderTest, WrongHttpMethodListsTheMethodsThePathAccepts) {
  EXPECT_EQ(RouteOf("DELETE", "/v1/messages/1"),
            "UNIMPLEMENTED: no HTTP route for DELETE /v1/messages/1; the path accepts GET, PATCH");
  EXPECT_EQ(RouteOf("POST", "/v1/files/a"),
            "UNIMPLEMENTED: no HTTP route for POST /v1/files/a; the path accepts GET, HEAD");
  EXPECT_EQ(RouteOf("GET", "/massa.http_test.Library/Echo"),
            "UNIMPLEMENTED: no HTTP route for GET /massa.http_test.Library/Echo; the path "
            "accepts POST");
  EXPECT_EQ(RouteOf("get", "/v1/counts"),  // methods are case-sensitive
            "UNIMPLEMENTED: no HTTP route for get /v1/counts; the path accepts GET");
}

TEST_F(TranscoderTest, MalformedPathIsInvalid) {
  absl::Status status = ErrorOf("GET", "/v1/messages/%zz");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), HasSubstr("malformed percent-encoding"));
}

// The mappings in the comments of google/api/http.proto.
TEST_F(TranscoderTest, HttpProtoExamples) {
  absl::StatusOr<TranscodedRequest> r =
      Call("GET", "/v1/messages/123456?revision=2&sub.subfield=foo");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(
      r->payload, R"(message_id: "123456" revision: 2 sub { subfield: "foo" })");

  r = Call("PATCH", "/v1/messages/123456", R"({ "text": "Hi!" })");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::UpdateMessageRequest>(r->payload,
                                         R"(message_id: "123456" message { text: "Hi!" })");

  r = Call("PATCH", "/v2/messages/123456", R"({ "text": "Hi!" })");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::Message>(r->payload, R"(message_id: "123456" text: "Hi!")");

  r = Call("GET", "/v1/messages/123456");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(r->payload, R"(message_id: "123456")");

  r = Call("GET", "/v1/users/me/messages/123456");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(r->payload, R"(user_id: "me" message_id: "123456")");

  r = Call("GET", "/v1/messages/123456/foo");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(r->payload,
                                      R"(message_id: "123456" sub { subfield: "foo" })");
}

TEST(ByNameTest, MultiSegmentVariableFromTheSpec) {
  std::unique_ptr<Catalog> catalog = CatalogOf({kByName});
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(*catalog);
  ASSERT_TRUE(transcoder.ok()) << transcoder.status();
  absl::StatusOr<TranscodedRequest> r =
      (*transcoder)->TranscodeRequest(Request("GET", "/v1/messages/123456"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->service, kByName);
  EXPECT_EQ(r->method_name, "GetMessage");
  ExpectPayload<t::GetByNameRequest>(r->payload, R"(name: "messages/123456")");
}

TEST_F(TranscoderTest, PathVariablesAreDecodedAndConverted) {
  absl::StatusOr<TranscodedRequest> r = Call("GET", "/v1/messages/a%20b%2Fc");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(r->payload, R"(message_id: "a b/c")");

  r = Call("GET", "/v1/files/dir%20x/a%2Fb/c");  // multi-segment: %2F stays
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::FileRequest>(r->payload, R"(name: "dir x/a%2Fb/c")");

  r = Call("POST", "/v1/operations/op-1:cancel");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetByNameRequest>(r->payload, R"(name: "operations/op-1")");

  absl::Status status = ErrorOf("GET", "/v1/messages/%FF");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status),
            "path variable 'message_id': field 'message_id': the value is not UTF-8");
}

TEST_F(TranscoderTest, PathVariableConversionErrorsNameTheVariable) {
  absl::StatusOr<Probe> probe = BuildProbe(R"(get: "/p/{revision}/{sub.color}/{flag}")");
  ASSERT_TRUE(probe.ok()) << probe.status();
  const Transcoder& transcoder = *probe->transcoder;
  absl::StatusOr<TranscodedRequest> r =
      transcoder.TranscodeRequest(Request("GET", "/p/-7/GREEN/true"));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(r->payload,
                                      R"(revision: -7 sub { color: GREEN } flag: true)");

  r = transcoder.TranscodeRequest(Request("GET", "/p/x/GREEN/true"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(r.status()),
            "path variable 'revision': field 'revision': \"x\" is not a 64-bit integer");

  r = transcoder.TranscodeRequest(Request("GET", "/p/1/BLUE/true"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(MessageOf(r.status()),
            "path variable 'sub.color': field 'color': \"BLUE\" is not a value of "
            "massa.http_test.Color");
}

TEST_F(TranscoderTest, QueryParametersSetEveryKindOfField) {
  absl::StatusOr<TranscodedRequest> r =
      Call("GET",
           "/v1/messages/1?i32=-3&u32=4&u64=18446744073709551615&s64=-9&ratio=0.5&small=1.5"
           "&flag=true&blob=aGk%3D&color=GREEN&ids=1&ids=2&colors=RED&colors=2&tags=a+b&tags=c%26d"
           "&sub.color=RED&sub.number=5&userId=u&first=f"
           "&at=2020-01-02T03:04:05Z&ttl=1.5s&limit=7&enabled=true&mask=sub.subfield,revision");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(
      r->payload,
      R"(message_id: "1" i32: -3 u32: 4 u64: 18446744073709551615 s64: -9 ratio: 0.5
         small: 1.5 flag: true blob: "hi" color: GREEN ids: 1 ids: 2 colors: RED colors: GREEN
         tags: "a b" tags: "c&d" sub { color: RED number: 5 } user_id: "u" first: "f"
         at { seconds: 1577934245 } ttl { seconds: 1 nanos: 500000000 } limit { value: 7 }
         enabled { value: true } mask { paths: "sub.subfield" paths: "revision" })");
}

struct QueryErrorCase {
  std::string query;
  std::string error;  // the whole message
};

class QueryErrorTest : public TranscoderTest,
                       public ::testing::WithParamInterface<QueryErrorCase> {};

TEST_P(QueryErrorTest, Fails) {
  absl::Status status = ErrorOf("GET", "/v1/messages/1?" + GetParam().query);
  ASSERT_FALSE(status.ok()) << GetParam().query;
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, QueryErrorTest,
    ::testing::Values(
        QueryErrorCase{"nope=1",
                       "query parameter 'nope': massa.http_test.GetMessageRequest has no field "
                       "'nope'"},
        QueryErrorCase{"sub.nope=1",
                       "query parameter 'sub.nope': massa.http_test.GetMessageRequest.SubMessage "
                       "has no field 'nope'"},
        QueryErrorCase{"message_id=2",
                       "query parameter 'message_id': the field is bound by the path"},
        QueryErrorCase{"messageId=2",
                       "query parameter 'messageId': the field is bound by the path"},
        QueryErrorCase{"revision=1&revision=2",
                       "query parameter 'revision': given more than once for a field that is not "
                       "repeated"},
        QueryErrorCase{"revision=x",
                       "query parameter 'revision': field 'revision': \"x\" is not a 64-bit "
                       "integer"},
        QueryErrorCase{"sub=x",
                       "query parameter 'sub': 'sub' is a message; set its fields "
                       "(sub.<field>=...)"},
        QueryErrorCase{"extra=x",
                       "query parameter 'extra': 'extra' is a message; set its fields "
                       "(extra.<field>=...)"},
        QueryErrorCase{"labels.a=1", "query parameter 'labels.a': 'labels' is a map field"},
        QueryErrorCase{"labels=1", "query parameter 'labels': 'labels' is a map field"},
        QueryErrorCase{"subs.subfield=x",
                       "query parameter 'subs.subfield': 'subs' is a repeated message (send it in "
                       "a JSON body)"},
        QueryErrorCase{"revision.x=1", "query parameter 'revision.x': 'revision' is not a message"},
        QueryErrorCase{"first=a&second=b",
                       "query parameter 'second': another field of oneof 'choice' ('first') is "
                       "already set"},
        QueryErrorCase{"revision=%zz", "malformed percent-encoding in query parameter 'revision'"},
        QueryErrorCase{"=1",
                       "query parameter '': massa.http_test.GetMessageRequest has no field ''"}));

TEST_F(TranscoderTest, WellKnownTypeQueryErrorsCarryProtobufsMessage) {
  absl::Status status = ErrorOf("GET", "/v1/messages/1?at=yesterday");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), StartsWith("query parameter 'at': invalid JSON value: "));
  EXPECT_THAT(MessageOf(status), HasSubstr("yesterday"));

  status = ErrorOf("GET", "/v1/messages/1?limit=seven");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), StartsWith("query parameter 'limit': invalid JSON value: "));
}

TEST_F(TranscoderTest, BodyStarIsTheWholeMessageAndThePathWins) {
  absl::StatusOr<TranscodedRequest> r =
      Call("PATCH", "/v2/messages/7",
           R"({"messageId": "8", "text": "t", "tags": ["a", "b"], "created": "2020-01-02T03:04:05Z",
          "views": "12", "color": "GREEN", "extra": {"k": [1, "x", null]}, "priority": 3})");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::Message>(
      r->payload,
      R"(message_id: "7" text: "t" tags: "a" tags: "b" created { seconds: 1577934245 }
         views: 12 color: GREEN priority: 3
         extra { fields { key: "k" value { list_value {
           values { number_value: 1 } values { string_value: "x" } values { null_value: NULL_VALUE }
         } } } })");

  // Proto field names are accepted too, and numbers for int64 and enums.
  r = Call("PATCH", "/v2/messages/7", R"({"message_id": "8", "views": 12, "color": 1})");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::Message>(r->payload, R"(message_id: "7" views: 12 color: RED)");
}

TEST_F(TranscoderTest, BodyFieldIsThatField) {
  absl::StatusOr<TranscodedRequest> r =
      Call("PATCH", "/v1/messages/1", R"({"messageId": "inner", "text": "x"})");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::UpdateMessageRequest>(
      r->payload, R"(message_id: "1" message { message_id: "inner" text: "x" })");

  // A repeated field as the body: a JSON array; the query may set the other fields.
  r = Call("PUT", "/v1/messages/1/tags?limit=3", R"(["a", "b"])");
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::TagsRequest>(r->payload, R"(message_id: "1" tags: "a" tags: "b" limit: 3)");

  absl::Status status = ErrorOf("PUT", "/v1/messages/1/tags?tags=x", R"(["a"])");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status), "query parameter 'tags': the field is sent in the request body");

  // The body cannot reach other fields of the request.
  status = ErrorOf("PUT", "/v1/messages/1/tags", R"(["a"], "limit": 5)");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status), "invalid JSON body: expected a single JSON value for field 'tags'");

  status = ErrorOf("PUT", "/v1/messages/1/tags", R"({"a": 1})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), StartsWith("invalid JSON body: "));
}

TEST_F(TranscoderTest, EmptyBodyIsAnEmptyMessage) {
  for (const char* body : {"", " \r\n\t"}) {
    absl::StatusOr<TranscodedRequest> r = Call("PATCH", "/v2/messages/7", body);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectPayload<t::Message>(r->payload, R"(message_id: "7")");
  }
  absl::StatusOr<TranscodedRequest> r = Call("POST", "/massa.http_test.Library/Echo", "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->payload, "");
  // Without a body the content type does not matter.
  r = Call("PATCH", "/v1/messages/1", "", "text/plain");
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(TranscoderTest, InvalidJsonAndUnknownFieldsAreRejected) {
  absl::Status status = ErrorOf("PATCH", "/v2/messages/7", R"({"text": "t", "nope": 1})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), StartsWith("invalid JSON body: "));
  EXPECT_THAT(MessageOf(status), HasSubstr("nope"));

  status = ErrorOf("PATCH", "/v2/messages/7", R"({"text": )");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), StartsWith("invalid JSON body: "));

  status = ErrorOf("PATCH", "/v2/messages/7", R"({"views": "many"})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MessageOf(status), StartsWith("invalid JSON body: "));

  status = ErrorOf("PATCH", "/v2/messages/7", R"({"color": "BLUE"})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  status = ErrorOf("PATCH", "/v2/messages/7", R"([1])");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  status = ErrorOf("PATCH", "/v1/messages/7", R"({"message": {"nope": 1}})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);  // body "message": unknown field
}

TEST_F(TranscoderTest, ContentTypeMustBeJson) {
  absl::Status status = ErrorOf("PATCH", "/v2/messages/7", R"({"text": "t"})", "text/plain");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status),
            "content type 'text/plain' is not supported; send the body as application/json");
  status = ErrorOf("PATCH", "/v2/messages/7", "text=t", "application/x-www-form-urlencoded");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      ErrorOf("PATCH", "/v2/messages/7", R"({"text": "t"})", "application/json; charset=utf-8")
          .ok());
  EXPECT_TRUE(ErrorOf("PATCH", "/v2/messages/7", R"({"text": "t"})", "").ok());
}

TEST_F(TranscoderTest, RulesWithoutBodyRejectABody) {
  absl::Status status = ErrorOf("GET", "/v1/messages/1", R"({"revision": "2"})");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status),
            "GET /v1/messages/{message_id} takes no request body (at most an empty JSON object)");
  status = ErrorOf("POST", "/v1/operations/a:cancel", "{\"name\": \"x\"}");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  // Blank or "{}" is no body (whatever the content type).
  for (const char* body : {"", " ", "{}", " { \n } "}) {
    absl::StatusOr<TranscodedRequest> r = Call("POST", "/v1/operations/a:cancel", body, "");
    ASSERT_TRUE(r.ok()) << body << ": " << r.status();
    ExpectPayload<t::GetByNameRequest>(r->payload, R"(name: "operations/a")");
  }
}

TEST_F(TranscoderTest, BodyStarTakesNoQueryParameters) {
  absl::Status status = ErrorOf("PATCH", "/v2/messages/7?text=t", "{}");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageOf(status),
            "query parameter 'text': PATCH /v2/messages/{message_id} takes every field from the "
            "path and the body (body \"*\"), none from the query");
  // An empty query is no parameter.
  EXPECT_TRUE(ErrorOf("PATCH", "/v2/messages/7?", "{}").ok());
  EXPECT_TRUE(ErrorOf("PATCH", "/v2/messages/7?&", "{}").ok());
}

TEST(TranscoderProbeTest, RuleGivenAsUnknownFieldRoutes) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = CatalogWithProbe(
      R"(get: "/probe/{message_id}" additional_bindings { post: "/probe" body: "*" })", {},
      "GetMessageRequest", "Message", RuleEncoding::kUnknownField);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(**catalog);
  ASSERT_TRUE(transcoder.ok()) << transcoder.status();
  absl::StatusOr<TranscodedRequest> r = (*transcoder)->TranscodeRequest(Request("GET", "/probe/5"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->service, kProbe);
  EXPECT_EQ(r->method_name, "Call");
  ExpectPayload<t::GetMessageRequest>(r->payload, R"(message_id: "5")");
  r = (*transcoder)->TranscodeRequest(Request("POST", "/probe", R"({"revision": "3"})"));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectPayload<t::GetMessageRequest>(r->payload, R"(revision: 3)");
  // The rule replaces the implicit route.
  r = (*transcoder)->TranscodeRequest(Request("POST", "/massa.http_test.Probe/Call", "{}"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
}

// ---------------------------------------------------------------------------------------------
// Response transcoding

class ResponseTest : public TranscoderTest {
 protected:
  // The JSON for `reply` (text format of the method's output type) to `method target`.
  template <typename T>
  std::string Json(const std::string& method, const std::string& target, const std::string& reply) {
    absl::StatusOr<TranscodedRequest> r = Call(method, target);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    absl::StatusOr<std::string> json =
        transcoder_->TranscodeResponse(*r->route, Proto<T>(reply).SerializeAsString());
    EXPECT_TRUE(json.ok()) << json.status();
    return json.ok() ? *json : "";
  }
};

TEST_F(ResponseTest, WholeMessagePrintsDefaultsInLowerCamel) {
  EXPECT_EQ(Json<t::Message>("GET", "/v1/messages/1",
                             R"(message_id: "1" views: 5 color: GREEN created { seconds: 1 }
                                tags: "x" note: "n")"),
            // (Member order is protobuf's printer's.)
            R"({"messageId":"1","text":"","tags":["x"],"views":"5","color":"GREEN",)"
            R"("created":"1970-01-01T00:00:01Z","note":"n"})");
  // Unset message fields and oneofs are left out; primitives and repeated fields are printed.
  EXPECT_EQ(Json<t::Message>("GET", "/v1/messages/1", ""),
            R"({"messageId":"","text":"","tags":[],"views":"0","color":"COLOR_UNSPECIFIED"})");
  EXPECT_EQ(Json<t::Message>("POST", "/v1/any/x",
                             R"(extra { fields { key: "a" value { bool_value: true } } })"),
            R"({"messageId":"","text":"","tags":[],"views":"0","color":"COLOR_UNSPECIFIED",)"
            R"("extra":{"a":true}})");
}

TEST_F(ResponseTest, ResponseBodyField) {
  // Repeated message field.
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/shelves/s/messages",
                               R"(messages { message_id: "a" } messages { text: "b" }
                                  next_page_token: "dropped" total: 2)"),
            R"([{"messageId":"a","text":"","tags":[],"views":"0","color":"COLOR_UNSPECIFIED"},)"
            R"({"messageId":"","text":"b","tags":[],"views":"0","color":"COLOR_UNSPECIFIED"}])");
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/shelves/s/messages", "total: 2"), "[]");
  // Primitive field.
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/shelves/s/messages:count",
                               R"(total: 3 messages { text: "x" })"),
            "3");
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/shelves/s/messages:count", ""), "0");
  // Map field.
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/counts", R"(counts { key: "a" value: 1 } total: 1)"),
            R"({"a":1})");
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/counts", ""), "{}");
  // Message field, set and unset.
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/first", R"(first { text: "f" } total: 1)"),
            R"({"messageId":"","text":"f","tags":[],"views":"0","color":"COLOR_UNSPECIFIED"})");
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/first", ""),
            R"({"messageId":"","text":"","tags":[],"views":"0","color":"COLOR_UNSPECIFIED"})");
  // Well-known type field.
  EXPECT_EQ(Json<t::ListReply>("GET", "/v1/as-of", "as_of { seconds: 10 }"),
            R"("1970-01-01T00:00:10Z")");
  // Repeated primitive field, with characters JSON escapes.
  EXPECT_EQ(
      Json<t::TagsRequest>("PUT", "/v1/messages/1/tags", R"(tags: "a" tags: "b\"c,}" limit: 2)"),
      R"(["a","b\"c,}"])");
  // Empty.
  EXPECT_EQ(Json<pb::Empty>("POST", "/v1/operations/a:cancel", ""), "{}");
}

TEST(ResponseProbeTest, UnsetOneofResponseBodyIsNull) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog =
      CatalogWithProbe(R"(get: "/p" response_body: "note")");
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(**catalog);
  ASSERT_TRUE(transcoder.ok()) << transcoder.status();
  absl::StatusOr<TranscodedRequest> r = (*transcoder)->TranscodeRequest(Request("GET", "/p"));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::string> json =
      (*transcoder)
          ->TranscodeResponse(*r->route, Proto<t::Message>("priority: 1").SerializeAsString());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, "null");
  json = (*transcoder)
             ->TranscodeResponse(*r->route, Proto<t::Message>("note: \"hi\"").SerializeAsString());
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"("hi")");
}

TEST_F(ResponseTest, ReplyThatDoesNotDecodeIsInternal) {
  absl::StatusOr<TranscodedRequest> r = Call("GET", "/v1/messages/1");
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::string> json = transcoder_->TranscodeResponse(*r->route, "\xff\xff\xff");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(MessageOf(json.status()),
            "the reply of massa.http_test.Messaging.GetMessage does not decode as "
            "massa.http_test.Message");
}

TEST_F(TranscoderTest, ConcurrentUseGivesTheSameResults) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < kRounds; ++round) {
        absl::StatusOr<TranscodedRequest> r =
            Call("PATCH", "/v2/messages/" + std::to_string(i),
                 R"({"text": "t", "created": "2020-01-02T03:04:05Z"})");
        if (!r.ok()) {
          ++failures[i];
          continue;
        }
        t::Message message;
        if (!message.ParseFromString(r->payload) || message.message_id() != std::to_string(i)) {
          ++failures[i];
        }
        absl::StatusOr<std::string> json = transcoder_->TranscodeResponse(*r->route, r->payload);
        if (!json.ok() ||
            json->find("\"messageId\":\"" + std::to_string(i) + "\"") == std::string::npos) {
          ++failures[i];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
}

}  // namespace
}  // namespace massa::http
