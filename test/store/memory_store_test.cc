// The memory store: the contract suite plus its inline-completion promise.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "massa/store/store.h"
#include "store_contract/effects_contract_test.h"
#include "store_contract/store_contract_test.h"

namespace massa::store {
namespace {

struct MemoryBackend {
  static constexpr bool kDurable = false;
  StorePtr Open() { return NewMemoryStore(); }
};

TEST(MemoryStoreTest, WriteCompletesBeforeReturning) {
  StorePtr store = NewMemoryStore();
  std::optional<absl::Status> result;
  WriteBatch batch;
  batch.Put("cart", "c1", "apples");
  store->Write(std::move(batch), [&](absl::Status status) { result = std::move(status); });
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->ok()) << *result;
  absl::StatusOr<std::optional<std::string>> value = store->GetValue("cart", "c1");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, "apples");
}

TEST(MemoryStoreTest, StoresAreIndependent) {
  StorePtr a = NewMemoryStore();
  StorePtr b = NewMemoryStore();
  WriteBatch batch;
  batch.Put("cart", "c1", "apples");
  a->Write(std::move(batch), [](absl::Status status) { EXPECT_TRUE(status.ok()); });
  absl::StatusOr<std::optional<std::string>> value = b->GetValue("cart", "c1");
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, std::nullopt);
}

}  // namespace
}  // namespace massa::store

// The suite's macros need its unqualified name, hence its namespace.
namespace massa::store_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StoreContractTest,
                               ::testing::Types<massa::store::MemoryBackend>);
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, EffectsContractTest,
                               ::testing::Types<massa::store::MemoryBackend>);
}  // namespace massa::store_contract
