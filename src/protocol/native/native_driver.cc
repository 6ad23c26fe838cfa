#include "protocol/native/native_driver.h"

#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "protocol/native/convert.h"
#include "spdlog/spdlog.h"

namespace massa {
namespace {

namespace v1 = protocol::v1;

absl::Status FromGrpc(const grpc::Status& status, const char* what) {
  auto code = static_cast<absl::StatusCode>(status.error_code());
  if (code == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(
        absl::StrCat("the user function is unavailable (", status.error_message(), ")"));
  }
  return absl::Status(code, absl::StrCat("user function ", what, ": ", status.error_message()));
}

std::string Target(const std::string& address) {
  // gRPC understands "unix:/path" and "host:port"; accept "tcp://host:port" too.
  constexpr std::string_view kTcp = "tcp://";
  if (address.rfind(kTcp, 0) == 0) return address.substr(kTcp.size());
  return address;
}

// One unary call in flight: owns its context and messages until the callback ran.
template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
  OutcomeCallback done;
};

class NativeDriver final : public UserFunction {
 public:
  explicit NativeDriver(const NativeDriverOptions& options) : options_(options) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(options.max_message_bytes);
    args.SetMaxSendMessageSize(options.max_message_bytes);
    // Reconnect quickly after the function restarts.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel_ = grpc::CreateCustomChannel(Target(options.address),
                                         grpc::InsecureChannelCredentials(), args);
    discovery_ = v1::Discovery::NewStub(channel_);
    action_ = v1::Action::NewStub(channel_);
    value_entity_ = v1::ValueEntity::NewStub(channel_);
    event_sourced_ = v1::EventSourced::NewStub(channel_);
  }

  absl::StatusOr<FunctionSpec> Discover(std::chrono::milliseconds timeout) override {
    v1::ProxyInfo info;
    info.mutable_protocol()->set_major(native::kProtocolMajor);
    info.mutable_protocol()->set_minor(native::kProtocolMinor);
    info.set_proxy_name("massa");
    info.set_proxy_version(MASSA_VERSION);
    info.add_supported_kinds(v1::ENTITY_KIND_ACTION);
    info.add_supported_kinds(v1::ENTITY_KIND_VALUE_ENTITY);
    info.add_supported_kinds(v1::ENTITY_KIND_EVENT_SOURCED);

    grpc::ClientContext context;
    context.set_wait_for_ready(true);  // wait for the function to come up, until the deadline
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    v1::Spec spec;
    grpc::Status status = discovery_->Discover(&context, info, &spec);
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        return absl::UnavailableError(absl::StrCat("the user function at ", options_.address,
                                                   " did not answer discovery within ",
                                                   timeout.count(), " ms"));
      }
      return FromGrpc(status, "discovery");
    }
    return native::SpecFromProto(spec);
  }

  void HandleAction(const Command& command, OutcomeCallback done) override {
    auto call = NewCall<v1::ActionCommand, v1::ActionResponse>(command, std::nullopt, done);
    Send(command, std::move(call), [this](auto&&... args) { action_->async()->Handle(args...); },
         [](const v1::ActionResponse& response) {
           return native::OutcomeFromProto(response.client_action(), response.effects());
         });
  }

  void HandleValueEntity(const Command& command, const std::optional<TypedValue>& state,
                         OutcomeCallback done) override {
    auto call = NewCall<v1::ValueEntityCommand, v1::ValueEntityResponse>(command, state, done);
    Send(command, std::move(call),
         [this](auto&&... args) { value_entity_->async()->Handle(args...); },
         native::ValueEntityOutcomeFromProto);
  }

  void HandleEventSourced(const Command& command, const std::optional<TypedValue>& state,
                          uint64_t sequence, OutcomeCallback done) override {
    auto call = NewCall<v1::EventSourcedCommand, v1::EventSourcedResponse>(command, state, done);
    call->request.set_sequence(sequence);
    Send(command, std::move(call),
         [this](auto&&... args) { event_sourced_->async()->Handle(args...); },
         native::EventSourcedOutcomeFromProto);
  }

  void Fold(const std::string& service, const std::string& entity_key,
            const std::optional<TypedValue>& state, const std::vector<Event>& events,
            FoldCallback done) override {
    struct FoldCall {
      grpc::ClientContext context;
      v1::FoldRequest request;
      v1::FoldResponse response;
      FoldCallback done;
    };
    auto call = std::make_shared<FoldCall>();
    call->done = std::move(done);
    native::FoldRequestToProto(service, entity_key, state, events, call->request);
    call->context.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
    event_sourced_->async()->Fold(
        &call->context, &call->request, &call->response, [call](grpc::Status status) {
          FoldCallback reply = std::move(call->done);
          if (!status.ok()) {
            std::move(reply)(FromGrpc(status, "fold"));
            return;
          }
          std::optional<TypedValue> folded;
          if (call->response.has_state()) {
            folded = TypedValue{std::string(native::TypeNameOf(call->response.state().type_url())),
                                call->response.state().value()};
          }
          std::move(reply)(std::move(folded));
        });
  }

  bool Reachable() override {
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    return state != GRPC_CHANNEL_TRANSIENT_FAILURE && state != GRPC_CHANNEL_SHUTDOWN;
  }

 private:
  // A call whose request holds `command` (and `state`, for entity kinds).
  template <typename Request, typename Response>
  static std::shared_ptr<Call<Request, Response>> NewCall(const Command& command,
                                                          const std::optional<TypedValue>& state,
                                                          OutcomeCallback& done) {
    auto call = std::make_shared<Call<Request, Response>>();
    call->done = std::move(done);
    native::CommandToProto(command, command.request_type, *call->request.mutable_command());
    if constexpr (!std::is_same_v<Request, v1::ActionCommand>) {
      if (state.has_value()) {
        call->request.mutable_state()->set_type_url(native::TypeUrlOf(state->type));
        call->request.mutable_state()->set_value(state->bytes);
      }
    }
    return call;
  }

  // Starts `call` with `start` (a stub's async Handle) and answers with `convert(response)`.
  template <typename Request, typename Response, typename Start, typename Convert>
  void Send(const Command& command, std::shared_ptr<Call<Request, Response>> call, Start start,
            Convert convert) {
    SetDeadline(call->context, command);
    Call<Request, Response>* raw = call.get();
    start(&raw->context, &raw->request, &raw->response,
          [call = std::move(call), convert](grpc::Status status) {
            OutcomeCallback reply = std::move(call->done);
            if (!status.ok()) {
              std::move(reply)(FromGrpc(status, "call"));
              return;
            }
            std::move(reply)(convert(call->response));
          });
  }

  void SetDeadline(grpc::ClientContext& context, const Command& command) const {
    auto steady_deadline =
        std::min(command.deadline, std::chrono::steady_clock::now() + options_.call_timeout);
    context.set_deadline(std::chrono::system_clock::now() +
                         (steady_deadline - std::chrono::steady_clock::now()));
  }

  const NativeDriverOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Discovery::Stub> discovery_;
  std::unique_ptr<v1::Action::Stub> action_;
  std::unique_ptr<v1::ValueEntity::Stub> value_entity_;
  std::unique_ptr<v1::EventSourced::Stub> event_sourced_;
};

}  // namespace

UserFunctionPtr NewNativeDriver(const NativeDriverOptions& options) {
  return std::make_unique<NativeDriver>(options);
}

}  // namespace massa
