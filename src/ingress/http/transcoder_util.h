// File: ingress/http/transcoder_util.h
//
// Small pieces of the transcoder, separate so they can be tested alone: the query string
// parser, string-to-field conversion for path variables and query parameters, and the bits of
// JSON handling that protobuf's json_util does not offer.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace google::protobuf {
class FieldDescriptor;
class Message;
}  // namespace google::protobuf

namespace massa::http {

struct QueryParam {
  std::string name;   // decoded
  std::string value;  // decoded

  friend bool operator==(const QueryParam&, const QueryParam&) = default;
};

// Splits an application/x-www-form-urlencoded query string ("a=1&b=x+y&c=%2F"), without
// the '?', into decoded name/value pairs in order. '+' means a space; a parameter without '='
// has an empty value; empty pieces ("a=1&&b=2") are skipped. Errors (INVALID_ARGUMENT): a
// malformed percent escape, a name or value that is not UTF-8 after decoding.
[[nodiscard]] absl::StatusOr<std::vector<QueryParam>> ParseQueryString(std::string_view query);

// True for well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Converts `value` to the type of `field` (a non-message field of `message`) and sets it, or
// appends it when the field is repeated. Conversions: integers in decimal; floats and doubles
// also "NaN", "Infinity", "-Infinity"; bools "true"/"false"/"1"/"0"; enums by value name or
// number; strings as they are (must be UTF-8); bytes in base64 (standard or URL-safe, padding
// optional). Errors (INVALID_ARGUMENT) name the field and quote the value; the message is not
// changed on error.
[[nodiscard]] absl::Status SetFieldFromString(google::protobuf::Message& message,
                                              const google::protobuf::FieldDescriptor& field,
                                              std::string_view value);

// `text` as a JSON string literal, quotes included. `text` must be UTF-8.
std::string JsonQuote(std::string_view text);

// True when `json` cannot close or extend a JSON object it is pasted into as a member's value,
// i.e. no ',', ':', ']' or '}' outside strings and brackets, and brackets never close more
// than they opened. Used to wrap a body as {"field": <body>} safely; whether the value itself
// is valid JSON is left to the JSON parser.
bool IsEmbeddableJsonValue(std::string_view json);

// The text of the value of member `key` of the JSON object `json`, as protobuf's printer
// writes it (compact, keys unescaped). nullopt when the object has no such member.
std::optional<std::string_view> FindJsonMember(std::string_view json, std::string_view key);

// Whether a Content-Type header value names JSON: "application/json", any case, with optional
// parameters; a charset parameter must be utf-8. An empty value counts as JSON.
bool IsJsonContentType(std::string_view content_type);

}  // namespace massa::http
