// File: test/sdk/test_function.h
//
// Serves a massa::sdk::Function in-process on a unix socket in a fresh temporary directory and
// gives generated stubs of Massa's protocol to call it, as the proxy would.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/any.pb.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "massa/sdk/function.h"

namespace massa::sdk::testing {

// A temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ServedFunction {
 public:
  // Starts `function` (which must outlive this) or fails the current test.
  explicit ServedFunction(Function& function, ServeOptions options = {});
  ~ServedFunction();  // shuts the function down and removes the directory

  const std::string& socket_path() const { return socket_path_; }

  // Calls with a 10 s deadline.
  grpc::Status Discover(const protocol::v1::ProxyInfo& info, protocol::v1::Spec* spec);
  grpc::Status Handle(const protocol::v1::ValueEntityCommand& command,
                      protocol::v1::ValueEntityResponse* response);
  grpc::Status Handle(const protocol::v1::ActionCommand& command,
                      protocol::v1::ActionResponse* response);
  grpc::Status Handle(const protocol::v1::EventSourcedCommand& command,
                      protocol::v1::EventSourcedResponse* response);
  grpc::Status Fold(const protocol::v1::FoldRequest& request, protocol::v1::FoldResponse* response);

  // As Handle and Fold, failing the current test unless the call is OK.
  protocol::v1::EventSourcedResponse HandleOk(const protocol::v1::EventSourcedCommand& command);
  protocol::v1::FoldResponse FoldOk(const protocol::v1::FoldRequest& request);

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  Function& function_;
  TempDir dir_;
  std::string socket_path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<protocol::v1::Discovery::Stub> discovery_;
  std::unique_ptr<protocol::v1::ValueEntity::Stub> value_entity_;
  std::unique_ptr<protocol::v1::Action::Stub> action_;
  std::unique_ptr<protocol::v1::EventSourced::Stub> event_sourced_;
};

// ProxyInfo of a Massa speaking protocol `major`.0 that supports actions, value entities and
// event-sourced entities.
protocol::v1::ProxyInfo Proxy(unsigned major = 1);

// `message` packed as a google.protobuf.Any ("type.googleapis.com/<full name>").
google::protobuf::Any Pack(const google::protobuf::Message& message);

// A value entity command; `state` null = the entity has no state.
protocol::v1::ValueEntityCommand EntityCommand(const std::string& service,
                                               const std::string& method, const std::string& key,
                                               const google::protobuf::Message& payload,
                                               const google::protobuf::Message* state = nullptr);

protocol::v1::ActionCommand ActionCommand(const std::string& service, const std::string& method,
                                          const google::protobuf::Message& payload);

// An event-sourced command; `state` null = the initial state, `sequence` that of the last
// event applied to it.
protocol::v1::EventSourcedCommand EventSourcedCommand(
    const std::string& service, const std::string& method, const std::string& key,
    const google::protobuf::Message& payload, const google::protobuf::Message* state = nullptr,
    uint64_t sequence = 0);

// A Fold of `payloads` as events numbered from `first_sequence`, onto `state` (null = the
// initial state).
protocol::v1::FoldRequest FoldRequest(const std::string& service, const std::string& key,
                                      const std::vector<google::protobuf::Any>& payloads,
                                      const google::protobuf::Message* state = nullptr,
                                      uint64_t first_sequence = 1);

// Unpacks `any` as T, failing the current test if it is not one.
template <typename T>
T Unpack(const google::protobuf::Any& any) {
  T message;
  if (!any.UnpackTo(&message)) {
    ADD_FAILURE() << "Any of type " << any.type_url() << " is not a "
                  << T::descriptor()->full_name();
  }
  return message;
}

}  // namespace massa::sdk::testing
