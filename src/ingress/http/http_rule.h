// File: ingress/http/http_rule.h
//
// Reads the google.api.http option of a method of the user's (run-time) descriptor pool. The
// option arrives either parsed, when google/api/annotations.pb is linked and registered the
// extension before the pool was built, or as unknown field 72295728 of MethodOptions; both
// are handled by re-parsing the options with the generated extension registered.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace google::protobuf {
class MethodDescriptor;
}  // namespace google::protobuf

namespace massa::http {

// One HTTP binding of a method: the rule itself or one of its additional_bindings.
struct HttpBinding {
  std::string http_method;    // "GET", "PUT", "POST", "DELETE", "PATCH", or the custom kind
                              // as written ("*" = any method)
  std::string path;           // the path template as written
  std::string body;           // "", "*" or a top-level request field name
  std::string response_body;  // "" or a top-level response field name

  // "GET /v1/{name=messages/*}", for error messages and logs.
  std::string Describe() const;

  friend bool operator==(const HttpBinding&, const HttpBinding&) = default;
};

// The bindings of `method`, the main rule first, then its additional_bindings in order.
// Empty when the method has no google.api.http option. Errors (INVALID_ARGUMENT, naming the
// method): an option that does not parse as google.api.HttpRule, a rule without a pattern
// (get/put/post/delete/patch/custom), a custom pattern without a kind, additional_bindings
// nested inside additional_bindings.
[[nodiscard]] absl::StatusOr<std::vector<HttpBinding>> ReadHttpBindings(
    const google::protobuf::MethodDescriptor& method);

}  // namespace massa::http
