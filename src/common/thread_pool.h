// A fixed set of threads running posted tasks in FIFO order. Used for work that may block
// (store reads on activation) so that ingress and driver threads never block.
#pragma once

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace massa {

// Thread-safe. Threads start when work needs them (a task posted while every thread is busy),
// up to `threads`, and stay. The destructor runs every task already posted, then joins them.
class ThreadPool {
 public:
  ThreadPool(int threads, std::string name);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Post(absl::AnyInvocable<void() &&> task);

  // Threads started so far.
  size_t threads() const;

 private:
  void Loop();

  const int max_threads_;
  const std::string name_;
  mutable absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;  // threads waiting for a task
};

}  // namespace massa
