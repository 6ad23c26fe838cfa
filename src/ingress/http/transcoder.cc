#include "ingress/http/transcoder.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "entity/catalog.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "ingress/http/http_rule.h"
#include "ingress/http/path_template.h"
#include "ingress/http/transcoder_util.h"
#include "massa/common/status.h"

namespace massa::http {

namespace pb = google::protobuf;

namespace {

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";
constexpr size_t kMaxEchoedPath = 200;  // how much of a request path error messages repeat

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string TypeUrl(const pb::Descriptor& type) {
  return absl::StrCat(kTypeUrlPrefix, "/", type.full_name());
}

// The request's method and path as error messages show them (shortened, printable).
std::string Echo(const HttpRequest& request) {
  std::string path(request.path.substr(0, kMaxEchoedPath));
  for (char& c : path) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) c = '?';
  }
  std::string method(request.method.substr(0, 32));
  for (char& c : method) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) c = '?';
  }
  return absl::StrCat(method, " ", path, request.path.size() > kMaxEchoedPath ? "..." : "");
}

// Well-known message types that take a single JSON string, so a query parameter can set them.
bool IsStringLikeWellKnownType(const pb::Descriptor& type) {
  static const auto* const kNames = new absl::flat_hash_set<std::string>{
      "google.protobuf.Timestamp",   "google.protobuf.Duration",    "google.protobuf.FieldMask",
      "google.protobuf.DoubleValue", "google.protobuf.FloatValue",  "google.protobuf.Int64Value",
      "google.protobuf.UInt64Value", "google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue",   "google.protobuf.StringValue", "google.protobuf.BytesValue"};
  return kNames->contains(type.full_name());
}

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); });
}

// "{}", with any whitespace.
bool IsEmptyJsonObject(std::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(AbslView(text));
  if (!absl::ConsumePrefix(&rest, "{") || !absl::ConsumeSuffix(&rest, "}")) return false;
  return absl::StripAsciiWhitespace(rest).empty();
}

// A field of `type` by proto name or JSON (lowerCamel) name.
const pb::FieldDescriptor* FindField(const pb::Descriptor& type, std::string_view name) {
  if (const pb::FieldDescriptor* field = type.FindFieldByName(std::string(name))) return field;
  for (int i = 0; i < type.field_count(); ++i) {
    if (type.field(i)->json_name() == name) return type.field(i);
  }
  return nullptr;
}

// A chain of fields from the request message down to a leaf, e.g. sub.subfield.
struct FieldPath {
  std::vector<const pb::FieldDescriptor*> fields;
  std::string name;  // proto names joined with '.'
};

// The innermost message of `path` in `root`, created as needed.
pb::Message& MutableParent(pb::Message& root, const FieldPath& path) {
  pb::Message* message = &root;
  for (size_t i = 0; i + 1 < path.fields.size(); ++i) {
    message = message->GetReflection()->MutableMessage(message, path.fields[i]);
  }
  return *message;
}

}  // namespace

class HttpRoute {
 public:
  enum class Body { kNone, kAll, kField };

  std::string http_method;  // "GET", ..., or "*" for any
  PathTemplate path;
  HttpBinding binding;
  bool implicit = false;  // the POST /<package.Service>/<Method> route of a rule-less method
  size_t order = 0;       // declaration order, to keep sorting stable
  const MethodInfo* method = nullptr;
  std::string method_full_name;  // "pkg.Service.Method"

  const pb::Message* request_prototype = nullptr;
  const pb::Message* response_prototype = nullptr;
  std::string request_type_url;
  std::string response_type_url;

  std::vector<FieldPath> path_fields;           // parallel to path.variables()
  absl::flat_hash_set<std::string> path_bound;  // FieldPath::name of each
  Body body = Body::kNone;
  const pb::FieldDescriptor* body_field = nullptr;
  const pb::FieldDescriptor* response_field = nullptr;

  std::string Describe() const {
    return absl::StrCat(binding.Describe(), " (", method_full_name, ")");
  }
};

struct Transcoder::Impl {
  explicit Impl(const Catalog& c)
      : factory(&c.pool()),
        resolver(pb::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix, &c.pool())) {
    parse_options.ignore_unknown_fields = false;
    parse_options.case_insensitive_enum_parsing = false;
    print_options.add_whitespace = false;
    print_options.always_print_primitive_fields = true;
    print_options.always_print_enums_as_ints = false;
    print_options.preserve_proto_field_names = false;
  }

  absl::Status AddMethod(const MethodInfo& method);
  absl::StatusOr<std::unique_ptr<HttpRoute>> CompileRoute(const MethodInfo& method,
                                                          HttpBinding binding, bool implicit);
  absl::Status SortAndCheckConflicts();

  // Parses JSON `json` as `type_url` into `message` (replacing its content).
  absl::Status ParseJson(std::string_view json, const std::string& type_url, pb::Message& message,
                         std::string_view what) const;
  absl::Status ApplyBody(const HttpRoute& route, const HttpRequest& request,
                         pb::Message& message) const;
  absl::Status ApplyQuery(const HttpRoute& route, const HttpRequest& request,
                          pb::Message& message) const;
  absl::Status SetQueryParam(const HttpRoute& route, const QueryParam& param,
                             absl::flat_hash_set<std::string>& seen, pb::Message& message) const;

  // GetPrototype is thread-safe (it locks), but not const.
  mutable pb::DynamicMessageFactory factory;
  // Stateless (reads the pool only), so safe to share between threads.
  std::unique_ptr<pb::util::TypeResolver> resolver;
  pb::util::JsonParseOptions parse_options;
  pb::util::JsonPrintOptions print_options;
  std::vector<std::unique_ptr<HttpRoute>> routes;  // most specific first after Build
};

Transcoder::Transcoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transcoder::~Transcoder() = default;

absl::StatusOr<std::unique_ptr<Transcoder>> Transcoder::Build(const Catalog& catalog) {
  auto impl = std::make_unique<Impl>(catalog);
  for (const auto& service : catalog.services()) {
    for (const auto& method : service->methods) {
      if (method->streaming) continue;
      MASSA_RETURN_IF_ERROR(impl->AddMethod(*method));
    }
  }
  MASSA_RETURN_IF_ERROR(impl->SortAndCheckConflicts());
  return std::unique_ptr<Transcoder>(new Transcoder(std::move(impl)));
}

absl::Status Transcoder::Impl::AddMethod(const MethodInfo& method) {
  MASSA_ASSIGN_OR_RETURN(std::vector<HttpBinding> bindings, ReadHttpBindings(*method.descriptor));
  const bool implicit = bindings.empty();
  if (implicit) {
    bindings.push_back(HttpBinding{"POST", method.path, "*", ""});
  }
  for (HttpBinding& binding : bindings) {
    MASSA_ASSIGN_OR_RETURN(std::unique_ptr<HttpRoute> route,
                           CompileRoute(method, std::move(binding), implicit));
    route->order = routes.size();
    routes.push_back(std::move(route));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpRoute>> Transcoder::Impl::CompileRoute(const MethodInfo& method,
                                                                          HttpBinding binding,
                                                                          bool implicit) {
  auto route = std::make_unique<HttpRoute>();
  route->method = &method;
  route->method_full_name = method.descriptor->full_name();
  route->implicit = implicit;
  route->http_method = binding.http_method;
  route->binding = std::move(binding);
  const HttpBinding& b = route->binding;
  auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(route->method_full_name, ": http rule \"",
                                                   b.Describe(), "\": ", AbslView(what)));
  };

  absl::StatusOr<PathTemplate> path = PathTemplate::Parse(b.path);
  if (!path.ok()) return error(std::string(path.status().message()));
  route->path = *std::move(path);

  const pb::Descriptor& input = *method.descriptor->input_type();
  const pb::Descriptor& output = *method.descriptor->output_type();
  route->request_prototype = factory.GetPrototype(&input);
  route->response_prototype = factory.GetPrototype(&output);
  route->request_type_url = TypeUrl(input);
  route->response_type_url = TypeUrl(output);

  // Path variables: non-repeated primitive leaves reached through singular messages.
  absl::flat_hash_map<const pb::OneofDescriptor*, std::string> oneofs;
  for (const PathTemplate::Variable& variable : route->path.variables()) {
    FieldPath field_path;
    field_path.name = absl::StrJoin(variable.field_path, ".");
    const pb::Descriptor* type = &input;
    for (size_t i = 0; i < variable.field_path.size(); ++i) {
      const std::string& name = variable.field_path[i];
      const pb::FieldDescriptor* field = type->FindFieldByName(name);
      if (field == nullptr) {
        return error(absl::StrCat("path variable '", field_path.name, "': ", type->full_name(),
                                  " has no field '", name, "'"));
      }
      const bool leaf = i + 1 == variable.field_path.size();
      if (field->is_map() || field->is_repeated()) {
        return error(absl::StrCat("path variable '", field_path.name, "': '", name, "' is a ",
                                  field->is_map() ? "map" : "repeated",
                                  " field (path variables must be singular)"));
      }
      if (leaf && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        return error(absl::StrCat("path variable '", field_path.name, "' is a message (",
                                  field->message_type()->full_name(),
                                  "); bind one of its primitive fields"));
      }
      if (!leaf && field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        return error(absl::StrCat("path variable '", field_path.name, "': '", name,
                                  "' is not a message, so it has no fields"));
      }
      if (leaf && field->real_containing_oneof() != nullptr) {
        auto [it, inserted] = oneofs.emplace(field->real_containing_oneof(), field_path.name);
        if (!inserted) {
          return error(absl::StrCat("path variables '", it->second, "' and '", field_path.name,
                                    "' are in the same oneof"));
        }
      }
      field_path.fields.push_back(field);
      if (!leaf) type = field->message_type();
    }
    route->path_bound.insert(field_path.name);
    route->path_fields.push_back(std::move(field_path));
  }

  if (b.body.empty()) {
    route->body = HttpRoute::Body::kNone;
  } else if (b.body == "*") {
    route->body = HttpRoute::Body::kAll;
  } else {
    route->body = HttpRoute::Body::kField;
    route->body_field = input.FindFieldByName(b.body);
    if (route->body_field == nullptr) {
      return error(absl::StrCat(
          "body '", b.body, "' is not a field of ", input.full_name(),
          b.body.find('.') != std::string::npos ? " (it must be a top-level field)" : ""));
    }
  }
  if (!b.response_body.empty()) {
    route->response_field = output.FindFieldByName(b.response_body);
    if (route->response_field == nullptr) {
      return error(absl::StrCat(
          "response_body '", b.response_body, "' is not a field of ", output.full_name(),
          b.response_body.find('.') != std::string::npos ? " (it must be a top-level field)" : ""));
    }
  }
  return route;
}

absl::Status Transcoder::Impl::SortAndCheckConflicts() {
  std::stable_sort(routes.begin(), routes.end(), [](const auto& a, const auto& b) {
    if (PathTemplate::MoreSpecific(a->path, b->path)) return true;
    if (PathTemplate::MoreSpecific(b->path, a->path)) return false;
    // Same shape: a route for one HTTP method before a custom "*" route.
    return (a->http_method != "*") > (b->http_method != "*");
  });
  absl::flat_hash_map<std::string, const HttpRoute*> seen;  // "METHOD shape"
  for (const auto& route : routes) {
    auto [it, inserted] =
        seen.emplace(absl::StrCat(route->http_method, " ", route->path.Shape()), route.get());
    if (!inserted) {
      const HttpRoute& first = *it->second;
      const HttpRoute& second = *route;
      // Name them in declaration order.
      const HttpRoute& a = first.order < second.order ? first : second;
      const HttpRoute& c = first.order < second.order ? second : first;
      auto name = [](const HttpRoute& r) {
        return r.implicit ? absl::StrCat("the implicit route ", r.Describe()) : r.Describe();
      };
      return absl::InvalidArgumentError(absl::StrCat(c.method_full_name, ": http rule \"",
                                                     c.binding.Describe(), "\" conflicts with ",
                                                     name(a), ": same HTTP method and template"));
    }
  }
  return absl::OkStatus();
}

absl::Status Transcoder::Impl::ParseJson(std::string_view json, const std::string& type_url,
                                         pb::Message& message, std::string_view what) const {
  std::string binary;
  pb::util::Status status = pb::util::JsonToBinaryString(
      resolver.get(), type_url, pb::StringPiece(json.data(), json.size()), &binary, parse_options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON ", AbslView(what), ": ", std::string(status.message())));
  }
  if (!message.ParseFromString(binary)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON ", AbslView(what),
                                                   ": it does not convert to ",
                                                   message.GetDescriptor()->full_name()));
  }
  return absl::OkStatus();
}

absl::Status Transcoder::Impl::ApplyBody(const HttpRoute& route, const HttpRequest& request,
                                         pb::Message& message) const {
  const bool empty = IsBlank(request.body);
  if (route.body == HttpRoute::Body::kNone) {
    // Clients often send "{}" with a POST; anything more would be dropped silently.
    if (!empty && !IsEmptyJsonObject(request.body)) {
      return absl::InvalidArgumentError(absl::StrCat(
          route.binding.Describe(), " takes no request body (at most an empty JSON object)"));
    }
    return absl::OkStatus();
  }
  if (empty) return absl::OkStatus();
  if (!IsJsonContentType(request.content_type)) {
    std::string_view prefix = request.content_type.substr(0, 100);
    std::string shown = IsValidUtf8(prefix) ? std::string(prefix) : std::string("?");
    return absl::InvalidArgumentError(absl::StrCat(
        "content type '", shown, "' is not supported; send the body as application/json"));
  }
  if (route.body == HttpRoute::Body::kAll) {
    return ParseJson(request.body, route.request_type_url, message, "body");
  }
  const pb::FieldDescriptor& field = *route.body_field;
  const pb::Reflection& r = *message.GetReflection();
  if (field.cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field.is_repeated()) {
    return ParseJson(request.body, TypeUrl(*field.message_type()),
                     *r.MutableMessage(&message, &field), "body");
  }
  // A repeated, map or primitive field: parse {"<field>": <body>} and take the field.
  if (!IsEmbeddableJsonValue(request.body)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid JSON body: expected a single JSON value for field '", field.name(), "'"));
  }
  std::string wrapped =
      absl::StrCat("{", JsonQuote(field.json_name()), ":", AbslView(request.body), "}");
  std::unique_ptr<pb::Message> scratch(message.New());
  MASSA_RETURN_IF_ERROR(ParseJson(wrapped, route.request_type_url, *scratch, "body"));
  r.SwapFields(&message, scratch.get(), {&field});
  return absl::OkStatus();
}

absl::Status Transcoder::Impl::ApplyQuery(const HttpRoute& route, const HttpRequest& request,
                                          pb::Message& message) const {
  if (request.query.empty()) return absl::OkStatus();
  MASSA_ASSIGN_OR_RETURN(std::vector<QueryParam> params, ParseQueryString(request.query));
  if (params.empty()) return absl::OkStatus();
  if (route.body == HttpRoute::Body::kAll) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query parameter '", params.front().name, "': ", route.binding.Describe(),
        " takes every field from the path and the body (body \"*\"), none from the query"));
  }
  absl::flat_hash_set<std::string> seen;
  for (const QueryParam& param : params) {
    MASSA_RETURN_IF_ERROR(SetQueryParam(route, param, seen, message));
  }
  return absl::OkStatus();
}

absl::Status Transcoder::Impl::SetQueryParam(const HttpRoute& route, const QueryParam& param,
                                             absl::flat_hash_set<std::string>& seen,
                                             pb::Message& message) const {
  auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter '", param.name, "': ", AbslView(what)));
  };
  // Resolve the whole path before touching the message.
  FieldPath path;
  const pb::Descriptor* type = message.GetDescriptor();
  std::vector<std::string> names = absl::StrSplit(param.name, '.');
  for (size_t i = 0; i < names.size(); ++i) {
    const pb::FieldDescriptor* field = FindField(*type, names[i]);
    if (field == nullptr) {
      return error(absl::StrCat(type->full_name(), " has no field '", names[i], "'"));
    }
    path.fields.push_back(field);
    absl::StrAppend(&path.name, i == 0 ? "" : ".", field->name());
    const bool leaf = i + 1 == names.size();
    if (field->is_map()) return error(absl::StrCat("'", field->name(), "' is a map field"));
    if (!leaf) {
      if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        return error(absl::StrCat("'", field->name(), "' is not a message"));
      }
      if (field->is_repeated()) {
        return error(
            absl::StrCat("'", field->name(), "' is a repeated message (send it in a JSON body)"));
      }
      type = field->message_type();
    }
  }
  const pb::FieldDescriptor& leaf = *path.fields.back();
  const bool message_leaf = leaf.cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
  if (message_leaf && !IsStringLikeWellKnownType(*leaf.message_type())) {
    return error(absl::StrCat("'", leaf.name(), "' is a message; set its fields (", param.name,
                              ".<field>=...)"));
  }
  if (route.path_bound.contains(path.name)) return error("the field is bound by the path");
  if (route.body == HttpRoute::Body::kField && path.fields.front() == route.body_field) {
    return error("the field is sent in the request body");
  }
  if (!leaf.is_repeated() && !seen.insert(path.name).second) {
    return error("given more than once for a field that is not repeated");
  }

  pb::Message& parent = MutableParent(message, path);
  const pb::Reflection& r = *parent.GetReflection();
  if (const pb::OneofDescriptor* oneof = leaf.real_containing_oneof();
      oneof != nullptr && r.HasOneof(parent, oneof) &&
      r.GetOneofFieldDescriptor(parent, oneof) != &leaf) {
    return error(absl::StrCat("another field of oneof '", oneof->name(), "' ('",
                              r.GetOneofFieldDescriptor(parent, oneof)->name(),
                              "') is already set"));
  }
  if (!message_leaf) {
    absl::Status status = SetFieldFromString(parent, leaf, param.value);
    if (!status.ok()) return error(std::string(status.message()));
    return absl::OkStatus();
  }
  // Timestamp, Duration, FieldMask, wrappers: their JSON form is a string (or, for wrappers,
  // a number or bool, which the JSON parser also takes as a string).
  std::unique_ptr<pb::Message> value(factory.GetPrototype(leaf.message_type())->New());
  absl::Status status =
      ParseJson(JsonQuote(param.value), TypeUrl(*leaf.message_type()), *value, "value");
  if (!status.ok()) return error(std::string(status.message()));
  if (leaf.is_repeated()) {
    r.AddMessage(&parent, &leaf)->CopyFrom(*value);
  } else {
    r.MutableMessage(&parent, &leaf)->CopyFrom(*value);
  }
  return absl::OkStatus();
}

absl::StatusOr<TranscodedRequest> Transcoder::TranscodeRequest(const HttpRequest& request) const {
  MASSA_ASSIGN_OR_RETURN(RequestPath path, RequestPath::Parse(request.path));

  const HttpRoute* route = nullptr;
  std::optional<std::vector<std::string>> values;
  for (const auto& candidate : impl_->routes) {
    if (candidate->http_method != "*" && candidate->http_method != request.method) continue;
    values = candidate->path.Match(path);
    if (values) {
      route = candidate.get();
      break;
    }
  }
  if (route == nullptr) {
    std::vector<std::string> allowed;
    for (const auto& candidate : impl_->routes) {
      if (std::find(allowed.begin(), allowed.end(), candidate->http_method) == allowed.end() &&
          candidate->path.Match(path)) {
        allowed.push_back(candidate->http_method);
      }
    }
    if (allowed.empty()) {
      return absl::UnimplementedError(absl::StrCat("no HTTP route for ", Echo(request)));
    }
    std::sort(allowed.begin(), allowed.end());
    return absl::UnimplementedError(absl::StrCat(
        "no HTTP route for ", Echo(request), "; the path accepts ", absl::StrJoin(allowed, ", ")));
  }

  std::unique_ptr<pb::Message> message(route->request_prototype->New());
  MASSA_RETURN_IF_ERROR(impl_->ApplyBody(*route, request, *message));
  for (size_t i = 0; i < route->path_fields.size(); ++i) {
    const FieldPath& field_path = route->path_fields[i];
    pb::Message& parent = MutableParent(*message, field_path);
    const pb::FieldDescriptor& leaf = *field_path.fields.back();
    std::unique_ptr<pb::Message> scratch(parent.New());
    // Convert into a scratch message first so that a bad value leaves nothing half-set, then
    // move the field over (the path overrides what the body said).
    absl::Status status = SetFieldFromString(*scratch, leaf, (*values)[i]);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("path variable '", field_path.name, "': ", std::string(status.message())));
    }
    parent.GetReflection()->SwapFields(&parent, scratch.get(), {&leaf});
  }
  MASSA_RETURN_IF_ERROR(impl_->ApplyQuery(*route, request, *message));

  TranscodedRequest result;
  result.method = route->method;
  result.service = route->method->service->spec.name;
  result.method_name = route->method->name;
  if (!message->SerializeToString(&result.payload)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request for ", route->method_full_name, " does not serialize"));
  }
  result.route = route;
  return result;
}

absl::StatusOr<std::string> Transcoder::TranscodeResponse(const HttpRoute& route,
                                                          std::string_view reply) const {
  std::unique_ptr<pb::Message> message(route.response_prototype->New());
  if (!message->ParseFromArray(reply.data(), static_cast<int>(reply.size()))) {
    return absl::InternalError(absl::StrCat("the reply of ", route.method_full_name,
                                            " does not decode as ",
                                            message->GetDescriptor()->full_name()));
  }
  auto to_json = [&](const pb::Message& m) -> absl::StatusOr<std::string> {
    std::string json;
    pb::util::Status status =
        pb::util::BinaryToJsonString(impl_->resolver.get(), TypeUrl(*m.GetDescriptor()),
                                     m.SerializeAsString(), &json, impl_->print_options);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat("the reply of ", route.method_full_name,
                       " does not convert to JSON: ", std::string(status.message())));
    }
    return json;
  };
  const pb::FieldDescriptor* field = route.response_field;
  if (field == nullptr) return to_json(*message);
  const pb::Reflection& r = *message->GetReflection();
  if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated()) {
    return to_json(r.GetMessage(*message, field));
  }
  // A repeated, map or primitive field: print a message holding only that field and cut its
  // value out of the object.
  std::vector<const pb::FieldDescriptor*> set_fields;
  r.ListFields(*message, &set_fields);
  for (const pb::FieldDescriptor* other : set_fields) {
    if (other != field) r.ClearField(message.get(), other);
  }
  MASSA_ASSIGN_OR_RETURN(std::string json, to_json(*message));
  std::optional<std::string_view> value = FindJsonMember(json, field->json_name());
  // A field with presence that is not set (a oneof member, a proto3 optional) prints nothing.
  if (!value) return std::string("null");
  return std::string(*value);
}

std::vector<std::string> Transcoder::DescribeRoutes() const {
  std::vector<std::string> lines;
  lines.reserve(impl_->routes.size());
  for (const auto& route : impl_->routes) {
    lines.push_back(absl::StrCat(route->binding.Describe(), " -> ", route->method_full_name));
  }
  return lines;
}

}  // namespace massa::http
