// The services Massa serves, built once from what the user function sent at discovery.
// It validates the spec (every problem named with its service and method), resolves each
// method's request and reply types, and extracts entity keys from requests.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "massa/entity/command.h"
#include "massa/protocol/user_function.h"

namespace google::protobuf {
class Descriptor;
class DescriptorPool;
class FieldDescriptor;
class Message;
class MethodDescriptor;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace massa {

struct ServiceInfo;

struct MethodInfo {
  const ServiceInfo* service = nullptr;
  std::string name;  // "AddItem"
  std::string path;  // "/example.shoppingcart.ShoppingCart/AddItem"
  const google::protobuf::MethodDescriptor* descriptor = nullptr;
  const google::protobuf::Message* request_prototype = nullptr;
  std::string request_type;  // fully qualified request message name
  // Entity methods: the request fields marked (massa.protocol.v1.entity_key), by number.
  std::vector<const google::protobuf::FieldDescriptor*> key_fields;
  bool streaming = false;  // client or server streaming: not served
  bool read_only = false;  // (massa.protocol.v1.read_only): may be re-entered
};

struct ServiceInfo {
  ServiceSpec spec;
  const google::protobuf::ServiceDescriptor* descriptor = nullptr;
  std::vector<std::unique_ptr<MethodInfo>> methods;
};

// Immutable after Build; thread-safe.
class Catalog {
 public:
  ~Catalog();

  // Validates `spec` and builds the catalog. Errors (INVALID_ARGUMENT, naming the service,
  // method or file): descriptors that do not parse or link, a service missing from the
  // descriptors or listed twice, a kind this massa does not serve, an entity method whose
  // request has no usable key field (unless the service is a named or spawned actor), an unknown
  // state type, actor settings that do not fit the kind, a subscription to an unknown method.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Catalog>> Build(FunctionSpec spec);

  // nullptr when there is no such service or method.
  const MethodInfo* FindMethod(std::string_view service, std::string_view method) const;
  const ServiceInfo* FindService(std::string_view service) const;

  // Checks that `payload` decodes as the method's request and returns its entity key (empty
  // for actions). Errors: INVALID_ARGUMENT for bytes that do not decode or an empty key,
  // naming the field.
  [[nodiscard]] absl::StatusOr<std::string> ExtractKey(const MethodInfo& method,
                                                       std::string_view payload) const;

  // For a command addressed to entity `key` (Command::addressed): checks that `payload`
  // decodes as the method's request and that its key fields, where it fills any, name the same
  // key. INVALID_ARGUMENT otherwise, naming both keys.
  [[nodiscard]] absl::Status CheckAddressedKey(const MethodInfo& method, std::string_view payload,
                                               std::string_view key) const;

  // The methods subscribed to `channel` (ServiceSpec::subscriptions), in spec order; empty
  // when none is.
  const std::vector<const MethodInfo*>& SubscribersOf(std::string_view channel) const;

  const FunctionSpec& spec() const { return spec_; }
  const std::vector<std::unique_ptr<ServiceInfo>>& services() const { return services_; }
  const google::protobuf::DescriptorPool& pool() const;

 private:
  struct Impl;
  explicit Catalog(FunctionSpec spec);

  FunctionSpec spec_;
  std::unique_ptr<Impl> impl_;
  std::vector<std::unique_ptr<ServiceInfo>> services_;
  absl::flat_hash_map<std::string, const ServiceInfo*> by_service_;
  absl::flat_hash_map<std::string, std::vector<const MethodInfo*>> subscribers_;
};

}  // namespace massa
