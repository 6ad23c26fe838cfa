// Path templates: the parser (every template of google/api/http.proto's comments, then the
// errors), the matcher and the specificity order.

#include "ingress/http/path_template.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

struct ParseCase {
  std::string text;
  std::string canonical;               // ToString()
  std::string shape;                   // Shape()
  std::vector<std::string> variables;  // field paths, in order
  std::vector<bool> multi;             // Variable::multi_segment, in order
  std::string verb;
};

class ParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseTest, Parses) {
  const ParseCase& c = GetParam();
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse(c.text);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->text(), c.text);
  EXPECT_EQ(t->ToString(), c.canonical);
  EXPECT_EQ(t->Shape(), c.shape);
  EXPECT_EQ(t->verb(), c.verb);
  std::vector<std::string> names;
  std::vector<bool> multi;
  for (const PathTemplate::Variable& v : t->variables()) {
    std::string name;
    for (const std::string& part : v.field_path) name += (name.empty() ? "" : ".") + part;
    names.push_back(name);
    multi.push_back(v.multi_segment);
  }
  EXPECT_EQ(names, c.variables);
  EXPECT_EQ(multi, c.multi);
  // The canonical form parses to the same template.
  absl::StatusOr<PathTemplate> again = PathTemplate::Parse(t->ToString());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToString(), c.canonical);
  EXPECT_EQ(again->segments(), t->segments());
}

INSTANTIATE_TEST_SUITE_P(
    HttpProtoExamples, ParseTest,
    ::testing::Values(
        // The templates in the comments of google/api/http.proto.
        ParseCase{"/v1/{name=messages/*}",
                  "/v1/{name=messages/*}",
                  "/v1/messages/*",
                  {"name"},
                  {true},
                  ""},
        ParseCase{"/v1/messages/{message_id}",
                  "/v1/messages/{message_id=*}",
                  "/v1/messages/*",
                  {"message_id"},
                  {false},
                  ""},
        ParseCase{"/v1/users/{user_id}/messages/{message_id}",
                  "/v1/users/{user_id=*}/messages/{message_id=*}",
                  "/v1/users/*/messages/*",
                  {"user_id", "message_id"},
                  {false, false},
                  ""},
        ParseCase{"/v1/messages/{message_id}/{sub.subfield}",
                  "/v1/messages/{message_id=*}/{sub.subfield=*}",
                  "/v1/messages/*/*",
                  {"message_id", "sub.subfield"},
                  {false, false},
                  ""},
        // "{var}" is "{var=*}"; "{var=foo/*}" and "{var=**}" are multi-segment.
        ParseCase{"/{var}", "/{var=*}", "/*", {"var"}, {false}, ""},
        ParseCase{"/{var=*}", "/{var=*}", "/*", {"var"}, {false}, ""},
        ParseCase{"/{var=foo/*}", "/{var=foo/*}", "/foo/*", {"var"}, {true}, ""},
        ParseCase{"/{var=**}", "/{var=**}", "/**", {"var"}, {true}, ""}));

INSTANTIATE_TEST_SUITE_P(
    Grammar, ParseTest,
    ::testing::Values(
        ParseCase{"/a", "/a", "/a", {}, {}, ""},
        ParseCase{"/a/b/c", "/a/b/c", "/a/b/c", {}, {}, ""},
        ParseCase{"/*", "/*", "/*", {}, {}, ""}, ParseCase{"/**", "/**", "/**", {}, {}, ""},
        ParseCase{"/a/*/b/**", "/a/*/b/**", "/a/*/b/**", {}, {}, ""},
        ParseCase{"/v1/{name=operations/**}:cancel",
                  "/v1/{name=operations/**}:cancel",
                  "/v1/operations/**:cancel",
                  {"name"},
                  {true},
                  "cancel"},
        ParseCase{"/v1/*:verb", "/v1/*:verb", "/v1/*:verb", {}, {}, "verb"},
        ParseCase{"/v1/{a}:do-it", "/v1/{a=*}:do-it", "/v1/*:do-it", {"a"}, {false}, "do-it"},
        ParseCase{"/{a=x}", "/{a=x}", "/x", {"a"}, {false}, ""},
        ParseCase{"/{a.b.c=x/y/z}/w", "/{a.b.c=x/y/z}/w", "/x/y/z/w", {"a.b.c"}, {true}, ""},
        ParseCase{"/{_a1=*}/{b_2}", "/{_a1=*}/{b_2=*}", "/*/*", {"_a1", "b_2"}, {false, false}, ""},
        // Literals: sub-delims, '@', escapes (normalized: unreserved decoded, hex upper case).
        ParseCase{"/a=b/c@d/x,y;z/(p)+$!&'",
                  "/a=b/c@d/x,y;z/(p)+$!&'",
                  "/a=b/c@d/x,y;z/(p)+$!&'",
                  {},
                  {},
                  ""},
        ParseCase{"/%7euser/%2fx/%41", "/~user/%2Fx/A", "/~user/%2Fx/A", {}, {}, ""},
        ParseCase{"/v1/files:%41", "/v1/files:A", "/v1/files:A", {}, {}, "A"},
        ParseCase{"/example.shoppingcart.ShoppingCart/AddItem",
                  "/example.shoppingcart.ShoppingCart/AddItem",
                  "/example.shoppingcart.ShoppingCart/AddItem",
                  {},
                  {},
                  ""}));

struct ErrorCase {
  std::string text;
  std::string error;  // a substring of the message
};

class ParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrorTest, Fails) {
  const ErrorCase& c = GetParam();
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse(c.text);
  ASSERT_FALSE(t.ok()) << c.text << " parsed as " << t->ToString();
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.error)) << c.text;
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("\"" + c.text + "\""));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, ParseErrorTest,
    ::testing::Values(
        ErrorCase{"", "must start with '/'"}, ErrorCase{"v1/a", "must start with '/'"},
        ErrorCase{"/", "empty segment at offset 1"},
        ErrorCase{"/a//b", "empty segment at offset 3"},
        ErrorCase{"/a/", "empty segment at offset 3"},
        ErrorCase{"/a/**/b", "'**' must be the last segment"},
        ErrorCase{"/{a=**}/b", "'**' must be the last segment"},
        ErrorCase{"/**/**", "'**' must be the last segment"},
        ErrorCase{"/a*", "'*' and '**' must be whole segments at offset 2"},
        ErrorCase{"/*a", "'*' and '**' must be whole segments at offset 2"},
        ErrorCase{"/***", "'*' and '**' must be whole segments at offset 3"},
        ErrorCase{"/a b", "character ' ' is not allowed"},
        ErrorCase{"/a?b", "character '?' is not allowed"},
        ErrorCase{"/a#", "character '#' is not allowed"},
        ErrorCase{"/a\x01", "character '\\x01' is not allowed"},
        ErrorCase{"/%zz", "malformed percent escape at offset 1"},
        ErrorCase{"/a%4", "malformed percent escape at offset 2"},
        ErrorCase{"/{a", "unterminated variable at offset 1"},
        ErrorCase{"/{a=b/*", "unterminated variable at offset 1"},
        ErrorCase{"/{}", "expected a field name at offset 2"},
        ErrorCase{"/{1a}", "expected a field name at offset 2"},
        ErrorCase{"/{a.}", "expected a field name at offset 4"},
        ErrorCase{"/{a..b}", "expected a field name at offset 4"},
        ErrorCase{"/{a-b}", "unexpected '-' in a variable"},
        ErrorCase{"/{a=}", "empty segment at offset 4"},
        ErrorCase{"/{a={b}}", "a variable inside a variable at offset 4"},
        ErrorCase{"/{a=x{b}}", "a variable inside a variable at offset 5"},
        ErrorCase{"/{a=x:y}", "':' inside a variable at offset 5"},
        ErrorCase{"/{a}/{a}", "field 'a' is bound twice"},
        ErrorCase{"/{a.b}/x/{a.b=**}", "field 'a.b' is bound twice"},
        ErrorCase{"/a}", "unexpected '}' at offset 2"}, ErrorCase{"/a:", "empty verb at offset 3"},
        ErrorCase{"/a:b/c", "'/' after the verb (the verb must come last) at offset 4"},
        ErrorCase{"/a:b:c", "':' after the verb"}, ErrorCase{"/a:{b}", "empty verb at offset 3"},
        ErrorCase{"/:verb", "empty segment at offset 1"}));

// Matches `path` against `text` (which must parse).
std::optional<std::vector<std::string>> MatchOf(const std::string& text, const std::string& path) {
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse(text);
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return std::nullopt;
  return t->Match(path);
}

TEST(PathMatchTest, HttpProtoExamples) {
  EXPECT_THAT(MatchOf("/v1/{name=messages/*}", "/v1/messages/123456"),
              Optional(ElementsAre("messages/123456")));
  EXPECT_THAT(MatchOf("/v1/messages/{message_id}", "/v1/messages/123456"),
              Optional(ElementsAre("123456")));
  EXPECT_THAT(MatchOf("/v1/users/{user_id}/messages/{message_id}", "/v1/users/me/messages/123456"),
              Optional(ElementsAre("me", "123456")));
  EXPECT_THAT(MatchOf("/v1/messages/{message_id}/{sub.subfield}", "/v1/messages/1/foo"),
              Optional(ElementsAre("1", "foo")));
}

TEST(PathMatchTest, LiteralsAndWildcards) {
  EXPECT_THAT(MatchOf("/a/b", "/a/b"), Optional(ElementsAre()));
  EXPECT_EQ(MatchOf("/a/b", "/a/c"), std::nullopt);
  EXPECT_EQ(MatchOf("/a/b", "/a"), std::nullopt);
  EXPECT_EQ(MatchOf("/a/b", "/a/b/c"), std::nullopt);
  EXPECT_EQ(MatchOf("/a/b", "/a/b/"), std::nullopt);  // a trailing slash is an empty segment
  EXPECT_EQ(MatchOf("/a/b", "/A/b"), std::nullopt);   // literals are case-sensitive
  EXPECT_THAT(MatchOf("/a/*", "/a/x"), Optional(ElementsAre()));
  EXPECT_EQ(MatchOf("/a/*", "/a/"), std::nullopt);  // '*' needs a non-empty segment
  EXPECT_EQ(MatchOf("/a/*", "/a/x/y"), std::nullopt);
  EXPECT_THAT(MatchOf("/a/**", "/a"), Optional(ElementsAre()));  // zero segments
  EXPECT_THAT(MatchOf("/a/**", "/a/x/y/z"), Optional(ElementsAre()));
  EXPECT_EQ(MatchOf("/a/**", "/b/x"), std::nullopt);
  EXPECT_EQ(MatchOf("/a", "a"), std::nullopt);  // not a path
}

TEST(PathMatchTest, LiteralsCompareNormalized) {
  EXPECT_THAT(MatchOf("/v1/messages", "/v1/%6Dessages"), Optional(ElementsAre()));
  EXPECT_THAT(MatchOf("/v1/%7Euser", "/v1/~user"), Optional(ElementsAre()));
  EXPECT_THAT(MatchOf("/v1/a%2fb", "/v1/a%2Fb"), Optional(ElementsAre()));
  // An encoded '/' is not a separator.
  EXPECT_EQ(MatchOf("/v1/a/b", "/v1/a%2Fb"), std::nullopt);
}

TEST(PathMatchTest, SingleSegmentVariablesAreFullyDecoded) {
  EXPECT_THAT(MatchOf("/v1/{id}", "/v1/a%20b"), Optional(ElementsAre("a b")));
  EXPECT_THAT(MatchOf("/v1/{id}", "/v1/a%2Fb"), Optional(ElementsAre("a/b")));
  EXPECT_THAT(MatchOf("/v1/{id}", "/v1/caf%C3%A9"), Optional(ElementsAre("caf\xC3\xA9")));
  EXPECT_THAT(MatchOf("/v1/{id}", "/v1/a+b"), Optional(ElementsAre("a+b")));  // '+' is not ' '
  EXPECT_THAT(MatchOf("/v1/{id=x}", "/v1/x"), Optional(ElementsAre("x")));
}

TEST(PathMatchTest, MultiSegmentVariablesKeepSlashes) {
  EXPECT_THAT(MatchOf("/v1/{name=**}", "/v1/a/b%20c/d"), Optional(ElementsAre("a/b c/d")));
  EXPECT_THAT(MatchOf("/v1/{name=**}", "/v1/a%2Fb/c"), Optional(ElementsAre("a%2Fb/c")));
  EXPECT_THAT(MatchOf("/v1/{name=**}", "/v1/a%2fb"), Optional(ElementsAre("a%2fb")));
  EXPECT_THAT(MatchOf("/v1/{name=**}", "/v1"), Optional(ElementsAre("")));
  EXPECT_THAT(MatchOf("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/a%20b"),
              Optional(ElementsAre("shelves/1/books/a b")));
  EXPECT_EQ(MatchOf("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books"), std::nullopt);
  EXPECT_THAT(MatchOf("/{a}/{b=x/**}", "/1/x/2/3"), Optional(ElementsAre("1", "x/2/3")));
}

TEST(PathMatchTest, Verbs) {
  EXPECT_THAT(MatchOf("/v1/{name=operations/**}:cancel", "/v1/operations/a/b:cancel"),
              Optional(ElementsAre("operations/a/b")));
  EXPECT_EQ(MatchOf("/v1/{name=operations/**}:cancel", "/v1/operations/a/b"), std::nullopt);
  EXPECT_EQ(MatchOf("/v1/{name=operations/**}:cancel", "/v1/operations/a:get"), std::nullopt);
  // The verb is after the last ':'; earlier ones belong to the value.
  EXPECT_THAT(MatchOf("/v1/{id}:do", "/v1/a:b:do"), Optional(ElementsAre("a:b")));
  // Without a verb in the template, ':' is part of the segment.
  EXPECT_THAT(MatchOf("/v1/{id}", "/v1/a:b"), Optional(ElementsAre("a:b")));
  EXPECT_THAT(MatchOf("/v1/x:%63ount", "/v1/x:count"), Optional(ElementsAre()));
  EXPECT_EQ(MatchOf("/v1/{id}:do", "/v1/:do"), std::nullopt);  // '*' needs a segment
}

TEST(PathMatchTest, RequestPathRejectsMalformedEscapes) {
  for (const char* path : {"/a%", "/a%2", "/a%zz", "/%g0/b"}) {
    absl::StatusOr<RequestPath> parsed = RequestPath::Parse(path);
    ASSERT_FALSE(parsed.ok()) << path;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("percent-encoding"));
  }
  absl::StatusOr<RequestPath> relative = RequestPath::Parse("v1/a");
  ASSERT_FALSE(relative.ok());
  EXPECT_THAT(std::string(relative.status().message()), HasSubstr("must start with '/'"));
  absl::StatusOr<RequestPath> ok = RequestPath::Parse("/a/b%20c:d");
  ASSERT_TRUE(ok.ok());
  EXPECT_THAT(ok->raw(), ElementsAre("a", "b%20c:d"));
}

TEST(PercentDecodeTest, DecodesAndKeepsSlashWhenAsked) {
  EXPECT_THAT(PercentDecode("a%20b%2Fc%2fd"), Optional(std::string("a b/c/d")));
  EXPECT_THAT(PercentDecode("a%20b%2Fc%2fd", /*keep_slash=*/true),
              Optional(std::string("a b%2Fc%2fd")));
  EXPECT_THAT(PercentDecode("%00"), Optional(std::string(1, '\0')));
  EXPECT_EQ(PercentDecode("%"), std::nullopt);
  EXPECT_EQ(PercentDecode("%a"), std::nullopt);
  EXPECT_EQ(PercentDecode("%ag"), std::nullopt);
}

TEST(SpecificityTest, SortsMostSpecificFirst) {
  std::vector<std::string> texts = {"/v1/**", "/v1/*/b",      "/v1/{x}",  "/v1/a/b",
                                    "/v1/a",  "/v1/{x}:verb", "/v1/a/**", "/v1/{x=a/*}"};
  std::vector<PathTemplate> templates;
  for (const std::string& text : texts) templates.push_back(*PathTemplate::Parse(text));
  std::stable_sort(templates.begin(), templates.end(), PathTemplate::MoreSpecific);
  std::vector<std::string> order;
  for (const PathTemplate& t : templates) order.push_back(t.text());
  EXPECT_THAT(order, ElementsAre("/v1/{x}:verb", "/v1/a", "/v1/a/b", "/v1/{x=a/*}", "/v1/a/**",
                                 "/v1/{x}", "/v1/*/b", "/v1/**"));
}

TEST(SpecificityTest, IsAStrictWeakOrder) {
  std::vector<PathTemplate> templates;
  for (const char* text : {"/a", "/{x}", "/**", "/a:v", "/a/b", "/{y}"}) {
    templates.push_back(*PathTemplate::Parse(text));
  }
  for (const PathTemplate& a : templates) {
    EXPECT_FALSE(PathTemplate::MoreSpecific(a, a)) << a.text();
    for (const PathTemplate& b : templates) {
      EXPECT_FALSE(PathTemplate::MoreSpecific(a, b) && PathTemplate::MoreSpecific(b, a))
          << a.text() << " " << b.text();
    }
  }
  // Same shape, different variable names: neither is more specific.
  EXPECT_FALSE(PathTemplate::MoreSpecific(templates[1], templates[5]));
  EXPECT_FALSE(PathTemplate::MoreSpecific(templates[5], templates[1]));
}

}  // namespace
}  // namespace massa::http
