#include "fakes/fake_function.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/thread_pool.h"
#include "crdt/crdt.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace massa::testing {
namespace {

namespace pb = google::protobuf;

void AddWithDependencies(const pb::FileDescriptor& file,
                         absl::flat_hash_set<const pb::FileDescriptor*>& added,
                         pb::FileDescriptorSet& set) {
  if (!added.insert(&file).second) return;
  for (int i = 0; i < file.dependency_count(); ++i) {
    AddWithDependencies(*file.dependency(i), added, set);
  }
  file.CopyTo(set.add_file());
}

}  // namespace

std::string DescriptorSetOf(const pb::FileDescriptor& file) {
  pb::FileDescriptorSet set;
  absl::flat_hash_set<const pb::FileDescriptor*> added;
  AddWithDependencies(file, added, set);
  return set.SerializeAsString();
}

FakeFunction::FakeFunction(int async_threads)
    : spec_(absl::UnavailableError("FakeFunction: no spec set")),
      pool_(std::make_unique<ThreadPool>(async_threads, "fake-fn")) {}

FakeFunction::~FakeFunction() {
  std::deque<std::unique_ptr<Pending>> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(parked_);
  }
  dropped.clear();  // outside the lock: destroying a callback may run arbitrary code
  pool_.reset();
}

void FakeFunction::SetSpec(absl::StatusOr<FunctionSpec> spec) {
  absl::MutexLock lock(&mu_);
  spec_ = std::move(spec);
}

void FakeFunction::OnAction(std::string service, ActionHandler handler) {
  absl::MutexLock lock(&mu_);
  actions_[std::move(service)] = std::move(handler);
}

void FakeFunction::OnValueEntity(std::string service, EntityHandler handler) {
  absl::MutexLock lock(&mu_);
  entities_[std::move(service)] = std::move(handler);
}

void FakeFunction::OnEventSourced(std::string service, EventSourcedHandler handler) {
  absl::MutexLock lock(&mu_);
  event_sourced_[std::move(service)] = std::move(handler);
}

void FakeFunction::OnFold(std::string service, FoldHandler handler) {
  absl::MutexLock lock(&mu_);
  folds_[std::move(service)] = std::move(handler);
}

std::vector<FakeFunction::FoldCall> FakeFunction::fold_calls() const {
  absl::MutexLock lock(&mu_);
  return fold_calls_;
}

void FakeFunction::SetAsync(bool async) {
  absl::MutexLock lock(&mu_);
  async_ = async;
}

void FakeFunction::Hold(std::string service) {
  absl::MutexLock lock(&mu_);
  holding_ = true;
  hold_service_ = std::move(service);
}

void FakeFunction::Release() {
  std::deque<std::unique_ptr<Pending>> released;
  {
    absl::MutexLock lock(&mu_);
    holding_ = false;
    hold_service_.clear();
    released.swap(parked_);
  }
  for (auto& pending : released) Start(std::move(pending));
}

bool FakeFunction::ReleaseOne() {
  std::unique_ptr<Pending> pending;
  {
    absl::MutexLock lock(&mu_);
    if (parked_.empty()) return false;
    pending = std::move(parked_.front());
    parked_.pop_front();
  }
  Start(std::move(pending));
  return true;
}

size_t FakeFunction::parked() const {
  absl::MutexLock lock(&mu_);
  return parked_.size();
}

bool FakeFunction::AwaitParked(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return parked_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::vector<FakeFunction::Call> FakeFunction::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<FakeFunction::Call> FakeFunction::CallsTo(const std::string& service) const {
  absl::MutexLock lock(&mu_);
  std::vector<Call> out;
  for (const Call& call : calls_) {
    if (call.command.service == service) out.push_back(call);
  }
  return out;
}

size_t FakeFunction::call_count() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

bool FakeFunction::AwaitCalls(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeFunction::AwaitCompleted(size_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return completed_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

int FakeFunction::discover_calls() const {
  absl::MutexLock lock(&mu_);
  return discover_calls_;
}

int FakeFunction::max_concurrency_per_key() const {
  absl::MutexLock lock(&mu_);
  return max_per_key_;
}

int FakeFunction::max_concurrency() const {
  absl::MutexLock lock(&mu_);
  return max_running_;
}

absl::StatusOr<FunctionSpec> FakeFunction::Discover(std::chrono::milliseconds) {
  absl::MutexLock lock(&mu_);
  ++discover_calls_;
  return spec_;
}

void FakeFunction::HandleAction(const Command& command, OutcomeCallback done) {
  // Copy everything now: the runtime's references are only valid until `done` runs.
  Accept(Call{command, std::nullopt, false, false, 0}, std::move(done));
}

void FakeFunction::HandleValueEntity(const Command& command,
                                     const std::optional<TypedValue>& state,
                                     OutcomeCallback done) {
  Accept(Call{command, state, true, false, 0}, std::move(done));
}

void FakeFunction::HandleCrdt(const Command& command, const crdt::Value& value,
                              OutcomeCallback done) {
  Accept(Call{command, TypedValue{std::string(kCrdtCounterType), std::to_string(value.counter)},
              true, false, 0},
         std::move(done));
}

void FakeFunction::HandleEventSourced(const Command& command,
                                      const std::optional<TypedValue>& state, uint64_t sequence,
                                      OutcomeCallback done) {
  Accept(Call{command, state, true, true, sequence}, std::move(done));
}

void FakeFunction::Fold(const std::string& service, const std::string& entity_key,
                        const std::optional<TypedValue>& state, const std::vector<Event>& events,
                        FoldCallback done) {
  FoldHandler handler;
  bool async;
  {
    absl::MutexLock lock(&mu_);
    fold_calls_.push_back(FoldCall{service, entity_key, state, events});
    if (auto it = folds_.find(service); it != folds_.end()) handler = it->second;
    async = async_;
  }
  auto run = [service, state, events, handler = std::move(handler),
              done = std::move(done)]() mutable {
    std::move(done)(handler ? handler(state, events)
                            : absl::StatusOr<std::optional<TypedValue>>(absl::UnimplementedError(
                                  absl::StrCat("FakeFunction: no fold handler for ", service))));
  };
  if (async) {
    pool_->Post(std::move(run));
  } else {
    run();
  }
}

void FakeFunction::Accept(Call call, OutcomeCallback done) {
  auto pending = std::make_unique<Pending>();
  if (call.entity) {
    pending->concurrency_key = absl::StrCat(call.command.service, "/", call.command.entity_key);
  }
  pending->call = std::move(call);
  pending->done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back(pending->call);
    max_running_ = std::max(max_running_, ++running_);
    if (!pending->concurrency_key.empty()) {
      max_per_key_ = std::max(max_per_key_, ++in_progress_[pending->concurrency_key]);
    }
    if (holding_ && (hold_service_.empty() || hold_service_ == pending->call.command.service)) {
      parked_.push_back(std::move(pending));
      return;
    }
  }
  Start(std::move(pending));
}

void FakeFunction::Start(std::unique_ptr<Pending> pending) {
  bool async;
  {
    absl::MutexLock lock(&mu_);
    async = async_;
  }
  if (async) {
    pool_->Post([this, pending = std::move(pending)]() mutable { Run(std::move(pending)); });
  } else {
    Run(std::move(pending));
  }
}

void FakeFunction::Run(std::unique_ptr<Pending> pending) {
  const Call& call = pending->call;
  ActionHandler action;
  EntityHandler entity;
  {
    absl::MutexLock lock(&mu_);
    if (call.event_sourced) {
      if (auto it = event_sourced_.find(call.command.service); it != event_sourced_.end()) {
        entity = [handler = it->second, sequence = call.sequence](
                     const Command& command, const std::optional<TypedValue>& state) {
          return handler(command, state, sequence);
        };
      }
    } else if (call.entity) {
      if (auto it = entities_.find(call.command.service); it != entities_.end()) {
        entity = it->second;
      }
    } else if (auto it = actions_.find(call.command.service); it != actions_.end()) {
      action = it->second;
    }
  }
  absl::StatusOr<Outcome> outcome =
      entity   ? entity(call.command, call.state)
      : action ? action(call.command)
               : absl::StatusOr<Outcome>(absl::UnimplementedError(absl::StrCat(
                     "FakeFunction: no ",
                     call.event_sourced ? "event sourced" : call.entity ? "value entity" : "action",
                     " handler for ", call.command.service)));
  {
    // The function is done with the call once it hands over the outcome: the runtime may
    // start the entity's next command from inside `done`.
    absl::MutexLock lock(&mu_);
    --running_;
    if (!pending->concurrency_key.empty()) {
      auto it = in_progress_.find(pending->concurrency_key);
      if (--it->second == 0) in_progress_.erase(it);
    }
  }
  std::move(pending->done)(std::move(outcome));
  absl::MutexLock lock(&mu_);
  ++completed_;
}

}  // namespace massa::testing
