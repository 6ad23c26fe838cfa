#include "cluster/etcd.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"
#include "etcd/mvcc/mvccpb/kv.pb.h"
#include "spdlog/spdlog.h"

namespace massa::cluster {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{1000};

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// gRPC's codes are absl's. A call that timed out means etcd could not be reached in time.
absl::Status FromGrpc(const grpc::Status& status, const char* what) {
  if (status.ok()) return absl::OkStatus();
  const auto code = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                        ? absl::StatusCode::kUnavailable
                        : static_cast<absl::StatusCode>(status.error_code());
  return absl::Status(code, absl::StrCat("etcd ", what, ": ", status.error_message()));
}

// A transaction that puts `key` = `value` (on `lease`, 0 = none) only if the key does not
// exist, and otherwise reads it (the failure's first response).
etcdserverpb::TxnRequest CreateIfAbsent(const std::string& key, const std::string& value,
                                        int64_t lease) {
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(etcdserverpb::Compare::CREATE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_create_revision(0);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  if (lease != 0) put->set_lease(lease);
  txn.add_failure()->mutable_request_range()->set_key(key);
  return txn;
}

// The end of the key range of every key starting with `prefix` (which ends in '/').
std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

}  // namespace

struct EtcdCluster::Impl {
  EtcdOptions options;
  std::function<void(const std::vector<Member>&)> on_members;
  std::string members_prefix;  // /massa/<cluster>/members/
  std::string claims_prefix;   // /massa/<cluster>/claims/
  std::string member_key;      // members_prefix + node_id

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;

  absl::Mutex lifecycle_mu;  // serializes Rejoin, Leave and AbandonForTest
  bool stopped ABSL_GUARDED_BY(lifecycle_mu) = false;

  mutable absl::Mutex mu;
  std::map<std::string, std::string> members ABSL_GUARDED_BY(mu);  // id -> address
  int64_t members_revision ABSL_GUARDED_BY(mu) = 0;  // of the last Range of the members
  std::vector<Member> delivered ABSL_GUARDED_BY(mu);
  bool delivered_once ABSL_GUARDED_BY(mu) = false;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool kick ABSL_GUARDED_BY(mu) = false;  // wakes the keep-alive loop (Rejoin)
  grpc::ClientContext* watch_context ABSL_GUARDED_BY(mu) = nullptr;
  int64_t granted_ttl_seconds ABSL_GUARDED_BY(mu) = 0;

  // Read by healthy() without a lock; written under mu.
  std::atomic<int64_t> lease_id{0};
  std::atomic<int64_t> lease_deadline_ns{0};  // steady clock: last confirmed send + TTL
  std::atomic<bool> alive{false};             // the last keep-alive succeeded
  std::atomic<bool> expired{false};
  std::atomic<bool> running{false};
  std::atomic<bool> withdrawn{false};  // SetMember(false): not listed, also after a Rejoin

  std::thread keepalive_thread;
  std::thread watch_thread;

  void SetDeadline(grpc::ClientContext& context, bool wait_for_ready) const {
    context.set_deadline(std::chrono::system_clock::now() + options.rpc_timeout);
    context.set_wait_for_ready(wait_for_ready);
  }

  milliseconds KeepAliveInterval() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    milliseconds ttl = options.ttl;
    if (granted_ttl_seconds > 0) ttl = std::min<milliseconds>(ttl, std::chrono::seconds(granted_ttl_seconds));
    return std::max<milliseconds>(ttl / 3, milliseconds(50));
  }

  // A lease of options.ttl (whole seconds). Returns its id and granted TTL in seconds.
  absl::StatusOr<std::pair<int64_t, int64_t>> Grant() {
    etcdserverpb::LeaseGrantRequest request;
    const auto ms = options.ttl.count();
    request.set_ttl(std::max<int64_t>(1, (ms + 999) / 1000));
    etcdserverpb::LeaseGrantResponse response;
    grpc::ClientContext context;
    SetDeadline(context, /*wait_for_ready=*/true);
    absl::Status status = FromGrpc(lease->LeaseGrant(&context, request, &response), "LeaseGrant");
    if (!status.ok()) return status;
    if (!response.error().empty()) {
      return absl::UnavailableError(absl::StrCat("etcd LeaseGrant: ", response.error()));
    }
    return std::make_pair(response.id(), response.ttl());
  }

  absl::Status Revoke(int64_t id) {
    etcdserverpb::LeaseRevokeRequest request;
    request.set_id(id);
    etcdserverpb::LeaseRevokeResponse response;
    grpc::ClientContext context;
    SetDeadline(context, /*wait_for_ready=*/true);
    const grpc::Status status = lease->LeaseRevoke(&context, request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();  // gone
    return FromGrpc(status, "LeaseRevoke");
  }

  // Puts member_key on lease `id` unless another lease holds it: ALREADY_EXISTS naming the
  // holder.
  absl::Status Register(int64_t id) {
    const etcdserverpb::TxnRequest txn = CreateIfAbsent(member_key, options.peer_address, id);
    etcdserverpb::TxnResponse response;
    grpc::ClientContext context;
    SetDeadline(context, /*wait_for_ready=*/true);
    absl::Status status = FromGrpc(kv->Txn(&context, txn, &response), "Txn (register)");
    if (!status.ok()) return status;
    if (response.succeeded()) return absl::OkStatus();
    std::string holder = "?";
    if (response.responses_size() > 0 && response.responses(0).response_range().kvs_size() > 0) {
      const mvccpb::KeyValue& held = response.responses(0).response_range().kvs(0);
      if (held.lease() == id) return absl::OkStatus();  // listed already
      holder = held.value();
    }
    return absl::AlreadyExistsError(absl::StrCat("node id '", options.node_id,
                                                 "' is held by a live node at ", holder));
  }

  // Grant + Register; revokes the lease when registering fails. Publishes the new lease.
  absl::Status Join() {
    const int64_t sent = SteadyNanos();
    absl::StatusOr<std::pair<int64_t, int64_t>> granted = Grant();
    if (!granted.ok()) return granted.status();
    const auto [id, ttl] = *granted;
    absl::Status status = withdrawn ? absl::OkStatus() : Register(id);
    if (!status.ok()) {
      (void)Revoke(id);
      return status;
    }
    absl::MutexLock lock(&mu);
    granted_ttl_seconds = ttl;
    lease_id = id;
    lease_deadline_ns = sent + ttl * 1'000'000'000;
    alive = true;
    expired = false;
    kick = true;
    return absl::OkStatus();
  }

  // One keep-alive of lease `id` on a stream of its own, bounded by rpc_timeout (fail fast
  // when etcd is known unreachable). Returns the remaining TTL (<= 0: the lease is gone).
  absl::StatusOr<int64_t> KeepAliveOnce(int64_t id) {
    grpc::ClientContext context;
    SetDeadline(context, /*wait_for_ready=*/false);
    auto stream = lease->LeaseKeepAlive(&context);
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(id);
    etcdserverpb::LeaseKeepAliveResponse response;
    if (!stream->Write(request) || !stream->Read(&response)) {
      context.TryCancel();
      absl::Status status = FromGrpc(stream->Finish(), "LeaseKeepAlive");
      return status.ok() ? absl::UnavailableError("etcd LeaseKeepAlive: stream closed") : status;
    }
    stream->WritesDone();
    (void)stream->Finish();
    return response.ttl();
  }

  void KeepAliveLoop() {
    SteadyClock::time_point next;
    {
      absl::MutexLock lock(&mu);
      next = SteadyClock::now() + KeepAliveInterval();
    }
    for (;;) {
      {
        absl::MutexLock lock(&mu);
        const auto wait = std::max(next - SteadyClock::now(), SteadyClock::duration::zero());
        auto stop_or_kick = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stopping || kick; };
        mu.AwaitWithTimeout(absl::Condition(&stop_or_kick), absl::FromChrono(wait));
        if (stopping) return;
        kick = false;
        if (expired) {  // nothing to keep alive until Rejoin() kicks
          next = SteadyClock::now() + KeepAliveInterval();
          continue;
        }
      }
      const int64_t id = lease_id;
      const int64_t sent = SteadyNanos();
      absl::StatusOr<int64_t> ttl = KeepAliveOnce(id);
      absl::MutexLock lock(&mu);
      if (stopping) return;
      if (id != lease_id) {  // rejoined meanwhile
        next = SteadyClock::now();
        continue;
      }
      const milliseconds interval = KeepAliveInterval();
      if (ttl.ok() && *ttl > 0) {
        lease_deadline_ns = sent + *ttl * 1'000'000'000;
        if (!alive) spdlog::info("etcd: lease {:x} of node {} confirmed again", id, options.node_id);
        alive = true;
        next = SteadyClock::now() + interval;
      } else if (ttl.ok()) {
        spdlog::error("etcd: lease {:x} of node {} expired; the node must rejoin", id,
                      options.node_id);
        alive = false;
        expired = true;
      } else {
        if (alive) {
          spdlog::warn("etcd: keep-alive of lease {:x} failed: {}", id,
                       std::string(ttl.status().message()));
          // The watch may hang on a dead connection too: make it reconnect and re-read.
          if (watch_context != nullptr) watch_context->TryCancel();
        }
        alive = false;
        next = SteadyClock::now() + std::min(interval, milliseconds(200));
      }
      if (!expired && SteadyNanos() >= lease_deadline_ns) {
        spdlog::error("etcd: lease {:x} of node {} ran out unconfirmed; the node must rejoin", id,
                      options.node_id);
        alive = false;
        expired = true;
      }
    }
  }

  // Reads every member; returns the revision of the read.
  absl::StatusOr<int64_t> ReadMembers() {
    etcdserverpb::RangeRequest request;
    request.set_key(members_prefix);
    request.set_range_end(PrefixEnd(members_prefix));
    etcdserverpb::RangeResponse response;
    grpc::ClientContext context;
    SetDeadline(context, /*wait_for_ready=*/true);
    absl::Status status = FromGrpc(kv->Range(&context, request, &response), "Range (members)");
    if (!status.ok()) return status;
    absl::MutexLock lock(&mu);
    members.clear();
    for (const mvccpb::KeyValue& entry : response.kvs()) {
      members[entry.key().substr(members_prefix.size())] = entry.value();
    }
    members_revision = response.header().revision();
    return members_revision;
  }

  std::vector<Member> SortedMembers() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    std::vector<Member> out;
    out.reserve(members.size());
    for (const auto& [id, address] : members) out.push_back(Member{id, address});
    return out;
  }

  // Calls on_members when the list changed since the last call (only the watch thread calls).
  void Deliver() {
    std::vector<Member> list;
    {
      absl::MutexLock lock(&mu);
      list = SortedMembers();
      if (delivered_once && list == delivered) return;
      delivered = list;
      delivered_once = true;
    }
    if (on_members) on_members(list);
  }

  // Watches the members from revision `from` until the stream ends. Returns whether etcd
  // accepted the watch.
  bool WatchFrom(int64_t from) {
    grpc::ClientContext context;  // no deadline: cancelled by Leave() or a failed keep-alive
    {
      absl::MutexLock lock(&mu);
      if (stopping) return false;
      watch_context = &context;
    }
    auto stream = watch->Watch(&context);
    etcdserverpb::WatchRequest request;
    etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
    create->set_key(members_prefix);
    create->set_range_end(PrefixEnd(members_prefix));
    create->set_start_revision(from);
    bool created = false;
    if (stream->Write(request)) {
      etcdserverpb::WatchResponse response;
      while (stream->Read(&response)) {
        if (response.created()) created = true;
        if (response.compact_revision() > 0 || response.canceled()) {
          spdlog::info("etcd: watch of the members ended (compacted at {}): {}",
                       response.compact_revision(), response.cancel_reason());
          break;
        }
        if (response.events_size() == 0) continue;
        {
          absl::MutexLock lock(&mu);
          for (const mvccpb::Event& event : response.events()) {
            std::string id = event.kv().key().substr(members_prefix.size());
            if (event.type() == mvccpb::Event::PUT) {
              members[std::move(id)] = event.kv().value();
            } else {
              members.erase(id);
            }
          }
        }
        Deliver();
      }
    }
    {
      absl::MutexLock lock(&mu);
      watch_context = nullptr;
    }
    context.TryCancel();
    (void)stream->Finish();
    return created;
  }

  // Sleeps `duration` unless stopping. Returns false when stopping.
  bool Sleep(milliseconds duration) {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(duration));
    return !stopping;
  }

  void WatchLoop() {
    Deliver();  // the initial list, read by Start
    int64_t from;
    {
      absl::MutexLock lock(&mu);
      from = members_revision + 1;
    }
    milliseconds backoff = kMinBackoff;
    for (;;) {
      if (from == 0) {  // reconnected: re-read, then watch what follows
        absl::StatusOr<int64_t> revision = ReadMembers();
        if (!revision.ok()) {
          if (!Sleep(backoff)) return;
          backoff = std::min(backoff * 2, kMaxBackoff);
          continue;
        }
        from = *revision + 1;
        Deliver();
      }
      if (WatchFrom(from)) backoff = kMinBackoff;
      from = 0;
      {
        // The stream broke: etcd may be gone, which a keep-alive now tells (not at its turn).
        absl::MutexLock lock(&mu);
        kick = true;
      }
      if (!Sleep(backoff)) return;
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

  // Stops both threads (bounded by rpc_timeout: a call in flight finishes or times out).
  void StopThreads() {
    {
      absl::MutexLock lock(&mu);
      stopping = true;
      if (watch_context != nullptr) watch_context->TryCancel();
    }
    if (keepalive_thread.joinable()) keepalive_thread.join();
    if (watch_thread.joinable()) watch_thread.join();
    running = false;
    alive = false;
  }

  std::string ClaimKey(uint32_t partition) const { return absl::StrCat(claims_prefix, partition); }

  // A failed write on our lease with NOT_FOUND means etcd no longer has the lease.
  absl::Status LeaseError(const grpc::Status& status, const char* what) {
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      absl::MutexLock lock(&mu);
      alive = false;
      expired = true;
      return absl::FailedPreconditionError(
          absl::StrCat("the lease of node ", options.node_id, " expired: Rejoin()"));
    }
    return FromGrpc(status, what);
  }
};

EtcdCluster::EtcdCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EtcdCluster::~EtcdCluster() { Leave(); }

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(
    EtcdOptions options, std::function<void(const std::vector<Member>&)> on_members) {
  if (options.endpoint.empty() || options.node_id.empty()) {
    return absl::InvalidArgumentError("etcd: an endpoint and a node id are required");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->on_members = std::move(on_members);
  const EtcdOptions& o = impl->options;
  impl->members_prefix = absl::StrCat("/massa/", o.cluster, "/members/");
  impl->claims_prefix = absl::StrCat("/massa/", o.cluster, "/claims/");
  impl->member_key = impl->members_prefix + o.node_id;

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(kMinBackoff.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(kMinBackoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kMaxBackoff.count()));
  impl->channel = grpc::CreateCustomChannel(o.endpoint, grpc::InsecureChannelCredentials(), args);
  impl->kv = etcdserverpb::KV::NewStub(impl->channel);
  impl->lease = etcdserverpb::Lease::NewStub(impl->channel);
  impl->watch = etcdserverpb::Watch::NewStub(impl->channel);

  if (!impl->channel->WaitForConnected(std::chrono::system_clock::now() + o.rpc_timeout)) {
    return absl::UnavailableError(absl::StrCat("etcd at ", o.endpoint, " cannot be reached within ",
                                               o.rpc_timeout.count(), " ms"));
  }
  impl->withdrawn = !o.listed;
  absl::Status status = impl->Join();
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> revision = impl->ReadMembers();
  if (!revision.ok()) {
    (void)impl->Revoke(impl->lease_id);
    return revision.status();
  }
  Impl* raw = impl.get();
  raw->running = true;
  raw->keepalive_thread = std::thread([raw] { raw->KeepAliveLoop(); });
  raw->watch_thread = std::thread([raw] { raw->WatchLoop(); });
  spdlog::info("etcd: node {} joined cluster {} (lease {:x})", o.node_id, o.cluster,
               raw->lease_id.load());
  return std::unique_ptr<EtcdCluster>(new EtcdCluster(std::move(impl)));
}

std::vector<Member> EtcdCluster::members() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->SortedMembers();
}

bool EtcdCluster::healthy() const {
  return impl_->running && impl_->alive && !impl_->expired &&
         SteadyNanos() < impl_->lease_deadline_ns;
}

int64_t EtcdCluster::lease_id() const { return impl_->lease_id; }

absl::StatusOr<int64_t> EtcdCluster::Claim(uint32_t partition) {
  if (!impl_->running) return absl::FailedPreconditionError("etcd: this node left the cluster");
  if (impl_->expired) {
    return absl::FailedPreconditionError(
        absl::StrCat("the lease of node ", impl_->options.node_id, " expired: Rejoin()"));
  }
  const std::string key = impl_->ClaimKey(partition);
  const int64_t id = impl_->lease_id;
  const etcdserverpb::TxnRequest txn = CreateIfAbsent(key, impl_->options.node_id, id);
  etcdserverpb::TxnResponse response;
  grpc::ClientContext context;
  impl_->SetDeadline(context, /*wait_for_ready=*/true);
  const grpc::Status status = impl_->kv->Txn(&context, txn, &response);
  if (!status.ok()) return impl_->LeaseError(status, "Txn (claim)");
  // The put's revision is the transaction's, which becomes the key's create revision.
  if (response.succeeded()) return response.header().revision();
  if (response.responses_size() == 0 || response.responses(0).response_range().kvs_size() == 0) {
    return absl::InternalError("etcd Txn (claim): no holder in a failed claim");
  }
  const mvccpb::KeyValue& held = response.responses(0).response_range().kvs(0);
  if (held.value() == impl_->options.node_id && held.lease() == id) return held.create_revision();
  if (held.value() == impl_->options.node_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "partition ", partition, " is held by an earlier lease of this node (", held.lease(), ")"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("partition ", partition, " is held by ", held.value()));
}

absl::StatusOr<std::string> EtcdCluster::CreateOrRead(const std::string& key,
                                                      const std::string& value) {
  const etcdserverpb::TxnRequest txn = CreateIfAbsent(key, value, /*lease=*/0);
  etcdserverpb::TxnResponse response;
  grpc::ClientContext context;
  impl_->SetDeadline(context, /*wait_for_ready=*/true);
  const grpc::Status status = impl_->kv->Txn(&context, txn, &response);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("etcd Txn (", key, "): ", status.error_message()));
  }
  if (response.succeeded()) return value;
  if (response.responses_size() == 0 || response.responses(0).response_range().kvs_size() == 0) {
    return absl::InternalError(absl::StrCat("etcd Txn (", key, "): neither created nor read"));
  }
  return response.responses(0).response_range().kvs(0).value();
}

absl::Status EtcdCluster::RecordPartitions(uint32_t count) {
  const std::string value = absl::StrCat(count);
  absl::StatusOr<std::string> recorded =
      CreateOrRead(absl::StrCat("/massa/", impl_->options.cluster, "/partitions"), value);
  if (!recorded.ok()) return recorded.status();
  if (*recorded == value) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("cluster '", impl_->options.cluster, "' was created with ", *recorded,
                   " partitions, and this node was started with ", count,
                   " (--partitions must be the same on every node)"));
}

absl::StatusOr<std::string> EtcdCluster::ClusterSecret() {
  std::random_device random;
  std::string secret;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&secret, absl::Hex(random(), absl::kZeroPad8));
  return CreateOrRead(absl::StrCat("/massa/", impl_->options.cluster, "/secret"), secret);
}

absl::Status EtcdCluster::Release(uint32_t partition) {
  const std::string key = impl_->ClaimKey(partition);
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(etcdserverpb::Compare::VALUE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_value(impl_->options.node_id);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  etcdserverpb::TxnResponse response;
  grpc::ClientContext context;
  impl_->SetDeadline(context, /*wait_for_ready=*/true);
  return FromGrpc(impl_->kv->Txn(&context, txn, &response), "Txn (release)");
}

absl::StatusOr<std::pair<std::string, int64_t>> EtcdCluster::Holder(uint32_t partition) {
  etcdserverpb::RangeRequest request;
  request.set_key(impl_->ClaimKey(partition));
  etcdserverpb::RangeResponse response;
  grpc::ClientContext context;
  impl_->SetDeadline(context, /*wait_for_ready=*/true);
  absl::Status status = FromGrpc(impl_->kv->Range(&context, request, &response), "Range (claim)");
  if (!status.ok()) return status;
  if (response.kvs_size() == 0) return std::make_pair(std::string(), int64_t{0});
  return std::make_pair(response.kvs(0).value(), response.kvs(0).create_revision());
}

absl::Status EtcdCluster::Rejoin() {
  absl::MutexLock lifecycle(&impl_->lifecycle_mu);
  if (impl_->stopped) return absl::FailedPreconditionError("etcd: this node left the cluster");
  if (!impl_->expired) {
    return absl::FailedPreconditionError(
        absl::StrCat("the lease of node ", impl_->options.node_id, " has not expired"));
  }
  // etcd may still hold the old lease (it extends leases when it restarts): revoke it, so that
  // its membership and claims go now.
  absl::Status status = impl_->Revoke(impl_->lease_id);
  if (!status.ok()) return status;
  status = impl_->Join();
  if (!status.ok()) return status;
  spdlog::info("etcd: node {} rejoined cluster {} (lease {:x})", impl_->options.node_id,
               impl_->options.cluster, impl_->lease_id.load());
  return absl::OkStatus();
}

absl::Status EtcdCluster::SetMember(bool member) {
  absl::MutexLock lifecycle(&impl_->lifecycle_mu);
  if (impl_->stopped) return absl::FailedPreconditionError("etcd: this node left the cluster");
  impl_->withdrawn = !member;
  if (member) {
    if (impl_->expired) {
      return absl::FailedPreconditionError(
          absl::StrCat("the lease of node ", impl_->options.node_id, " expired: Rejoin()"));
    }
    return impl_->Register(impl_->lease_id);
  }
  // Only this lease's key: after a restart under the same id, another lease may hold it.
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* compare = txn.add_compare();
  compare->set_key(impl_->member_key);
  compare->set_target(etcdserverpb::Compare::LEASE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_lease(impl_->lease_id);
  txn.add_success()->mutable_request_delete_range()->set_key(impl_->member_key);
  etcdserverpb::TxnResponse response;
  grpc::ClientContext context;
  impl_->SetDeadline(context, /*wait_for_ready=*/true);
  return FromGrpc(impl_->kv->Txn(&context, txn, &response), "Txn (withdraw)");
}

void EtcdCluster::Leave() {
  absl::MutexLock lifecycle(&impl_->lifecycle_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->StopThreads();
  absl::Status status = impl_->Revoke(impl_->lease_id);
  if (!status.ok()) {
    spdlog::warn("etcd: node {} could not revoke its lease (it expires after its TTL): {}",
                 impl_->options.node_id, std::string(status.message()));
  }
}

void EtcdCluster::AbandonForTest() {
  absl::MutexLock lifecycle(&impl_->lifecycle_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->StopThreads();
}

}  // namespace massa::cluster
