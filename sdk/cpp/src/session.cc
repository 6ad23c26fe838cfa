#include "session.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "registry.h"

namespace massa::sdk::detail {
namespace {

namespace v1 = massa::protocol::v1;

// A completion of an operation: runs a member of its owner on the queue's thread.
class Tag {
 public:
  virtual void OnComplete(bool ok) = 0;

 protected:
  ~Tag() = default;
};

template <typename T, void (T::*F)(bool)>
class MemberTag final : public Tag {
 public:
  explicit MemberTag(T* owner) : owner_(owner) {}
  void OnComplete(bool ok) override { (owner_->*F)(ok); }

 private:
  T* owner_;
};

// Handler threads: a FIFO of tasks. A handler waiting for a call's reply (ctx.Call) does not
// count: the pool adds a thread so that `threads` are always free to run handlers, else a
// chain of calls deeper than the pool (or calls among its own handlers) would wait forever.
class Pool {
 public:
  explicit Pool(int threads) : base_(threads) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < threads; ++i) AddThread();
  }

  // A task begins (true) or ends (false) waiting for a call's reply.
  void Waiting(bool begins) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_ += begins ? 1 : -1;
    const size_t threads = threads_.size() + joined_;
    if (begins && !stopping_ && static_cast<int>(threads) - waiting_ < base_ &&
        threads < static_cast<size_t>(base_) + kMaxExtraThreads) {
      AddThread();
    }
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (;;) {  // a task still running may add a thread while others are joined
      std::vector<std::thread> threads;
      {
        std::lock_guard<std::mutex> lock(mu_);
        threads.swap(threads_);
        joined_ += threads.size();
      }
      if (threads.empty()) return;
      for (auto& thread : threads) thread.join();
    }
  }
  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  static constexpr int kMaxExtraThreads = 1024;  // a call chain is at most 32 deep

  void AddThread() {
    const size_t i = threads_.size() + joined_;
    threads_.emplace_back([this, i] {
      const std::string name = "massa-fn-h" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      Loop();
    });
  }

  void Loop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  const int base_;
  int waiting_ = 0;
  size_t joined_ = 0;  // threads taken out of threads_ by the destructor
  std::vector<std::thread> threads_;
};

// The answer to one request frame.
v1::FunctionFrame Answer(const Registry& registry, const v1::ProxyFrame& frame) {
  v1::FunctionFrame reply;
  reply.set_id(frame.id());
  absl::Status status;
  switch (frame.body_case()) {
    case v1::ProxyFrame::kAction:
      status = registry.HandleAction(frame.action(), reply.mutable_action());
      break;
    case v1::ProxyFrame::kValueEntity:
      status = registry.HandleValueEntity(frame.value_entity(), reply.mutable_value_entity());
      break;
    case v1::ProxyFrame::kEventSourced:
      status = registry.HandleEventSourced(frame.event_sourced(), reply.mutable_event_sourced());
      break;
    case v1::ProxyFrame::kFold:
      status = registry.Fold(frame.fold(), reply.mutable_fold());
      break;
    case v1::ProxyFrame::kCrdt:
      status = registry.HandleCrdt(frame.crdt(), reply.mutable_crdt());
      break;
    default:
      status = absl::UnimplementedError("function " + registry.function_name() +
                                        " does not handle frames of kind " +
                                        std::to_string(static_cast<int>(frame.body_case())));
  }
  if (!status.ok()) {
    reply.clear_body();
    reply.mutable_error()->set_code(static_cast<int>(status.code()));
    reply.mutable_error()->set_message(std::string(status.message()));
  }
  return reply;
}

std::string Version(const v1::ProtocolVersion& version) {
  return std::to_string(version.major()) + "." + std::to_string(version.minor());
}

}  // namespace

struct SessionService::Impl {
  Impl(const Registry& registry_in, grpc::ServerBuilder& builder, int io_threads,
       int handler_threads_in)
      : registry(registry_in), handler_threads(handler_threads_in) {
    builder.RegisterService(&service);
    for (int i = 0; i < std::max(1, io_threads); ++i) queues.push_back(builder.AddCompletionQueue());
  }

  class Connection;
  void Accept(size_t queue);

  const Registry& registry;
  const int handler_threads;
  v1::Session::AsyncService service;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  std::vector<std::thread> threads;
  std::unique_ptr<Pool> pool;

  std::mutex mu;
  std::set<Connection*> connections;  // guarded by mu
  bool draining = false;              // guarded by mu
  bool stopped = false;
};

// One Session.Connect stream from Massa: its frames are read one message at a time, answered,
// and the answers written in batches (one write in flight at a time).
class SessionService::Impl::Connection final : public detail::CallSink {
 public:
  Connection(Impl& service, size_t queue)
      : service_(service),
        queue_(queue),
        stream_(&context_),
        accept_tag_(this),
        read_tag_(this),
        write_tag_(this),
        finish_tag_(this) {
    ++ops_;
    service_.service.RequestConnect(&context_, &stream_, service_.queues[queue].get(),
                                    service_.queues[queue].get(), &accept_tag_);
  }

  absl::StatusOr<v1::ActorCallResult> MakeCall(uint64_t command_id,
                                                v1::ActorCall call) override {
    call.set_command_id(command_id);
    if (service_.pool != nullptr) service_.pool->Waiting(true);
    struct Done {
      Pool* pool;
      ~Done() {
        if (pool != nullptr) pool->Waiting(false);
      }
    } done{service_.pool.get()};
    std::unique_lock<std::mutex> lock(mu_);
    if (read_closed_ || finishing_ || refused_) {
      return absl::UnavailableError("massa's stream closed before the call was sent");
    }
    const uint64_t id = next_call_id_++;
    calls_[id];  // waiting
    v1::FunctionFrame* frame = outgoing_.add_frames();
    frame->set_id(id);
    *frame->mutable_call() = std::move(call);
    Flush();
    calls_cv_.wait(lock, [&] { return calls_[id].has_value() || read_closed_; });
    std::optional<v1::ActorCallResult> result = std::move(calls_[id]);
    calls_.erase(id);
    if (!result.has_value()) {
      return absl::UnavailableError("massa's stream closed before the call was answered");
    }
    return *std::move(result);
  }

  // Drain: once nothing is in flight, end the stream.
  void Drain() {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    MaybeFinish();
  }

 private:
  void OnAccept(bool ok) {
    if (!ok) {  // shutting down
      delete this;
      return;
    }
    bool draining = false;
    {
      std::lock_guard<std::mutex> lock(service_.mu);
      service_.connections.insert(this);
      draining = service_.draining;
    }
    if (!draining) service_.Accept(queue_);
    std::lock_guard<std::mutex> lock(mu_);
    --ops_;
    accepted_ = true;
    draining_ = draining;
    ++ops_;
    stream_.Read(&incoming_, &read_tag_);
  }

  void OnRead(bool ok) {
    std::vector<v1::ProxyFrame> handled_here;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --ops_;
      if (!ok) {  // Massa closed its side, or the stream broke
        read_closed_ = true;
        calls_cv_.notify_all();  // calls waiting for an answer fail
        MaybeFinish();
        return;  // the finish tag releases the connection
      }
      for (int i = 0; i < incoming_.frames_size(); ++i) {
        v1::ProxyFrame* frame = incoming_.mutable_frames(i);
        if (frame->body_case() == v1::ProxyFrame::kOpen) {
          if (!Open(frame->open())) return;
          continue;
        }
        if (frame->body_case() == v1::ProxyFrame::kCallResult) {
          auto waiting = calls_.find(frame->id());
          if (waiting != calls_.end()) {
            waiting->second = std::move(*frame->mutable_call_result());
            calls_cv_.notify_all();
          }
          continue;
        }
        if (!opened_) {
          Refuse(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              "the session must start with an open frame"));
          return;
        }
        if (draining_) {
          v1::FunctionFrame reply;
          reply.set_id(frame->id());
          reply.mutable_error()->set_code(static_cast<int>(grpc::StatusCode::UNAVAILABLE));
          reply.mutable_error()->set_message("function " + service_.registry.function_name() +
                                             " is shutting down");
          *outgoing_.add_frames() = std::move(reply);
          continue;
        }
        ++handling_;
        handled_here.emplace_back();
        handled_here.back().Swap(frame);
      }
      incoming_.Clear();
      if (service_.pool == nullptr) {
        // Handled on this thread: answers are batched into one write below.
        for (v1::ProxyFrame& frame : handled_here) {
          *outgoing_.add_frames() = Answer(service_.registry, frame);
          --handling_;
        }
        handled_here.clear();
      }
      Flush();
      // The next read only now: posting it lets gRPC announce flow-control window, and doing
      // that after the answers are written keeps it from costing Massa a wake-up of its own
      // before the answers.
      ++ops_;
      stream_.Read(&incoming_, &read_tag_);
      MaybeFinish();
    }
    for (v1::ProxyFrame& frame : handled_here) {
      service_.pool->Post([this, frame = std::move(frame)] {
        detail::Current() = detail::CurrentCommand{this, frame.id()};
        v1::FunctionFrame reply = Answer(service_.registry, frame);
        detail::Current() = detail::CurrentCommand{};
        bool release = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          *outgoing_.add_frames() = std::move(reply);
          --handling_;
          Flush();
          MaybeFinish();
          release = Releasable();
        }
        if (release) Destroy();
      });
    }
  }

  // Checks Massa's version; answers `accepted`, or ends the stream naming both versions.
  bool Open(const v1::SessionOpen& open) {
    const std::string ours = std::to_string(kProtocolMajor) + "." + std::to_string(kProtocolMinor);
    if (open.protocol().major() != kProtocolMajor) {
      Refuse(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "incompatible protocol: massa speaks Massa protocol " +
                              Version(open.protocol()) + ", function " +
                              service_.registry.function_name() + " (" + kSdkName + " " +
                              kSdkVersion + ") speaks " + ours));
      return false;
    }
    opened_ = true;
    v1::FunctionFrame* accepted = outgoing_.add_frames();
    accepted->set_id(0);
    accepted->mutable_accepted()->mutable_protocol()->set_major(kProtocolMajor);
    accepted->mutable_accepted()->mutable_protocol()->set_minor(kProtocolMinor);
    return true;
  }

  // Ends the stream with `status` (called with mu_ held, from OnRead).
  void Refuse(const grpc::Status& status) {
    std::fprintf(stderr, "massa-sdk: %s\n", status.error_message().c_str());
    refused_ = true;
    refusal_ = status;
    MaybeFinish();
  }

  void Flush() {
    if (writing_ || finishing_ || refused_ || outgoing_.frames_size() == 0) return;
    writing_frames_.Swap(&outgoing_);
    outgoing_.Clear();
    writing_ = true;
    ++ops_;
    stream_.Write(writing_frames_, &write_tag_);
  }

  void OnWrite(bool ok) {
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --ops_;
      writing_ = false;
      writing_frames_.Clear();
      if (ok) Flush();
      MaybeFinish();
      release = Releasable();
    }
    if (release) Destroy();
  }

  // Ends the stream once the reading side is closed (or draining) and every answer is written.
  void MaybeFinish() {
    if (finishing_ || writing_) return;
    if (refused_) {
      finishing_ = true;
      ++ops_;
      stream_.Finish(refusal_, &finish_tag_);
      return;
    }
    if (!accepted_ || (!read_closed_ && !draining_)) return;
    if (handling_ > 0 || writing_ || outgoing_.frames_size() > 0) return;
    finishing_ = true;
    ++ops_;
    stream_.Finish(grpc::Status::OK, &finish_tag_);
  }

  void OnFinish(bool) {
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --ops_;
      finished_ = true;
      release = Releasable();
    }
    if (release) Destroy();
  }

  // Whether the stream is over and nothing refers to the connection any more (mu_ held).
  bool Releasable() const { return finished_ && ops_ == 0 && handling_ == 0; }

  // Leaves the service's list (so Drain no longer sees it), then deletes the connection.
  void Destroy() {
    {
      std::lock_guard<std::mutex> lock(service_.mu);
      service_.connections.erase(this);
    }
    delete this;
  }

  Impl& service_;
  const size_t queue_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<v1::FunctionMessage, v1::ProxyMessage> stream_;
  MemberTag<Connection, &Connection::OnAccept> accept_tag_;
  MemberTag<Connection, &Connection::OnRead> read_tag_;
  MemberTag<Connection, &Connection::OnWrite> write_tag_;
  MemberTag<Connection, &Connection::OnFinish> finish_tag_;

  std::mutex mu_;
  v1::ProxyMessage incoming_;
  v1::FunctionMessage outgoing_;
  v1::FunctionMessage writing_frames_;
  int ops_ = 0;
  int handling_ = 0;
  bool accepted_ = false;
  bool opened_ = false;
  bool draining_ = false;
  bool read_closed_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool refused_ = false;
  grpc::Status refusal_;
  bool finished_ = false;
  // The calls handlers made to other actors, by the id of their frame: empty until answered.
  uint64_t next_call_id_ = 1;
  std::map<uint64_t, std::optional<v1::ActorCallResult>> calls_;
  std::condition_variable calls_cv_;
};

void SessionService::Impl::Accept(size_t queue) { new Connection(*this, queue); }

SessionService::SessionService(const Registry& registry, grpc::ServerBuilder& builder,
                               int io_threads, int handler_threads)
    : impl_(std::make_unique<Impl>(registry, builder, io_threads, handler_threads)) {}

SessionService::~SessionService() { Stop(); }

void SessionService::Start() {
  if (impl_->handler_threads > 0) impl_->pool = std::make_unique<Pool>(impl_->handler_threads);
  for (size_t i = 0; i < impl_->queues.size(); ++i) {
    impl_->Accept(i);
    impl_->threads.emplace_back([this, i] {
      const std::string name = "massa-fn-io" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      void* tag = nullptr;
      bool ok = false;
      while (impl_->queues[i]->Next(&tag, &ok)) static_cast<Tag*>(tag)->OnComplete(ok);
    });
  }
}

void SessionService::Drain() {
  // Under the list's lock, so that no connection is deleted meanwhile (Destroy takes it).
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->draining = true;
  for (Impl::Connection* connection : impl_->connections) connection->Drain();
}

void SessionService::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& queue : impl_->queues) queue->Shutdown();
  if (impl_->threads.empty()) {
    for (auto& queue : impl_->queues) {
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) static_cast<Tag*>(tag)->OnComplete(ok);
    }
  }
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  impl_->pool.reset();
}

}  // namespace massa::sdk::detail
