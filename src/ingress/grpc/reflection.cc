#include "ingress/grpc/reflection.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "entity/catalog.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "rpc/loop_service.h"

namespace massa {
namespace {

namespace pb = google::protobuf;

// One file reflection can return: its serialized FileDescriptorProto and its imports.
struct ReflectedFile {
  std::string bytes;
  std::vector<std::string> dependencies;
};

using FileMap = absl::flat_hash_map<std::string, ReflectedFile>;

// What reflection answers from, whatever the protocol version. Immutable after construction;
// thread-safe (DescriptorPool lookups are).
class ReflectionIndex {
 public:
  ReflectionIndex(const Catalog& catalog, const std::vector<std::string>& own_services)
      : pool_(catalog.pool()) {
    pb::FileDescriptorSet set;
    // Catalog::Build has parsed the same bytes: a failure here cannot happen.
    if (set.ParseFromString(catalog.spec().descriptor_set)) {
      for (const pb::FileDescriptorProto& file : set.file()) {
        ReflectedFile& entry = user_files_[file.name()];
        entry.bytes = file.SerializeAsString();
        entry.dependencies.assign(file.dependency().begin(), file.dependency().end());
      }
    }
    for (const auto& service : catalog.services()) services_.push_back(service->spec.name);
    for (const std::string& name : own_services) {
      const pb::ServiceDescriptor* service = Generated().FindServiceByName(name);
      if (service == nullptr) continue;
      // A user service of the same name would shadow ours anyway: list it once.
      if (std::find(services_.begin(), services_.end(), name) != services_.end()) continue;
      services_.push_back(name);
      AddOwnFile(*service->file());
    }
  }

  const std::vector<std::string>& services() const { return services_; }

  absl::StatusOr<std::vector<const std::string*>> FileByName(const std::string& name) const {
    if (user_files_.contains(name)) return WithDependencies(user_files_, name);
    if (own_files_.contains(name)) return WithDependencies(own_files_, name);
    return absl::NotFoundError(absl::StrCat("file '", name, "' not found"));
  }

  absl::StatusOr<std::vector<const std::string*>> FileContainingSymbol(
      const std::string& symbol) const {
    if (const pb::FileDescriptor* file = pool_.FindFileContainingSymbol(symbol);
        file != nullptr && user_files_.contains(file->name())) {
      return WithDependencies(user_files_, file->name());
    }
    if (const pb::FileDescriptor* file = Generated().FindFileContainingSymbol(symbol);
        file != nullptr && own_files_.contains(file->name())) {
      return WithDependencies(own_files_, file->name());
    }
    return absl::NotFoundError(absl::StrCat("symbol '", symbol, "' not found"));
  }

  absl::StatusOr<std::vector<const std::string*>> FileContainingExtension(const std::string& type,
                                                                          int number) const {
    if (const pb::FieldDescriptor* extension = FindExtension(pool_, type, number);
        extension != nullptr && user_files_.contains(extension->file()->name())) {
      return WithDependencies(user_files_, extension->file()->name());
    }
    if (const pb::FieldDescriptor* extension = FindExtension(Generated(), type, number);
        extension != nullptr && own_files_.contains(extension->file()->name())) {
      return WithDependencies(own_files_, extension->file()->name());
    }
    return absl::NotFoundError(
        absl::StrCat("extension ", number, " of type '", type, "' not found"));
  }

  // The numbers of the extensions of message `type` (fully qualified), ascending.
  absl::StatusOr<std::vector<int>> ExtensionNumbers(const std::string& type) const {
    if (const pb::Descriptor* descriptor = pool_.FindMessageTypeByName(type);
        descriptor != nullptr && user_files_.contains(descriptor->file()->name())) {
      return NumbersOf(pool_, *descriptor, user_files_);
    }
    if (const pb::Descriptor* descriptor = Generated().FindMessageTypeByName(type);
        descriptor != nullptr && own_files_.contains(descriptor->file()->name())) {
      return NumbersOf(Generated(), *descriptor, own_files_);
    }
    return absl::NotFoundError(absl::StrCat("type '", type, "' not found"));
  }

 private:
  static const pb::DescriptorPool& Generated() { return *pb::DescriptorPool::generated_pool(); }

  static const pb::FieldDescriptor* FindExtension(const pb::DescriptorPool& pool,
                                                  const std::string& type, int number) {
    const pb::Descriptor* descriptor = pool.FindMessageTypeByName(type);
    return descriptor == nullptr ? nullptr : pool.FindExtensionByNumber(descriptor, number);
  }

  // The numbers of the extensions of `type` defined in `files`, ascending, each once.
  static std::vector<int> NumbersOf(const pb::DescriptorPool& pool, const pb::Descriptor& type,
                                    const FileMap& files) {
    std::vector<const pb::FieldDescriptor*> extensions;
    pool.FindAllExtensions(&type, &extensions);
    std::vector<int> numbers;
    for (const pb::FieldDescriptor* extension : extensions) {
      if (files.contains(extension->file()->name())) numbers.push_back(extension->number());
    }
    std::sort(numbers.begin(), numbers.end());
    numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
    return numbers;
  }

  void AddOwnFile(const pb::FileDescriptor& file) {
    if (own_files_.contains(file.name())) return;
    pb::FileDescriptorProto proto;
    file.CopyTo(&proto);
    ReflectedFile& entry = own_files_[file.name()];
    entry.bytes = proto.SerializeAsString();
    for (int i = 0; i < file.dependency_count(); ++i) {
      entry.dependencies.push_back(file.dependency(i)->name());
      AddOwnFile(*file.dependency(i));
    }
  }

  // `name` (which `files` holds), then every file it imports, directly or not; each once.
  static std::vector<const std::string*> WithDependencies(const FileMap& files,
                                                          const std::string& name) {
    std::vector<const std::string*> out;
    absl::flat_hash_set<std::string_view> seen = {name};
    std::vector<const std::string*> queue = {&name};
    for (size_t next = 0; next < queue.size(); ++next) {
      auto it = files.find(*queue[next]);
      if (it == files.end()) continue;  // an import the function did not send
      out.push_back(&it->second.bytes);
      for (const std::string& dependency : it->second.dependencies) {
        if (seen.insert(dependency).second) queue.push_back(&dependency);
      }
    }
    return out;
  }

  const pb::DescriptorPool& pool_;
  FileMap user_files_;  // from the function's descriptor set
  FileMap own_files_;   // from the binary: Massa's own services and their imports
  std::vector<std::string> services_;
};

template <typename Response>
void SetError(const absl::Status& status, Response& response) {
  auto* error = response.mutable_error_response();
  error->set_error_code(static_cast<int>(status.code()));
  error->set_error_message(std::string(status.message()));
}

// Fills `response` for `request`. The two protocol versions have the same fields, so one
// template serves both.
template <typename Request, typename Response>
void Answer(const ReflectionIndex& index, const Request& request, Response& response) {
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  auto set_files = [&response](absl::StatusOr<std::vector<const std::string*>> files) {
    if (!files.ok()) {
      SetError(files.status(), response);
      return;
    }
    auto* out = response.mutable_file_descriptor_response();
    for (const std::string* file : *files) out->add_file_descriptor_proto(*file);
  };
  switch (request.message_request_case()) {
    case Request::kFileByFilename:
      set_files(index.FileByName(request.file_by_filename()));
      break;
    case Request::kFileContainingSymbol:
      set_files(index.FileContainingSymbol(request.file_containing_symbol()));
      break;
    case Request::kFileContainingExtension:
      set_files(
          index.FileContainingExtension(request.file_containing_extension().containing_type(),
                                        request.file_containing_extension().extension_number()));
      break;
    case Request::kAllExtensionNumbersOfType: {
      const std::string& type = request.all_extension_numbers_of_type();
      absl::StatusOr<std::vector<int>> numbers = index.ExtensionNumbers(type);
      if (!numbers.ok()) {
        SetError(numbers.status(), response);
        break;
      }
      auto* out = response.mutable_all_extension_numbers_response();
      out->set_base_type_name(type);
      for (int number : *numbers) out->add_extension_number(number);
      break;
    }
    case Request::kListServices: {
      auto* out = response.mutable_list_services_response();
      for (const std::string& name : index.services()) out->add_service()->set_name(name);
      break;
    }
    default:
      SetError(absl::UnimplementedError("reflection request with no known request field set"),
               response);
      break;
  }
}

// One ServerReflectionInfo stream, on the asynchronous API: reads a request, writes its
// answer, and again, until the client half-closes or the call ends. Runs on its queue's thread
// only.
template <typename Generated, typename Request, typename Response>
class ReflectionStream final {
 public:
  using Async = typename Generated::AsyncService;

  static void Post(const ReflectionIndex& index, Async& service, rpc::CqLoop& loop, size_t queue) {
    auto* call = new ReflectionStream(index, service, loop, queue);
    service.RequestServerReflectionInfo(&call->context_, &call->stream_, loop.queue(queue),
                                        loop.server_queue(queue), &call->accept_tag_);
  }

 private:
  ReflectionStream(const ReflectionIndex& index, Async& service, rpc::CqLoop& loop, size_t queue)
      : index_(index),
        async_(service),
        loop_(loop),
        queue_(queue),
        stream_(&context_),
        accept_tag_(this),
        read_tag_(this),
        write_tag_(this),
        finish_tag_(this) {}

  void OnAccept(bool ok) {
    if (!ok) {
      delete this;
      return;
    }
    Post(index_, async_, loop_, queue_);
    stream_.Read(&request_, &read_tag_);
  }

  void OnRead(bool ok) {
    if (!ok) {  // half-close by the client, or the call was cancelled
      stream_.Finish(grpc::Status::OK, &finish_tag_);
      return;
    }
    response_.Clear();
    Answer(index_, request_, response_);
    stream_.Write(response_, &write_tag_);
  }

  void OnWrite(bool ok) {
    if (!ok) {
      stream_.Finish(grpc::Status::CANCELLED, &finish_tag_);
      return;
    }
    stream_.Read(&request_, &read_tag_);
  }

  void OnFinish(bool) { delete this; }

  const ReflectionIndex& index_;
  Async& async_;
  rpc::CqLoop& loop_;
  const size_t queue_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<Response, Request> stream_;
  Request request_;
  Response response_;
  rpc::MemberTag<ReflectionStream, &ReflectionStream::OnAccept> accept_tag_;
  rpc::MemberTag<ReflectionStream, &ReflectionStream::OnRead> read_tag_;
  rpc::MemberTag<ReflectionStream, &ReflectionStream::OnWrite> write_tag_;
  rpc::MemberTag<ReflectionStream, &ReflectionStream::OnFinish> finish_tag_;
};

template <typename Generated, typename Request, typename Response>
class ReflectionService final : public rpc::LoopService {
 public:
  ReflectionService(const Catalog& catalog, const ReflectionOptions& options)
      : index_(catalog, options.own_services) {}

  grpc::Service* service() override { return &async_; }

  void Start(rpc::CqLoop& loop) override {
    for (size_t i = 0; i < loop.size(); ++i) {
      ReflectionStream<Generated, Request, Response>::Post(index_, async_, loop, i);
    }
  }

 private:
  ReflectionIndex index_;
  typename Generated::AsyncService async_;
};

}  // namespace

std::unique_ptr<rpc::LoopService> NewReflectionService(const Catalog& catalog,
                                                    ReflectionVersion version,
                                                    ReflectionOptions options) {
  namespace v1 = grpc::reflection::v1;
  namespace v1alpha = grpc::reflection::v1alpha;
  switch (version) {
    case ReflectionVersion::kV1:
      return std::make_unique<ReflectionService<v1::ServerReflection, v1::ServerReflectionRequest,
                                                v1::ServerReflectionResponse>>(catalog, options);
    case ReflectionVersion::kV1Alpha:
      return std::make_unique<
          ReflectionService<v1alpha::ServerReflection, v1alpha::ServerReflectionRequest,
                            v1alpha::ServerReflectionResponse>>(catalog, options);
  }
  return nullptr;  // not reached: every version is handled above
}

}  // namespace massa
