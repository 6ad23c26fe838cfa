// File: store_contract/effects_contract_test.h
//
// The contract of the records for effectively-once delivery and durable time
// (include/massa/store/store.h): idempotency records, timers and their due index, outbox
// records, value expiry and the sweep. Every backend instantiates it beside StoreContractTest:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, EffectsContractTest, ::testing::Types<MyBackend>);
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "massa/store/store.h"
#include "store_contract/store_contract_test.h"

namespace massa::store_contract {

inline store::IdempotencyRecord Idem(std::string type, std::string key, std::string idem,
                                     std::string record, int64_t expires_ms = 0) {
  return store::IdempotencyRecord{std::move(type), std::move(key), std::move(idem),
                                  std::move(record), expires_ms};
}

inline store::TimerRecord Timer(std::string type, std::string key, std::string name,
                                int64_t due_ms, uint32_t partition = 0,
                                std::string record = "") {
  if (record.empty()) record = "call:" + name;
  return store::TimerRecord{std::move(type), std::move(key), std::move(name), due_ms, partition,
                            std::move(record)};
}

inline store::TimerChange SetTimer(store::TimerRecord timer,
                                   std::optional<int64_t> expected = std::nullopt) {
  return store::TimerChange{std::move(timer), false, expected};
}

inline store::TimerChange RemoveTimer(std::string type, std::string key, std::string name,
                                      std::optional<int64_t> expected = std::nullopt) {
  return store::TimerChange{Timer(std::move(type), std::move(key), std::move(name), 0), true,
                            expected};
}

inline std::vector<std::string> NamesOf(const std::vector<store::TimerRecord>& timers) {
  std::vector<std::string> out;
  for (const auto& t : timers) out.push_back(t.name);
  return out;
}

inline std::vector<std::string> IdsOf(const std::vector<store::OutboxRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.id);
  return out;
}

// The store contract's fixture (StoreContractTest: the backend, its store, WriteAndWait) with
// readers of timers, outbox and idempotency records.
template <typename Backend>
class EffectsContractTest : public StoreContractTest<Backend> {
 protected:
  using StoreContractTest<Backend>::store_;

  absl::Status Write(store::WriteBatch batch) { return this->WriteAndWait(std::move(batch)); }

  std::optional<store::IdempotencyRecord> ReadIdem(const std::string& type, const std::string& key,
                                                   const std::string& idem) {
    auto read = store_->ReadIdempotency(type, key, idem);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? *read : std::nullopt;
  }

  std::vector<store::TimerRecord> TimersOf(const std::string& type, const std::string& key) {
    auto read = store_->ReadTimers(type, key);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? *read : std::vector<store::TimerRecord>{};
  }

  std::vector<store::TimerRecord> Due(uint32_t partition, int64_t before, size_t limit = 100) {
    auto read = store_->ReadDueTimers(partition, before, limit);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? *read : std::vector<store::TimerRecord>{};
  }

  std::vector<store::OutboxRecord> Outbox(uint32_t partition, int64_t before, size_t limit = 100) {
    auto read = store_->ReadOutbox(partition, before, limit);
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? *read : std::vector<store::OutboxRecord>{};
  }
};

TYPED_TEST_SUITE_P(EffectsContractTest);

TYPED_TEST_P(EffectsContractTest, IdempotencyRecordsAreWrittenWithTheStateAndRead) {
  store::WriteBatch batch;
  batch.Put("cart", "c1", "state-1", 0);
  batch.idempotency.push_back(Idem("cart", "c1", "key-1", "reply-1", 5000));
  ASSERT_TRUE(this->Write(std::move(batch)).ok());
  auto read = this->ReadIdem("cart", "c1", "key-1");
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(*read, Idem("cart", "c1", "key-1", "reply-1", 5000));
  EXPECT_EQ(this->ReadIdem("cart", "c1", "key-2"), std::nullopt);
  EXPECT_EQ(this->ReadIdem("cart", "c2", "key-1"), std::nullopt);
  EXPECT_EQ(this->ReadIdem("other", "c1", "key-1"), std::nullopt);
  // Written again: replaced. Keys with any bytes.
  store::WriteBatch again;
  again.idempotency.push_back(Idem("cart", "c1", "key-1", "reply-2", 6000));
  again.idempotency.push_back(Idem("cart", std::string("a\0/b", 4), "k/\xff", "bin", 1));
  ASSERT_TRUE(this->Write(std::move(again)).ok());
  EXPECT_EQ(this->ReadIdem("cart", "c1", "key-1")->record, "reply-2");
  EXPECT_EQ(this->ReadIdem("cart", std::string("a\0/b", 4), "k/\xff")->record, "bin");
}

TYPED_TEST_P(EffectsContractTest, AnEntityKnowsWhetherItHasIdempotencyRecords) {
  const auto has = [this](const std::string& type, const std::string& key) {
    absl::StatusOr<bool> answer = this->store_->HasIdempotencyRecords(type, key);
    EXPECT_TRUE(answer.ok()) << answer.status();
    return answer.ok() && *answer;
  };
  EXPECT_FALSE(has("cart", "c1"));
  store::WriteBatch batch;
  batch.Put("cart", "c1", "state", 0);
  batch.idempotency.push_back(Idem("cart", "c1", "key-1", "reply", 5000));
  batch.idempotency.push_back(Idem("cart", "c10", "key-1", "reply", 5000));
  ASSERT_TRUE(this->Write(std::move(batch)).ok());
  EXPECT_TRUE(has("cart", "c1"));
  EXPECT_TRUE(has("cart", "c10"));
  EXPECT_FALSE(has("cart", "c")) << "a prefix of another key is another entity";
  EXPECT_FALSE(has("cart", "c2"));
  EXPECT_FALSE(has("other", "c1"));
  auto swept = this->store_->SweepExpired(6000, 100);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_FALSE(has("cart", "c1")) << "swept";
}

TYPED_TEST_P(EffectsContractTest, ANonBlockingReadAgreesWithTheBlockingOne) {
  store::WriteBatch batch;
  batch.idempotency.push_back(Idem("cart", "c1", "key-1", "reply-1", 5000));
  ASSERT_TRUE(this->Write(std::move(batch)).ok());
  for (const char* key : {"key-1", "key-2"}) {
    auto at_hand = this->store_->TryReadIdempotency("cart", "c1", key);
    if (!at_hand.has_value()) continue;  // the store would block: allowed
    ASSERT_TRUE(at_hand->ok()) << at_hand->status();
    EXPECT_EQ(**at_hand, this->ReadIdem("cart", "c1", key)) << key;
  }
}

TYPED_TEST_P(EffectsContractTest, EveryKindOfRecordIsWrittenInOneBatch) {
  store::WriteBatch batch;
  batch.Put("cart", "c1", "state", 0);
  batch.idempotency.push_back(Idem("cart", "c1", "key-1", "reply", 5000));
  batch.timers.push_back(SetTimer(Timer("cart", "c1", "t", 100)));
  batch.outbox.push_back({"o1", 100, 0, "message"});
  batch.fence = 2;
  ASSERT_TRUE(this->Write(std::move(batch)).ok());
  EXPECT_TRUE(this->ReadIdem("cart", "c1", "key-1").has_value());
  EXPECT_EQ(NamesOf(this->TimersOf("cart", "c1")), std::vector<std::string>{"t"});
  EXPECT_EQ(NamesOf(this->Due(0, 1000)), std::vector<std::string>{"t"});
  EXPECT_EQ(IdsOf(this->Outbox(0, 1000)), std::vector<std::string>{"o1"});
  // Again on the same entity, as the next command would.
  store::WriteBatch next;
  next.Put("cart", "c1", "state-2", 1);
  next.idempotency.push_back(Idem("cart", "c1", "key-2", "reply", 5000));
  next.timers.push_back(SetTimer(Timer("cart", "c1", "u", 200)));
  next.fence = 2;
  ASSERT_TRUE(this->Write(std::move(next)).ok());
  std::vector<std::string> names = NamesOf(this->TimersOf("cart", "c1"));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"t", "u"}));
  EXPECT_EQ(NamesOf(this->Due(0, 1000)), (std::vector<std::string>{"t", "u"}));
}

TYPED_TEST_P(EffectsContractTest, RecordsOfARejectedBatchAreNotWritten) {
  store::WriteBatch first;
  first.Put("cart", "c1", "v1", 0);
  ASSERT_TRUE(this->Write(std::move(first)).ok());
  store::WriteBatch stale;
  stale.Put("cart", "c1", "v2", /*expected_version=*/0);  // it is 1
  stale.idempotency.push_back(Idem("cart", "c1", "key-1", "reply"));
  stale.timers.push_back(SetTimer(Timer("cart", "c1", "t", 100)));
  stale.outbox.push_back({"o1", 100, 0, "message"});
  EXPECT_EQ(this->Write(std::move(stale)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(this->ReadIdem("cart", "c1", "key-1"), std::nullopt);
  EXPECT_TRUE(this->TimersOf("cart", "c1").empty());
  EXPECT_TRUE(this->Due(0, 1000).empty());
  EXPECT_TRUE(this->Outbox(0, 1000).empty());
}

TYPED_TEST_P(EffectsContractTest, IdempotencyRecordsAndTimersAreFencedWithTheirEntity) {
  store::WriteBatch owner;
  owner.Put("cart", "c1", "v", 0);
  owner.fence = 7;
  ASSERT_TRUE(this->Write(std::move(owner)).ok());
  store::WriteBatch idem;
  idem.idempotency.push_back(Idem("cart", "c1", "key-1", "reply"));
  idem.fence = 3;
  EXPECT_TRUE(IsFenced(this->Write(std::move(idem))));
  store::WriteBatch timer;
  timer.timers.push_back(SetTimer(Timer("cart", "c1", "t", 100)));
  timer.fence = 3;
  EXPECT_TRUE(IsFenced(this->Write(std::move(timer))));
  EXPECT_EQ(this->ReadIdem("cart", "c1", "key-1"), std::nullopt);
  EXPECT_TRUE(this->TimersOf("cart", "c1").empty());
  // The owner's fence writes them.
  store::WriteBatch ok;
  ok.idempotency.push_back(Idem("cart", "c1", "key-1", "reply"));
  ok.timers.push_back(SetTimer(Timer("cart", "c1", "t", 100)));
  ok.fence = 7;
  EXPECT_TRUE(this->Write(std::move(ok)).ok());
  EXPECT_EQ(this->TimersOf("cart", "c1").size(), 1u);
}

TYPED_TEST_P(EffectsContractTest, TimersAreReadByEntityAndByDueTime) {
  store::WriteBatch batch;
  batch.timers.push_back(SetTimer(Timer("cart", "a", "late", 300)));
  batch.timers.push_back(SetTimer(Timer("cart", "a", "early", 100)));
  batch.timers.push_back(SetTimer(Timer("cart", "b", "mid", 200)));
  batch.timers.push_back(SetTimer(Timer("order", "a", "other-type", 150)));
  batch.timers.push_back(SetTimer(Timer("cart", "a2", "prefix", 160)));
  batch.timers.push_back(SetTimer(Timer("cart", "c", "elsewhere", 50, /*partition=*/3)));
  ASSERT_TRUE(this->Write(std::move(batch)).ok());

  std::vector<std::string> names = NamesOf(this->TimersOf("cart", "a"));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"early", "late"}));
  auto early = this->TimersOf("cart", "a");
  auto it = std::find_if(early.begin(), early.end(), [](auto& t) { return t.name == "early"; });
  ASSERT_NE(it, early.end());
  EXPECT_EQ(*it, Timer("cart", "a", "early", 100));

  EXPECT_EQ(NamesOf(this->Due(0, 250)),
            (std::vector<std::string>{"early", "other-type", "prefix", "mid"}));
  EXPECT_EQ(NamesOf(this->Due(0, 100)), std::vector<std::string>{}) << "due before, not at";
  EXPECT_EQ(NamesOf(this->Due(0, 1000, /*limit=*/2)),
            (std::vector<std::string>{"early", "other-type"}));
  EXPECT_EQ(NamesOf(this->Due(3, 1000)), std::vector<std::string>{"elsewhere"});
  EXPECT_TRUE(this->Due(1, 1000).empty());
}

TYPED_TEST_P(EffectsContractTest, ReplacingOrRemovingATimerMovesItsDueEntry) {
  store::WriteBatch set;
  set.timers.push_back(SetTimer(Timer("cart", "a", "t", 100)));
  ASSERT_TRUE(this->Write(std::move(set)).ok());
  store::WriteBatch replace;
  replace.timers.push_back(SetTimer(Timer("cart", "a", "t", 500, 0, "new")));
  ASSERT_TRUE(this->Write(std::move(replace)).ok());
  EXPECT_TRUE(this->Due(0, 200).empty()) << "the old due time is gone";
  auto due = this->Due(0, 1000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], Timer("cart", "a", "t", 500, 0, "new"));
  EXPECT_EQ(this->TimersOf("cart", "a").size(), 1u);

  store::WriteBatch remove;
  remove.timers.push_back(RemoveTimer("cart", "a", "t"));
  remove.timers.push_back(RemoveTimer("cart", "a", "never-set"));
  ASSERT_TRUE(this->Write(std::move(remove)).ok());
  EXPECT_TRUE(this->TimersOf("cart", "a").empty());
  EXPECT_TRUE(this->Due(0, 1000).empty());

  // Set, moved and removed within one batch: the last change wins, no index entry is left.
  store::WriteBatch churn;
  churn.timers.push_back(SetTimer(Timer("cart", "b", "x", 10)));
  churn.timers.push_back(SetTimer(Timer("cart", "b", "x", 20)));
  churn.timers.push_back(SetTimer(Timer("cart", "b", "y", 30)));
  churn.timers.push_back(RemoveTimer("cart", "b", "y"));
  ASSERT_TRUE(this->Write(std::move(churn)).ok());
  due = this->Due(0, 1000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].due_ms, 20);
}

TYPED_TEST_P(EffectsContractTest, TimerChangesAreConditionalOnTheDueTime) {
  store::WriteBatch create;
  create.timers.push_back(SetTimer(Timer("cart", "a", "t", 100), /*expected=*/0));
  ASSERT_TRUE(this->Write(std::move(create)).ok());
  // Must not exist: it does.
  store::WriteBatch again;
  again.timers.push_back(SetTimer(Timer("cart", "a", "t", 200), 0));
  absl::Status status = this->Write(std::move(again));
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_NE(status.message().find("'t'"), std::string_view::npos) << status;
  // A stale due time, with a value put: nothing of the batch is applied.
  store::WriteBatch stale;
  stale.Put("cart", "a", "v");
  stale.timers.push_back(SetTimer(Timer("cart", "a", "t", 300), /*expected=*/99));
  EXPECT_EQ(this->Write(std::move(stale)).code(), absl::StatusCode::kAborted);
  auto value = this->store_->ReadValue("cart", "a");
  ASSERT_TRUE(value.ok());
  EXPECT_FALSE(value->value.has_value());
  // The right due time: moved (a fired timer rescheduled), then removed.
  store::WriteBatch fire;
  fire.timers.push_back(SetTimer(Timer("cart", "a", "t", 400), 100));
  ASSERT_TRUE(this->Write(std::move(fire)).ok());
  store::WriteBatch done;
  done.timers.push_back(RemoveTimer("cart", "a", "t", 400));
  ASSERT_TRUE(this->Write(std::move(done)).ok());
  // Removing it again expecting it: it is gone.
  store::WriteBatch gone;
  gone.timers.push_back(RemoveTimer("cart", "a", "t", 400));
  EXPECT_EQ(this->Write(std::move(gone)).code(), absl::StatusCode::kAborted);
}

TYPED_TEST_P(EffectsContractTest, OutboxRecordsAreReadByDueTimeUntilDone) {
  store::WriteBatch batch;
  batch.Put("cart", "a", "v");
  batch.outbox.push_back({"m3", 300, 0, "third"});
  batch.outbox.push_back({"m1", 100, 0, "first"});
  batch.outbox.push_back({"m2", 200, 0, "second"});
  batch.outbox.push_back({"p1", 50, 1, "other partition"});
  ASSERT_TRUE(this->Write(std::move(batch)).ok());
  EXPECT_EQ(IdsOf(this->Outbox(0, 1000)), (std::vector<std::string>{"m1", "m2", "m3"}));
  EXPECT_EQ(IdsOf(this->Outbox(0, 250)), (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(IdsOf(this->Outbox(0, 1000, 1)), (std::vector<std::string>{"m1"}));
  EXPECT_EQ(IdsOf(this->Outbox(1, 1000)), (std::vector<std::string>{"p1"}));
  EXPECT_EQ(this->Outbox(0, 1000)[0], (store::OutboxRecord{"m1", 100, 0, "first"}));

  // A retry moves a record; done deletes (absent ids are ignored).
  store::WriteBatch retry;
  retry.outbox.push_back({"m1", 900, 0, "first"});
  retry.outbox_done.push_back("m2");
  retry.outbox_done.push_back("never-there");
  ASSERT_TRUE(this->Write(std::move(retry)).ok());
  EXPECT_EQ(IdsOf(this->Outbox(0, 1000)), (std::vector<std::string>{"m3", "m1"}));
  EXPECT_EQ(IdsOf(this->Outbox(0, 500)), (std::vector<std::string>{"m3"}));
}

TYPED_TEST_P(EffectsContractTest, ExpiredValuesAreSweptKeepingTheirVersion) {
  store::WriteBatch put;
  put.mutations.push_back({"cart", "short", std::string("v"), 0, /*expires_ms=*/1000});
  put.mutations.push_back({"cart", "long", std::string("v"), 0, /*expires_ms=*/9000});
  put.mutations.push_back({"cart", "forever", std::string("v"), 0, 0});
  put.idempotency.push_back(Idem("cart", "short", "k", "r", 1000));
  put.idempotency.push_back(Idem("cart", "long", "k", "r", 9000));
  ASSERT_TRUE(this->Write(std::move(put)).ok());
  auto read = this->store_->ReadValue("cart", "short");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->expires_ms, 1000);
  EXPECT_EQ(read->version, 1u);

  auto early = this->store_->SweepExpired(999, 100);
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_EQ(*early, 0u);
  EXPECT_TRUE(this->store_->ReadValue("cart", "short")->value.has_value());

  auto swept = this->store_->SweepExpired(1000, 100);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 2u);  // the value and the idempotency record that expired at 1000
  read = this->store_->ReadValue("cart", "short");
  EXPECT_FALSE(read->value.has_value());
  EXPECT_EQ(read->version, 1u) << "the sweep does not change the version";
  EXPECT_EQ(this->ReadIdem("cart", "short", "k"), std::nullopt);
  EXPECT_TRUE(this->ReadIdem("cart", "long", "k").has_value());
  EXPECT_TRUE(this->store_->ReadValue("cart", "long")->value.has_value());
  EXPECT_TRUE(this->store_->ReadValue("cart", "forever")->value.has_value());
  // A writer that read version 1 writes on.
  store::WriteBatch next;
  next.Put("cart", "short", "again", 1);
  EXPECT_TRUE(this->Write(std::move(next)).ok());
  // Rewritten without an expiry: not swept.
  auto later = this->store_->SweepExpired(100000, 100);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(this->store_->ReadValue("cart", "short")->value.has_value());
  EXPECT_FALSE(this->store_->ReadValue("cart", "long")->value.has_value());
}

TYPED_TEST_P(EffectsContractTest, RecordsSurviveReopen) {
  if (!TypeParam::kDurable) GTEST_SKIP() << "not a durable backend";
  store::WriteBatch batch;
  batch.Put("cart", "a", "v");
  batch.idempotency.push_back(Idem("cart", "a", "k", "r", 5000));
  batch.timers.push_back(SetTimer(Timer("cart", "a", "t", 100)));
  batch.outbox.push_back({"m", 200, 0, "msg"});
  ASSERT_TRUE(this->Write(std::move(batch)).ok());
  this->store_.reset();
  this->store_ = this->backend_.Open();
  ASSERT_NE(this->store_, nullptr);
  EXPECT_EQ(this->ReadIdem("cart", "a", "k"), Idem("cart", "a", "k", "r", 5000));
  EXPECT_EQ(NamesOf(this->Due(0, 1000)), std::vector<std::string>{"t"});
  EXPECT_EQ(IdsOf(this->Outbox(0, 1000)), std::vector<std::string>{"m"});
}

REGISTER_TYPED_TEST_SUITE_P(EffectsContractTest, AnEntityKnowsWhetherItHasIdempotencyRecords,
                            ANonBlockingReadAgreesWithTheBlockingOne,
                            IdempotencyRecordsAreWrittenWithTheStateAndRead,
                            EveryKindOfRecordIsWrittenInOneBatch,
                            RecordsOfARejectedBatchAreNotWritten,
                            IdempotencyRecordsAndTimersAreFencedWithTheirEntity,
                            TimersAreReadByEntityAndByDueTime,
                            ReplacingOrRemovingATimerMovesItsDueEntry,
                            TimerChangesAreConditionalOnTheDueTime,
                            OutboxRecordsAreReadByDueTimeUntilDone,
                            ExpiredValuesAreSweptKeepingTheirVersion, RecordsSurviveReopen);

}  // namespace massa::store_contract
