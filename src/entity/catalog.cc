#include "entity/catalog.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/unknown_field_set.h"
#include "massa/protocol/v1/options.pb.h"

namespace massa {
namespace {

namespace pb = google::protobuf;

constexpr int kEntityKeyOption = 50510;
constexpr int kReadOnlyOption = 50511;

// Collects the first error the pool reports while linking the user's files.
class FirstError final : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message*, ErrorLocation, const std::string& message) override {
    if (error.empty()) error = absl::StrCat(filename, ": ", element_name, ": ", message);
  }
  std::string error;
};

// A boolean option of Massa's in `options`. The option may stay unparsed when the user's pool
// resolved it late: then the raw field is read.
template <typename Options, typename Extension>
bool BoolOption(const Options& options, const Extension& extension, int number) {
  if (options.HasExtension(extension)) return options.GetExtension(extension);
  const pb::UnknownFieldSet& unknown = options.GetReflection()->GetUnknownFields(options);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const pb::UnknownField& f = unknown.field(i);
    if (f.number() == number && f.type() == pb::UnknownField::TYPE_VARINT) {
      return f.varint() != 0;
    }
  }
  return false;
}

bool IsEntityKey(const pb::FieldDescriptor& field) {
  return BoolOption(field.options(), massa::protocol::v1::entity_key, kEntityKeyOption);
}

bool IsKeyType(const pb::FieldDescriptor& field) {
  if (field.is_repeated()) return false;
  switch (field.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return true;
    default:
      return false;
  }
}

std::string KeyPart(const pb::Message& message, const pb::FieldDescriptor& field) {
  const pb::Reflection& r = *message.GetReflection();
  switch (field.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return r.GetString(message, &field);
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(r.GetInt32(message, &field));
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(r.GetInt64(message, &field));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(r.GetUInt32(message, &field));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(r.GetUInt64(message, &field));
    default:
      return "";
  }
}

// The actor settings of a service: named, spawned, pooled, subscriptions.
absl::Status CheckActorSpec(const ServiceSpec& spec) {
  const auto refuse = [&spec](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("discovery: service '", spec.name, "' (", EntityKindName(spec.kind), "): ",
                     what));
  };
  const bool entity = spec.kind == EntityKind::kValueEntity || spec.kind == EntityKind::kEventSourced;
  if (!spec.actor_name.empty() && !entity) {
    return refuse("only value and event-sourced entities can be named actors (actor_name)");
  }
  if (spec.spawned && !entity) {
    return refuse("only value and event-sourced entities can be spawned actors (spawned)");
  }
  if (spec.spawned && !spec.actor_name.empty()) {
    return refuse("a service is a named actor (actor_name) or spawned, not both");
  }
  if (spec.max_concurrency > 0 && spec.kind != EntityKind::kAction) {
    return refuse("only actions can be pooled (max_concurrency)");
  }
  for (const ChannelSubscription& sub : spec.subscriptions) {
    if (sub.channel.empty() || sub.channel.size() > 256) {
      return refuse(absl::StrCat("a subscription's channel name must have 1 to 256 characters, "
                                 "not ", sub.channel.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct Catalog::Impl {
  pb::SimpleDescriptorDatabase database;
  std::unique_ptr<pb::DescriptorPool> pool;
  pb::DynamicMessageFactory factory;
  absl::flat_hash_map<std::string, const MethodInfo*> by_method;  // "service/method"
};

Catalog::Catalog(FunctionSpec spec) : spec_(std::move(spec)), impl_(std::make_unique<Impl>()) {}
Catalog::~Catalog() = default;

const pb::DescriptorPool& Catalog::pool() const { return *impl_->pool; }

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Build(FunctionSpec spec) {
  std::unique_ptr<Catalog> catalog(new Catalog(std::move(spec)));
  Impl& impl = *catalog->impl_;

  pb::FileDescriptorSet files;
  if (!files.ParseFromString(catalog->spec_.descriptor_set)) {
    return absl::InvalidArgumentError("discovery: the descriptor set does not parse");
  }
  for (const pb::FileDescriptorProto& file : files.file()) {
    if (!impl.database.Add(file)) {
      return absl::InvalidArgumentError(
          absl::StrCat("discovery: file '", file.name(), "' is in the descriptor set twice"));
    }
  }
  FirstError errors;
  impl.pool = std::make_unique<pb::DescriptorPool>(&impl.database, &errors);

  for (const ServiceSpec& service_spec : catalog->spec_.services) {
    const std::string& name = service_spec.name;
    if (catalog->by_service_.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("discovery: service '", name, "' is listed twice"));
    }
    const pb::ServiceDescriptor* descriptor = impl.pool->FindServiceByName(name);
    if (descriptor == nullptr) {
      std::string why = errors.error.empty() ? "" : absl::StrCat(" (", errors.error, ")");
      return absl::InvalidArgumentError(absl::StrCat(
          "discovery: service '", name, "' is not in the descriptors the function sent", why));
    }
    if (service_spec.kind == EntityKind::kCrdt &&
        static_cast<int>(service_spec.crdt_type) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("discovery: CRDT service '", name, "' does not say its data type"));
    }
    if (service_spec.state_ttl.count() > 0 && service_spec.kind != EntityKind::kValueEntity) {
      return absl::InvalidArgumentError(absl::StrCat(
          "discovery: service '", name, "' sets state_ttl_ms, but it is of kind ",
          EntityKindName(service_spec.kind), "; only value entities' state can expire"));
    }
    if (absl::Status actor = CheckActorSpec(service_spec); !actor.ok()) return actor;
    auto service = std::make_unique<ServiceInfo>();
    service->spec = service_spec;
    if (service->spec.entity_type.empty()) service->spec.entity_type = name;
    service->descriptor = descriptor;
    if (!service_spec.state_type.empty() &&
        impl.pool->FindMessageTypeByName(service_spec.state_type) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("discovery: service '", name,
                                                     "': state type '", service_spec.state_type,
                                                     "' is not in the descriptors"));
    }
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const pb::MethodDescriptor* m = descriptor->method(i);
      auto method = std::make_unique<MethodInfo>();
      method->service = service.get();
      method->name = m->name();
      method->path = absl::StrCat("/", name, "/", m->name());
      method->descriptor = m;
      method->request_prototype = impl.factory.GetPrototype(m->input_type());
      method->request_type = m->input_type()->full_name();
      method->streaming = m->client_streaming() || m->server_streaming();
      method->read_only =
          BoolOption(m->options(), massa::protocol::v1::read_only, kReadOnlyOption);
      if (service_spec.kind != EntityKind::kAction) {
        const pb::Descriptor* input = m->input_type();
        for (int f = 0; f < input->field_count(); ++f) {
          const pb::FieldDescriptor* field = input->field(f);
          if (!IsEntityKey(*field)) continue;
          if (!IsKeyType(*field)) {
            return absl::InvalidArgumentError(absl::StrCat(
                "discovery: ", name, ".", m->name(), ": entity key field '", field->full_name(),
                "' must be a single string or integer field"));
          }
          method->key_fields.push_back(field);
        }
        if (method->key_fields.empty() && service_spec.actor_name.empty() &&
            !service_spec.spawned) {
          return absl::InvalidArgumentError(absl::StrCat(
              "discovery: ", name, ".", m->name(), ": request type '", input->full_name(),
              "' has no field marked [(massa.protocol.v1.entity_key) = true]"));
        }
        std::sort(method->key_fields.begin(), method->key_fields.end(),
                  [](auto* a, auto* b) { return a->number() < b->number(); });
      }
      impl.by_method[absl::StrCat(name, "/", m->name())] = method.get();
      service->methods.push_back(std::move(method));
    }
    for (const ChannelSubscription& sub : service_spec.subscriptions) {
      auto found = impl.by_method.find(absl::StrCat(name, "/", sub.method));
      const MethodInfo* method = found == impl.by_method.end() ? nullptr : found->second;
      if (method == nullptr || method->streaming) {
        return absl::InvalidArgumentError(absl::StrCat(
            "discovery: ", name, " subscribes to channel '", sub.channel, "' with method '",
            sub.method, "', which ", method == nullptr ? "it does not have" : "is streaming"));
      }
      std::vector<const MethodInfo*>& subscribers = catalog->subscribers_[sub.channel];
      if (std::find(subscribers.begin(), subscribers.end(), method) != subscribers.end()) {
        return absl::InvalidArgumentError(absl::StrCat("discovery: ", name,
                                                       " subscribes to channel '", sub.channel,
                                                       "' with ", sub.method, " twice"));
      }
      subscribers.push_back(method);
    }
    catalog->by_service_[name] = service.get();
    catalog->services_.push_back(std::move(service));
  }
  // Two services sharing an entity type must be of the same kind.
  absl::flat_hash_map<std::string, EntityKind> kinds;
  for (const auto& service : catalog->services_) {
    auto [it, inserted] = kinds.emplace(service->spec.entity_type, service->spec.kind);
    if (!inserted && it->second != service->spec.kind) {
      return absl::InvalidArgumentError(absl::StrCat(
          "discovery: entity type '", service->spec.entity_type,
          "' is used by services of different kinds (", service->spec.name, " is ",
          EntityKindName(service->spec.kind), ")"));
    }
  }
  return catalog;
}

const std::vector<const MethodInfo*>& Catalog::SubscribersOf(std::string_view channel) const {
  static const std::vector<const MethodInfo*> kNone;
  auto it = subscribers_.find(absl::string_view(channel.data(), channel.size()));
  return it == subscribers_.end() ? kNone : it->second;
}

const ServiceInfo* Catalog::FindService(std::string_view service) const {
  auto it = by_service_.find(absl::string_view(service.data(), service.size()));
  return it == by_service_.end() ? nullptr : it->second;
}

const MethodInfo* Catalog::FindMethod(std::string_view service, std::string_view method) const {
  std::string id;
  id.reserve(service.size() + 1 + method.size());
  id.append(service).append("/").append(method);
  auto it = impl_->by_method.find(id);
  return it == impl_->by_method.end() ? nullptr : it->second;
}

absl::StatusOr<std::string> Catalog::ExtractKey(const MethodInfo& method,
                                                std::string_view payload) const {
  std::unique_ptr<pb::Message> request(method.request_prototype->New());
  if (!request->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("request does not decode as ", request->GetDescriptor()->full_name()));
  }
  if (method.key_fields.empty()) return std::string();
  std::string key;
  for (const pb::FieldDescriptor* field : method.key_fields) {
    std::string part = KeyPart(*request, *field);
    if (part.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("entity key field '", field->name(),
                                                     "' of ", field->containing_type()->full_name(),
                                                     " is empty"));
    }
    if (method.key_fields.size() == 1) return part;
    // Several parts: escape '\\' and '/' so that ("a/b", "c") and ("a", "b/c") differ.
    if (!key.empty()) key += '/';
    for (char c : part) {
      if (c == '/' || c == '\\') key += '\\';
      key += c;
    }
  }
  return key;
}

absl::Status Catalog::CheckAddressedKey(const MethodInfo& method, std::string_view payload,
                                        std::string_view key) const {
  std::unique_ptr<pb::Message> request(method.request_prototype->New());
  if (!request->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("request does not decode as ", request->GetDescriptor()->full_name()));
  }
  bool named = false;
  for (const pb::FieldDescriptor* field : method.key_fields) {
    named = named || !KeyPart(*request, *field).empty();
  }
  if (!named) return absl::OkStatus();
  absl::StatusOr<std::string> own = ExtractKey(method, payload);
  if (!own.ok()) return own.status();
  if (*own != key) {
    return absl::InvalidArgumentError(absl::StrCat("the request names entity key '", *own,
                                                   "' but the command is addressed to entity '",
                                                   std::string(key), "'"));
  }
  return absl::OkStatus();
}

}  // namespace massa
