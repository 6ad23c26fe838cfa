// File: store/rocksdb/rocksdb_store_testing.h
//
// Test seams of the RocksDB store, for test/store/ only. No RocksDB types in here.
#pragma once

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "massa/store/store.h"

namespace massa::store::internal {

struct RocksDbTestHooks {
  // Called on the flusher thread before each group is written to RocksDB. A status that is
  // not OK fails the group exactly as a failed rocksdb::DB::Write would: nothing of it is
  // written and every write of the group is called back with that status.
  std::function<absl::Status()> before_write;
};

// OpenRocksDbStore with `hooks` installed.
[[nodiscard]] absl::StatusOr<StorePtr> OpenRocksDbStoreForTest(const RocksDbOptions& options,
                                                               RocksDbTestHooks hooks);

}  // namespace massa::store::internal
