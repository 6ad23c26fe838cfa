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
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "massa/entity/command.h"
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

// An event with every field set: `tag` and the sequence make its payload unique.
inline Event MakeEvent(uint64_t sequence, std::string_view tag = "e") {
  return Event{sequence, "massa.test.Event", std::string(tag) + "#" + std::to_string(sequence),
               1'700'000'000'000 + static_cast<int64_t>(sequence),
               Metadata{{"massa-command", "test.Service/Do"}, {"tag", std::string(tag)}}};
}

// An append of `count` events numbered expected + 1, ... (see MakeEvent).
inline store::JournalAppend MakeAppend(std::string entity_type, std::string key, uint64_t expected,
                                       size_t count, std::string_view tag = "e") {
  store::JournalAppend append;
  append.entity_type = std::move(entity_type);
  append.key = std::move(key);
  append.expected_sequence = expected;
  for (size_t i = 1; i <= count; ++i) append.events.push_back(MakeEvent(expected + i, tag));
  return append;
}

inline store::WriteBatch BatchOf(store::JournalAppend append) {
  store::WriteBatch batch;
  batch.appends.push_back(std::move(append));
  return batch;
}

inline std::vector<uint64_t> SequencesOf(const std::vector<Event>& events) {
  std::vector<uint64_t> out;
  for (const Event& e : events) out.push_back(e.sequence);
  return out;
}

inline std::vector<uint64_t> OffsetsOf(const std::vector<store::StreamEvent>& events) {
  std::vector<uint64_t> out;
  for (const store::StreamEvent& e : events) out.push_back(e.offset);
  return out;
}

// Whether `status` is the error of a fenced batch: FAILED_PRECONDITION saying "fenced".
inline bool IsFenced(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         status.message().find("fenced") != std::string_view::npos;
}

// 1, 2, ..., n (or from, ..., to).
inline std::vector<uint64_t> Iota(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (uint64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
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

  absl::Status Append(store::JournalAppend append, uint64_t fence = 0) {
    store::WriteBatch batch = BatchOf(std::move(append));
    batch.fence = fence;
    return WriteAndWait(std::move(batch));
  }

  // One put or delete, conditional when `expected` is set, with the batch fence `fence`.
  absl::Status PutIf(std::string type, std::string key, std::string value,
                     std::optional<uint64_t> expected, uint64_t fence = 0) {
    store::WriteBatch batch;
    batch.Put(std::move(type), std::move(key), std::move(value), expected);
    batch.fence = fence;
    return WriteAndWait(std::move(batch));
  }
  absl::Status DeleteIf(std::string type, std::string key, std::optional<uint64_t> expected,
                        uint64_t fence = 0) {
    store::WriteBatch batch;
    batch.Delete(std::move(type), std::move(key), expected);
    batch.fence = fence;
    return WriteAndWait(std::move(batch));
  }

  // The stored value and version; a read error fails the test and reads as
  // {"<error: ...>", UINT64_MAX}.
  store::VersionedValue Read(std::string_view type, std::string_view key) {
    absl::StatusOr<store::VersionedValue> read = store_->ReadValue(type, key);
    if (!read.ok()) {
      ADD_FAILURE() << "ReadValue failed: " << read.status();
      return {"<error: " + read.status().ToString() + ">", UINT64_MAX};
    }
    return *std::move(read);
  }

  // The events read back; a read error fails the test and reads as no events.
  std::vector<Event> Events(std::string_view type, std::string_view key, uint64_t from_sequence = 1,
                            size_t limit = 1'000'000) {
    absl::StatusOr<std::vector<Event>> events = store_->ReadEvents(type, key, from_sequence, limit);
    if (!events.ok()) {
      ADD_FAILURE() << "ReadEvents failed: " << events.status();
      return {};
    }
    return *std::move(events);
  }

  std::vector<uint64_t> Sequences(std::string_view type, std::string_view key,
                                  uint64_t from_sequence = 1) {
    return SequencesOf(Events(type, key, from_sequence));
  }

  // The last sequence; a read error fails the test and reads as UINT64_MAX.
  uint64_t Last(std::string_view type, std::string_view key) {
    absl::StatusOr<uint64_t> last = store_->ReadLastSequence(type, key);
    if (!last.ok()) {
      ADD_FAILURE() << "ReadLastSequence failed: " << last.status();
      return UINT64_MAX;
    }
    return *last;
  }

  std::optional<store::Snapshot> SnapshotOf(std::string_view type, std::string_view key) {
    absl::StatusOr<std::optional<store::Snapshot>> snapshot = store_->ReadSnapshot(type, key);
    if (!snapshot.ok()) {
      ADD_FAILURE() << "ReadSnapshot failed: " << snapshot.status();
      return store::Snapshot{UINT64_MAX, "<error>"};
    }
    return *std::move(snapshot);
  }

  std::vector<store::StreamEvent> Stream(std::string_view type, uint64_t from_offset = 1,
                                         size_t limit = 1'000'000) {
    absl::StatusOr<std::vector<store::StreamEvent>> events =
        store_->ReadStream(type, from_offset, limit);
    if (!events.ok()) {
      ADD_FAILURE() << "ReadStream failed: " << events.status();
      return {};
    }
    return *std::move(events);
  }

  // (key, sequence) of each event of the type's stream.
  std::vector<std::pair<std::string, uint64_t>> StreamKeys(std::string_view type) {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const store::StreamEvent& e : Stream(type)) out.emplace_back(e.key, e.event.sequence);
    return out;
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

// ---- Journals, snapshots and streams ----

TYPED_TEST_P(StoreContractTest, JournalAppendThenRead) {
  EXPECT_EQ(this->Last("cart", "c1"), 0u);
  EXPECT_TRUE(this->Events("cart", "c1").empty());
  EXPECT_EQ(this->SnapshotOf("cart", "c1"), std::nullopt);
  EXPECT_TRUE(this->Stream("cart").empty());

  ASSERT_TRUE(this->Append(MakeAppend("cart", "c1", 0, 3)).ok());
  EXPECT_EQ(this->Last("cart", "c1"), 3u);
  const std::vector<Event> events = this->Events("cart", "c1");
  ASSERT_EQ(events.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(events[i], MakeEvent(i + 1)) << i;
  ASSERT_TRUE(this->Append(MakeAppend("cart", "c1", 3, 2)).ok());
  EXPECT_EQ(this->Sequences("cart", "c1"), Iota(1, 5));
  EXPECT_EQ(this->Last("cart", "c1"), 5u);
  // Nothing of it leaks into values, other keys or the snapshot.
  EXPECT_EQ(this->Get("cart", "c1"), std::nullopt);
  EXPECT_TRUE(this->Events("cart", "c2").empty());
  EXPECT_EQ(this->SnapshotOf("cart", "c1"), std::nullopt);
}

TYPED_TEST_P(StoreContractTest, JournalFieldsRoundTrip) {
  using std::string_literals::operator""s;
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  const std::vector<Event> written = {
      // Everything empty or zero.
      Event{1, "", "", 0, {}},
      // Binary payload with NULs, negative time, metadata with empty and binary strings.
      Event{2, "a.B\0c"s, "\0\0x\0"s + all_bytes, -1, {{"", ""}, {"k\0"s, all_bytes}}},
      Event{3, all_bytes, all_bytes, INT64_MIN, {{"x", "1"}, {"x", "2"}, {"a", ""}}},
      Event{4, "t", "p", INT64_MAX, {}},
  };
  store::JournalAppend append;
  append.entity_type = "bin\0type"s;
  append.key = all_bytes;
  append.expected_sequence = 0;
  append.events = written;
  ASSERT_TRUE(this->Append(std::move(append)).ok());
  EXPECT_EQ(this->Events("bin\0type"s, all_bytes), written);
  const std::vector<store::StreamEvent> stream = this->Stream("bin\0type"s);
  ASSERT_EQ(stream.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ(stream[i].offset, i + 1);
    EXPECT_EQ(stream[i].key, all_bytes);
    EXPECT_EQ(stream[i].event, written[i]) << i;
  }
}

TYPED_TEST_P(StoreContractTest, JournalLargePayloads) {
  // Four events of a bit over 1 MiB each, two per append.
  auto payload_for = [](uint64_t sequence) {
    std::string p((1 << 20) + 17, '\0');
    for (size_t j = 0; j < p.size(); ++j) p[j] = static_cast<char>((j * 131 + sequence) % 256);
    return p;
  };
  for (uint64_t expected : {0, 2}) {
    store::JournalAppend append = MakeAppend("big", "k", expected, 2);
    for (Event& e : append.events) e.payload = payload_for(e.sequence);
    ASSERT_TRUE(this->Append(std::move(append)).ok());
  }
  const std::vector<Event> events = this->Events("big", "k");
  ASSERT_EQ(SequencesOf(events), Iota(1, 4));
  for (const Event& e : events) {
    EXPECT_EQ(e.payload.size(), (size_t{1} << 20) + 17);
    EXPECT_TRUE(e.payload == payload_for(e.sequence)) << "payload " << e.sequence << " differs";
  }
  const std::vector<store::StreamEvent> stream = this->Stream("big", 3, 1);
  ASSERT_EQ(stream.size(), 1u);
  EXPECT_TRUE(stream[0].event.payload == payload_for(3));
}

TYPED_TEST_P(StoreContractTest, ReadEventsFromAndLimit) {
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 0, 10)).ok());
  EXPECT_EQ(this->Sequences("t", "k", 4), Iota(4, 10));
  EXPECT_EQ(SequencesOf(this->Events("t", "k", 4, 3)), Iota(4, 6));
  EXPECT_EQ(SequencesOf(this->Events("t", "k", 0, 2)), Iota(1, 2));
  EXPECT_EQ(SequencesOf(this->Events("t", "k", 10, 5)), Iota(10, 10));
  EXPECT_TRUE(this->Events("t", "k", 11).empty());
  EXPECT_TRUE(this->Events("t", "k", UINT64_MAX).empty());
  EXPECT_TRUE(this->Events("t", "k", 1, 0).empty());
  const std::vector<Event> middle = this->Events("t", "k", 7, 1);
  ASSERT_EQ(middle.size(), 1u);
  EXPECT_EQ(middle[0], MakeEvent(7));
}

TYPED_TEST_P(StoreContractTest, StaleExpectationAbortsWholeBatch) {
  ASSERT_TRUE(this->Append(MakeAppend("cart", "c1", 0, 3)).ok());
  for (uint64_t expected : {0, 2, 4, 7}) {
    store::WriteBatch batch;
    batch.Put("cart", "value", "must not be written");
    batch.Delete("cart", "kept");
    batch.appends.push_back(MakeAppend("cart", "other", 0, 2));  // fine on its own
    batch.appends.push_back(MakeAppend("cart", "c1", expected, 1, "stale"));
    store::JournalAppend with_snapshot = MakeAppend("cart", "third", 0, 1);
    with_snapshot.snapshot = store::Snapshot{1, "s"};
    batch.appends.push_back(std::move(with_snapshot));
    ASSERT_TRUE(this->Put("cart", "kept", "yes").ok());
    absl::Status status = this->WriteAndWait(std::move(batch));
    EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
    const std::string message(status.message());
    EXPECT_NE(message.find("cart"), std::string::npos) << message;
    EXPECT_NE(message.find("c1"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(expected)), std::string::npos) << message;
    EXPECT_NE(message.find('3'), std::string::npos) << message;
    EXPECT_EQ(this->Get("cart", "value"), std::nullopt);
    EXPECT_EQ(this->Get("cart", "kept"), "yes");
    EXPECT_EQ(this->Last("cart", "other"), 0u);
    EXPECT_TRUE(this->Events("cart", "other").empty());
    EXPECT_EQ(this->SnapshotOf("cart", "third"), std::nullopt);
    EXPECT_EQ(this->Last("cart", "third"), 0u);
    EXPECT_EQ(this->Events("cart", "c1"), MakeAppend("cart", "c1", 0, 3).events);
    EXPECT_EQ(OffsetsOf(this->Stream("cart")), Iota(1, 3));
  }
  // The journal takes the right expectation afterwards, and the stream has no gaps from the
  // rejected batches.
  ASSERT_TRUE(this->Append(MakeAppend("cart", "c1", 3, 1)).ok());
  const std::vector<store::StreamEvent> stream = this->Stream("cart");
  EXPECT_EQ(OffsetsOf(stream), Iota(1, 4));
  EXPECT_EQ(this->StreamKeys("cart"), (std::vector<std::pair<std::string, uint64_t>>{
                                          {"c1", 1}, {"c1", 2}, {"c1", 3}, {"c1", 4}}));
}

TYPED_TEST_P(StoreContractTest, AppendAndMutationsApplyTogether) {
  store::WriteBatch batch;
  batch.Put("cart", "c1", "state after 2");
  batch.appends.push_back(MakeAppend("cart", "c1", 0, 2));
  batch.appends.push_back(MakeAppend("order", "o1", 0, 1));
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  EXPECT_EQ(this->Get("cart", "c1"), "state after 2");
  EXPECT_EQ(this->Sequences("cart", "c1"), Iota(1, 2));
  EXPECT_EQ(this->Sequences("order", "o1"), Iota(1, 1));
  EXPECT_EQ(this->Last("order", "o1"), 1u);
}

TYPED_TEST_P(StoreContractTest, TwoAppendsToOneEntityInOneBatch) {
  store::WriteBatch batch;
  batch.appends.push_back(MakeAppend("t", "k", 0, 2, "first"));
  batch.appends.push_back(MakeAppend("t", "k", 2, 3, "second"));
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  std::vector<Event> want = MakeAppend("t", "k", 0, 2, "first").events;
  for (Event& e : MakeAppend("t", "k", 2, 3, "second").events) want.push_back(std::move(e));
  EXPECT_EQ(this->Events("t", "k"), want);
  EXPECT_EQ(this->Last("t", "k"), 5u);
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 5));

  // The second append is checked against the first one of the same batch, not the store.
  store::WriteBatch stale;
  stale.appends.push_back(MakeAppend("t", "k", 5, 1));
  stale.appends.push_back(MakeAppend("t", "k", 5, 1));
  absl::Status status = this->WriteAndWait(std::move(stale));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(this->Last("t", "k"), 5u);
  EXPECT_EQ(this->Sequences("t", "k"), Iota(1, 5));
}

// The runtime sends the next append before the previous one is acknowledged and relies on
// writes being applied in the order of the Write calls.
TYPED_TEST_P(StoreContractTest, PipelinedAppendsApplyInOrder) {
  constexpr size_t kWrites = 50;
  CallbackTracker tracker(kWrites);
  for (size_t i = 0; i < kWrites; ++i) {
    store::WriteBatch batch = BatchOf(MakeAppend("pipe", "k", 2 * i, 2));
    batch.Put("pipe", "state", std::to_string(i));
    this->store_->Write(std::move(batch), tracker.Callback(i));
  }
  ASSERT_TRUE(tracker.WaitAll());
  for (size_t i = 0; i < kWrites; ++i) {
    EXPECT_TRUE(tracker.status(i).ok()) << i << ": " << tracker.status(i);
  }
  EXPECT_EQ(tracker.ok_once(), kWrites);
  EXPECT_EQ(this->Sequences("pipe", "k"), Iota(1, 2 * kWrites));
  EXPECT_EQ(this->Last("pipe", "k"), 2 * kWrites);
  EXPECT_EQ(this->Get("pipe", "state"), std::to_string(kWrites - 1));
  const std::vector<store::StreamEvent> stream = this->Stream("pipe");
  EXPECT_EQ(OffsetsOf(stream), Iota(1, 2 * kWrites));
  std::vector<uint64_t> stream_sequences;
  for (const store::StreamEvent& e : stream) stream_sequences.push_back(e.event.sequence);
  EXPECT_EQ(stream_sequences, Iota(1, 2 * kWrites));
}

// Pipelined writes after a conflicting one: those that assumed it succeeded fail too, those
// that match what was actually applied succeed.
TYPED_TEST_P(StoreContractTest, StaleAppendAfterConflictIsRejected) {
  CallbackTracker tracker(5);
  this->store_->Write(BatchOf(MakeAppend("t", "k", 0, 2, "a")), tracker.Callback(0));
  this->store_->Write(BatchOf(MakeAppend("t", "k", 0, 1, "b")), tracker.Callback(1));  // stale
  this->store_->Write(BatchOf(MakeAppend("t", "k", 1, 1, "c")), tracker.Callback(2));  // after b
  this->store_->Write(BatchOf(MakeAppend("t", "k", 2, 1, "d")), tracker.Callback(3));  // after a
  this->store_->Write(BatchOf(MakeAppend("t", "k", 2, 1, "e")), tracker.Callback(4));  // after a
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_TRUE(tracker.status(0).ok()) << tracker.status(0);
  EXPECT_EQ(tracker.status(1).code(), absl::StatusCode::kAborted) << tracker.status(1);
  EXPECT_EQ(tracker.status(2).code(), absl::StatusCode::kAborted) << tracker.status(2);
  EXPECT_TRUE(tracker.status(3).ok()) << tracker.status(3);
  EXPECT_EQ(tracker.status(4).code(), absl::StatusCode::kAborted) << tracker.status(4);
  std::vector<Event> want = MakeAppend("t", "k", 0, 2, "a").events;
  want.push_back(MakeEvent(3, "d"));
  EXPECT_EQ(this->Events("t", "k"), want);
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 3));
  EXPECT_EQ(this->store_->stats().writes, 2u);
}

TYPED_TEST_P(StoreContractTest, MisnumberedAppendIsInvalidArgument) {
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 0, 2)).ok());
  std::vector<store::JournalAppend> bad;
  bad.push_back(MakeAppend("t", "k", 2, 2));
  bad.back().events[0].sequence = 4;  // skips 3
  bad.push_back(MakeAppend("t", "k", 2, 3));
  bad.back().events[1].sequence = 3;  // 3, 3, 5
  bad.push_back(MakeAppend("t", "k", 2, 2));
  std::swap(bad.back().events[0], bad.back().events[1]);  // 4, 3
  bad.push_back(MakeAppend("t", "k", 2, 1));
  bad.back().events[0].sequence = 2;  // repeats the last
  bad.push_back(MakeAppend("t", "k", 2, 1));
  bad.back().events[0].sequence = 0;
  bad.push_back(MakeAppend("t", "k", 2, 1));
  bad.back().snapshot = store::Snapshot{4, "past the end"};
  bad.push_back(MakeAppend("t", "k", 2, 0));
  bad.back().snapshot = store::Snapshot{3, "past the end"};
  for (size_t i = 0; i < bad.size(); ++i) {
    store::WriteBatch batch;
    batch.Put("t", "value", "x");
    batch.appends.push_back(MakeAppend("t", "fine", 0, 1));
    batch.appends.push_back(std::move(bad[i]));
    absl::Status status = this->WriteAndWait(std::move(batch));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << "append #" << i << ": " << status;
    EXPECT_EQ(this->Get("t", "value"), std::nullopt) << i;
    EXPECT_EQ(this->Last("t", "fine"), 0u) << i;
    EXPECT_EQ(this->Last("t", "k"), 2u) << i;
    EXPECT_EQ(this->Sequences("t", "k"), Iota(1, 2)) << i;
    EXPECT_EQ(this->SnapshotOf("t", "k"), std::nullopt) << i;
  }
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 2));
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 2, 1)).ok());
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 3));
}

// An append without events and snapshot changes nothing but is still checked.
TYPED_TEST_P(StoreContractTest, EmptyAppendChecksExpectation) {
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 0, 0)).ok());
  EXPECT_EQ(this->Last("t", "k"), 0u);
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 0, 2)).ok());
  EXPECT_TRUE(this->Append(MakeAppend("t", "k", 2, 0)).ok());
  absl::Status status = this->Append(MakeAppend("t", "k", 1, 0));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(this->Last("t", "k"), 2u);
  EXPECT_EQ(this->Sequences("t", "k"), Iota(1, 2));
}

TYPED_TEST_P(StoreContractTest, SnapshotsReplaceAndRoundTrip) {
  using std::string_literals::operator""s;
  store::JournalAppend first = MakeAppend("t", "k", 0, 3);
  first.snapshot = store::Snapshot{2, "state\0at 2"s};
  ASSERT_TRUE(this->Append(std::move(first)).ok());
  EXPECT_EQ(this->SnapshotOf("t", "k"), (store::Snapshot{2, "state\0at 2"s}));
  EXPECT_EQ(this->Sequences("t", "k"), Iota(1, 3));  // no retention asked for

  // A snapshot-only append (no events); its sequence may be below the last.
  store::JournalAppend second = MakeAppend("t", "k", 3, 0);
  second.snapshot = store::Snapshot{3, ""};
  ASSERT_TRUE(this->Append(std::move(second)).ok());
  EXPECT_EQ(this->SnapshotOf("t", "k"), (store::Snapshot{3, ""}));
  EXPECT_EQ(this->Last("t", "k"), 3u);

  store::JournalAppend third = MakeAppend("t", "k", 3, 2);
  std::string big(300'000, 'x');
  big[1000] = '\0';
  third.snapshot = store::Snapshot{4, big};
  ASSERT_TRUE(this->Append(std::move(third)).ok());
  EXPECT_EQ(this->SnapshotOf("t", "k"), (store::Snapshot{4, big}));

  // A stale snapshot-only append changes nothing.
  store::JournalAppend stale = MakeAppend("t", "k", 3, 0);
  stale.snapshot = store::Snapshot{3, "stale"};
  EXPECT_EQ(this->Append(std::move(stale)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->SnapshotOf("t", "k"), (store::Snapshot{4, big}));

  // A snapshot at 0 on an empty journal is allowed; other entities have none.
  store::JournalAppend empty = MakeAppend("t", "empty", 0, 0);
  empty.snapshot = store::Snapshot{0, "initial"};
  ASSERT_TRUE(this->Append(std::move(empty)).ok());
  EXPECT_EQ(this->SnapshotOf("t", "empty"), (store::Snapshot{0, "initial"}));
  EXPECT_EQ(this->Last("t", "empty"), 0u);
  EXPECT_EQ(this->SnapshotOf("t", "k2"), std::nullopt);
  EXPECT_EQ(this->SnapshotOf("u", "k"), std::nullopt);
}

TYPED_TEST_P(StoreContractTest, RetentionDeletesCoveredEvents) {
  // Interleaved with another entity whose events stay.
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 0, 5)).ok());      // offsets 1..5
  ASSERT_TRUE(this->Append(MakeAppend("t", "other", 0, 2)).ok());  // offsets 6, 7
  store::JournalAppend retain = MakeAppend("t", "k", 5, 2);        // offsets 8, 9
  retain.snapshot = store::Snapshot{6, "at 6"};
  retain.delete_events_covered_by_snapshot = true;
  ASSERT_TRUE(this->Append(std::move(retain)).ok());
  EXPECT_EQ(this->Sequences("t", "k"), Iota(7, 7));
  EXPECT_EQ(this->Events("t", "k", 1, 1), std::vector<Event>{MakeEvent(7)});
  EXPECT_EQ(this->Last("t", "k"), 7u);
  EXPECT_EQ(this->SnapshotOf("t", "k"), (store::Snapshot{6, "at 6"}));
  EXPECT_EQ(this->Sequences("t", "other"), Iota(1, 2));
  const std::vector<store::StreamEvent> stream = this->Stream("t");
  EXPECT_EQ(OffsetsOf(stream), (std::vector<uint64_t>{6, 7, 9}));
  ASSERT_EQ(stream.size(), 3u);
  EXPECT_EQ(stream[2].key, "k");
  EXPECT_EQ(stream[2].event, MakeEvent(7));
  EXPECT_EQ(OffsetsOf(this->Stream("t", 7, 1)), std::vector<uint64_t>{7});
  EXPECT_EQ(OffsetsOf(this->Stream("t", 8, 1)), std::vector<uint64_t>{9});

  // The journal goes on after the kept last sequence, with new offsets.
  EXPECT_EQ(this->Append(MakeAppend("t", "k", 1, 1)).code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 7, 1)).ok());  // offset 10
  EXPECT_EQ(this->Sequences("t", "k"), Iota(7, 8));
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{6, 7, 9, 10}));

  // Retention of everything, by a snapshot-only append: the journal is empty, the head is not.
  store::JournalAppend all = MakeAppend("t", "k", 8, 0);
  all.snapshot = store::Snapshot{8, "at 8"};
  all.delete_events_covered_by_snapshot = true;
  ASSERT_TRUE(this->Append(std::move(all)).ok());
  EXPECT_TRUE(this->Events("t", "k").empty());
  EXPECT_EQ(this->Last("t", "k"), 8u);
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{6, 7}));
  // Offsets are not reused after the stream's tail was deleted.
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 8, 1)).ok());
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{6, 7, 11}));

  // Without the flag a snapshot deletes nothing.
  store::JournalAppend keep = MakeAppend("t", "other", 2, 1);
  keep.snapshot = store::Snapshot{3, "at 3"};
  ASSERT_TRUE(this->Append(std::move(keep)).ok());
  EXPECT_EQ(this->Sequences("t", "other"), Iota(1, 3));
}

// Retention covering events of earlier appends in the same batch, and of the same append.
TYPED_TEST_P(StoreContractTest, RetentionWithinOneBatch) {
  ASSERT_TRUE(this->Append(MakeAppend("t", "k", 0, 2)).ok());  // offsets 1, 2
  store::WriteBatch batch;
  batch.appends.push_back(MakeAppend("t", "k", 2, 2));       // offsets 3, 4
  batch.appends.push_back(MakeAppend("t", "x", 0, 1));       // offset 5
  store::JournalAppend retain = MakeAppend("t", "k", 4, 3);  // offsets 6, 7, 8
  retain.snapshot = store::Snapshot{6, "at 6"};
  retain.delete_events_covered_by_snapshot = true;
  batch.appends.push_back(std::move(retain));
  batch.appends.push_back(MakeAppend("t", "k", 7, 1));  // offset 9
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  EXPECT_EQ(this->Sequences("t", "k"), Iota(7, 8));
  EXPECT_EQ(this->Last("t", "k"), 8u);
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{5, 8, 9}));
  EXPECT_EQ(this->StreamKeys("t"),
            (std::vector<std::pair<std::string, uint64_t>>{{"x", 1}, {"k", 7}, {"k", 8}}));
  ASSERT_TRUE(this->Append(MakeAppend("t", "x", 1, 1)).ok());
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{5, 8, 9, 10}));
}

TYPED_TEST_P(StoreContractTest, StreamInWriteOrderAcrossEntities) {
  // a1 a2 | b1 | c1 c2 c3 | a3 | b2 b3  (one write each)
  const std::vector<std::tuple<std::string, uint64_t, size_t>> writes = {
      {"a", 0, 2}, {"b", 0, 1}, {"c", 0, 3}, {"a", 2, 1}, {"b", 1, 2}};
  for (const auto& [key, expected, count] : writes) {
    ASSERT_TRUE(this->Append(MakeAppend("s", key, expected, count, key)).ok());
  }
  const std::vector<std::pair<std::string, uint64_t>> order = {
      {"a", 1}, {"a", 2}, {"b", 1}, {"c", 1}, {"c", 2}, {"c", 3}, {"a", 3}, {"b", 2}, {"b", 3}};
  const std::vector<store::StreamEvent> stream = this->Stream("s");
  ASSERT_EQ(stream.size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(stream[i].offset, i + 1);
    EXPECT_EQ(stream[i].key, order[i].first);
    EXPECT_EQ(stream[i].event, MakeEvent(order[i].second, order[i].first)) << i;
  }
  EXPECT_EQ(OffsetsOf(this->Stream("s", 4)), Iota(4, 9));
  EXPECT_EQ(OffsetsOf(this->Stream("s", 4, 2)), Iota(4, 5));
  EXPECT_EQ(OffsetsOf(this->Stream("s", 0, 1)), Iota(1, 1));
  EXPECT_EQ(OffsetsOf(this->Stream("s", 9, 10)), Iota(9, 9));
  EXPECT_TRUE(this->Stream("s", 10).empty());
  EXPECT_TRUE(this->Stream("s", UINT64_MAX).empty());
  EXPECT_TRUE(this->Stream("s", 1, 0).empty());
  // Paging through with the next offset covers the whole stream once.
  std::vector<uint64_t> paged;
  for (uint64_t from = 1;;) {
    const std::vector<store::StreamEvent> page = this->Stream("s", from, 4);
    if (page.empty()) break;
    for (const store::StreamEvent& e : page) paged.push_back(e.offset);
    from = page.back().offset + 1;
  }
  EXPECT_EQ(paged, Iota(1, 9));
}

TYPED_TEST_P(StoreContractTest, TypesHaveSeparateJournalsAndStreams) {
  ASSERT_TRUE(this->Append(MakeAppend("cart", "k", 0, 2, "cart")).ok());
  ASSERT_TRUE(this->Append(MakeAppend("order", "k", 0, 3, "order")).ok());
  ASSERT_TRUE(this->Append(MakeAppend("cart", "k", 2, 1, "cart")).ok());
  EXPECT_EQ(this->Events("cart", "k"), MakeAppend("cart", "k", 0, 3, "cart").events);
  EXPECT_EQ(this->Events("order", "k"), MakeAppend("order", "k", 0, 3, "order").events);
  EXPECT_EQ(OffsetsOf(this->Stream("cart")), Iota(1, 3));
  EXPECT_EQ(OffsetsOf(this->Stream("order")), Iota(1, 3));
  for (const store::StreamEvent& e : this->Stream("order"))
    EXPECT_EQ(e.event.metadata[1].second, "order");
  EXPECT_TRUE(this->Stream("other").empty());
  // A value under the same type and key is a different thing.
  ASSERT_TRUE(this->Put("cart", "k", "value").ok());
  EXPECT_EQ(this->Sequences("cart", "k"), Iota(1, 3));
  EXPECT_EQ(this->Get("cart", "k"), "value");
}

TYPED_TEST_P(StoreContractTest, PrefixKeysAndTypesDoNotMix) {
  using std::string_literals::operator""s;
  const std::vector<std::pair<std::string, std::string>> ids = {
      {"t", "a"},  {"t", "ab"}, {"t", "a\0"s}, {"t", ""},  {"t", "b"},
      {"tt", "a"}, {"", "ta"},  {"t\0"s, "a"}, {"ta", ""}, {std::string(128, 't'), "a"}};
  for (size_t i = 0; i < ids.size(); ++i) {
    store::JournalAppend append =
        MakeAppend(ids[i].first, ids[i].second, 0, i + 1, "id" + std::to_string(i));
    append.snapshot = store::Snapshot{1, "snap" + std::to_string(i)};
    ASSERT_TRUE(this->Append(std::move(append)).ok()) << i;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& [type, key] = ids[i];
    EXPECT_EQ(this->Events(type, key),
              MakeAppend(type, key, 0, i + 1, "id" + std::to_string(i)).events)
        << i;
    EXPECT_EQ(this->Last(type, key), i + 1) << i;
    EXPECT_EQ(this->SnapshotOf(type, key), (store::Snapshot{1, "snap" + std::to_string(i)})) << i;
  }
  // Type "t" has ids 0..4: 1 + 2 + 3 + 4 + 5 events.
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 15));
  EXPECT_EQ(OffsetsOf(this->Stream("tt")), Iota(1, 6));
  EXPECT_EQ(OffsetsOf(this->Stream("")), Iota(1, 7));
  EXPECT_TRUE(this->Stream("ttt").empty());
  // Retention on "a" leaves "ab" and "a\0" alone.
  store::JournalAppend retain = MakeAppend("t", "a", 1, 0);
  retain.snapshot = store::Snapshot{1, "a at 1"};
  retain.delete_events_covered_by_snapshot = true;
  ASSERT_TRUE(this->Append(std::move(retain)).ok());
  EXPECT_TRUE(this->Events("t", "a").empty());
  EXPECT_EQ(this->Sequences("t", "ab"), Iota(1, 2));
  EXPECT_EQ(this->Sequences("t", "a\0"s), Iota(1, 3));
  EXPECT_EQ(this->Sequences("tt", "a"), Iota(1, 6));
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(2, 15));
}

TYPED_TEST_P(StoreContractTest, JournalsSurviveReopen) {
  if (!TypeParam::kDurable) GTEST_SKIP() << "backend is not durable";
  ASSERT_TRUE(this->Append(MakeAppend("t", "a", 0, 4)).ok());  // offsets 1..4
  ASSERT_TRUE(this->Append(MakeAppend("t", "b", 0, 2)).ok());  // offsets 5, 6
  store::JournalAppend retain = MakeAppend("t", "b", 2, 1);    // offset 7, then deleted
  retain.snapshot = store::Snapshot{3, "b at 3"};
  retain.delete_events_covered_by_snapshot = true;
  ASSERT_TRUE(this->Append(std::move(retain)).ok());
  store::JournalAppend snap = MakeAppend("t", "a", 4, 0);
  snap.snapshot = store::Snapshot{2, "a at 2"};
  ASSERT_TRUE(this->Append(std::move(snap)).ok());

  this->store_.reset();
  this->store_ = this->backend_.Open();
  ASSERT_NE(this->store_, nullptr);
  EXPECT_EQ(this->Events("t", "a"), MakeAppend("t", "a", 0, 4).events);
  EXPECT_TRUE(this->Events("t", "b").empty());
  EXPECT_EQ(this->Last("t", "a"), 4u);
  EXPECT_EQ(this->Last("t", "b"), 3u);
  EXPECT_EQ(this->SnapshotOf("t", "a"), (store::Snapshot{2, "a at 2"}));
  EXPECT_EQ(this->SnapshotOf("t", "b"), (store::Snapshot{3, "b at 3"}));
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 4));
  // Heads are checked after reopening, and the stream goes on past the deleted tail.
  EXPECT_EQ(this->Append(MakeAppend("t", "b", 0, 1)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Append(MakeAppend("t", "a", 3, 1)).code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(this->Append(MakeAppend("t", "b", 3, 1)).ok());
  ASSERT_TRUE(this->Append(MakeAppend("t", "c", 0, 1)).ok());
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{1, 2, 3, 4, 8, 9}));
  EXPECT_EQ(this->StreamKeys("t").back(), (std::pair<std::string, uint64_t>{"c", 1}));

  // And once more, after the writes of the reopened store.
  this->store_.reset();
  this->store_ = this->backend_.Open();
  ASSERT_NE(this->store_, nullptr);
  EXPECT_EQ(this->Sequences("t", "b"), Iota(4, 4));
  ASSERT_TRUE(this->Append(MakeAppend("t", "a", 4, 1)).ok());
  EXPECT_EQ(OffsetsOf(this->Stream("t")), (std::vector<uint64_t>{1, 2, 3, 4, 8, 9, 10}));
}

TYPED_TEST_P(StoreContractTest, ManyJournals) {
  constexpr size_t kEntities = 1000;
  constexpr size_t kRounds = 3;
  CallbackTracker tracker(kEntities * kRounds);
  for (size_t round = 0; round < kRounds; ++round) {
    for (size_t i = 0; i < kEntities; ++i) {
      this->store_->Write(BatchOf(MakeAppend("many", "e" + std::to_string(i), round, 1)),
                          tracker.Callback(round * kEntities + i));
    }
  }
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_EQ(tracker.ok_once(), kEntities * kRounds);
  size_t complete = 0;
  for (size_t i = 0; i < kEntities; ++i) {
    const std::string key = "e" + std::to_string(i);
    complete +=
        this->Sequences("many", key) == Iota(1, kRounds) && this->Last("many", key) == kRounds;
  }
  EXPECT_EQ(complete, kEntities);
  const std::vector<store::StreamEvent> stream = this->Stream("many");
  EXPECT_EQ(OffsetsOf(stream), Iota(1, kEntities * kRounds));
  // Each entity's events in its write order (writes to different entities are not ordered).
  std::map<std::string, uint64_t> next;
  size_t in_order = 0;
  for (const store::StreamEvent& e : stream) in_order += e.event.sequence == ++next[e.key];
  EXPECT_EQ(in_order, kEntities * kRounds);
  EXPECT_EQ(next.size(), kEntities);
}

TYPED_TEST_P(StoreContractTest, ConcurrentJournalWriters) {
  constexpr size_t kThreads = 16;
  constexpr size_t kEventsPerThread = 50;
  std::atomic<size_t> acknowledged{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &acknowledged] {
      const std::string key = "w" + std::to_string(t);
      for (size_t i = 0; i < kEventsPerThread; ++i) {
        absl::Status status = this->Append(MakeAppend("conc", key, i, 1, key));
        EXPECT_TRUE(status.ok()) << status;
        acknowledged += status.ok();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(acknowledged.load(), kThreads * kEventsPerThread);
  for (size_t t = 0; t < kThreads; ++t) {
    const std::string key = "w" + std::to_string(t);
    EXPECT_EQ(this->Events("conc", key), MakeAppend("conc", key, 0, kEventsPerThread, key).events);
    EXPECT_EQ(this->Last("conc", key), kEventsPerThread);
  }
  // The stream holds every event once, each entity's in sequence order.
  const std::vector<store::StreamEvent> stream = this->Stream("conc");
  EXPECT_EQ(OffsetsOf(stream), Iota(1, kThreads * kEventsPerThread));
  std::map<std::string, uint64_t> next;
  size_t in_order = 0;
  for (const store::StreamEvent& e : stream) {
    in_order += e.event.sequence == ++next[e.key] && e.event == MakeEvent(e.event.sequence, e.key);
  }
  EXPECT_EQ(in_order, kThreads * kEventsPerThread);
}

// ---- Versions and conditional writes ----

TYPED_TEST_P(StoreContractTest, VersionsCountPutsAndDeletes) {
  using store::VersionedValue;
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{std::nullopt, 0}));
  ASSERT_TRUE(this->Put("cart", "c1", "a").ok());
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{"a", 1}));
  ASSERT_TRUE(this->Put("cart", "c1", "b").ok());
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{"b", 2}));
  ASSERT_TRUE(this->DeleteIf("cart", "c1", std::nullopt).ok());
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{std::nullopt, 3}));
  // A delete keeps counting, also of nothing, and a put after it goes on from there.
  ASSERT_TRUE(this->DeleteIf("cart", "c1", std::nullopt).ok());
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{std::nullopt, 4}));
  ASSERT_TRUE(this->Put("cart", "c1", "c").ok());
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{"c", 5}));
  EXPECT_EQ(this->Get("cart", "c1"), "c");
  ASSERT_TRUE(this->Put("cart", "pd", "x").ok());
  ASSERT_TRUE(this->DeleteIf("cart", "pd", std::nullopt).ok());
  EXPECT_EQ(this->Read("cart", "pd"), (VersionedValue{std::nullopt, 2}));
  ASSERT_TRUE(this->DeleteIf("cart", "never-written", std::nullopt).ok());
  EXPECT_EQ(this->Read("cart", "never-written"), (VersionedValue{std::nullopt, 1}));
  // Each mutation of a batch counts.
  store::WriteBatch batch;
  batch.Put("cart", "c2", "x");
  batch.Put("cart", "c2", "y");
  batch.Delete("cart", "c2");
  batch.Put("cart", "c2", "z");
  ASSERT_TRUE(this->WriteAndWait(std::move(batch)).ok());
  EXPECT_EQ(this->Read("cart", "c2"), (VersionedValue{"z", 4}));
  // Other keys and types have their own versions, and appends are not value writes.
  EXPECT_EQ(this->Read("cart", "c"), VersionedValue{});
  EXPECT_EQ(this->Read("cart", "c10"), VersionedValue{});
  EXPECT_EQ(this->Read("carts", "c1"), VersionedValue{});
  ASSERT_TRUE(this->Append(MakeAppend("cart", "c1", 0, 2)).ok());
  EXPECT_EQ(this->Read("cart", "c1"), (VersionedValue{"c", 5}));
  ASSERT_TRUE(this->Append(MakeAppend("cart", "journal-only", 0, 1)).ok());
  EXPECT_EQ(this->Read("cart", "journal-only"), VersionedValue{});
}

TYPED_TEST_P(StoreContractTest, ConditionalPutAndDelete) {
  using store::VersionedValue;
  // Expected 0 on a key never written.
  ASSERT_TRUE(this->PutIf("t", "k", "a", 0).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"a", 1}));
  // Stale (0 on an existing value), or from the future: ABORTED, nothing changes.
  EXPECT_EQ(this->PutIf("t", "k", "lost", 0).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->PutIf("t", "k", "lost", 2).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"a", 1}));
  ASSERT_TRUE(this->PutIf("t", "k", "b", 1).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"b", 2}));
  EXPECT_EQ(this->DeleteIf("t", "k", 1).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->DeleteIf("t", "k", 0).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"b", 2}));
  ASSERT_TRUE(this->DeleteIf("t", "k", 2).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{std::nullopt, 3}));
  // Deleted is not never written: expected 0 stays stale.
  EXPECT_EQ(this->PutIf("t", "k", "lost", 0).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{std::nullopt, 3}));
  ASSERT_TRUE(this->DeleteIf("t", "k", 3).ok());
  ASSERT_TRUE(this->PutIf("t", "k", "c", 4).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"c", 5}));
  // An unconditional write bumps the version under a conditional writer's feet.
  ASSERT_TRUE(this->Put("t", "k", "blind").ok());
  EXPECT_EQ(this->PutIf("t", "k", "lost", 5).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"blind", 6}));
  // Expected 0 deletes a key never written, and only such a key.
  ASSERT_TRUE(this->DeleteIf("t", "fresh", 0).ok());
  EXPECT_EQ(this->Read("t", "fresh"), (VersionedValue{std::nullopt, 1}));
  EXPECT_EQ(this->DeleteIf("t", "fresh", 0).code(), absl::StatusCode::kAborted);
  // Versions are per (type, key).
  ASSERT_TRUE(this->PutIf("u", "k", "other type", 0).ok());
  ASSERT_TRUE(this->PutIf("t", "k2", "other key", 0).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"blind", 6}));
}

// Each mutation of a batch sees the version the previous one of the same value left.
TYPED_TEST_P(StoreContractTest, ConditionalMutationsOfOneKeyInOneBatch) {
  using store::VersionedValue;
  store::WriteBatch two;
  two.Put("t", "k", "first", 0);
  two.Put("t", "k", "second", 1);
  ASSERT_TRUE(this->WriteAndWait(std::move(two)).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"second", 2}));
  store::WriteBatch delete_then_put;
  delete_then_put.Delete("t", "k", 2);
  delete_then_put.Put("t", "k", "back", 3);
  ASSERT_TRUE(this->WriteAndWait(std::move(delete_then_put)).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"back", 4}));
  // Both expecting the stored version: the second is stale, and so is the batch.
  store::WriteBatch same;
  same.Put("t", "k", "x", 4);
  same.Put("t", "k", "y", 4);
  EXPECT_EQ(this->WriteAndWait(std::move(same)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"back", 4}));
  // An unconditional mutation earlier in the batch counts as well.
  store::WriteBatch blind_first;
  blind_first.Put("t", "k", "u");
  blind_first.Put("t", "k", "v", 5);
  ASSERT_TRUE(this->WriteAndWait(std::move(blind_first)).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"v", 6}));
}

// A stale version rejects the whole batch: its other mutations and its appends too.
TYPED_TEST_P(StoreContractTest, StaleVersionRejectsWholeBatch) {
  using store::VersionedValue;
  ASSERT_TRUE(this->Put("t", "k", "kept").ok());
  ASSERT_TRUE(this->Put("t", "other", "old").ok());
  ASSERT_TRUE(this->Put("u", "gone", "still here").ok());
  store::WriteBatch batch;
  batch.Put("t", "fresh", "x");
  batch.Put("t", "other", "new", 1);  // fits
  batch.Delete("u", "gone");
  batch.Put("t", "k", "lost", 0);  // stale
  batch.Put("t", "after", "y", 0);
  batch.appends.push_back(MakeAppend("t", "j", 0, 2));
  batch.appends.push_back(MakeAppend("t", "k", 0, 1));
  EXPECT_EQ(this->WriteAndWait(std::move(batch)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->Read("t", "fresh"), VersionedValue{});
  EXPECT_EQ(this->Read("t", "other"), (VersionedValue{"old", 1}));
  EXPECT_EQ(this->Read("u", "gone"), (VersionedValue{"still here", 1}));
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"kept", 1}));
  EXPECT_EQ(this->Read("t", "after"), VersionedValue{});
  EXPECT_EQ(this->Last("t", "j"), 0u);
  EXPECT_EQ(this->Last("t", "k"), 0u);
  EXPECT_TRUE(this->Stream("t").empty());
  // The versions the rejected batch expected still fit.
  store::WriteBatch again;
  again.Put("t", "other", "new", 1);
  again.Put("t", "k", "won", 1);
  again.appends.push_back(MakeAppend("t", "j", 0, 1));
  ASSERT_TRUE(this->WriteAndWait(std::move(again)).ok());
  EXPECT_EQ(this->Read("t", "k"), (VersionedValue{"won", 2}));
  EXPECT_EQ(OffsetsOf(this->Stream("t")), Iota(1, 1));
}

// Writes issued before the previous one's callback each see the version it left; a stale one
// among them fails alone.
TYPED_TEST_P(StoreContractTest, PipelinedConditionalWrites) {
  constexpr size_t kWrites = 200;
  CallbackTracker tracker(kWrites);
  // Even writes expect the version the previous even write left; odd ones repeat it (stale).
  for (size_t i = 0; i < kWrites; ++i) {
    store::WriteBatch batch;
    batch.Put("p", "k", std::to_string(i), i / 2);
    batch.Put("p", "mark" + std::to_string(i), "x");
    this->store_->Write(std::move(batch), tracker.Callback(i));
  }
  ASSERT_TRUE(tracker.WaitAll());
  size_t as_expected = 0;
  for (size_t i = 0; i < kWrites; ++i) {
    const bool good = i % 2 == 0;
    as_expected +=
        tracker.calls(i) == 1 &&
        tracker.status(i).code() == (good ? absl::StatusCode::kOk : absl::StatusCode::kAborted) &&
        this->Get("p", "mark" + std::to_string(i)).has_value() == good;
  }
  EXPECT_EQ(as_expected, kWrites);
  EXPECT_EQ(this->Read("p", "k"),
            (store::VersionedValue{std::to_string(kWrites - 2), kWrites / 2}));
}

// ---- Fencing ----

TYPED_TEST_P(StoreContractTest, HigherOrEqualFenceAcceptedLowerFenced) {
  using store::VersionedValue;
  ASSERT_TRUE(this->PutIf("fencetype", "entity-42", "epoch 3", std::nullopt, 3).ok());
  ASSERT_TRUE(this->PutIf("fencetype", "entity-42", "epoch 3 again", std::nullopt, 3).ok());
  ASSERT_TRUE(this->PutIf("fencetype", "entity-42", "epoch 7005", 2, 7005).ok());
  EXPECT_EQ(this->Read("fencetype", "entity-42"), (VersionedValue{"epoch 7005", 3}));
  // The old owner is fenced; the message names the entity and both tokens.
  const absl::Status fenced = this->PutIf("fencetype", "entity-42", "lost", std::nullopt, 7003);
  EXPECT_TRUE(IsFenced(fenced)) << fenced;
  for (const char* part : {"fencetype", "entity-42", "7003", "7005"}) {
    EXPECT_NE(fenced.message().find(part), std::string_view::npos) << part << ": " << fenced;
  }
  // A fenced write applies nothing and does not count as a version, nor do deletes.
  const absl::Status fenced_delete = this->DeleteIf("fencetype", "entity-42", 3, 7004);
  EXPECT_TRUE(IsFenced(fenced_delete)) << fenced_delete;
  EXPECT_EQ(this->Read("fencetype", "entity-42"), (VersionedValue{"epoch 7005", 3}));
  // A fenced write does not lower the token, an equal one keeps it, a higher one raises it.
  ASSERT_TRUE(this->PutIf("fencetype", "entity-42", "equal", 3, 7005).ok());
  ASSERT_TRUE(this->PutIf("fencetype", "entity-42", "higher", 4, 7006).ok());
  const absl::Status now_fenced = this->PutIf("fencetype", "entity-42", "lost", 5, 7005);
  EXPECT_TRUE(IsFenced(now_fenced)) << now_fenced;
  EXPECT_EQ(this->Read("fencetype", "entity-42"), (VersionedValue{"higher", 5}));
}

// Without fences nothing is fenced; once a fence has written an entity, fence 0 is too low.
TYPED_TEST_P(StoreContractTest, FenceZeroAfterFencedWriteIsFenced) {
  using store::VersionedValue;
  ASSERT_TRUE(this->Put("f", "k", "a").ok());
  ASSERT_TRUE(this->Put("f", "k", "b").ok());
  ASSERT_TRUE(this->Append(MakeAppend("f", "k", 0, 1)).ok());
  ASSERT_TRUE(this->PutIf("f", "k", "c", 2, 1).ok());
  const absl::Status put = this->Put("f", "k", "lost");
  EXPECT_TRUE(IsFenced(put)) << put;
  const absl::Status append = this->Append(MakeAppend("f", "k", 1, 1));
  EXPECT_TRUE(IsFenced(append)) << append;
  EXPECT_EQ(this->Read("f", "k"), (VersionedValue{"c", 3}));
  EXPECT_EQ(this->Last("f", "k"), 1u);
}

// A fenced batch applies nothing, to any of its entities, and raises no token.
TYPED_TEST_P(StoreContractTest, FencedBatchAppliesNothing) {
  using store::VersionedValue;
  ASSERT_TRUE(this->PutIf("f", "owned", "new owner", std::nullopt, 10).ok());
  ASSERT_TRUE(this->Put("f", "other", "old").ok());
  store::WriteBatch batch;
  batch.fence = 5;
  batch.Put("f", "fresh", "x");
  batch.Put("f", "other", "lost", 1);  // fits
  batch.appends.push_back(MakeAppend("f", "journal", 0, 2));
  batch.Put("f", "owned", "lost");
  const absl::Status status = this->WriteAndWait(std::move(batch));
  EXPECT_TRUE(IsFenced(status)) << status;
  EXPECT_NE(status.message().find("owned"), std::string_view::npos) << status;
  EXPECT_EQ(this->Read("f", "fresh"), VersionedValue{});
  EXPECT_EQ(this->Read("f", "other"), (VersionedValue{"old", 1}));
  EXPECT_EQ(this->Read("f", "owned"), (VersionedValue{"new owner", 1}));
  EXPECT_EQ(this->Last("f", "journal"), 0u);
  EXPECT_TRUE(this->Stream("f").empty());
  // The other entities' tokens were not raised to 5: fence 1 still writes them.
  store::WriteBatch later;
  later.fence = 1;
  later.Put("f", "fresh", "y", 0);
  later.Put("f", "other", "z", 1);
  later.appends.push_back(MakeAppend("f", "journal", 0, 1));
  ASSERT_TRUE(this->WriteAndWait(std::move(later)).ok());
  EXPECT_EQ(this->Read("f", "fresh"), (VersionedValue{"y", 1}));
  EXPECT_EQ(OffsetsOf(this->Stream("f")), Iota(1, 1));
  // Fences are checked before versions and sequences: fenced and stale reports fenced.
  store::WriteBatch both;
  both.fence = 5;
  both.Put("f", "fresh", "w", 0);                            // stale, and earlier in the batch
  both.appends.push_back(MakeAppend("f", "journal", 0, 1));  // stale
  both.Put("f", "owned", "lost", 1);
  const absl::Status both_status = this->WriteAndWait(std::move(both));
  EXPECT_TRUE(IsFenced(both_status)) << both_status;
}

// One token per (type, key), whatever writes it: the value, the journal, or an append that
// only checks the journal's head.
TYPED_TEST_P(StoreContractTest, FenceSharedByValueAndJournal) {
  using store::VersionedValue;
  ASSERT_TRUE(this->PutIf("s", "k", "v", std::nullopt, 5).ok());
  const absl::Status append = this->Append(MakeAppend("s", "k", 0, 1), 3);
  EXPECT_TRUE(IsFenced(append)) << append;
  EXPECT_EQ(this->Last("s", "k"), 0u);
  ASSERT_TRUE(this->Append(MakeAppend("s", "k", 0, 1), 5).ok());
  ASSERT_TRUE(this->Append(MakeAppend("s", "k", 1, 1), 6).ok());
  const absl::Status put = this->PutIf("s", "k", "lost", 1, 5);
  EXPECT_TRUE(IsFenced(put)) << put;
  EXPECT_EQ(this->Read("s", "k"), (VersionedValue{"v", 1}));
  ASSERT_TRUE(this->PutIf("s", "k", "w", 1, 6).ok());
  // A snapshot-only append is fenced too.
  store::JournalAppend snapshot_only = MakeAppend("s", "k", 2, 0);
  snapshot_only.snapshot = store::Snapshot{2, "at 2"};
  const absl::Status snapshot = this->Append(std::move(snapshot_only), 4);
  EXPECT_TRUE(IsFenced(snapshot)) << snapshot;
  EXPECT_EQ(this->SnapshotOf("s", "k"), std::nullopt);
  // An append with no events, only a check of the head, writes the token.
  ASSERT_TRUE(this->Append(MakeAppend("s", "claimed", 0, 0), 9).ok());
  const absl::Status claimed = this->PutIf("s", "claimed", "lost", 0, 8);
  EXPECT_TRUE(IsFenced(claimed)) << claimed;
  ASSERT_TRUE(this->PutIf("s", "claimed", "mine", 0, 9).ok());
  EXPECT_EQ(this->Read("s", "claimed"), (VersionedValue{"mine", 1}));
}

TYPED_TEST_P(StoreContractTest, FencesArePerEntity) {
  using std::string_literals::operator""s;
  ASSERT_TRUE(this->PutIf("t", "k", "v", std::nullopt, 100).ok());
  ASSERT_TRUE(this->Append(MakeAppend("t", "j", 0, 1), 100).ok());
  const std::vector<std::pair<std::string, std::string>> others = {
      {"t", "k2"}, {"t", ""}, {"t", "k\0"s}, {"tt", "k"}, {"", "tk"}, {"u", "k"}, {"t", "j2"}};
  for (const auto& [type, key] : others) {
    EXPECT_TRUE(this->PutIf(type, key, "mine", 0, 1).ok()) << type << "/" << key;
    EXPECT_TRUE(this->Append(MakeAppend(type, key, 0, 1), 1).ok()) << type << "/" << key;
  }
  const absl::Status value = this->PutIf("t", "k", "lost", 1, 99);
  EXPECT_TRUE(IsFenced(value)) << value;
  const absl::Status journal = this->Append(MakeAppend("t", "j", 1, 1), 99);
  EXPECT_TRUE(IsFenced(journal)) << journal;
}

// A batch that only fences an entity (a new owner, before its first read) raises its token
// and writes nothing else: the old owner's later writes of the value and the journal are
// fenced, the new owner's go through; a fence-only batch below the token is fenced itself.
TYPED_TEST_P(StoreContractTest, AFenceOnlyBatchRaisesTheTokenAndWritesNothingElse) {
  using store::VersionedValue;
  ASSERT_TRUE(this->PutIf("t", "v", "old owner", std::nullopt, 4).ok());
  ASSERT_TRUE(this->Append(MakeAppend("t", "j", 0, 1), 4).ok());
  store::WriteBatch fence;
  fence.fence = 9;
  fence.fenced = {{"t", "v"}, {"t", "j"}, {"t", "never-written"}};
  ASSERT_FALSE(fence.empty());
  ASSERT_TRUE(this->WriteAndWait(std::move(fence)).ok());
  EXPECT_EQ(this->Read("t", "v"), (VersionedValue{"old owner", 1})) << "nothing else written";
  EXPECT_EQ(this->Read("t", "never-written"), (VersionedValue{std::nullopt, 0}));
  const absl::Status late_value = this->PutIf("t", "v", "late", 1, 4);
  EXPECT_TRUE(IsFenced(late_value)) << late_value;
  const absl::Status late_event = this->Append(MakeAppend("t", "j", 1, 1), 4);
  EXPECT_TRUE(IsFenced(late_event)) << late_event;
  const absl::Status late_first = this->PutIf("t", "never-written", "late", std::nullopt, 8);
  EXPECT_TRUE(IsFenced(late_first)) << late_first;
  EXPECT_TRUE(this->PutIf("t", "v", "new owner", 1, 9).ok());
  EXPECT_EQ(this->Read("t", "v"), (VersionedValue{"new owner", 2}));
  store::WriteBatch lower;
  lower.fence = 5;
  lower.fenced = {{"t", "v"}};
  const absl::Status lower_fenced = this->WriteAndWait(std::move(lower));
  EXPECT_TRUE(IsFenced(lower_fenced)) << lower_fenced;
}

// The old owner's write issued right behind the new owner's is fenced by it.
TYPED_TEST_P(StoreContractTest, PipelinedFencedWrites) {
  CallbackTracker tracker(4);
  auto put = [](std::string value, uint64_t fence) {
    store::WriteBatch batch;
    batch.Put("p", "k", std::move(value));
    batch.fence = fence;
    return batch;
  };
  this->store_->Write(put("new owner", 2), tracker.Callback(0));
  this->store_->Write(put("old owner", 1), tracker.Callback(1));
  store::WriteBatch append = BatchOf(MakeAppend("p", "k", 0, 1));
  append.fence = 1;
  this->store_->Write(std::move(append), tracker.Callback(2));
  this->store_->Write(put("new owner again", 2), tracker.Callback(3));
  ASSERT_TRUE(tracker.WaitAll());
  EXPECT_TRUE(tracker.status(0).ok()) << tracker.status(0);
  EXPECT_TRUE(IsFenced(tracker.status(1))) << tracker.status(1);
  EXPECT_TRUE(IsFenced(tracker.status(2))) << tracker.status(2);
  EXPECT_TRUE(tracker.status(3).ok()) << tracker.status(3);
  EXPECT_EQ(this->Read("p", "k"), (store::VersionedValue{"new owner again", 2}));
  EXPECT_EQ(this->Last("p", "k"), 0u);
}

TYPED_TEST_P(StoreContractTest, VersionsAndFencesSurviveReopen) {
  if (!TypeParam::kDurable) GTEST_SKIP() << "backend is not durable";
  using store::VersionedValue;
  ASSERT_TRUE(this->Put("r", "k", "a").ok());
  ASSERT_TRUE(this->PutIf("r", "k", "b", 1, 4).ok());
  ASSERT_TRUE(this->Put("r", "gone", "x").ok());
  ASSERT_TRUE(this->DeleteIf("r", "gone", 1).ok());
  ASSERT_TRUE(this->Append(MakeAppend("r", "j", 0, 2), 6).ok());

  for (uint64_t round = 0; round < 2; ++round) {
    this->store_.reset();
    this->store_ = this->backend_.Open();
    ASSERT_NE(this->store_, nullptr);
    EXPECT_EQ(this->Read("r", "k"), (VersionedValue{"b", 2 + round})) << round;
    EXPECT_EQ(this->Read("r", "gone"), (VersionedValue{std::nullopt, 2})) << round;
    EXPECT_EQ(this->PutIf("r", "k", "lost", 1, 9).code(), absl::StatusCode::kAborted);
    EXPECT_EQ(this->PutIf("r", "gone", "lost", 0, 9).code(), absl::StatusCode::kAborted);
    const absl::Status value = this->PutIf("r", "k", "lost", std::nullopt, 3);
    EXPECT_TRUE(IsFenced(value)) << value;
    const absl::Status journal = this->Append(MakeAppend("r", "j", 2, 1), 5);
    EXPECT_TRUE(IsFenced(journal)) << journal;
    if (round == 0) {
      ASSERT_TRUE(this->PutIf("r", "k", "b", 2, 4).ok());
    }
  }
  ASSERT_TRUE(this->Append(MakeAppend("r", "j", 2, 1), 6).ok());
  EXPECT_EQ(this->Last("r", "j"), 3u);
}

// Many entities, each written by one of 16 threads with the version it last wrote; then a few
// counters that all 16 threads increment by read, conditional write, retry when stale.
TYPED_TEST_P(StoreContractTest, ConcurrentConditionalWriters) {
  constexpr size_t kThreads = 16;
  constexpr size_t kEntitiesPerThread = 25;
  constexpr uint64_t kRounds = 4;
  std::atomic<size_t> acknowledged{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &acknowledged] {
      for (uint64_t round = 0; round < kRounds; ++round) {
        CallbackTracker tracker(kEntitiesPerThread);
        for (size_t e = 0; e < kEntitiesPerThread; ++e) {
          store::WriteBatch batch;
          batch.Put("own", std::to_string(t) + "/" + std::to_string(e), std::to_string(round),
                    round);
          batch.fence = round;
          this->store_->Write(std::move(batch), tracker.Callback(e));
        }
        EXPECT_TRUE(tracker.WaitAll());
        acknowledged += tracker.ok_once();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(acknowledged.load(), kThreads * kEntitiesPerThread * kRounds);
  size_t matching = 0;
  for (size_t t = 0; t < kThreads; ++t) {
    for (size_t e = 0; e < kEntitiesPerThread; ++e) {
      matching += this->Read("own", std::to_string(t) + "/" + std::to_string(e)) ==
                  store::VersionedValue{std::to_string(kRounds - 1), kRounds};
    }
  }
  EXPECT_EQ(matching, kThreads * kEntitiesPerThread);

  constexpr size_t kCounters = 3;
  constexpr size_t kIncrements = 5;  // per thread and counter
  std::atomic<size_t> unexpected{0};
  threads.clear();
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, &unexpected] {
      for (size_t i = 0; i < kIncrements * kCounters; ++i) {
        const std::string key = "c" + std::to_string(i % kCounters);
        for (int attempt = 0;; ++attempt) {
          const store::VersionedValue read = this->Read("shared", key);
          const long count = read.value ? ParseIndex(*read.value) : 0;
          const absl::Status status =
              this->PutIf("shared", key, std::to_string(count + 1), read.version);
          if (status.ok()) break;
          if (status.code() != absl::StatusCode::kAborted || attempt > 10'000) {
            ADD_FAILURE() << status;
            unexpected.fetch_add(1);
            break;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(unexpected.load(), 0u);
  // No increment lost: as many as the threads made, and one version each.
  for (size_t c = 0; c < kCounters; ++c) {
    EXPECT_EQ(
        this->Read("shared", "c" + std::to_string(c)),
        (store::VersionedValue{std::to_string(kThreads * kIncrements), kThreads * kIncrements}))
        << c;
  }
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreContractTest, PutThenGet, MissingKeyIsNullopt, OverwriteReplacesValue, DeleteRemovesValue,
    DeleteOfMissingKeySucceeds, EmptyValueIsNotMissing, BinaryValuesRoundTrip,
    BatchAppliesAllMutationsInOrder, EmptyBatchIsAcknowledged, ReadersSeeWholeBatchesOnly,
    TypesAndKeysStayDistinct, LargeValues, ManyEntities,
    ConcurrentWritersAllAcknowledgedAndReadable, CallbacksCalledExactlyOnce, CallbackMayUseTheStore,
    StatsCountAcknowledgedWrites, ReopenKeepsData,
    // Journals, snapshots and streams.
    JournalAppendThenRead, JournalFieldsRoundTrip, JournalLargePayloads, ReadEventsFromAndLimit,
    StaleExpectationAbortsWholeBatch, AppendAndMutationsApplyTogether,
    TwoAppendsToOneEntityInOneBatch, PipelinedAppendsApplyInOrder,
    StaleAppendAfterConflictIsRejected, MisnumberedAppendIsInvalidArgument,
    EmptyAppendChecksExpectation, SnapshotsReplaceAndRoundTrip, RetentionDeletesCoveredEvents,
    RetentionWithinOneBatch, StreamInWriteOrderAcrossEntities, TypesHaveSeparateJournalsAndStreams,
    PrefixKeysAndTypesDoNotMix, JournalsSurviveReopen, ManyJournals, ConcurrentJournalWriters,
    // Versions and conditional writes.
    VersionsCountPutsAndDeletes, ConditionalPutAndDelete, ConditionalMutationsOfOneKeyInOneBatch,
    StaleVersionRejectsWholeBatch, PipelinedConditionalWrites,
    // Fencing.
    HigherOrEqualFenceAcceptedLowerFenced, FenceZeroAfterFencedWriteIsFenced,
    FencedBatchAppliesNothing, FenceSharedByValueAndJournal, FencesArePerEntity,
    AFenceOnlyBatchRaisesTheTokenAndWritesNothingElse,
    PipelinedFencedWrites, VersionsAndFencesSurviveReopen, ConcurrentConditionalWriters);

}  // namespace massa::store_contract
