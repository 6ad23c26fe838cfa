#include "cli/client.h"

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "massa/admin/v1/admin.grpc.pb.h"

namespace massa::cli {
namespace {

namespace pb = google::protobuf;

int Fail(const grpc::Status& status) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                                 "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                                 "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                 "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  int code = status.error_code();
  std::fprintf(stderr, "ERROR %s: %s\n", code >= 0 && code <= 16 ? kNames[code] : "?",
               status.error_message().c_str());
  return 1;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "ERROR: %s\n", message.c_str());
  return 1;
}

struct Remote {
  std::shared_ptr<grpc::Channel> channel;
  admin::v1::GetSpecResponse spec;
  pb::SimpleDescriptorDatabase database;
  std::unique_ptr<pb::DescriptorPool> pool;
};

grpc::Status Connect(const ClientOptions& options, Remote& remote) {
  remote.channel = grpc::CreateChannel(options.address, grpc::InsecureChannelCredentials());
  auto admin = admin::v1::Admin::NewStub(remote.channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options.timeout);
  grpc::Status status = admin->GetSpec(&context, admin::v1::GetSpecRequest(), &remote.spec);
  if (!status.ok()) return status;
  pb::FileDescriptorSet files;
  if (!files.ParseFromString(remote.spec.descriptor_set())) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "massa sent a descriptor set that does not parse");
  }
  for (const auto& file : files.file()) remote.database.Add(file);
  remote.pool = std::make_unique<pb::DescriptorPool>(&remote.database);
  return grpc::Status::OK;
}

}  // namespace

int Call(const ClientOptions& options, const std::string& method_name, const std::string& json) {
  Remote remote;
  if (grpc::Status status = Connect(options, remote); !status.ok()) return Fail(status);

  size_t slash = method_name.rfind('/');
  if (slash == std::string::npos) {
    return Fail("name the method as package.Service/Method, e.g. "
                "example.shoppingcart.ShoppingCart/GetCart");
  }
  std::string service_name = method_name.substr(method_name.front() == '/' ? 1 : 0,
                                                slash - (method_name.front() == '/' ? 1 : 0));
  const pb::ServiceDescriptor* service = remote.pool->FindServiceByName(service_name);
  if (service == nullptr) return Fail(absl::StrCat("massa serves no service '", service_name, "'"));
  const pb::MethodDescriptor* method = service->FindMethodByName(method_name.substr(slash + 1));
  if (method == nullptr) {
    return Fail("service " + service_name + " has no method '" + method_name.substr(slash + 1) +
                "'");
  }

  pb::DynamicMessageFactory factory(remote.pool.get());
  std::unique_ptr<pb::Message> request(factory.GetPrototype(method->input_type())->New());
  auto parsed = pb::util::JsonStringToMessage(json, request.get());
  if (!parsed.ok()) {
    return Fail("the request is not a valid " + method->input_type()->full_name() +
                " in JSON: " + std::string(parsed.message()));
  }
  std::string bytes = request->SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;

  grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer> stub(remote.channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options.timeout);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  grpc::StubOptions stub_options;
  stub.UnaryCall(&context, "/" + service_name + "/" + method->name(), stub_options,
                 &request_buffer, &response_buffer, [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = std::move(s);
                   done = true;
                   cv.notify_one();
                 });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (!status.ok()) return Fail(status);

  std::vector<grpc::Slice> slices;
  std::string reply_bytes;
  if (response_buffer.Dump(&slices).ok()) {
    for (const auto& s : slices) reply_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  std::unique_ptr<pb::Message> reply(factory.GetPrototype(method->output_type())->New());
  if (!reply->ParseFromString(reply_bytes)) return Fail("the reply does not decode");
  std::string out;
  pb::util::JsonPrintOptions print;
  print.add_whitespace = false;
  print.preserve_proto_field_names = true;
  (void)pb::util::MessageToJsonString(*reply, &out, print);
  std::printf("%s\n", out.c_str());
  return 0;
}

int ListServices(const ClientOptions& options) {
  Remote remote;
  if (grpc::Status status = Connect(options, remote); !status.ok()) return Fail(status);
  for (const auto& info : remote.spec.services()) {
    std::printf("%s (%s)\n", info.service_name().c_str(), info.kind().c_str());
    const pb::ServiceDescriptor* service = remote.pool->FindServiceByName(info.service_name());
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const pb::MethodDescriptor* m = service->method(i);
      std::printf("  %s(%s) returns (%s)\n", m->name().c_str(),
                  m->input_type()->full_name().c_str(), m->output_type()->full_name().c_str());
    }
  }
  return 0;
}

}  // namespace massa::cli
