// libFuzzer target for the HTTP/JSON transcoding core: path templates, request paths, query
// strings and JSON bodies through the Transcoder built over test/ingress_http/http_test.proto.
//
// Input: the first byte picks the mode, the rest is split into lines ('\n'), so seeds are
// readable (test/fuzz/corpus/http_transcoder/):
//   'T' template \n path          parse a path template; if it parses, check that its canonical
//                                 form parses to the same shape, and match `path` against it
//   'R' method \n path[?query] \n content-type \n body...
//                                 transcode a request; if it transcodes, the payload must decode
//                                 as the method's request; then transcode a reply
//   'Q' query                     parse a query string
// Anything else is a template and a path too.
//
// Besides the sanitizers, the invariants above abort on violation.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "entity/catalog.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/logging.h"
#include "ingress/http/path_template.h"
#include "ingress/http/transcoder.h"
#include "ingress/http/transcoder_util.h"
#include "ingress_http/http_test_util.h"

namespace {

using massa::http::HttpRequest;
using massa::http::PathTemplate;
using massa::http::Transcoder;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

// Splits off the text up to the next '\n' (all of it when there is none).
std::string_view NextLine(std::string_view& rest) {
  const size_t newline = rest.find('\n');
  std::string_view line = rest.substr(0, newline);
  rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
  return line;
}

struct World {
  std::unique_ptr<massa::Catalog> catalog;
  std::unique_ptr<Transcoder> transcoder;
};

const World& TheWorld() {
  static const World* world = [] {
    // Protobuf logs parse errors of invalid UTF-8 and the like: keep the output readable.
    google::protobuf::SetLogHandler(nullptr);
    auto* w = new World;
    w->catalog = massa::http_testing::CatalogOf(
        {massa::http_testing::kMessaging, massa::http_testing::kLibrary});
    absl::StatusOr<std::unique_ptr<Transcoder>> transcoder = Transcoder::Build(*w->catalog);
    Check(transcoder.ok(), "the transcoder builds");
    w->transcoder = *std::move(transcoder);
    return w;
  }();
  return *world;
}

void FuzzTemplate(std::string_view rest) {
  std::string_view text = NextLine(rest);
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse(text);
  if (!t.ok()) {
    Check(t.status().code() == absl::StatusCode::kInvalidArgument,
          "parse errors are INVALID_ARGUMENT");
    return;
  }
  absl::StatusOr<PathTemplate> again = PathTemplate::Parse(t->ToString());
  Check(again.ok(), "the canonical form parses");
  Check(again->Shape() == t->Shape(), "the canonical form has the same shape");
  Check(again->variables().size() == t->variables().size(), "same variables");
  Check(!PathTemplate::MoreSpecific(*t, *again) && !PathTemplate::MoreSpecific(*again, *t),
        "same specificity");
  std::optional<std::vector<std::string>> values = t->Match(rest);
  if (values) Check(values->size() == t->variables().size(), "one value per variable");
}

void FuzzRequest(std::string_view rest) {
  const World& world = TheWorld();
  HttpRequest request;
  request.method = NextLine(rest);
  std::string_view target = NextLine(rest);
  const size_t q = target.find('?');
  request.path = target.substr(0, q);
  request.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  request.content_type = NextLine(rest);
  request.body = rest;

  absl::StatusOr<massa::http::TranscodedRequest> r = world.transcoder->TranscodeRequest(request);
  if (!r.ok()) {
    Check(r.status().code() == absl::StatusCode::kInvalidArgument ||
              r.status().code() == absl::StatusCode::kUnimplemented,
          "request errors are INVALID_ARGUMENT or UNIMPLEMENTED");
    return;
  }
  Check(r->method != nullptr && r->route != nullptr, "a route and a method");
  std::unique_ptr<google::protobuf::Message> decoded(r->method->request_prototype->New());
  Check(decoded->ParseFromString(r->payload), "the payload decodes as the request type");
  // Replies: the request payload and the body bytes, whatever type they decode as (or not).
  for (std::string_view reply : {std::string_view(r->payload), request.body}) {
    absl::StatusOr<std::string> json = world.transcoder->TranscodeResponse(*r->route, reply);
    if (!json.ok()) {
      Check(json.status().code() == absl::StatusCode::kInternal, "reply errors are INTERNAL");
    } else {
      Check(!json->empty(), "a reply gives some JSON");
    }
  }
}

void FuzzQuery(std::string_view rest) {
  absl::StatusOr<std::vector<massa::http::QueryParam>> params = massa::http::ParseQueryString(rest);
  if (params.ok()) {
    for (const massa::http::QueryParam& param : *params) {
      Check(massa::http::IsValidUtf8(param.name) && massa::http::IsValidUtf8(param.value),
            "decoded parameters are UTF-8");
    }
  }
  (void)massa::http::IsEmbeddableJsonValue(rest);
  (void)massa::http::FindJsonMember(rest, "a");
  (void)massa::http::IsJsonContentType(rest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const char mode = input[0];
  std::string_view rest = input.substr(1);
  switch (mode) {
    case 'R':
      FuzzRequest(rest);
      break;
    case 'Q':
      FuzzQuery(rest);
      break;
    default:
      FuzzTemplate(rest);
      break;
  }
  return 0;
}
