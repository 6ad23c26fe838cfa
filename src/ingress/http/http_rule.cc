#include "ingress/http/http_rule.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace massa::http {
namespace {

namespace pb = google::protobuf;

absl::Status RuleError(const pb::MethodDescriptor& method, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(method.full_name(), ": google.api.http option: ",
                                                 absl::string_view(what.data(), what.size())));
}

absl::StatusOr<HttpBinding> ToBinding(const pb::MethodDescriptor& method,
                                      const google::api::HttpRule& rule, bool nested) {
  HttpBinding binding;
  using Rule = google::api::HttpRule;
  switch (rule.pattern_case()) {
    case Rule::kGet:
      binding.http_method = "GET";
      binding.path = rule.get();
      break;
    case Rule::kPut:
      binding.http_method = "PUT";
      binding.path = rule.put();
      break;
    case Rule::kPost:
      binding.http_method = "POST";
      binding.path = rule.post();
      break;
    case Rule::kDelete:
      binding.http_method = "DELETE";
      binding.path = rule.delete_();
      break;
    case Rule::kPatch:
      binding.http_method = "PATCH";
      binding.path = rule.patch();
      break;
    case Rule::kCustom:
      if (rule.custom().kind().empty()) {
        return RuleError(method, absl::StrCat("custom pattern for \"", rule.custom().path(),
                                              "\" has no kind (HTTP method)"));
      }
      binding.http_method = rule.custom().kind();
      binding.path = rule.custom().path();
      break;
    case Rule::PATTERN_NOT_SET:
      return RuleError(method, nested ? "an additional binding has no pattern "
                                        "(get, put, post, delete, patch or custom)"
                                      : "the rule has no pattern "
                                        "(get, put, post, delete, patch or custom)");
  }
  binding.body = rule.body();
  binding.response_body = rule.response_body();
  if (nested && rule.additional_bindings_size() > 0) {
    return RuleError(method, absl::StrCat("additional binding ", binding.Describe(),
                                          " has additional_bindings of its own (only one "
                                          "level of nesting is allowed)"));
  }
  return binding;
}

}  // namespace

std::string HttpBinding::Describe() const { return absl::StrCat(http_method, " ", path); }

absl::StatusOr<std::vector<HttpBinding>> ReadHttpBindings(const pb::MethodDescriptor& method) {
  // Re-parse the options: the generated google.api.http extension (linked in through
  // annotations.pb.cc) turns the unknown field into the typed extension if it was not already.
  pb::MethodOptions options;
  if (!options.ParseFromString(method.options().SerializeAsString())) {
    return RuleError(method, "the method options do not parse");
  }
  if (!options.HasExtension(google::api::http)) return std::vector<HttpBinding>();
  const google::api::HttpRule& rule = options.GetExtension(google::api::http);

  std::vector<HttpBinding> bindings;
  absl::StatusOr<HttpBinding> main = ToBinding(method, rule, /*nested=*/false);
  if (!main.ok()) return main.status();
  bindings.push_back(*std::move(main));
  for (const google::api::HttpRule& additional : rule.additional_bindings()) {
    absl::StatusOr<HttpBinding> binding = ToBinding(method, additional, /*nested=*/true);
    if (!binding.ok()) return binding.status();
    bindings.push_back(*std::move(binding));
  }
  return bindings;
}

}  // namespace massa::http
