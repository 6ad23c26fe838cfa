#include "test_function.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <system_error>

namespace massa::sdk::testing {
namespace {

namespace v1 = massa::protocol::v1;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

v1::Command Command(const std::string& service, const std::string& method, const std::string& key,
                    const google::protobuf::Message& payload) {
  v1::Command command;
  command.set_service_name(service);
  command.set_method(method);
  command.set_entity_key(key);
  *command.mutable_payload() = Pack(payload);
  return command;
}

// The response `call` fills, failing the current test unless its status is OK.
template <typename Response, typename Call>
Response ExpectOk(const Call& call) {
  Response response;
  grpc::Status status = call(&response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "massa-sdk-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ServedFunction::ServedFunction(Function& function, ServeOptions options)
    : function_(function), socket_path_(dir_.path() + "/function.sock") {
  Status started = function_.Start("unix:" + socket_path_, options);
  EXPECT_TRUE(started.ok()) << started.message();
  channel_ = grpc::CreateChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials());
  discovery_ = v1::Discovery::NewStub(channel_);
  value_entity_ = v1::ValueEntity::NewStub(channel_);
  action_ = v1::Action::NewStub(channel_);
  event_sourced_ = v1::EventSourced::NewStub(channel_);
}

ServedFunction::~ServedFunction() { function_.Shutdown(std::chrono::seconds(1)); }

grpc::Status ServedFunction::Discover(const v1::ProxyInfo& info, v1::Spec* spec) {
  return discovery_->Discover(Context().get(), info, spec);
}

grpc::Status ServedFunction::Handle(const v1::ValueEntityCommand& command,
                                    v1::ValueEntityResponse* response) {
  return value_entity_->Handle(Context().get(), command, response);
}

grpc::Status ServedFunction::Handle(const v1::ActionCommand& command,
                                    v1::ActionResponse* response) {
  return action_->Handle(Context().get(), command, response);
}

grpc::Status ServedFunction::Handle(const v1::EventSourcedCommand& command,
                                    v1::EventSourcedResponse* response) {
  return event_sourced_->Handle(Context().get(), command, response);
}

grpc::Status ServedFunction::Fold(const v1::FoldRequest& request, v1::FoldResponse* response) {
  return event_sourced_->Fold(Context().get(), request, response);
}

v1::EventSourcedResponse ServedFunction::HandleOk(const v1::EventSourcedCommand& command) {
  return ExpectOk<v1::EventSourcedResponse>(
      [&](auto* response) { return Handle(command, response); });
}

v1::FoldResponse ServedFunction::FoldOk(const v1::FoldRequest& request) {
  return ExpectOk<v1::FoldResponse>([&](auto* response) { return Fold(request, response); });
}

v1::ProxyInfo Proxy(unsigned major) {
  v1::ProxyInfo info;
  info.mutable_protocol()->set_major(major);
  info.set_proxy_name("massa");
  info.set_proxy_version("0.1.0");
  info.add_supported_kinds(v1::ENTITY_KIND_ACTION);
  info.add_supported_kinds(v1::ENTITY_KIND_VALUE_ENTITY);
  info.add_supported_kinds(v1::ENTITY_KIND_EVENT_SOURCED);
  return info;
}

google::protobuf::Any Pack(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  any.PackFrom(message);
  return any;
}

v1::ValueEntityCommand EntityCommand(const std::string& service, const std::string& method,
                                     const std::string& key,
                                     const google::protobuf::Message& payload,
                                     const google::protobuf::Message* state) {
  v1::ValueEntityCommand command;
  *command.mutable_command() = Command(service, method, key, payload);
  if (state != nullptr) *command.mutable_state() = Pack(*state);
  return command;
}

v1::ActionCommand ActionCommand(const std::string& service, const std::string& method,
                                const google::protobuf::Message& payload) {
  v1::ActionCommand command;
  *command.mutable_command() = Command(service, method, "", payload);
  return command;
}

v1::EventSourcedCommand EventSourcedCommand(const std::string& service, const std::string& method,
                                            const std::string& key,
                                            const google::protobuf::Message& payload,
                                            const google::protobuf::Message* state,
                                            uint64_t sequence) {
  v1::EventSourcedCommand command;
  *command.mutable_command() = Command(service, method, key, payload);
  if (state != nullptr) *command.mutable_state() = Pack(*state);
  command.set_sequence(sequence);
  return command;
}

v1::FoldRequest FoldRequest(const std::string& service, const std::string& key,
                            const std::vector<google::protobuf::Any>& payloads,
                            const google::protobuf::Message* state, uint64_t first_sequence) {
  v1::FoldRequest request;
  request.set_service_name(service);
  request.set_entity_key(key);
  if (state != nullptr) *request.mutable_state() = Pack(*state);
  for (const google::protobuf::Any& payload : payloads) {
    v1::Event* event = request.add_events();
    event->set_sequence(first_sequence++);
    *event->mutable_payload() = payload;
    event->set_timestamp_ms(1700000000000);
  }
  return request;
}

}  // namespace massa::sdk::testing
