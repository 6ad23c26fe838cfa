// File: ingress/http/transcoder.h
//
// HTTP/JSON <-> protobuf transcoding for the services of a Catalog, following the
// google.api.http rules (proto/google/api/http.proto) the user put on their methods. A pure
// library: the HTTP server hands in the parts of a request it received and gets back the
// method to call and the serialized request, then hands in the reply bytes and gets the JSON
// body to send.
//
// Routing:
//   - every google.api.http rule of a method, and each of its additional_bindings, is a route;
//   - a method without a rule is served at `POST /<package.Service>/<Method>` with the whole
//     message as the JSON body (body "*");
//   - streaming methods are not served;
//   - when several routes match a path, the most specific one wins: a route whose template
//     has a verb first, then segment by segment literal before `*` before `**`; a route for
//     the request's HTTP method before a custom "*" route.
//
// Request transcoding (the order in which fields are set, later steps win):
//   1. the body, when the rule has one: body "*" is the whole message, body "field" that
//      top-level field. JSON as protobuf's json_util parses it (lowerCamel or proto names,
//      int64 as strings, enums by name, well-known types); unknown fields are rejected. An
//      empty body is an empty message. A rule without a body accepts no body but "{}".
//   2. path variables, converted from strings (see SetFieldFromString in transcoder_util.h);
//   3. query parameters ("a.b=1", repeated fields by repeating, "+" and %XX decoded) name
//      fields by proto or JSON name; they may set any field not bound by the path or the body
//      (none when body is "*"), and each non-repeated field once. Message fields take query
//      parameters only through their own fields ("sub.x=1"), except the well-known types
//      Timestamp, Duration, FieldMask and the wrappers, which take their JSON string form.
//
// Response transcoding: the reply message (or its `response_body` field) as JSON, with
// lowerCamel field names and every primitive field printed even when it holds its default
// value (always_print_primitive_fields), so clients see `"quantity": 0` rather than nothing.
//
// Errors of TranscodeRequest and what the server should answer:
//   UNIMPLEMENTED     no route for the path, or none for this HTTP method (the message then
//                     lists the methods the path accepts): 501 (404/405 would also fit).
//   INVALID_ARGUMENT  malformed path escapes, a Content-Type other than JSON for a non-empty
//                     body, a body (other than "{}") for a rule without one, JSON that does not
//                     parse or has unknown fields (protobuf's message is included), a path or query
//                     value that does not convert, an unknown or forbidden query parameter: 400.
// TranscodeResponse fails only on reply bytes that do not decode as the reply type (INTERNAL).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace massa {
class Catalog;
struct MethodInfo;
}  // namespace massa

namespace massa::http {

// One route (an HTTP method and a path template bound to a method of the catalog). Opaque;
// owned by the Transcoder that returned it.
class HttpRoute;

// The parts of an HTTP request the transcoder needs. Views: only read during the call.
struct HttpRequest {
  std::string_view method;        // "GET", as received (HTTP methods are case-sensitive)
  std::string_view path;          // the target's path, still percent-encoded, without '?'
  std::string_view query;         // the target's query string without '?', may be empty
  std::string_view content_type;  // the Content-Type header, empty when absent (= JSON)
  std::string_view body;
};

// A request ready for dispatch.
struct TranscodedRequest {
  const MethodInfo* method = nullptr;  // points into the Catalog
  std::string service;                 // "example.shoppingcart.ShoppingCart"
  std::string method_name;             // "AddItem"
  std::string payload;                 // the request message, protobuf binary
  const HttpRoute* route = nullptr;    // pass to TranscodeResponse
};

// Immutable after Build; every method is thread-safe. Keeps pointers into the Catalog, which
// must outlive it.
class Transcoder {
 public:
  ~Transcoder();
  Transcoder(const Transcoder&) = delete;
  Transcoder& operator=(const Transcoder&) = delete;

  // Reads and checks the google.api.http rules of every method of `catalog`. Errors
  // (INVALID_ARGUMENT), each naming the method and the rule: an option that does not parse,
  // a rule without a pattern or with nested additional_bindings, an invalid path template, a
  // path variable naming an unknown field, a repeated, map or message field, or going through
  // a repeated or non-message field, two path variables in one oneof, a body or response_body
  // that is not a top-level field, two routes with the same HTTP method and the same template
  // (also against the implicit POST /<package.Service>/<Method> routes).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Transcoder>> Build(const Catalog& catalog);

  // Finds the route of `request` and builds the request message. Errors: see the file comment.
  [[nodiscard]] absl::StatusOr<TranscodedRequest> TranscodeRequest(
      const HttpRequest& request) const;

  // The JSON body for the reply `reply` (protobuf binary of the method's output type) to a
  // request that took `route`, honouring the rule's response_body. Errors: INTERNAL when
  // `reply` does not decode.
  [[nodiscard]] absl::StatusOr<std::string> TranscodeResponse(const HttpRoute& route,
                                                              std::string_view reply) const;

  // One line per route, most specific first: "GET /v1/{name=messages/*} -> pkg.Svc.Get".
  std::vector<std::string> DescribeRoutes() const;

 private:
  struct Impl;
  explicit Transcoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using TranscoderPtr = std::unique_ptr<Transcoder>;

}  // namespace massa::http
