#include "protocol/native/session.h"

#include <algorithm>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "massa/common/status.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "protocol/native/convert.h"
#include "rpc/cq_loop.h"
#include "spdlog/spdlog.h"

namespace massa::native {
namespace {

namespace v1 = protocol::v1;
using Steady = std::chrono::steady_clock;

std::chrono::system_clock::time_point SystemTime(Steady::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Steady::now());
}

std::string Target(const std::string& address) {
  constexpr std::string_view kTcp = "tcp://";
  if (address.rfind(kTcp, 0) == 0) return address.substr(kTcp.size());
  return address;
}

using Ready = std::vector<std::pair<FrameCallback, absl::StatusOr<v1::FunctionFrame>>>;

void RunAll(Ready& ready) {
  for (auto& [done, answer] : ready) std::move(done)(std::move(answer));
  ready.clear();
}

}  // namespace

// One slot of the transport: a connection to the function and the Connect call on it, reopened
// with backoff whenever it breaks. Every member below mu_ is guarded by it; gRPC operations
// are started under it (their completions never run inline) and callbacks run outside it.
class SessionTransport::Stream {
 public:
  Stream(const SessionOptions& options, size_t index, grpc::CompletionQueue* queue,
         CallHandler* call_handler)
      : options_(options),
        index_(index),
        queue_(queue),
        call_handler_(call_handler),
        gate_(std::make_shared<Gate>(this)),
        alarm_tag_(this),
        reconnect_tag_(this) {
    grpc::ChannelArguments args;
    // Each stream on its own connection, so one broken connection fails only its requests.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);  // batches of answers; sizes are checked per reply
    args.SetMaxSendMessageSize(-1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel_ = grpc::CreateCustomChannel(Target(options.address),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Session::NewStub(channel_);
  }

  ~Stream() {
    {
      absl::MutexLock gate(&gate_->mu);
      gate_->stream = nullptr;  // answers to calls arriving from now on are dropped
    }
    absl::MutexLock lock(&mu_);
    MASSA_CHECK(Idle());
  }

  void Start() {
    absl::MutexLock lock(&mu_);
    Connect();
  }

  bool open() const { return open_.load(std::memory_order_relaxed); }
  // Why the function refused this stream last (its protocol version), until it accepts one.
  std::string last_refusal() {
    absl::MutexLock lock(&mu_);
    return last_refusal_;
  }
  // A stream that takes requests: open, or being opened (requests wait for it).
  bool usable() const { return usable_.load(std::memory_order_relaxed); }
  size_t in_flight() const { return in_flight_count_.load(std::memory_order_relaxed); }

  // Queues `frame` on this stream. On error returns it without touching `done`.
  absl::Status TrySend(v1::ProxyFrame& frame, Steady::time_point deadline, FrameCallback& done,
                       std::shared_ptr<const RequestOrigin>& origin) {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ || call_ == nullptr || call_->broken) {
      return absl::UnavailableError("the user function is unavailable (not connected)");
    }
    const size_t bytes = frame.ByteSizeLong();
    if (in_flight_.size() >= options_.max_in_flight ||
        call_->queued_bytes + bytes > options_.max_queued_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the user function is not keeping up: ", in_flight_.size(),
          " commands unanswered and ", call_->queued_bytes, " bytes unsent on its stream ",
          index_));
    }
    const uint64_t id = next_id_++;
    frame.set_id(id);
    in_flight_.emplace(id, Pending{std::move(done), deadline, call_->generation, std::move(origin)});
    in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
    call_->queued_bytes += bytes;
    *call_->queued.add_frames() = std::move(frame);
    Flush(*call_);
    ArmDeadline(deadline);
    return absl::OkStatus();
  }

  void Shutdown() {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    usable_.store(false);
    open_.store(false);
    if (call_ != nullptr) call_->context.TryCancel();
    if (alarm_pending_) alarm_.Cancel();
    if (reconnect_pending_) reconnect_alarm_.Cancel();
    // The calls' finish handlers fail what is in flight; wait for every tag to come back.
    mu_.Await(absl::Condition(this, &Stream::Idle));
  }

 private:
  struct Pending {
    FrameCallback done;
    Steady::time_point deadline;
    uint64_t generation;  // of the call the request was sent on
    std::shared_ptr<const RequestOrigin> origin;
  };

  // How answers to the function's calls find this stream, if it still exists.
  struct Gate {
    explicit Gate(Stream* s) : stream(s) {}
    absl::Mutex mu;
    Stream* stream ABSL_GUARDED_BY(mu);
  };

  // A call the function made, to run outside the lock.
  struct IncomingCall {
    uint64_t id;     // the function's id of the call
    bool known;      // it names a command in flight on this call of the stream
    std::shared_ptr<const RequestOrigin> origin;
    v1::ActorCall call;
  };

  // Sends the answer to the function's call `id`, made on call `generation` of the stream.
  void SendCallResult(uint64_t id, v1::ActorCallResult result, uint64_t generation) {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ || call_ == nullptr || call_->generation != generation || call_->broken) {
      return;  // the function's stream is gone, and its call with it
    }
    v1::ProxyFrame* frame = call_->queued.add_frames();
    frame->set_id(id);
    *frame->mutable_call_result() = std::move(result);
    call_->queued_bytes += frame->ByteSizeLong();
    Flush(*call_);
  }

  void RunCalls(std::vector<IncomingCall>& calls, uint64_t generation) {
    for (IncomingCall& incoming : calls) {
      CallReply reply = [gate = gate_, id = incoming.id,
                         generation](v1::ActorCallResult result) mutable {
        absl::MutexLock lock(&gate->mu);
        if (gate->stream != nullptr) gate->stream->SendCallResult(id, std::move(result), generation);
      };
      if (!incoming.known || *call_handler_ == nullptr) {
        v1::ActorCallResult refused;
        refused.mutable_failure()->set_code(static_cast<int>(
            incoming.known ? absl::StatusCode::kUnimplemented
                           : absl::StatusCode::kFailedPrecondition));
        refused.mutable_failure()->set_message(
            incoming.known ? "this massa takes no calls from the function"
                           : absl::StrCat("a call names command ", incoming.call.command_id(),
                                          ", which is not in flight on this stream (calls are "
                                          "made while a command is handled)"));
        std::move(reply)(std::move(refused));
        continue;
      }
      (*call_handler_)(std::move(incoming.origin), std::move(incoming.call), std::move(reply));
    }
  }

  struct Call;
  // A completion of one of a call's operations: runs (stream->*fn)(call, ok).
  class CallTag final : public rpc::CqTag {
   public:
    CallTag(Call* call, void (Stream::*fn)(Call&, bool)) : call_(call), fn_(fn) {}
    void OnComplete(bool ok) override { (call_->stream->*fn_)(*call_, ok); }

   private:
    Call* call_;
    void (Stream::*fn_)(Call&, bool);
  };

  // One Connect call. Deleted once finished with no operation pending.
  struct Call {
    Call(Stream* s, uint64_t g)
        : stream(s),
          generation(g),
          start_tag(this, &Stream::OnStart),
          read_tag(this, &Stream::OnRead),
          write_tag(this, &Stream::OnWrite),
          finish_tag(this, &Stream::OnFinish) {}
    Stream* stream;
    const uint64_t generation;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::ProxyMessage, v1::FunctionMessage>> rw;
    v1::ProxyMessage writing;  // being written
    v1::ProxyMessage queued;   // waiting for the write in flight
    size_t queued_bytes = 0;
    v1::FunctionMessage incoming;
    grpc::Status status;
    std::string refusal;  // why this side ended the call, when it did
    bool started = false;
    bool accepted = false;
    bool writing_now = false;
    bool broken = false;
    bool finished = false;
    Steady::time_point write_started;
    int ops = 0;  // operations pending on the queue
    CallTag start_tag, read_tag, write_tag, finish_tag;
  };

  template <void (Stream::*F)(bool)>
  class StreamTag final : public rpc::CqTag {
   public:
    explicit StreamTag(Stream* stream) : stream_(stream) {}
    void OnComplete(bool ok) override { (stream_->*F)(ok); }

   private:
    Stream* stream_;
  };

  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return live_calls_ == 0 && !alarm_pending_ && !reconnect_pending_ && running_callbacks_ == 0;
  }

  void Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto* call = new Call(this, ++generation_);
    ++live_calls_;
    call_ = call;
    usable_.store(true);
    v1::ProxyFrame* open = call->queued.add_frames();
    open->set_id(0);
    open->mutable_open()->mutable_protocol()->set_major(kProtocolMajor);
    open->mutable_open()->mutable_protocol()->set_minor(kProtocolMinor);
    open->mutable_open()->set_max_in_flight(options_.max_in_flight);
    open->mutable_open()->set_proxy_version(options_.proxy_version);
    call->rw = stub_->PrepareAsyncConnect(&call->context, queue_);
    ++call->ops;
    call->rw->StartCall(&call->start_tag);
  }

  // Hands what is queued to gRPC when no write is in flight.
  void Flush(Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!call.started || call.writing_now || call.broken || call.queued.frames_size() == 0) return;
    call.writing.Swap(&call.queued);
    call.queued.Clear();
    call.queued_bytes = 0;
    call.writing_now = true;
    call.write_started = Steady::now();
    ++call.ops;
    call.rw->Write(call.writing, &call.write_tag);
    ArmDeadline(call.write_started + options_.call_timeout);  // to notice a stalled write
  }

  void OnStart(Call& call, bool ok) {
    absl::MutexLock lock(&mu_);
    --call.ops;
    call.started = true;
    if (!ok) {
      Break(call);
      return;
    }
    ++call.ops;
    call.rw->Read(&call.incoming, &call.read_tag);
    Flush(call);
  }

  void OnWrite(Call& call, bool ok) {
    absl::MutexLock lock(&mu_);
    --call.ops;
    call.writing_now = false;
    call.writing.Clear();
    if (!ok) {
      call.broken = true;  // the pending read fails too and finishes the call
      if (call_ == &call) usable_.store(false);
    } else {
      Flush(call);
    }
    MaybeDelete(call);
  }

  void OnRead(Call& call, bool ok) {
    Ready ready;
    std::vector<IncomingCall> calls;
    {
      absl::MutexLock lock(&mu_);
      --call.ops;
      if (!ok) {
        Break(call);
        return;
      }
      for (int i = 0; i < call.incoming.frames_size() && call.refusal.empty(); ++i) {
        v1::FunctionFrame* frame = call.incoming.mutable_frames(i);
        if (!call.accepted && frame->body_case() != v1::FunctionFrame::kAccepted) {
          call.refusal = "the user function answered before accepting the session (its first "
                         "frame must be `accepted`)";
          call.context.TryCancel();
          break;
        }
        if (frame->body_case() == v1::FunctionFrame::kAccepted) {
          const v1::ProtocolVersion& version = frame->accepted().protocol();
          if (version.major() != kProtocolMajor) {
            call.refusal = absl::StrCat("the user function accepted the session with Massa protocol ",
                                        version.major(), ".", version.minor(),
                                        " but this massa speaks ", kProtocolMajor, ".",
                                        kProtocolMinor, " (major versions must match)");
            call.context.TryCancel();
            continue;
          }
          if (!call.accepted) {
            call.accepted = true;
            backoff_ = std::chrono::milliseconds(0);
            if (call_ == &call) open_.store(true);
            spdlog::debug("session stream {} to the user function is open", index_);
          }
          continue;
        }
        if (frame->body_case() == v1::FunctionFrame::kCall) {
          auto origin = in_flight_.find(frame->call().command_id());
          const bool known =
              origin != in_flight_.end() && origin->second.generation == call.generation;
          calls.push_back(IncomingCall{frame->id(), known,
                                       known ? origin->second.origin : nullptr,
                                       std::move(*frame->mutable_call())});
          continue;
        }
        auto found = in_flight_.find(frame->id());
        if (found == in_flight_.end() || found->second.generation != call.generation) {
          continue;  // answered already (deadline passed) or unknown: ignore
        }
        FrameCallback done = std::move(found->second.done);
        in_flight_.erase(found);
        if (frame->body_case() == v1::FunctionFrame::kError) {
          int code = frame->error().code();
          auto status_code = (code > 0 && code <= 16) ? static_cast<absl::StatusCode>(code)
                                                      : absl::StatusCode::kUnknown;
          ready.emplace_back(std::move(done),
                             absl::Status(status_code, absl::StrCat("user function call: ",
                                                                    frame->error().message())));
          continue;
        }
        v1::FunctionFrame answer;
        answer.Swap(frame);
        ready.emplace_back(std::move(done), std::move(answer));
      }
      in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
      call.incoming.Clear();
      ++call.ops;  // the read posted below: keeps the call alive meanwhile
      if (!ready.empty() || !calls.empty()) ++running_callbacks_;
    }
    // Answers first, the next read after: posting a read makes gRPC send the function a
    // flow-control update at once, which should not delay the replies to the callers.
    const bool ran = !ready.empty() || !calls.empty();
    RunAll(ready);
    RunCalls(calls, call.generation);
    absl::MutexLock lock(&mu_);
    if (ran) --running_callbacks_;
    call.rw->Read(&call.incoming, &call.read_tag);
  }

  // The call is over (its read failed): asks gRPC why.
  void Break(Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call.broken = true;
    if (call_ == &call) {
      usable_.store(false);
      open_.store(false);
    }
    ++call.ops;
    call.rw->Finish(&call.status, &call.finish_tag);
  }

  void OnFinish(Call& call, bool) {
    Ready ready;
    {
      absl::MutexLock lock(&mu_);
      --call.ops;
      call.finished = true;
      absl::Status failure = Failure(call);
      // Until a stream is accepted again, requests fail with the refusal, not "not connected".
      if (!call.refusal.empty()) {
        last_refusal_ = call.refusal;
      } else if (call.accepted) {
        last_refusal_.clear();
      }
      if (!shutting_down_ && (call.accepted || !call.refusal.empty())) {
        spdlog::warn("session stream {} to the user function ended: {}", index_,
                     std::string(failure.message()));
      } else {
        spdlog::debug("session stream {} to the user function: {}", index_, std::string(failure.message()));
      }
      for (auto it = in_flight_.begin(); it != in_flight_.end();) {
        auto next = std::next(it);
        if (it->second.generation == call.generation) {
          ready.emplace_back(std::move(it->second.done), failure);
          in_flight_.erase(it);
        }
        it = next;
      }
      in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
      if (call_ == &call) {
        call_ = nullptr;
        if (!shutting_down_) ScheduleReconnect();
      }
      ++running_callbacks_;  // the call goes only after its callbacks ran
    }
    RunAll(ready);
    absl::MutexLock lock(&mu_);
    --running_callbacks_;
    MaybeDelete(call);
  }

  // What requests unanswered on a finished call receive.
  absl::Status Failure(const Call& call) const {
    if (!call.refusal.empty()) return absl::FailedPreconditionError(call.refusal);
    if (call.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        call.status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      // The function refused the session (another protocol version) or does not serve it.
      return absl::FailedPreconditionError(
          absl::StrCat("the user function refused the session: ", call.status.error_message()));
    }
    if (shutting_down_) return absl::UnavailableError("massa is shutting down");
    return absl::UnavailableError(absl::StrCat(
        "the connection to the user function was lost (", call.status.error_message(),
        "); the command may or may not have run"));
  }

  void MaybeDelete(Call& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!call.finished || call.ops > 0) return;
    delete &call;
    --live_calls_;
  }

  void ScheduleReconnect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    backoff_ = std::clamp(backoff_ * 2, options_.reconnect_min, options_.reconnect_max);
    reconnect_pending_ = true;
    reconnect_alarm_.Set(queue_, SystemTime(Steady::now() + backoff_), &reconnect_tag_);
  }

  void OnReconnect(bool) {
    absl::MutexLock lock(&mu_);
    reconnect_pending_ = false;
    if (!shutting_down_ && call_ == nullptr) Connect();
  }

  void ArmDeadline(Steady::time_point deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!alarm_pending_) {
      alarm_pending_ = true;
      alarm_at_ = deadline;
      alarm_.Set(queue_, SystemTime(deadline), &alarm_tag_);
    } else if (deadline + std::chrono::milliseconds(1) < alarm_at_) {
      alarm_at_ = deadline;
      alarm_.Cancel();  // fires now; OnAlarm arms again for the earliest deadline
    }
  }

  void OnAlarm(bool) {
    Ready ready;
    {
      absl::MutexLock lock(&mu_);
      alarm_pending_ = false;
      const Steady::time_point now = Steady::now();
      Steady::time_point earliest = Steady::time_point::max();
      for (auto it = in_flight_.begin(); it != in_flight_.end();) {
        auto next = std::next(it);
        if (it->second.deadline <= now) {
          ready.emplace_back(std::move(it->second.done),
                             absl::DeadlineExceededError(absl::StrCat(
                                 "the user function did not answer in time (call timeout ",
                                 options_.call_timeout.count(), " ms or the caller's deadline)")));
          in_flight_.erase(it);
        } else {
          earliest = std::min(earliest, it->second.deadline);
        }
        it = next;
      }
      in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
      // A function that stopped reading: its writes never complete. Reset the connection so
      // that what is queued fails instead of piling up.
      if (call_ != nullptr && call_->writing_now) {
        const Steady::time_point stalled = call_->write_started + options_.call_timeout;
        if (now >= stalled) {
          spdlog::warn("session stream {}: the user function has not read for {} ms; reconnecting",
                       index_, options_.call_timeout.count());
          call_->context.TryCancel();
        } else {
          earliest = std::min(earliest, stalled);
        }
      }
      if (!shutting_down_ && earliest != Steady::time_point::max()) ArmDeadline(earliest);
      if (!ready.empty()) ++running_callbacks_;
    }
    if (ready.empty()) return;
    RunAll(ready);
    absl::MutexLock lock(&mu_);
    --running_callbacks_;
  }

  const SessionOptions& options_;
  const size_t index_;
  grpc::CompletionQueue* const queue_;
  CallHandler* const call_handler_;
  const std::shared_ptr<Gate> gate_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Session::Stub> stub_;
  StreamTag<&Stream::OnAlarm> alarm_tag_;
  StreamTag<&Stream::OnReconnect> reconnect_tag_;
  std::atomic<bool> open_{false};
  std::atomic<bool> usable_{false};
  std::atomic<size_t> in_flight_count_{0};

  absl::Mutex mu_;
  Call* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int live_calls_ ABSL_GUARDED_BY(mu_) = 0;
  // Callbacks being run outside the lock (Shutdown waits for them).
  int running_callbacks_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Pending> in_flight_ ABSL_GUARDED_BY(mu_);
  grpc::Alarm alarm_ ABSL_GUARDED_BY(mu_);
  bool alarm_pending_ ABSL_GUARDED_BY(mu_) = false;
  Steady::time_point alarm_at_ ABSL_GUARDED_BY(mu_);
  grpc::Alarm reconnect_alarm_ ABSL_GUARDED_BY(mu_);
  bool reconnect_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::milliseconds backoff_ ABSL_GUARDED_BY(mu_){0};
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_refusal_ ABSL_GUARDED_BY(mu_);
};

SessionTransport::SessionTransport(SessionOptions options, rpc::CqLoop& loop)
    : options_(std::move(options)) {
  for (int i = 0; i < std::max(1, options_.streams); ++i) {
    streams_.push_back(std::make_unique<Stream>(options_, static_cast<size_t>(i),
                                                loop.queue(static_cast<size_t>(i) % loop.size()),
                                                &call_handler_));
  }
}

SessionTransport::~SessionTransport() { Shutdown(); }

void SessionTransport::SetCallHandler(CallHandler handler) { call_handler_ = std::move(handler); }

void SessionTransport::Start() {
  for (auto& stream : streams_) stream->Start();
}

void SessionTransport::Send(v1::ProxyFrame frame, Steady::time_point deadline, FrameCallback done,
                            std::shared_ptr<const RequestOrigin> origin) {
  deadline = std::min(deadline, Steady::now() + options_.call_timeout);
  // Open streams first, fewest requests in flight first; then streams being opened.
  std::vector<Stream*> order;
  order.reserve(streams_.size());
  for (auto& stream : streams_) {
    if (stream->usable()) order.push_back(stream.get());
  }
  std::stable_sort(order.begin(), order.end(), [](const Stream* a, const Stream* b) {
    if (a->open() != b->open()) return a->open();
    return a->in_flight() < b->in_flight();
  });
  absl::Status last = absl::UnavailableError("the user function is unavailable (not connected)");
  for (Stream* stream : order) {
    absl::Status sent = stream->TrySend(frame, deadline, done, origin);
    if (sent.ok()) return;
    last = std::move(sent);
  }
  if (last.code() == absl::StatusCode::kUnavailable) {
    for (auto& stream : streams_) {  // refused, rather than not connected: say why
      if (std::string refusal = stream->last_refusal(); !refusal.empty()) {
        last = absl::FailedPreconditionError(std::move(refusal));
      }
    }
  }
  std::move(done)(std::move(last));
}

bool SessionTransport::Connected() const {
  return std::any_of(streams_.begin(), streams_.end(),
                     [](const auto& stream) { return stream->open(); });
}

size_t SessionTransport::OpenStreams() const {
  return static_cast<size_t>(std::count_if(streams_.begin(), streams_.end(),
                                           [](const auto& stream) { return stream->open(); }));
}

std::vector<size_t> SessionTransport::InFlight() const {
  std::vector<size_t> out;
  for (const auto& stream : streams_) out.push_back(stream->in_flight());
  return out;
}

void SessionTransport::Shutdown() {
  for (auto& stream : streams_) stream->Shutdown();
}

}  // namespace massa::native
