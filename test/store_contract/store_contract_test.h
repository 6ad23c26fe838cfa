// File: store_contract/store_contract_test.h
//
// The contract every Store backend must meet (include/massa/store/store.h), as a gtest
// typed-parameterized suite. A backend's test file defines a Backend type and instantiates:
//
//   struct MyBackend {
//     static constexpr bool kDurable = true;  // data survives closing and reopening
//     massa::store::StorePtr Open();          // a store on this backend's storage
//   };
//   namespace massa::store_contract {  // gtest needs the suite's unqualified name
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, StoreContractTest, ::testing::Types<MyBackend>);
//   }
//
// The header may be included by several files of one test binary (each instantiating it).
//
// One Backend object is constructed per test (fresh, empty storage) and destroyed after it
// (removing that storage). Open() may be called again once the previous store is destroyed;
// a durable backend must then return the same data.
#pragma once

#include <atomic>
#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "massa/store/store.h"

namespace massa::store_contract {

// Generous bound for a callback to arrive; only guards against hanging forever.
inline constexpr absl::Duration kCallbackWait = absl::Seconds(120);

// Collects the callbacks of `n` writes: how often each was called and with what status.
class CallbackTracker {
 public:
  explicit CallbackTracker(size_t n) : calls_(n, 0), statuses_(n) {}

  // The callback for write number `i`.
  store::WriteCallback Callback(size_t i) {
    return [this, i](absl::Status status) {
      absl::MutexLock lock(&mu_);
      if (calls_[i]++ == 0) ++done_;
      statuses_[i] = std::move(status);
    };
  }

  // Waits until every write has been called back; false on timeout.
  [[nodiscard]] bool WaitAll(absl::Duration timeout = kCallbackWait) {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ == calls_.size(); };
    return mu_.AwaitWithTimeout(absl::Condition(&all), timeout);
  }

  int calls(size_t i) const {
    absl::MutexLock lock(&mu_);
    return calls_[i];
  }

  absl::Status status(size_t i) const {
    absl::MutexLock lock(&mu_);
    return statuses_[i];
  }

  // Number of writes called back exactly once with OK.
  size_t ok_once() const {
    absl::MutexLock lock(&mu_);
    size_t n = 0;
    for (size_t i = 0; i < calls_.size(); ++i) n += (calls_[i] == 1 && statuses_[i].ok());
    return n;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<int> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
  size_t done_ ABSL_GUARDED_BY(mu_) = 0;
};

// The number in `text`, or -1 when it is not one.
inline long ParseIndex(std::string_view text) {
  long n = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  return ec == std::errc() && end == text.data() + text.size() ? n : -1;
}

template <typename Backend>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = backend_.Open();
    ASSERT_NE(store_, nullptr);
  }

  // Writes `batch` and waits for its callback.
  absl::Status WriteAndWait(store::WriteBatch batch) {
    absl::Notification done;
    absl::Status result;
    store_->Write(std::move(batch), [&](absl::Status status) {
      result = std::move(status);
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(kCallbackWait)) {
      return absl::DeadlineExceededError("write not called back");
    }
    return result;
  }

  absl::Status Put(std::string type, std::string key, std::string value) {
    store::WriteBatch batch;
    batch.Put(std::move(type), std::move(key), std::move(value));
    return WriteAndWait(std::move(batch));
  }

  // The stored value; a read error fails the test and reads as "<error: ...>".
  std::optional<std::string> Get(std::string_view type, std::string_view key) {
    absl::StatusOr<std::optional<std::string>> value = store_->GetValue(type, key);
    if (!value.ok()) {
      ADD_FAILURE() << "GetValue failed: " << value.status();
      return "<error: " + value.status().ToString() + ">";
    }
    return *std::move(value);
  }

  Backend backend_;        // destroyed last: removes the storage
  store::StorePtr store_;  // destroyed first
};

TYPED_TEST_SUITE_P(StoreContractTest);

TYPED_TEST_P(StoreContractTest, PutThenGet) {
  ASSERT_TRUE(this->Put("cart", "c1", "apples").ok());
  EXPECT_EQ(this->Get("cart", "c1"), "apples");
}

TYPED_TEST_P(StoreContractTest, MissingKeyIsNullopt) {
  EXPECT_EQ(this->Get("cart", "c1"), std::nullopt);
  ASSERT_TRUE(this->Put("cart", "c1", "apples").ok());
  EXPECT_EQ(this->Get("cart", "c2"), std::nullopt);
  EXPECT_EQ(this->Get("cart", "c"), std::nullopt);
  EXPECT_EQ(this->Get("cart", "c10"), std::nullopt);
  EXPECT_EQ(this->Get("carts", "c1"), std::nullopt);
  EXPECT_EQ(this->Get("car", "c1"), std::nullopt);
}

TYPED_TEST_P(StoreContractTest, OverwriteReplacesValue) {
  ASSERT_TRUE(this->Put("cart", "c1", "a much longer first value").ok());
  ASSERT_TRUE(this->Put("cart", "c1", "short").ok());
  EXPECT_EQ(this->Get("cart", "c1"), "short");
}

TYPED_TEST_P(StoreContractTest, DeleteRemovesValue) {
  ASSERT_TRUE(this->Put("cart", "c1", "apples").ok());
  ASSERT_TRUE(this->Put("cart", "c2", "pears").ok());
  store::WriteBatch batch;
  batch.Delete("cart", "c1");
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  EXPECT_EQ(this->Get("cart", "c1"), std::nullopt);
  EXPECT_EQ(this->Get("cart", "c2"), "pears");
}

TYPED_TEST_P(StoreContractTest, DeleteOfMissingKeySucceeds) {
  store::WriteBatch batch;
  batch.Delete("cart", "never-written");
  EXPECT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  EXPECT_EQ(this->Get("cart", "never-written"), std::nullopt);
}

TYPED_TEST_P(StoreContractTest, EmptyValueIsNotMissing) {
  ASSERT_TRUE(this->Put("", "", "").ok());
  ASSERT_TRUE(this->Put("cart", "c1", "").ok());
  EXPECT_EQ(this->Get("", ""), "");
  EXPECT_EQ(this->Get("cart", "c1"), "");
  EXPECT_EQ(this->Get("cart", ""), std::nullopt);
}

TYPED_TEST_P(StoreContractTest, BinaryValuesRoundTrip) {
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  all_bytes += all_bytes;
  ASSERT_TRUE(this->Put("bin", all_bytes, all_bytes).ok());
  EXPECT_EQ(this->Get("bin", all_bytes), all_bytes);
}

TYPED_TEST_P(StoreContractTest, BatchAppliesAllMutationsInOrder) {
  ASSERT_TRUE(this->Put("t", "gone", "x").ok());
  store::WriteBatch batch;
  batch.Put("t", "a", "1");
  batch.Put("u", "b", "2");
  batch.Delete("t", "gone");
  batch.Put("t", "put-then-delete", "x");
  batch.Delete("t", "put-then-delete");
  batch.Delete("t", "delete-then-put");
  batch.Put("t", "delete-then-put", "back");
  batch.Put("t", "twice", "first");
  batch.Put("t", "twice", "second");
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  EXPECT_EQ(this->Get("t", "a"), "1");
  EXPECT_EQ(this->Get("u", "b"), "2");
  EXPECT_EQ(this->Get("t", "gone"), std::nullopt);
  EXPECT_EQ(this->Get("t", "put-then-delete"), std::nullopt);
  EXPECT_EQ(this->Get("t", "delete-then-put"), "back");
  EXPECT_EQ(this->Get("t", "twice"), "second");
}

TYPED_TEST_P(StoreContractTest, EmptyBatchIsAcknowledged) {
  EXPECT_TRUE(this->WriteAndWait(store::WriteBatch{}).ok());
}

// A reader must never see part of a batch. Each batch sets x = i then y = i; were they
// applied one after the other, a reader could see x = i with y = i - 1.
TYPED_TEST_P(StoreContractTest, ReadersSeeWholeBatchesOnly) {
  constexpr size_t kBatches = 300;
  std::atomic<bool> writing{true};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (writing.load() || reads.load() == 0) {
      std::optional<std::string> x = this->Get("pair", "x");
      std::optional<std::string> y = this->Get("pair", "y");
      reads.fetch_add(1);
      if (!x.has_value()) continue;
      if (!y.has_value() || ParseIndex(*y) < ParseIndex(*x)) torn.fetch_add(1);
    }
  });
  CallbackTracker tracker(kBatches);
  for (size_t i = 0; i < kBatches; ++i) {
    store::WriteBatch batch;
    batch.Put("pair", "x", std::to_string(i));
    batch.Put("pair", "y", std::to_string(i));
    this->store_->Write(std::move(batch), tracker.Callback(i));
  }
  EXPECT_TRUE(tracker.WaitAll());
  writing.store(false);
  reader.join();
  EXPECT_EQ(tracker.ok_once(), kBatches);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(this->Get("pair", "x"), std::to_string(kBatches - 1));
  EXPECT_EQ(this->Get("pair", "y"), std::to_string(kBatches - 1));
}

TYPED_TEST_P(StoreContractTest, TypesAndKeysStayDistinct) {
  using std::string_literals::operator""s;
  // Pairs whose concatenations collide, with or without a '\0' separator in between.
  // clang-format off
  const std::vector<std::pair<std::string, std::string>> ids = {
      {"a", "bc"},          {"ab", "c"},         {"abc", ""},         {"", "abc"},
      {"a\0"s, "bc"},       {"a", "\0bc"s},      {"a\0b"s, "c"},      {"a", "b\0c"s},
      {"\0"s, ""},          {"", "\0"s},         {"\0"s, "\0"s},      {"\0\0"s, ""},
      {"a\x01"s, "bc"},     {"a", "\001bc"s},    {"a\x7f"s, "x"},     {"a\x80"s, "x"},
      {std::string(127, 't'), "k"},              {std::string(128, 't'), "k"},
      {std::string(128, 't'), ""},               {std::string(127, 't'), "tk"},
  };
  // clang-format on
  store::WriteBatch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.Put(ids[i].first, ids[i].second, std::to_string(i));
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(this->Get(ids[i].first, ids[i].second), std::to_string(i)) << "pair #" << i;
  }
  // Deleting one leaves its look-alikes in place.
  store::WriteBatch del;
  del.Delete("a", "bc");
  ASSERT_TRUE(this->WriteAndWait(std::move(del)).ok());
  EXPECT_EQ(this->Get("a", "bc"), std::nullopt);
  EXPECT_EQ(this->Get("ab", "c"), "1");
  EXPECT_EQ(this->Get("a\0"s, "bc"), "4");
}

TYPED_TEST_P(StoreContractTest, LargeValues) {
  // Twelve 1 MiB values: more than a small write buffer holds, so disk backends also read
  // some of them back from flushed files.
  constexpr size_t kCount = 12;
  auto value_for = [](size_t i) {
    std::string v(1 << 20, '\0');
    for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<char>((j * 31 + i * 7) % 251);
    return v;
  };
  for (size_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(this->Put("big", "k" + std::to_string(i), value_for(i)).ok());
  }
  for (size_t i = 0; i < kCount; ++i) {
    std::optional<std::string> got = this->Get("big", "k" + std::to_string(i));
    ASSERT_TRUE(got.has_value()) << i;
    EXPECT_EQ(got->size(), size_t{1} << 20) << i;
    EXPECT_TRUE(*got == value_for(i)) << "value " << i << " differs";
  }
}

TYPED_TEST_P(StoreContractTest, ManyEntities) {
  constexpr size_t kEntities = 10000;
  CallbackTracker tracker(kEntities);
  for (size_t i = 0; i < kEntities; ++i) {
    store::WriteBatch batch;
    batch.Put("counter", "entity-" + std::to_string(i), "value-" + std::to_string(i));
    this->store_->Write(std::move(batch), tracker.Callback(i));
  }
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(tracker.ok_once(), kEntities);
  size_t matching = 0;
  for (size_t i = 0; i < kEntities; ++i) {
    matching += this->Get("counter", "entity-" + std::to_string(i)) == "value-" + std::to_string(i);
  }
  EXPECT_EQ(matching, kEntities);
  EXPECT_EQ(this->Get("counter", "entity-" + std::to_string(kEntities)), std::nullopt);
}

TYPED_TEST_P(StoreContractTest, ConcurrentWritersAllAcknowledgedAndReadable) {
  constexpr size_t kThreads = 16;
  constexpr size_t kWritesPerThread = 50;
  std::atomic<size_t> acknowledged{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &acknowledged] {
      for (size_t i = 0; i < kWritesPerThread; ++i) {
        store::WriteBatch batch;
        batch.Put("w" + std::to_string(t), std::to_string(i), std::to_string(t * 1000 + i));
        batch.Put("last", std::to_string(t), std::to_string(i));
        absl::Status status = this->WriteAndWait(std::move(batch));
        EXPECT_TRUE(status.ok()) << status;
        acknowledged += status.ok();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(acknowledged.load(), kThreads * kWritesPerThread);
  for (size_t t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < kWritesPerThread; ++i) {
      EXPECT_EQ(this->Get("w" + std::to_string(t), std::to_string(i)),
                std::to_string(t * 1000 + i));
    }
    EXPECT_EQ(this->Get("last", std::to_string(t)), std::to_string(kWritesPerThread - 1));
  }
}

// Every callback runs exactly once, also for writes still pending when the store is closed.
TYPED_TEST_P(StoreContractTest, CallbacksCalledExactlyOnce) {
  constexpr size_t kWrites = 500;
  CallbackTracker tracker(kWrites);
  for (size_t i = 0; i < kWrites; ++i) {
    store::WriteBatch batch;
    batch.Put("once", std::to_string(i % 7), std::to_string(i));
    this->store_->Write(std::move(batch), tracker.Callback(i));
  }
  this->store_.reset();  // closes with writes possibly still queued
  ASSERT_TRUE(tracker.WaitAll());
  for (size_t i = 0; i < kWrites; ++i) {
    EXPECT_EQ(tracker.calls(i), 1) << "write " << i;
    EXPECT_TRUE(tracker.status(i).ok()) << "write " << i << ": " << tracker.status(i);
  }
}

// A callback may read and write the store (it runs without any store lock held).
TYPED_TEST_P(StoreContractTest, CallbackMayUseTheStore) {
  absl::Notification second_done;
  absl::Status second_status = absl::UnknownError("not called");
  std::optional<std::string> read_in_callback;
  store::WriteBatch first;
  first.Put("chain", "1", "one");
  this->store_->Write(std::move(first), [&](absl::Status status) {
    ASSERT_TRUE(status.ok()) << status;
    absl::StatusOr<std::optional<std::string>> value = this->store_->GetValue("chain", "1");
    if (value.ok()) read_in_callback = *value;
    store::WriteBatch second;
    second.Put("chain", "2", "two");
    this->store_->Write(std::move(second), [&](absl::Status s) {
      second_status = s;
      second_done.Notify();
    });
  });
  ASSERT_TRUE(second_done.WaitForNotificationWithTimeout(kCallbackWait));
  EXPECT_TRUE(second_status.ok()) << second_status;
  EXPECT_EQ(read_in_callback, "one");
  EXPECT_EQ(this->Get("chain", "2"), "two");
}

TYPED_TEST_P(StoreContractTest, StatsCountAcknowledgedWrites) {
  const store::StoreStats before = this->store_->stats();
  EXPECT_EQ(before.writes, 0u);
  EXPECT_EQ(before.flushes, 0u);
  constexpr size_t kWrites = 40;
  CallbackTracker tracker(kWrites);
  for (size_t i = 0; i < kWrites; ++i) {
    store::WriteBatch batch;
    batch.Put("stats", std::to_string(i), "v");
    this->store_->Write(std::move(batch), tracker.Callback(i));
  }
  ASSERT_TRUE(tracker.WaitAll());
  const store::StoreStats after = this->store_->stats();
  EXPECT_EQ(after.writes, kWrites);
  EXPECT_GE(after.flushes, 1u);
  EXPECT_LE(after.flushes, after.writes);
}

TYPED_TEST_P(StoreContractTest, ReopenKeepsData) {
  if (!TypeParam::kDurable) GTEST_SKIP() << "backend is not durable";
  ASSERT_TRUE(this->Put("cart", "kept", "yes").ok());
  ASSERT_TRUE(this->Put("cart", "overwritten", "old").ok());
  ASSERT_TRUE(this->Put("cart", "overwritten", "new").ok());
  ASSERT_TRUE(this->Put("cart", "deleted", "x").ok());
  store::WriteBatch del;
  del.Delete("cart", "deleted");
  ASSERT_TRUE(this->WriteAndWait(std::move(del)).ok());
  this->store_.reset();
  this->store_ = this->backend_.Open();
  ASSERT_NE(this->store_, nullptr);
  EXPECT_EQ(this->Get("cart", "kept"), "yes");
  EXPECT_EQ(this->Get("cart", "overwritten"), "new");
  EXPECT_EQ(this->Get("cart", "deleted"), std::nullopt);
  // And the reopened store takes new writes.
  ASSERT_TRUE(this->Put("cart", "after", "reopen").ok());
  EXPECT_EQ(this->Get("cart", "after"), "reopen");
}

REGISTER_TYPED_TEST_SUITE_P(StoreContractTest, PutThenGet, MissingKeyIsNullopt,
                            OverwriteReplacesValue, DeleteRemovesValue, DeleteOfMissingKeySucceeds,
                            EmptyValueIsNotMissing, BinaryValuesRoundTrip,
                            BatchAppliesAllMutationsInOrder, EmptyBatchIsAcknowledged,
                            ReadersSeeWholeBatchesOnly, TypesAndKeysStayDistinct, LargeValues,
                            ManyEntities, ConcurrentWritersAllAcknowledgedAndReadable,
                            CallbacksCalledExactlyOnce, CallbackMayUseTheStore,
                            StatsCountAcknowledgedWrites, ReopenKeepsData);

}  // namespace massa::store_contract
