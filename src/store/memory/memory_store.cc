// The in-memory Store: a map under one mutex. Writes are applied and acknowledged inline.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "massa/store/store.h"

namespace massa::store {
namespace {

class MemoryStore final : public Store {
 public:
  absl::StatusOr<std::optional<std::string>> GetValue(std::string_view entity_type,
                                                      std::string_view key) override {
    absl::MutexLock lock(&mu_);
    auto type_it = values_.find(entity_type);
    if (type_it == values_.end()) return std::nullopt;
    auto it = type_it->second.find(key);
    if (it == type_it->second.end()) return std::nullopt;
    return it->second;
  }

  // Applies the whole batch under the lock, so readers see all of it or none of it, then
  // calls `done` with no lock held (the callback may call back into the store).
  void Write(WriteBatch batch, WriteCallback done) override {
    {
      absl::MutexLock lock(&mu_);
      for (WriteBatch::Mutation& m : batch.mutations) {
        if (m.value.has_value()) {
          values_[std::move(m.entity_type)].insert_or_assign(std::move(m.key), std::move(*m.value));
          continue;
        }
        auto type_it = values_.find(m.entity_type);
        if (type_it == values_.end()) continue;
        type_it->second.erase(m.key);
        if (type_it->second.empty()) values_.erase(type_it);
      }
      // Each write is its own "flush": there is no grouping in memory.
      ++stats_.writes;
      ++stats_.flushes;
    }
    std::move(done)(absl::OkStatus());
  }

  StoreStats stats() const override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  // std::less<> lets lookups take string_views without building strings.
  using KeyToValue = std::map<std::string, std::string, std::less<>>;

  mutable absl::Mutex mu_;
  std::map<std::string, KeyToValue, std::less<>> values_ ABSL_GUARDED_BY(mu_);  // by type
  StoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

StorePtr NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace massa::store
