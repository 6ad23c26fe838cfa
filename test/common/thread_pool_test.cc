// ThreadPool (src/common/thread_pool.h): threads start on demand, up to the limit; every task
// posted runs, also those still queued at destruction.
#include "common/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace massa {
namespace {

TEST(ThreadPoolTest, StartsNoThreadUntilThereIsWork) {
  ThreadPool pool(4, "test-pool");
  EXPECT_EQ(pool.threads(), 0u);
  absl::Notification ran;
  pool.Post([&] { ran.Notify(); });
  ran.WaitForNotification();
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(ThreadPoolTest, StartsThreadsWhileAllAreBusyUpToTheLimit) {
  ThreadPool pool(3, "test-pool");
  absl::Notification release;
  std::atomic<int> running{0};
  for (int i = 0; i < 6; ++i) {
    pool.Post([&] {
      ++running;
      release.WaitForNotification();
    });
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (running.load() < 3 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(running.load(), 3) << "three tasks run at once, the others wait";
  EXPECT_EQ(pool.threads(), 3u);
  release.Notify();
}

TEST(ThreadPoolTest, ReusesAnIdleThread) {
  ThreadPool pool(4, "test-pool");
  for (int i = 0; i < 20; ++i) {
    absl::Notification done;
    pool.Post([&] { done.Notify(); });
    done.WaitForNotification();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // back to waiting
  }
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(ThreadPoolTest, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(1, "test-pool");
    for (int i = 0; i < 100; ++i) pool.Post([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 100);
}

}  // namespace
}  // namespace massa
