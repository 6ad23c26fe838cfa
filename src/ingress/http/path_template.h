// File: ingress/http/path_template.h
//
// google.api.http path templates (the grammar in proto/google/api/http.proto):
//
//   Template = "/" Segments [ Verb ] ;
//   Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;
//   Verb     = ":" LITERAL ;
//
// A PathTemplate is parsed once (at Transcoder::Build) and matched against request paths that
// were split once per request (RequestPath). Matching compares literals after RFC 3986
// normalization (escapes of unreserved characters decoded, hex digits upper-cased), so
// "/v1/%6Dessages" matches the literal "messages". Variable values are percent-decoded: fully
// for single-segment variables ({var}, {var=*}, {var=literal}); for multi-segment variables
// ({var=**}, {var=a/*}) the separating '/' are kept and "%2F"/"%2f" stay encoded, as the spec
// says.
//
// Example:
//   absl::StatusOr<PathTemplate> t = PathTemplate::Parse("/v1/{name=shelves/*/books/*}:get");
//   absl::StatusOr<RequestPath> path = RequestPath::Parse("/v1/shelves/1/books/a%20b:get");
//   std::optional<std::vector<std::string>> values = t->Match(*path);
//   // (*values)[0] == "shelves/1/books/a b", bound to t->variables()[0].field_path {"name"}
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace massa::http {

// A request path ("/v1/a/b:verb", no query string), split and normalized once per request.
// Immutable; cheap to match against many templates.
class RequestPath {
 public:
  // Errors (INVALID_ARGUMENT): a path that does not start with '/', a malformed percent
  // escape ("%4", "%zz").
  [[nodiscard]] static absl::StatusOr<RequestPath> Parse(std::string_view path);

  // The segments as sent (percent-encoded), e.g. {"v1", "a", "b:verb"}. "/" gives {""}.
  const std::vector<std::string>& raw() const { return raw_; }

 private:
  friend class PathTemplate;
  RequestPath() = default;

  std::vector<std::string> raw_;
  std::vector<std::string> normalized_;
  // The last segment split at its last ':' (when it has one): what a template with a verb
  // matches against.
  bool has_verb_ = false;
  std::string last_without_verb_raw_;
  std::string last_without_verb_normalized_;
  std::string verb_normalized_;
};

class PathTemplate {
 public:
  enum class SegmentKind { kLiteral, kSingle /* * */, kMulti /* ** */ };

  struct Segment {
    SegmentKind kind = SegmentKind::kLiteral;
    std::string literal;  // kLiteral only, normalized

    friend bool operator==(const Segment&, const Segment&) = default;
  };

  // A variable covers the template segments [begin, end).
  struct Variable {
    std::vector<std::string> field_path;  // {"sub", "subfield"} for {sub.subfield}
    size_t begin = 0;
    size_t end = 0;
    // More than one template segment, or "**": the value keeps '/' and "%2F".
    bool multi_segment = false;
  };

  // Parses `text`. Errors (INVALID_ARGUMENT) say what is wrong and at which offset: a missing
  // leading '/', an empty segment, a character not allowed in a literal, an unterminated or
  // nested variable, an invalid field path, a field bound twice, "**" before the last segment,
  // an empty verb.
  [[nodiscard]] static absl::StatusOr<PathTemplate> Parse(std::string_view text);

  // Returns the values of the variables (in the order of variables()), or nullopt when `path`
  // does not match. Never fails: RequestPath::Parse already rejected malformed escapes.
  std::optional<std::vector<std::string>> Match(const RequestPath& path) const;

  // Convenience for tests: parses `path` and matches it; nullopt when it does not parse.
  std::optional<std::vector<std::string>> Match(std::string_view path) const;

  // The template as written.
  const std::string& text() const { return text_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Variable>& variables() const { return variables_; }
  const std::string& verb() const { return verb_; }  // normalized, without ':'

  // What the template matches, without variable names: "/v1/*/**:verb". Two templates with
  // the same shape match the same paths.
  std::string Shape() const;

  // Canonical text with variables: "/v1/{name=messages/*}" ({var} is written {var=*}).
  std::string ToString() const;

  // Strict weak order from most to least specific: templates with a verb first, then segment
  // by segment literal < * < **, shorter before longer. The first template in this order that
  // matches a path is the most specific match.
  static bool MoreSpecific(const PathTemplate& a, const PathTemplate& b);

 private:
  std::string text_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  std::string verb_;
};

// Percent-decoding, shared with the query string parser.
//
// Decodes every %XX escape; with `keep_slash`, "%2F"/"%2f" stay as they are. Returns nullopt
// for a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text, bool keep_slash = false);

}  // namespace massa::http
