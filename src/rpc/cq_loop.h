// File: rpc/cq_loop.h
//
// gRPC's asynchronous API on threads Massa owns. Each thread polls one completion queue and
// runs what completes there inline, so the work of a call stays on the thread that received
// it: no hand-off to gRPC's callback executor threads, which cost several context switches per
// call. The gRPC ingress serves its calls on these queues and the native driver runs its
// streams to the function on the same ones, so a proxied call is received, sent on to the
// function, answered and replied to by one thread.
//
// Example:
//   grpc::ServerBuilder builder;
//   rpc::CqLoop loop(builder, /*threads=*/2, "massa-io");   // before BuildAndStart
//   auto server = builder.BuildAndStart();
//   loop.Start();
//   ... post ops with a CqTag* as their tag ...
//   server->Shutdown(deadline);   // then finish or cancel every client call
//   loop.Shutdown();              // drains the queues, joins the threads
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace grpc {
class CompletionQueue;
class ServerBuilder;
class ServerCompletionQueue;
}  // namespace grpc

namespace massa::rpc {

// What a completion queue's thread runs when an operation tagged with it completes. `ok` is
// gRPC's: false when the operation failed (call cancelled or ended, queue shutting down).
class CqTag {
 public:
  virtual void OnComplete(bool ok) = 0;

 protected:
  ~CqTag() = default;
};

// A tag that calls a member function of its owner: `MemberTag<Stream, &Stream::OnRead> read_{this};`
template <typename T, void (T::*F)(bool)>
class MemberTag final : public CqTag {
 public:
  explicit MemberTag(T* owner) : owner_(owner) {}
  void OnComplete(bool ok) override { (owner_->*F)(ok); }

 private:
  T* owner_;
};

// Thread-safe after Start. Every tag posted to a queue must be a CqTag*.
class CqLoop {
 public:
  // `threads` plain completion queues, for client calls only.
  CqLoop(int threads, std::string name, std::chrono::microseconds spin = {});
  // `threads` completion queues added to `builder` (not built yet): they receive the server's
  // calls and may carry client calls too.
  //
  // `spin`: after it ran something, a thread keeps polling its queue for that long before it
  // blocks. An answer that comes back within it (the function's, typically) then costs no
  // wake-up; on virtual machines a wake-up is the largest part of a proxied call's latency.
  // The price is CPU for up to `spin` after each burst of work, nothing when idle.
  CqLoop(grpc::ServerBuilder& builder, int threads, std::string name,
         std::chrono::microseconds spin = {});
  ~CqLoop();  // Shutdown()
  CqLoop(const CqLoop&) = delete;
  CqLoop& operator=(const CqLoop&) = delete;

  // Starts one thread per queue. Call once (for a server's queues: after BuildAndStart).
  void Start();

  size_t size() const { return queues_.size(); }
  grpc::CompletionQueue* queue(size_t i) const;
  // Null for a loop of plain queues.
  grpc::ServerCompletionQueue* server_queue(size_t i) const;

  // Shuts the queues down and joins the threads once every tag has completed. Servers must be
  // shut down, and every client call finished or cancelled, first (gRPC never completes the
  // pending tags of a live call). Idempotent.
  void Shutdown();

 private:
  void Run(size_t i);

  std::string name_;
  std::chrono::microseconds spin_;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<grpc::ServerCompletionQueue*> server_queues_;  // views of queues_, or empty
  std::vector<std::thread> threads_;
  bool shut_down_ = false;
};

}  // namespace massa::rpc
