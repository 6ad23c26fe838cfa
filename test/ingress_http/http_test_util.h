// Helpers for the HTTP transcoder tests and fuzzer: catalogs over http_test.proto, with or
// without an extra "probe" service whose single method carries a rule given as text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "entity/catalog.h"

namespace massa::http_testing {

inline constexpr char kMessaging[] = "massa.http_test.Messaging";
inline constexpr char kByName[] = "massa.http_test.ByName";
inline constexpr char kLibrary[] = "massa.http_test.Library";
inline constexpr char kProbe[] = "massa.http_test.Probe";

// A catalog of `services` of http_test.proto, all served as actions. Crashes on errors (the
// test proto is known to be valid).
std::unique_ptr<Catalog> CatalogOf(const std::vector<std::string>& services);

// How the probe method's rule reaches the pool.
enum class RuleEncoding {
  kExtension,     // as the typed google.api.http extension
  kUnknownField,  // as unknown field 72295728 of MethodOptions
};

// A catalog of `services` plus massa.http_test.Probe, whose method Call(request_type) returns
// (response_type) carries `rule_text` (a google.api.HttpRule in text format; empty = no rule).
// Types are names in massa.http_test ("GetMessageRequest") or fully qualified.
absl::StatusOr<std::unique_ptr<Catalog>> CatalogWithProbe(
    const std::string& rule_text, const std::vector<std::string>& services = {},
    const std::string& request_type = "GetMessageRequest",
    const std::string& response_type = "Message", RuleEncoding encoding = RuleEncoding::kExtension);

}  // namespace massa::http_testing
