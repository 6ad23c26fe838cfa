#include "rpc/cq_loop.h"

#include <pthread.h>

#include "grpc/support/time.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_builder.h"

namespace massa::rpc {

CqLoop::CqLoop(int threads, std::string name, std::chrono::microseconds spin)
    : name_(std::move(name)), spin_(spin) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    queues_.push_back(std::make_unique<grpc::CompletionQueue>());
  }
}

CqLoop::CqLoop(grpc::ServerBuilder& builder, int threads, std::string name,
               std::chrono::microseconds spin)
    : name_(std::move(name)), spin_(spin) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    std::unique_ptr<grpc::ServerCompletionQueue> queue = builder.AddCompletionQueue();
    server_queues_.push_back(queue.get());
    queues_.push_back(std::move(queue));
  }
}

CqLoop::~CqLoop() { Shutdown(); }

grpc::CompletionQueue* CqLoop::queue(size_t i) const { return queues_[i].get(); }

grpc::ServerCompletionQueue* CqLoop::server_queue(size_t i) const {
  return server_queues_.empty() ? nullptr : server_queues_[i];
}

void CqLoop::Start() {
  for (size_t i = 0; i < queues_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

void CqLoop::Run(size_t i) {
  const std::string thread_name = (name_ + "-" + std::to_string(i)).substr(0, 15);
  pthread_setname_np(pthread_self(), thread_name.c_str());
  void* tag = nullptr;
  bool ok = false;
  grpc::CompletionQueue& queue = *queues_[i];
  // Zero deadline: AsyncNext polls once without blocking.
  const gpr_timespec now = gpr_time_0(GPR_CLOCK_MONOTONIC);
  while (true) {
    if (spin_.count() > 0) {
      const auto until = std::chrono::steady_clock::now() + spin_;
      grpc::CompletionQueue::NextStatus status = grpc::CompletionQueue::TIMEOUT;
      do {
        status = queue.AsyncNext(&tag, &ok, now);
      } while (status == grpc::CompletionQueue::TIMEOUT && std::chrono::steady_clock::now() < until);
      if (status == grpc::CompletionQueue::SHUTDOWN) return;
      if (status == grpc::CompletionQueue::GOT_EVENT) {
        static_cast<CqTag*>(tag)->OnComplete(ok);
        continue;
      }
    }
    if (!queue.Next(&tag, &ok)) return;
    static_cast<CqTag*>(tag)->OnComplete(ok);
  }
}

void CqLoop::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& queue : queues_) queue->Shutdown();
  if (threads_.empty()) {
    // Never started: drain here, running the tags so their owners can release themselves.
    for (auto& queue : queues_) {
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) static_cast<CqTag*>(tag)->OnComplete(ok);
    }
  }
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace massa::rpc
