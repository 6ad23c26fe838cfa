#include "common/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

namespace massa {

ThreadPool::ThreadPool(int threads, std::string name)
    : max_threads_(std::max(1, threads)), name_(std::move(name)) {}

ThreadPool::~ThreadPool() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  for (auto& thread : threads) thread.join();
}

void ThreadPool::Post(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
  // A new thread only when every one is busy: an idle massa keeps none.
  if (idle_ < tasks_.size() && threads_.size() < static_cast<size_t>(max_threads_)) {
    ++idle_;  // counts as idle until it takes a task
    threads_.emplace_back([this] { Loop(); });
    std::string thread_name = (name_ + "-" + std::to_string(threads_.size() - 1)).substr(0, 15);
    pthread_setname_np(threads_.back().native_handle(), thread_name.c_str());
  }
}

size_t ThreadPool::threads() const {
  absl::MutexLock lock(&mu_);
  return threads_.size();
}

void ThreadPool::Loop() {
  while (true) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !tasks_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
      --idle_;
    }
    std::move(task)();
    absl::MutexLock lock(&mu_);
    ++idle_;
  }
}

}  // namespace massa
