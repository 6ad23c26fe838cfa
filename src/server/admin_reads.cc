#include "server/admin_reads.h"

#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "entity/catalog.h"
#include "entity/outbox.h"
#include "entity/timer_scheduler.h"
#include "entity/timers.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "ingress/http/path_template.h"
#include "ingress/http/transcoder_util.h"
#include "massa/store/store.h"
#include "server/http_api.h"

namespace massa {
namespace {

namespace pb = google::protobuf;

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 1000;

HttpResponse Json(int status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body), {}};
}

HttpResponse Error(const absl::Status& status) {
  return Json(HttpStatusOf(status.code()), ErrorJson(status));
}

struct Page {
  uint64_t from = 1;
  size_t limit = kDefaultLimit;
};

absl::StatusOr<Page> ParsePage(std::string_view query) {
  absl::StatusOr<std::vector<http::QueryParam>> params = http::ParseQueryString(query);
  if (!params.ok()) return params.status();
  Page page;
  for (const http::QueryParam& param : *params) {
    uint64_t number = 0;
    const char* end = param.value.data() + param.value.size();
    auto [ptr, ec] = std::from_chars(param.value.data(), end, number);
    const bool valid = ec == std::errc() && ptr == end && number > 0;
    if (param.name == "from") {
      if (!valid) return absl::InvalidArgumentError("'from' must be a positive integer");
      page.from = number;
    } else if (param.name == "limit") {
      if (!valid || number > kMaxLimit) {
        return absl::InvalidArgumentError(
            absl::StrCat("'limit' must be an integer from 1 to ", kMaxLimit));
      }
      page.limit = static_cast<size_t>(number);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown query parameter '", param.name, "' (from, limit)"));
    }
  }
  return page;
}

// Renders events' payloads with the function's descriptors.
class PayloadPrinter {
 public:
  explicit PayloadPrinter(const pb::DescriptorPool& pool) : pool_(pool) {}

  // "payload": <JSON>, or "payload_base64": "..." when the type is unknown or does not decode.
  void Append(const std::string& type_name, const std::string& payload, std::string& out) {
    const pb::Descriptor* type = pool_.FindMessageTypeByName(type_name);
    if (type != nullptr) {
      std::unique_ptr<pb::Message> message(factory_.GetPrototype(type)->New());
      std::string json;
      if (message->ParseFromString(payload) &&
          pb::util::MessageToJsonString(*message, &json).ok()) {
        absl::StrAppend(&out, "\"payload\":", json);
        return;
      }
    }
    absl::StrAppend(&out, "\"payload_base64\":", http::JsonQuote(absl::Base64Escape(payload)));
  }

 private:
  const pb::DescriptorPool& pool_;
  pb::DynamicMessageFactory factory_;
};

void AppendEvent(const Event& event, PayloadPrinter& printer, std::string& out) {
  absl::StrAppend(&out, "{\"sequence\":", event.sequence, ",\"type\":", http::JsonQuote(event.type),
                  ",\"timestamp_ms\":", event.timestamp_ms, ",\"metadata\":{");
  for (size_t i = 0; i < event.metadata.size(); ++i) {
    const auto& [key, value] = event.metadata[i];
    absl::StrAppend(&out, i == 0 ? "" : ",", http::JsonQuote(key), ":",
                    http::IsValidUtf8(value) ? http::JsonQuote(value)
                                             : http::JsonQuote(absl::Base64Escape(value)));
  }
  out += "},";
  printer.Append(event.type, event.payload, out);
  out += "}";
}

bool KnownEntityType(const Catalog& catalog, std::string_view type) {
  for (const auto& service : catalog.services()) {
    if (service->spec.kind == EntityKind::kEventSourced && service->spec.entity_type == type) {
      return true;
    }
  }
  return false;
}

// Entity types and action services: the owners of timers.
bool KnownTimerOwner(const Catalog& catalog, std::string_view type) {
  for (const auto& service : catalog.services()) {
    const bool action = service->spec.kind == EntityKind::kAction;
    if ((action ? service->spec.name : service->spec.entity_type) == type) return true;
  }
  return false;
}

void AppendTimer(const store::TimerRecord& record, bool with_entity, PayloadPrinter& printer,
                 std::string& out) {
  out += "{";
  if (with_entity) {
    absl::StrAppend(&out, "\"entity_type\":", http::JsonQuote(record.entity_type),
                    ",\"key\":", http::JsonQuote(record.key), ",");
  }
  absl::StrAppend(&out, "\"name\":", http::JsonQuote(record.name), ",\"due_ms\":",
                  record.due_ms);
  absl::StatusOr<StoredTimer> timer = DecodeTimer(record.record);
  if (!timer.ok()) {
    out += ",\"error\":\"unreadable record\"}";
    return;
  }
  absl::StrAppend(&out, ",\"service\":", http::JsonQuote(timer->service),
                  ",\"method\":", http::JsonQuote(timer->method),
                  ",\"self\":", timer->self ? "true" : "false");
  if (timer->interval_ms > 0) absl::StrAppend(&out, ",\"interval_ms\":", timer->interval_ms);
  if (!timer->cron.empty()) absl::StrAppend(&out, ",\"cron\":", http::JsonQuote(timer->cron));
  absl::StrAppend(&out, ",\"missed\":\"",
                  timer->missed == MissedTicks::kSkip ? "skip" : "catch_up_once", "\",");
  printer.Append(timer->payload.type, timer->payload.bytes, out);
  out += "}";
}

HttpResponse EntityTimers(const AdminReads& reads, const std::string& type,
                          const std::string& key) {
  absl::StatusOr<std::vector<store::TimerRecord>> timers = reads.store.ReadTimers(type, key);
  if (!timers.ok()) return Error(timers.status());
  PayloadPrinter printer(reads.catalog.pool());
  std::string body = absl::StrCat("{\"entity_type\":", http::JsonQuote(type),
                                  ",\"key\":", http::JsonQuote(key), ",\"timers\":[");
  for (size_t i = 0; i < timers->size(); ++i) {
    if (i > 0) body += ",";
    AppendTimer((*timers)[i], /*with_entity=*/false, printer, body);
  }
  body += "]}";
  return Json(200, std::move(body));
}

HttpResponse DueTimers(const AdminReads& reads, const Page& page) {
  absl::StatusOr<std::vector<store::TimerRecord>> timers = reads.timers.List(page.limit);
  if (!timers.ok()) return Error(timers.status());
  PayloadPrinter printer(reads.catalog.pool());
  std::string body = "{\"timers\":[";
  for (size_t i = 0; i < timers->size(); ++i) {
    if (i > 0) body += ",";
    AppendTimer((*timers)[i], /*with_entity=*/true, printer, body);
  }
  body += "]}";
  return Json(200, std::move(body));
}

HttpResponse OutboxPage(const AdminReads& reads, const Page& page) {
  absl::StatusOr<std::vector<OutboxItem>> items = reads.outbox.List(page.limit);
  if (!items.ok()) return Error(items.status());
  const OutboxStats stats = reads.outbox.stats();
  std::string body = absl::StrCat(
      "{\"delivered\":", stats.delivered, ",\"refused\":", stats.refused,
      ",\"retries\":", stats.retries, ",\"failing\":", stats.failing,
      ",\"in_flight\":", stats.in_flight, ",\"pending\":[");
  for (size_t i = 0; i < items->size(); ++i) {
    const OutboxItem& item = (*items)[i];
    absl::StrAppend(&body, i == 0 ? "" : ",", "{\"id\":", http::JsonQuote(item.id),
                    ",\"service\":", http::JsonQuote(item.service),
                    ",\"method\":", http::JsonQuote(item.method),
                    ",\"source\":", http::JsonQuote(item.source),
                    ",\"attempts\":", item.attempts,
                    ",\"last_error\":", http::JsonQuote(item.last_error),
                    ",\"next_attempt_ms\":", item.due_ms, ",\"created_ms\":", item.created_ms,
                    "}");
  }
  body += "]}";
  return Json(200, std::move(body));
}

// Splits "a/b/c" into percent-decoded segments; nullopt on a bad escape.
std::optional<std::vector<std::string>> Segments(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::optional<std::string> decoded = http::PercentDecode(path.substr(0, slash));
    if (!decoded.has_value()) return std::nullopt;
    out.push_back(*std::move(decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

HttpResponse EntityEvents(store::Store& store, const Catalog& catalog, const std::string& type,
                          const std::string& key, const Page& page) {
  absl::StatusOr<uint64_t> last = store.ReadLastSequence(type, key);
  if (!last.ok()) return Error(last.status());
  absl::StatusOr<std::optional<store::Snapshot>> snapshot = store.ReadSnapshot(type, key);
  if (!snapshot.ok()) return Error(snapshot.status());
  absl::StatusOr<std::vector<Event>> events = store.ReadEvents(type, key, page.from, page.limit);
  if (!events.ok()) return Error(events.status());

  PayloadPrinter printer(catalog.pool());
  std::string body = absl::StrCat("{\"entity_type\":", http::JsonQuote(type),
                                  ",\"key\":", http::JsonQuote(key), ",\"last_sequence\":", *last,
                                  ",\"snapshot_sequence\":",
                                  snapshot->has_value() ? (*snapshot)->sequence : 0,
                                  ",\"events\":[");
  for (size_t i = 0; i < events->size(); ++i) {
    if (i > 0) body += ",";
    AppendEvent((*events)[i], printer, body);
  }
  body += "]";
  if (!events->empty() && events->back().sequence < *last) {
    absl::StrAppend(&body, ",\"next_from\":", events->back().sequence + 1);
  }
  body += "}";
  return Json(200, std::move(body));
}

HttpResponse StreamEvents(store::Store& store, const Catalog& catalog, const std::string& type,
                          const Page& page) {
  absl::StatusOr<std::vector<store::StreamEvent>> events =
      store.ReadStream(type, page.from, page.limit);
  if (!events.ok()) return Error(events.status());
  PayloadPrinter printer(catalog.pool());
  std::string body = absl::StrCat("{\"entity_type\":", http::JsonQuote(type), ",\"events\":[");
  for (size_t i = 0; i < events->size(); ++i) {
    const store::StreamEvent& event = (*events)[i];
    absl::StrAppend(&body, i == 0 ? "" : ",", "{\"offset\":", event.offset,
                    ",\"key\":", http::JsonQuote(event.key), ",\"event\":");
    AppendEvent(event.event, printer, body);
    body += "}";
  }
  body += "]";
  if (events->size() == page.limit) {
    absl::StrAppend(&body, ",\"next_from\":", events->back().offset + 1);
  }
  body += "}";
  return Json(200, std::move(body));
}

}  // namespace

constexpr std::string_view kEntities = "/v1/entities/";
constexpr std::string_view kTypes = "/v1/entity-types/";
constexpr std::string_view kTimers = "/v1/timers";
constexpr std::string_view kOutbox = "/v1/outbox";

bool IsAdminReadPath(std::string_view path) {
  return path.rfind(kEntities, 0) == 0 || path.rfind(kTypes, 0) == 0 || path == kTimers ||
         path == kOutbox;
}

HttpResponse AdminReadEndpoint(const AdminReads& reads, std::string_view path,
                               std::string_view query) {
  if (path == kTimers || path == kOutbox) {
    absl::StatusOr<Page> page = ParsePage(query);
    if (!page.ok()) return Error(page.status());
    return path == kTimers ? DueTimers(reads, *page) : OutboxPage(reads, *page);
  }
  const bool entity = path.rfind(kEntities, 0) == 0;
  std::optional<std::vector<std::string>> segments =
      Segments(path.substr(entity ? kEntities.size() : kTypes.size()));
  if (!segments.has_value()) {
    return Error(absl::InvalidArgumentError("bad percent escape in the path"));
  }
  const size_t expected = entity ? 3 : 2;  // type/key/events or type/events
  if (entity && segments->size() == 3 && segments->back() == "timers") {
    const std::string& type = (*segments)[0];
    if (!KnownTimerOwner(reads.catalog, type)) {
      return Error(absl::NotFoundError(
          absl::StrCat("no entity type or action service '", type, "' is served")));
    }
    if (!query.empty()) return Error(absl::InvalidArgumentError("timers take no parameters"));
    return EntityTimers(reads, type, (*segments)[1]);
  }
  if (segments->size() != expected || segments->back() != "events") {
    return Error(absl::NotFoundError(
        entity ? "use /v1/entities/{entity_type}/{key}/events or .../timers (escape '/' in keys "
                 "as %2F)"
               : "use /v1/entity-types/{entity_type}/events"));
  }
  const std::string& type = (*segments)[0];
  if (!KnownEntityType(reads.catalog, type)) {
    return Error(absl::NotFoundError(
        absl::StrCat("no event-sourced entity type '", type, "' is served")));
  }
  absl::StatusOr<Page> page = ParsePage(query);
  if (!page.ok()) return Error(page.status());
  return entity ? EntityEvents(reads.store, reads.catalog, type, (*segments)[1], *page)
                : StreamEvents(reads.store, reads.catalog, type, *page);
}

}  // namespace massa
