// Reading google.api.http rules from methods of a run-time pool, whether the option arrives as
// the typed extension or as an unknown field.

#include "ingress/http/http_rule.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "ingress_http/http_test_util.h"

namespace massa::http {
namespace {

using http_testing::CatalogOf;
using http_testing::CatalogWithProbe;
using http_testing::kLibrary;
using http_testing::kMessaging;
using http_testing::kProbe;
using http_testing::RuleEncoding;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const google::protobuf::MethodDescriptor& MethodOf(const Catalog& catalog,
                                                   const std::string& service,
                                                   const std::string& method) {
  const MethodInfo* info = catalog.FindMethod(service, method);
  EXPECT_NE(info, nullptr) << service << "/" << method;
  return *info->descriptor;
}

TEST(HttpRuleTest, ReadsRuleAndAdditionalBindings) {
  std::unique_ptr<Catalog> catalog = CatalogOf({kMessaging, kLibrary});
  absl::StatusOr<std::vector<HttpBinding>> bindings =
      ReadHttpBindings(MethodOf(*catalog, kMessaging, "GetMessage"));
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  EXPECT_THAT(*bindings,
              ElementsAre(HttpBinding{"GET", "/v1/messages/{message_id}", "", ""},
                          HttpBinding{"GET", "/v1/users/{user_id}/messages/{message_id}", "", ""}));

  bindings = ReadHttpBindings(MethodOf(*catalog, kMessaging, "UpdateMessage"));
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  EXPECT_THAT(*bindings,
              ElementsAre(HttpBinding{"PATCH", "/v1/messages/{message_id}", "message", ""}));

  bindings = ReadHttpBindings(MethodOf(*catalog, kLibrary, "CountMessages"));
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  EXPECT_THAT(*bindings,
              ElementsAre(HttpBinding{"GET", "/v1/shelves/{parent}/messages:count", "", "total"},
                          HttpBinding{"GET", "/v1/counts", "", "counts"},
                          HttpBinding{"GET", "/v1/first", "", "first"},
                          HttpBinding{"GET", "/v1/as-of", "", "as_of"}));

  bindings = ReadHttpBindings(MethodOf(*catalog, kLibrary, "Head"));
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  EXPECT_THAT(*bindings, ElementsAre(HttpBinding{"HEAD", "/v1/files/{name=**}", "", ""}));
  EXPECT_EQ((*bindings)[0].Describe(), "HEAD /v1/files/{name=**}");
}

TEST(HttpRuleTest, MethodWithoutRuleHasNoBindings) {
  std::unique_ptr<Catalog> catalog = CatalogOf({kLibrary});
  absl::StatusOr<std::vector<HttpBinding>> bindings =
      ReadHttpBindings(MethodOf(*catalog, kLibrary, "Echo"));
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  EXPECT_TRUE(bindings->empty());
}

class EncodingTest : public ::testing::TestWithParam<RuleEncoding> {};

TEST_P(EncodingTest, ReadsEveryPatternKind) {
  const std::string rule =
      R"(put: "/a/{message_id}" body: "*" response_body: "text"
         additional_bindings { post: "/b" }
         additional_bindings { delete: "/c" }
         additional_bindings { patch: "/d" body: "sub" }
         additional_bindings { get: "/e" }
         additional_bindings { custom { kind: "OPTIONS" path: "/f" } })";
  absl::StatusOr<std::unique_ptr<Catalog>> catalog =
      CatalogWithProbe(rule, {}, "GetMessageRequest", "Message", GetParam());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<std::vector<HttpBinding>> bindings =
      ReadHttpBindings(MethodOf(**catalog, kProbe, "Call"));
  ASSERT_TRUE(bindings.ok()) << bindings.status();
  EXPECT_THAT(*bindings,
              ElementsAre(HttpBinding{"PUT", "/a/{message_id}", "*", "text"},
                          HttpBinding{"POST", "/b", "", ""}, HttpBinding{"DELETE", "/c", "", ""},
                          HttpBinding{"PATCH", "/d", "sub", ""}, HttpBinding{"GET", "/e", "", ""},
                          HttpBinding{"OPTIONS", "/f", "", ""}));
}

INSTANTIATE_TEST_SUITE_P(BothEncodings, EncodingTest,
                         ::testing::Values(RuleEncoding::kExtension, RuleEncoding::kUnknownField));

struct RuleErrorCase {
  std::string rule;
  std::string error;
};

class RuleErrorTest : public ::testing::TestWithParam<RuleErrorCase> {};

TEST_P(RuleErrorTest, Fails) {
  absl::StatusOr<std::unique_ptr<Catalog>> catalog = CatalogWithProbe(GetParam().rule);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  absl::StatusOr<std::vector<HttpBinding>> bindings =
      ReadHttpBindings(MethodOf(**catalog, kProbe, "Call"));
  ASSERT_FALSE(bindings.ok());
  EXPECT_EQ(bindings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bindings.status().message()),
              HasSubstr("massa.http_test.Probe.Call: google.api.http option: "));
  EXPECT_THAT(std::string(bindings.status().message()), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, RuleErrorTest,
    ::testing::Values(
        RuleErrorCase{R"(body: "*")", "the rule has no pattern"},
        RuleErrorCase{R"(get: "/a" additional_bindings { body: "*" })",
                      "an additional binding has no pattern"},
        RuleErrorCase{R"(custom { path: "/a" })", "custom pattern for \"/a\" has no kind"},
        RuleErrorCase{R"(get: "/a" additional_bindings { get: "/b"
                         additional_bindings { get: "/c" } })",
                      "additional binding GET /b has additional_bindings of its own"}));

}  // namespace
}  // namespace massa::http
