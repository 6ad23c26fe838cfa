// The HTTP handlers of `massa serve`: the user's API over HTTP/JSON (google.api.http
// transcoding into the same Commands the gRPC ingress produces) and the admin endpoints
// (/metrics, /healthz, /readyz).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "net/http_server.h"

namespace massa {

class Dispatcher;
class MetricsRegistry;
class RequestMetrics;
namespace http {
class Transcoder;
}  // namespace http

// The HTTP status that a gRPC status code maps to (google.rpc.Code's HTTP mapping).
int HttpStatusOf(absl::StatusCode code);

// {"code": <gRPC code>, "message": "...", "details": []}
std::string ErrorJson(const absl::Status& status);

// Serves the user's API: transcodes, dispatches, transcodes the reply back. `metrics` may be
// null. Everything passed in must outlive the handler.
HttpHandler ApiHandler(const http::Transcoder& transcoder, Dispatcher& dispatcher,
                       RequestMetrics* metrics);

// Takes an admin request for a path (without the query) it serves: moves `respond` out and
// answers, possibly later from another thread, and returns true; else returns false.
using AdminRoute =
    std::function<bool(std::string_view path, std::string_view query, HttpResponder& respond)>;

// GET /metrics (Prometheus text), /healthz (alive), /readyz (200 when `ready()` returns OK,
// else 503 with its message), then whatever `more` takes (may be empty).
HttpHandler AdminHandler(const MetricsRegistry& metrics, std::function<absl::Status()> ready,
                         AdminRoute more = nullptr);

}  // namespace massa
