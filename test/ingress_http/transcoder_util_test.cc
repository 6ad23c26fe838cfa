// The transcoder's helpers: query string parsing, string-to-field conversion, UTF-8, and the
// JSON and content-type bits.

#include "ingress/http/transcoder_util.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "test/ingress_http/http_test.pb.h"

namespace massa::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

namespace pb = google::protobuf;
using massa::http_test::GetMessageRequest;

TEST(ParseQueryStringTest, SplitsAndDecodes) {
  absl::StatusOr<std::vector<QueryParam>> params =
      ParseQueryString("a=1&b=x+y&c=%2F%20&&d&e=&sub.subfield=caf%C3%A9&a=2&k%3D=v%26");
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_THAT(*params, ElementsAre(QueryParam{"a", "1"}, QueryParam{"b", "x y"},
                                   QueryParam{"c", "/ "}, QueryParam{"d", ""}, QueryParam{"e", ""},
                                   QueryParam{"sub.subfield", "caf\xC3\xA9"}, QueryParam{"a", "2"},
                                   QueryParam{"k=", "v&"}));
}

TEST(ParseQueryStringTest, EmptyAndSeparatorsOnly) {
  absl::StatusOr<std::vector<QueryParam>> params = ParseQueryString("");
  ASSERT_TRUE(params.ok());
  EXPECT_TRUE(params->empty());
  params = ParseQueryString("&&&");
  ASSERT_TRUE(params.ok());
  EXPECT_TRUE(params->empty());
  // '=' inside the value stays.
  params = ParseQueryString("q=a=b");
  ASSERT_TRUE(params.ok());
  EXPECT_THAT(*params, ElementsAre(QueryParam{"q", "a=b"}));
}

TEST(ParseQueryStringTest, Errors) {
  for (const char* query : {"a=%", "a=%4", "a%zz=1", "a=%C3"}) {
    absl::StatusOr<std::vector<QueryParam>> params = ParseQueryString(query);
    ASSERT_FALSE(params.ok()) << query;
    EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(std::string(ParseQueryString("abc=%zz").status().message()),
              HasSubstr("malformed percent-encoding in query parameter 'abc'"));
  EXPECT_THAT(std::string(ParseQueryString("abc=%FF").status().message()),
              HasSubstr("query parameter 'abc' is not UTF-8"));
}

TEST(Utf8Test, Validates) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

// Sets `field` of a fresh GetMessageRequest from `value` and returns it in text format, or the
// error message prefixed with "error: ".
std::string Set(const std::string& field, const std::string& value) {
  GetMessageRequest message;
  const pb::FieldDescriptor* descriptor = message.GetDescriptor()->FindFieldByName(field);
  if (descriptor == nullptr) return "no such field";
  absl::Status status = SetFieldFromString(message, *descriptor, value);
  if (!status.ok()) {
    EXPECT_EQ(message.ByteSizeLong(), 0u) << "changed on error: " << message.ShortDebugString();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return "error: " + std::string(status.message());
  }
  return message.ShortDebugString();
}

struct ConversionCase {
  std::string field;
  std::string value;
  std::string expected;  // ShortDebugString, or a substring of "error: ..."
};

class ConversionTest : public ::testing::TestWithParam<ConversionCase> {};

TEST_P(ConversionTest, Converts) {
  const ConversionCase& c = GetParam();
  std::string got = Set(c.field, c.value);
  if (c.expected.rfind("error: ", 0) == 0) {
    EXPECT_THAT(got, HasSubstr(c.expected)) << c.field << "=" << c.value;
  } else {
    EXPECT_EQ(got, c.expected) << c.field << "=" << c.value;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConversionTest,
    ::testing::Values(
        ConversionCase{"message_id", "abc def", "message_id: \"abc def\""},
        ConversionCase{"message_id", "", ""},
        ConversionCase{"message_id", "\xC3\x28",
                       "error: field 'message_id': the value is not UTF-8"},
        ConversionCase{"revision", "9223372036854775807", "revision: 9223372036854775807"},
        ConversionCase{"revision", "-9223372036854775808", "revision: -9223372036854775808"},
        ConversionCase{"revision", "9223372036854775808",
                       "error: field 'revision': \"9223372036854775808\" is not a 64-bit integer"},
        ConversionCase{"revision", "1.5", "error: field 'revision': \"1.5\" is not a 64-bit"},
        ConversionCase{"revision", " 1", "error: field 'revision': \" 1\" is not"},
        ConversionCase{"revision", "", "error: field 'revision': \"\" is not"},
        ConversionCase{"i32", "-2147483648", "i32: -2147483648"},
        ConversionCase{"i32", "2147483648", "error: field 'i32': \"2147483648\" is not a 32-bit"},
        ConversionCase{"u32", "4294967295", "u32: 4294967295"},
        ConversionCase{"u32", "-1", "error: field 'u32': \"-1\" is not an unsigned 32-bit"},
        ConversionCase{"u64", "18446744073709551615", "u64: 18446744073709551615"},
        ConversionCase{"s64", "-5", "s64: -5"}, ConversionCase{"ratio", "2.5", "ratio: 2.5"},
        ConversionCase{"ratio", "-1e3", "ratio: -1000"},
        ConversionCase{"ratio", "Infinity", "ratio: inf"},
        ConversionCase{"ratio", "-Infinity", "ratio: -inf"},
        ConversionCase{"ratio", "NaN", "ratio: nan"},
        ConversionCase{"ratio", "1e999", "error: field 'ratio': \"1e999\" is not a number"},
        ConversionCase{"ratio", "abc", "error: field 'ratio': \"abc\" is not a number"},
        ConversionCase{"small", "0.25", "small: 0.25"},
        ConversionCase{"small", "1e39",
                       "error: field 'small': \"1e39\" is not a number in the "
                       "range of a float"},
        ConversionCase{"flag", "true", "flag: true"}, ConversionCase{"flag", "1", "flag: true"},
        ConversionCase{"flag", "false", ""},
        ConversionCase{"flag", "yes", "error: field 'flag': \"yes\" is not a bool"},
        ConversionCase{"flag", "True", "error: field 'flag': \"True\" is not a bool"},
        ConversionCase{"blob", "aGk=", "blob: \"hi\""},
        ConversionCase{"blob", "aGk", "blob: \"hi\""},           // padding optional
        ConversionCase{"blob", "-_8=", "blob: \"\\373\\377\""},  // URL-safe alphabet
        ConversionCase{"blob", "a*b", "error: field 'blob': \"a*b\" is not base64"},
        ConversionCase{"color", "GREEN", "color: GREEN"},
        ConversionCase{"color", "2", "color: GREEN"},
        ConversionCase{"color", "7", "color: 7"},  // open enum: unknown numbers are kept
        ConversionCase{"color", "green",
                       "error: field 'color': \"green\" is not a value of massa.http_test.Color"},
        ConversionCase{"ids", "5", "ids: 5"}, ConversionCase{"colors", "RED", "colors: RED"},
        ConversionCase{"sub", "x", "error: field 'sub' is a message"}));

TEST(ConversionTest, RepeatedFieldsAppend) {
  GetMessageRequest message;
  const pb::FieldDescriptor* ids = message.GetDescriptor()->FindFieldByName("ids");
  ASSERT_TRUE(SetFieldFromString(message, *ids, "1").ok());
  ASSERT_TRUE(SetFieldFromString(message, *ids, "2").ok());
  EXPECT_FALSE(SetFieldFromString(message, *ids, "x").ok());
  EXPECT_THAT(message.ids(), ElementsAre(1, 2));
}

TEST(ConversionTest, LongBadValuesAreShortenedInMessages) {
  std::string got = Set("revision", std::string(500, '7') + "x");
  EXPECT_THAT(got, HasSubstr("7\"... is not a 64-bit integer"));
  EXPECT_LT(got.size(), 200u);
}

TEST(JsonQuoteTest, Escapes) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  EXPECT_EQ(JsonQuote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
}

TEST(EmbeddableJsonTest, AcceptsSingleValues) {
  for (const char* json : {"1", "\"a,b}\"", "[1,2,{\"a\":[3]}]", "{\"a\":1,\"b\":2}", "null",
                           "  [ ]  ", "\"esc\\\"aped,\"", "\"\\\\\""}) {
    EXPECT_TRUE(IsEmbeddableJsonValue(json)) << json;
  }
}

TEST(EmbeddableJsonTest, RejectsWhatCouldEscapeTheWrapper) {
  for (const char* json : {"1, \"other\": 2", "1} , {", "]", "[1]]", "\"open", "[1", "{", "\"a\":1",
                           "\"\\\"", "1,2"}) {
    EXPECT_FALSE(IsEmbeddableJsonValue(json)) << json;
  }
}

TEST(FindJsonMemberTest, FindsTopLevelMembers) {
  const std::string json =
      R"({"a":1,"tags":["x","y,}"],"obj":{"tags":2,"z":[{"a":3}]},"s":"q\"uo:te","last":{}})";
  EXPECT_THAT(FindJsonMember(json, "a"), Optional(std::string_view("1")));
  EXPECT_THAT(FindJsonMember(json, "tags"), Optional(std::string_view(R"(["x","y,}"])")));
  EXPECT_THAT(FindJsonMember(json, "obj"),
              Optional(std::string_view(R"({"tags":2,"z":[{"a":3}]})")));
  EXPECT_THAT(FindJsonMember(json, "s"), Optional(std::string_view(R"("q\"uo:te")")));
  EXPECT_THAT(FindJsonMember(json, "last"), Optional(std::string_view("{}")));
  EXPECT_EQ(FindJsonMember(json, "z"), std::nullopt);  // nested only
  EXPECT_EQ(FindJsonMember(json, "x"), std::nullopt);  // a value, not a key
  EXPECT_EQ(FindJsonMember("{}", "a"), std::nullopt);
}

TEST(ContentTypeTest, AcceptsJsonOnly) {
  for (const char* type :
       {"", "application/json", "Application/JSON", "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"", " application/json ", "application/json; foo=bar"}) {
    EXPECT_TRUE(IsJsonContentType(type)) << type;
  }
  for (const char* type :
       {"text/plain", "application/x-www-form-urlencoded", "application/json-patch+json",
        "application/jsonx", "application/json; charset=latin1", "multipart/form-data; boundary=x",
        ";"}) {
    EXPECT_FALSE(IsJsonContentType(type)) << type;
  }
}

}  // namespace
}  // namespace massa::http
