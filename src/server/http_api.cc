#include "server/http_api.h"

#include <cctype>
#include <chrono>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/metrics.h"
#include "ingress/http/path_template.h"
#include "ingress/http/transcoder.h"
#include "ingress/http/transcoder_util.h"
#include "massa/entity/dispatcher.h"

namespace massa {
namespace {

// The header with which an HTTP caller gives its deadline, as gRPC callers do with theirs:
// "250ms", "5s", "1m", or a plain number of milliseconds (Spawn's `request-timeout`).
constexpr char kTimeoutHeader[] = "request-timeout";
constexpr auto kMaxTimeout = std::chrono::hours(24);
constexpr std::string_view kSpawnPrefix = "/massa/v1/actors/";

// Whether reply metadata (name, value) may go out as an HTTP response header: a token name
// that is not binary ("-bin") nor about framing, and a value without control characters.
bool IsForwardableHeader(const std::string& name, const std::string& value) {
  static constexpr std::string_view kReserved[] = {
      "content-type", "content-length", "connection", "transfer-encoding", "keep-alive",
      "upgrade",      "te",             "trailer",    "host"};
  if (name.empty() || name.size() > 256 || value.size() > 8192) return false;
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "-bin") == 0) return false;
  for (std::string_view reserved : kReserved) {
    if (name == reserved) return false;
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

HttpResponse ErrorResponse(const absl::Status& status) {
  return HttpResponse{HttpStatusOf(status.code()), "application/json", ErrorJson(status), {}};
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string ErrorJson(const absl::Status& status) {
  return "{\"code\":" + std::to_string(static_cast<int>(status.code())) +
         ",\"message\":" + http::JsonQuote(std::string(status.message())) + ",\"details\":[]}";
}

// POST /massa/v1/actors/{service}/{name}/spawn: spawns an unnamed actor (Command::spawn).
void Spawn(const HttpRequest& request, Dispatcher& dispatcher, HttpResponder respond) {
  std::string_view path = request.target.substr(0, request.target.find('?'));
  path.remove_prefix(kSpawnPrefix.size());
  const size_t slash = path.find('/');
  std::optional<std::string> name;
  if (slash != std::string_view::npos && path.ends_with("/spawn")) {
    name = http::PercentDecode(path.substr(slash + 1, path.size() - slash - 1 - 6));
  }
  if (request.method != "POST" || !name.has_value() || slash == 0 || name->empty()) {
    std::move(respond)(ErrorResponse(absl::InvalidArgumentError(
        "spawn an actor with POST /massa/v1/actors/{service}/{name}/spawn (the service fully "
        "qualified, the name percent-encoded)")));
    return;
  }
  Command command;
  command.service = std::string(path.substr(0, slash));
  command.entity_key = *std::move(name);
  command.addressed = true;
  command.spawn = true;
  dispatcher.Dispatch(std::move(command), [respond = std::move(respond)](CommandResult result) mutable {
    if (!result.status.ok()) {
      std::move(respond)(ErrorResponse(result.status));
      return;
    }
    std::move(respond)(HttpResponse{200, "application/json", "{}", {}});
  });
}

HttpHandler ApiHandler(const http::Transcoder& transcoder, Dispatcher& dispatcher,
                       RequestMetrics* metrics) {
  return [&transcoder, &dispatcher, metrics](HttpRequest request, HttpResponder respond) {
    const auto started = std::chrono::steady_clock::now();
    std::string_view target = request.target;
    if (target.starts_with(kSpawnPrefix)) {
      Spawn(request, dispatcher, std::move(respond));
      return;
    }
    size_t question = target.find('?');
    http::HttpRequest parts;
    parts.method = request.method;
    parts.path = target.substr(0, question);
    parts.query = question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
    parts.content_type = request.Header("content-type");
    parts.body = request.body;
    absl::StatusOr<http::TranscodedRequest> transcoded = transcoder.TranscodeRequest(parts);
    if (!transcoded.ok()) {
      if (metrics != nullptr) {
        metrics->Record("unknown", "unknown", static_cast<int>(transcoded.status().code()), 0,
                        /*http=*/true);
      }
      std::move(respond)(ErrorResponse(transcoded.status()));
      return;
    }
    Command command;
    command.service = std::move(transcoded->service);
    command.method = std::move(transcoded->method_name);
    command.payload = std::move(transcoded->payload);
    for (auto& [name, value] : request.headers) {
      if (name == "content-type" || name == "content-length" || name == "host" ||
          name == "connection") {
        continue;
      }
      if (name == kTimeoutHeader) {
        absl::StatusOr<std::chrono::milliseconds> timeout = ParseDuration(value);
        if (!timeout.ok() || timeout->count() <= 0 || *timeout > kMaxTimeout) {
          absl::Status bad = absl::InvalidArgumentError(
              absl::StrCat("header ", kTimeoutHeader, ": '", value,
                           "' is not a timeout (give e.g. 500ms, 5s, 1m or milliseconds, "
                           "positive and at most 24h)"));
          if (metrics != nullptr) {
            metrics->Record(command.service, command.method, static_cast<int>(bad.code()), 0,
                            /*http=*/true);
          }
          std::move(respond)(ErrorResponse(bad));
          return;
        }
        command.deadline = started + *timeout;
        continue;
      }
      command.metadata.emplace_back(name, value);
    }
    const http::HttpRoute* route = transcoded->route;
    std::string service = command.service;
    std::string method = command.method;
    dispatcher.Dispatch(
        std::move(command),
        [&transcoder, metrics, route, started, service = std::move(service),
         method = std::move(method), respond = std::move(respond)](CommandResult result) mutable {
          if (metrics != nullptr) {
            metrics->Record(service, method, static_cast<int>(result.status.code()),
                            std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                          started)
                                .count(),
                            /*http=*/true);
          }
          if (!result.status.ok()) {
            std::move(respond)(ErrorResponse(result.status));
            return;
          }
          absl::StatusOr<std::string> json = transcoder.TranscodeResponse(*route, result.payload);
          if (!json.ok()) {
            std::move(respond)(ErrorResponse(json.status()));
            return;
          }
          // The reply's metadata become response headers (binary and framing ones aside).
          std::vector<std::pair<std::string, std::string>> headers;
          for (auto& [name, value] : result.metadata) {
            if (IsForwardableHeader(name, value)) headers.emplace_back(name, std::move(value));
          }
          std::move(respond)(
              HttpResponse{200, "application/json", *std::move(json), std::move(headers)});
        });
  };
}

HttpHandler AdminHandler(const MetricsRegistry& metrics, std::function<absl::Status()> ready,
                         AdminRoute more) {
  return [&metrics, ready = std::move(ready), more = std::move(more)](HttpRequest request,
                                                                      HttpResponder respond) {
    std::string_view target = request.target;
    const size_t question = target.find('?');
    std::string_view path = target.substr(0, question);
    std::string_view query =
        question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
    if (request.method != "GET" && request.method != "HEAD") {
      std::move(respond)(HttpResponse{
          405, "application/json",
          ErrorJson(absl::UnimplementedError("the admin endpoints answer GET only")), {}});
      return;
    }
    if (path == "/metrics") {
      std::move(respond)(
          HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render(), {}});
    } else if (path == "/healthz" || path == "/livez") {
      std::move(respond)(HttpResponse{200, "application/json", "{\"status\":\"ok\"}", {}});
    } else if (path == "/readyz") {
      absl::Status status = ready();
      if (status.ok()) {
        std::move(respond)(HttpResponse{200, "application/json", "{\"status\":\"ready\"}", {}});
      } else {
        std::move(respond)(HttpResponse{503, "application/json",
                                        "{\"status\":\"not ready\",\"reason\":" +
                                            http::JsonQuote(std::string(status.message())) + "}",
                                        {}});
      }
    } else if (more && more(path, query, respond)) {
      // answered by `more`
    } else {
      std::move(respond)(HttpResponse{
          404, "application/json",
          ErrorJson(absl::NotFoundError(
              "no admin endpoint " + std::string(path) +
              " (try /metrics, /healthz, /readyz, /v1/entities/{type}/{key}/events, "
              "/v1/entities/{type}/{key}/timers, /v1/timers, /v1/outbox)")),
          {}});
    }
  };
}

}  // namespace massa
