#include "protocol/native/native_driver.h"

#include <atomic>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "protocol/native/convert.h"
#include "protocol/native/crdt_convert.h"
#include "protocol/native/session.h"
#include "rpc/cq_loop.h"
#include "spdlog/spdlog.h"

namespace massa {
namespace {

namespace v1 = protocol::v1;
using Steady = std::chrono::steady_clock;

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

// Fills `request` (an ActionCommand, ValueEntityCommand or EventSourcedCommand) from a command.
template <typename Request>
void FillRequest(const Command& command, const std::optional<TypedValue>& state,
                 Request& request) {
  native::CommandToProto(command, command.request_type, *request.mutable_command());
  if constexpr (!std::is_same_v<Request, v1::ActionCommand>) {
    if (state.has_value()) {
      request.mutable_state()->set_type_url(native::TypeUrlOf(state->type));
      request.mutable_state()->set_value(state->bytes);
    }
  }
}

std::optional<TypedValue> FoldedState(const v1::FoldResponse& response) {
  if (!response.has_state()) return std::nullopt;
  return TypedValue{std::string(native::TypeNameOf(response.state().type_url())),
                    response.state().value()};
}

// Protocol 1.0: one unary RPC per command, on gRPC's own callback threads.
class UnaryTransport {
 public:
  UnaryTransport(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds call_timeout)
      : call_timeout_(call_timeout),
        action_(v1::Action::NewStub(channel)),
        value_entity_(v1::ValueEntity::NewStub(channel)),
        event_sourced_(v1::EventSourced::NewStub(channel)) {}

  template <typename Request, typename Response, typename Convert>
  void Handle(const Command& command, const std::optional<TypedValue>& state, uint64_t sequence,
              Convert convert, OutcomeCallback done) {
    auto call = std::make_shared<Call<Request, Response>>();
    call->done = std::move(done);
    FillRequest(command, state, call->request);
    if constexpr (std::is_same_v<Request, v1::EventSourcedCommand>) {
      call->request.set_sequence(sequence);
    }
    if (!Begin(call->context, command.deadline)) {
      std::move(call->done)(absl::UnavailableError("massa is shutting down"));
      return;
    }
    auto* raw = call.get();
    auto finish = [this, call, convert](grpc::Status status) {
      OutcomeCallback reply = std::move(call->done);
      if (!status.ok()) {
        std::move(reply)(FromGrpc(status, "call"));
      } else {
        std::move(reply)(convert(call->response));
      }
      End(call->context);
    };
    if constexpr (std::is_same_v<Request, v1::ActionCommand>) {
      action_->async()->Handle(&raw->context, &raw->request, &raw->response, std::move(finish));
    } else if constexpr (std::is_same_v<Request, v1::ValueEntityCommand>) {
      value_entity_->async()->Handle(&raw->context, &raw->request, &raw->response,
                                     std::move(finish));
    } else {
      event_sourced_->async()->Handle(&raw->context, &raw->request, &raw->response,
                                      std::move(finish));
    }
  }

  void Fold(v1::FoldRequest request, FoldCallback done) {
    struct FoldCall {
      grpc::ClientContext context;
      v1::FoldRequest request;
      v1::FoldResponse response;
      FoldCallback done;
    };
    auto call = std::make_shared<FoldCall>();
    call->request = std::move(request);
    call->done = std::move(done);
    if (!Begin(call->context, Steady::time_point::max())) {
      std::move(call->done)(absl::UnavailableError("massa is shutting down"));
      return;
    }
    event_sourced_->async()->Fold(
        &call->context, &call->request, &call->response, [this, call](grpc::Status status) {
          FoldCallback reply = std::move(call->done);
          if (!status.ok()) {
            std::move(reply)(FromGrpc(status, "fold"));
          } else {
            std::move(reply)(FoldedState(call->response));
          }
          End(call->context);
        });
  }

  // Cancels the calls in flight and waits until each has called back.
  void Shutdown() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
    mu_.Await(absl::Condition(
        +[](absl::flat_hash_set<grpc::ClientContext*>* set) { return set->empty(); },
        &in_flight_));
  }

 private:
  template <typename Request, typename Response>
  struct Call {
    grpc::ClientContext context;
    Request request;
    Response response;
    OutcomeCallback done;
  };

  bool Begin(grpc::ClientContext& context, Steady::time_point deadline) {
    const Steady::time_point capped = std::min(deadline, Steady::now() + call_timeout_);
    context.set_deadline(std::chrono::system_clock::now() + (capped - Steady::now()));
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    in_flight_.insert(&context);
    return true;
  }

  void End(grpc::ClientContext& context) {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(&context);
  }

  const std::chrono::milliseconds call_timeout_;
  std::unique_ptr<v1::Action::Stub> action_;
  std::unique_ptr<v1::ValueEntity::Stub> value_entity_;
  std::unique_ptr<v1::EventSourced::Stub> event_sourced_;
  absl::Mutex mu_;
  absl::flat_hash_set<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// The answer frame of a session request, converted to an Outcome.
absl::StatusOr<Outcome> OutcomeOf(absl::StatusOr<v1::FunctionFrame> frame);

// What a command sent on a session stream leaves for the calls the function makes meanwhile.
struct CommandOrigin final : native::RequestOrigin {
  CommandOrigin(const Command& command, bool action) {
    caller.source = action || command.call_chain.empty() ? command.service
                                                          : command.call_chain.back();
    caller.call_chain = command.call_chain;
    caller.deadline = command.deadline;
    caller.hops = command.hops;
    caller.idempotency_key = command.idempotency_key;
  }
  CallerInfo caller;
  mutable std::atomic<uint32_t> calls{0};
};

// Sends a command frame; `done` gets its outcome.
void SendCommand(native::SessionTransport& session, const Command& command, v1::ProxyFrame frame,
                 OutcomeCallback done) {
  const bool action = frame.body_case() == v1::ProxyFrame::kAction;
  session.Send(
      std::move(frame), command.deadline,
      [done = std::move(done)](absl::StatusOr<v1::FunctionFrame> answer) mutable {
        std::move(done)(OutcomeOf(std::move(answer)));
      },
      std::make_shared<const CommandOrigin>(command, action));
}

// Runs one ActorCall of the function through `handler`.
void RunCall(CallHandler& handler, const native::RequestOrigin* origin, v1::ActorCall call,
             native::CallReply reply) {
  const auto* from = static_cast<const CommandOrigin*>(origin);  // the driver's own kind
  CallerInfo caller = from->caller;
  caller.index = from->calls.fetch_add(1, std::memory_order_relaxed);
  Command command;
  command.service = call.service_name();
  command.method = call.method();
  command.entity_key = call.entity_key();
  command.addressed = !command.entity_key.empty();
  command.spawn = call.spawn();
  command.payload = std::move(*call.mutable_payload());
  command.metadata = native::MetadataOf(call.metadata());
  handler(caller, std::move(command), [reply = std::move(reply)](CommandResult result) mutable {
    v1::ActorCallResult out;
    if (result.status.ok()) {
      out.set_reply(std::move(result.payload));
      native::MetadataInto(result.metadata, *out.mutable_metadata());
    } else {
      out.mutable_failure()->set_code(static_cast<int>(result.status.code()));
      out.mutable_failure()->set_message(std::string(result.status.message()));
    }
    std::move(reply)(std::move(out));
  });
}

absl::StatusOr<Outcome> OutcomeOf(absl::StatusOr<v1::FunctionFrame> frame) {
  if (!frame.ok()) return std::move(frame).status();
  switch (frame->body_case()) {
    case v1::FunctionFrame::kAction:
      return native::OutcomeFromProto(frame->action().client_action(), frame->action().effects());
    case v1::FunctionFrame::kValueEntity:
      return native::ValueEntityOutcomeFromProto(frame->value_entity());
    case v1::FunctionFrame::kEventSourced:
      return native::EventSourcedOutcomeFromProto(frame->event_sourced());
    case v1::FunctionFrame::kCrdt:
      return native::CrdtOutcomeFromProto(frame->crdt());
    default:
      return absl::InternalError(absl::StrCat(
          "the user function answered a command with a frame of another kind (",
          static_cast<int>(frame->body_case()), ")"));
  }
}

}  // namespace

struct NativeDriver::Impl {
  explicit Impl(const NativeDriverOptions& options_in) : options(options_in) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(options.max_message_bytes);
    args.SetMaxSendMessageSize(options.max_message_bytes);
    // Reconnect quickly after the function restarts.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel = grpc::CreateCustomChannel(Target(options.address), grpc::InsecureChannelCredentials(),
                                        args);
  }

  const NativeDriverOptions options;
  std::shared_ptr<grpc::Channel> channel;  // discovery, and commands to a 1.0 function
  uint32_t function_minor = 0;
  std::unique_ptr<rpc::CqLoop> own_loop;
  std::unique_ptr<native::SessionTransport> session;
  std::unique_ptr<UnaryTransport> unary;
  CallHandler call_handler;  // set before Start
  bool shut_down = false;
};

NativeDriver::NativeDriver(const NativeDriverOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}

NativeDriver::~NativeDriver() { Shutdown(); }

absl::StatusOr<FunctionSpec> NativeDriver::Discover(std::chrono::milliseconds timeout) {
  v1::ProxyInfo info;
  info.mutable_protocol()->set_major(native::kProtocolMajor);
  info.mutable_protocol()->set_minor(native::kProtocolMinor);
  info.set_proxy_name("massa");
  info.set_proxy_version(MASSA_VERSION);
  info.add_supported_kinds(v1::ENTITY_KIND_ACTION);
  info.add_supported_kinds(v1::ENTITY_KIND_VALUE_ENTITY);
  info.add_supported_kinds(v1::ENTITY_KIND_EVENT_SOURCED);
  info.add_supported_kinds(v1::ENTITY_KIND_CRDT);

  grpc::ClientContext context;
  context.set_wait_for_ready(true);  // wait for the function to come up, until the deadline
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::Spec spec;
  grpc::Status status = v1::Discovery::NewStub(impl_->channel)->Discover(&context, info, &spec);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return absl::UnavailableError(absl::StrCat("the user function at ", impl_->options.address,
                                                 " did not answer discovery within ",
                                                 timeout.count(), " ms"));
    }
    return FromGrpc(status, "discovery");
  }
  impl_->function_minor = spec.protocol().minor();
  return native::SpecFromProto(spec);
}

void NativeDriver::Start(rpc::CqLoop* loop) {
  if (impl_->session != nullptr || impl_->unary != nullptr) return;
  if (impl_->function_minor < 1 || impl_->options.force_unary) {
    impl_->unary = std::make_unique<UnaryTransport>(impl_->channel, impl_->options.call_timeout);
    spdlog::info("calling the user function with one unary RPC per command (protocol 1.{})",
                 impl_->function_minor);
    return;
  }
  if (loop == nullptr) {
    impl_->own_loop = std::make_unique<rpc::CqLoop>(1, "massa-fn");
    impl_->own_loop->Start();
    loop = impl_->own_loop.get();
  }
  native::SessionOptions options;
  options.address = impl_->options.address;
  options.streams = impl_->options.streams;
  options.max_in_flight = impl_->options.max_in_flight;
  options.call_timeout = impl_->options.call_timeout;
  options.proxy_version = MASSA_VERSION;
  impl_->session = std::make_unique<native::SessionTransport>(options, *loop);
  if (impl_->call_handler != nullptr) {
    impl_->session->SetCallHandler([impl = impl_.get()](
                                       std::shared_ptr<const native::RequestOrigin> origin,
                                       v1::ActorCall call, native::CallReply reply) {
      RunCall(impl->call_handler, origin.get(), std::move(call), std::move(reply));
    });
  }
  impl_->session->Start();
}

std::string NativeDriver::transport() const {
  if (impl_->session != nullptr) return "session";
  if (impl_->unary != nullptr) return "unary";
  return "";
}

namespace {

absl::Status NotStarted() {
  return absl::UnavailableError("the user function is unavailable (not connected yet)");
}

}  // namespace

void NativeDriver::HandleAction(const Command& command, OutcomeCallback done) {
  if (impl_->session != nullptr) {
    v1::ProxyFrame frame;
    FillRequest(command, std::nullopt, *frame.mutable_action());
    SendCommand(*impl_->session, command, std::move(frame), std::move(done));
  } else if (impl_->unary != nullptr) {
    impl_->unary->Handle<v1::ActionCommand, v1::ActionResponse>(
        command, std::nullopt, 0,
        [](const v1::ActionResponse& response) {
          return native::OutcomeFromProto(response.client_action(), response.effects());
        },
        std::move(done));
  } else {
    std::move(done)(NotStarted());
  }
}

void NativeDriver::HandleValueEntity(const Command& command,
                                     const std::optional<TypedValue>& state,
                                     OutcomeCallback done) {
  if (impl_->session != nullptr) {
    v1::ProxyFrame frame;
    FillRequest(command, state, *frame.mutable_value_entity());
    SendCommand(*impl_->session, command, std::move(frame), std::move(done));
  } else if (impl_->unary != nullptr) {
    impl_->unary->Handle<v1::ValueEntityCommand, v1::ValueEntityResponse>(
        command, state, 0, native::ValueEntityOutcomeFromProto, std::move(done));
  } else {
    std::move(done)(NotStarted());
  }
}

void NativeDriver::HandleCrdt(const Command& command, const crdt::Value& value,
                              OutcomeCallback done) {
  if (impl_->session == nullptr) {
    std::move(done)(impl_->unary != nullptr
                        ? absl::FailedPreconditionError(
                              "CRDT entities need a function that speaks protocol 1.1 or later "
                              "(session streams)")
                        : NotStarted());
    return;
  }
  v1::ProxyFrame frame;
  v1::CrdtCommand& request = *frame.mutable_crdt();
  native::CommandToProto(command, command.request_type, *request.mutable_command());
  native::CrdtValueToProto(value, *request.mutable_value());
  SendCommand(*impl_->session, command, std::move(frame), std::move(done));
}

void NativeDriver::HandleEventSourced(const Command& command,
                                      const std::optional<TypedValue>& state, uint64_t sequence,
                                      OutcomeCallback done) {
  if (impl_->session != nullptr) {
    v1::ProxyFrame frame;
    FillRequest(command, state, *frame.mutable_event_sourced());
    frame.mutable_event_sourced()->set_sequence(sequence);
    SendCommand(*impl_->session, command, std::move(frame), std::move(done));
  } else if (impl_->unary != nullptr) {
    impl_->unary->Handle<v1::EventSourcedCommand, v1::EventSourcedResponse>(
        command, state, sequence, native::EventSourcedOutcomeFromProto, std::move(done));
  } else {
    std::move(done)(NotStarted());
  }
}

void NativeDriver::Fold(const std::string& service, const std::string& entity_key,
                        const std::optional<TypedValue>& state, const std::vector<Event>& events,
                        FoldCallback done) {
  v1::FoldRequest request;
  native::FoldRequestToProto(service, entity_key, state, events, request);
  if (impl_->session != nullptr) {
    v1::ProxyFrame frame;
    *frame.mutable_fold() = std::move(request);
    impl_->session->Send(
        std::move(frame), Steady::time_point::max(),
        [done = std::move(done)](absl::StatusOr<v1::FunctionFrame> f) mutable {
          if (!f.ok()) {
            std::move(done)(std::move(f).status());
          } else if (f->body_case() != v1::FunctionFrame::kFold) {
            std::move(done)(absl::InternalError(
                "the user function answered a fold with a frame of another kind"));
          } else {
            std::move(done)(FoldedState(f->fold()));
          }
        });
  } else if (impl_->unary != nullptr) {
    impl_->unary->Fold(std::move(request), std::move(done));
  } else {
    std::move(done)(NotStarted());
  }
}

void NativeDriver::SetCallHandler(CallHandler handler) {
  impl_->call_handler = std::move(handler);
}

bool NativeDriver::Reachable() {
  if (impl_->session != nullptr) return impl_->session->Connected();
  grpc_connectivity_state state = impl_->channel->GetState(/*try_to_connect=*/true);
  return state != GRPC_CHANNEL_TRANSIENT_FAILURE && state != GRPC_CHANNEL_SHUTDOWN;
}

void NativeDriver::Shutdown() {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  if (impl_->session != nullptr) impl_->session->Shutdown();
  if (impl_->unary != nullptr) impl_->unary->Shutdown();
  if (impl_->own_loop != nullptr) impl_->own_loop->Shutdown();
}

}  // namespace massa
