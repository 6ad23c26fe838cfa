#include "cluster/node.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cluster/etcd.h"
#include "cluster/partition.h"
#include "cluster/peer.h"
#include "crdt/change.h"
#include "spdlog/spdlog.h"

namespace massa::cluster {
namespace {

using Steady = std::chrono::steady_clock;

// A forwarded command (the receiver does not forward it again), and until when (Unix ms) a
// command waits for its partition's owner.
constexpr char kForwardedMetadata[] = "massa-forwarded";
constexpr char kOwnerWaitMetadata[] = "massa-owner-wait";
constexpr auto kRebalanceEvery = std::chrono::milliseconds(250);
constexpr auto kOwnerRetry = std::chrono::milliseconds(20);
constexpr auto kClaimRetry = std::chrono::milliseconds(50);
constexpr int kFunctionDownRounds = 4;  // rounds of kRebalanceEvery: a second

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string* Find(const Metadata& metadata, std::string_view key) {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Erase(Metadata& metadata, std::string_view key) {
  std::erase_if(metadata, [key](const auto& entry) { return entry.first == key; });
}

CommandResult Unavailable(std::string message, Metadata metadata = {}) {
  return CommandResult{absl::UnavailableError(std::move(message)), {}, std::move(metadata)};
}

}  // namespace

struct ClusterNode::Impl {
  explicit Impl(std::shared_ptr<PeerSecret> s) : secret(std::move(s)), peers(secret) {}

  ClusterOptions options;
  std::unique_ptr<EtcdCluster> etcd;
  std::shared_ptr<PeerSecret> secret;  // read from etcd at start
  PeerClients peers;
  Dispatcher* local = nullptr;

  mutable std::mutex mu;
  std::vector<std::string> ids;                                 // live members, sorted
  absl::flat_hash_map<std::string, std::string> addresses;      // member -> peer address
  std::vector<int64_t> tokens;                                  // per partition; 0 = not held
  // Per partition: held and taking commands (false while a handoff drains it).
  std::vector<bool> accepting;
  std::vector<std::string> desired;                             // per partition
  uint64_t forwarded = 0;
  uint64_t claims = 0;
  uint64_t releases = 0;
  bool stopping = false;
  bool members_changed = false;
  bool serving = false;            // Serve() was called
  bool departing = false;          // Depart(): withdrawn for good
  bool withdrawn = true;           // not listed (before Serve, function down, or departing)
  int function_down_rounds = 0;    // consecutive rebalance rounds with the function down
  std::condition_variable wake;
  // Commands waiting for their partition's owner, by when to look again.
  std::multimap<Steady::time_point, std::pair<Command, ResultCallback>> waiting;
  std::thread worker;

  void OnMembers(const std::vector<Member>& members) {
    std::lock_guard<std::mutex> lock(mu);
    ids.clear();
    addresses.clear();
    for (const Member& member : members) {
      ids.push_back(member.id);
      addresses[member.id] = member.address;
    }
    std::sort(ids.begin(), ids.end());
    for (uint32_t p = 0; p < options.partitions; ++p) desired[p] = DesiredOwner(p, ids);
    members_changed = true;  // rebalance now, not at the next round
    wake.notify_all();
  }

  // Claims the partitions this node should own and hands over the others; with the lease lost,
  // forgets every claim (the claims went with the lease, or will). Returns whether a partition
  // this node should own is still held by another node (its claim is to be tried again soon).
  bool Rebalance() {
    if (!etcd->healthy()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        std::fill(tokens.begin(), tokens.end(), 0);
        std::fill(accepting.begin(), accepting.end(), false);
      }
      // Once the lease expired: a new one (FAILED_PRECONDITION until then, UNAVAILABLE while
      // etcd is away; the next round tries again).
      if (absl::Status rejoined = etcd->Rejoin(); rejoined.ok()) {
        spdlog::warn("cluster: node {} lost its lease and joined again", options.node_id);
      }
      return false;
    }
    FollowFunction();
    std::vector<uint32_t> leaving;
    bool pending = false;
    for (uint32_t p = 0; p < options.partitions; ++p) {
      bool want = false;
      bool held = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return false;
        want = desired[p] == options.node_id;
        held = tokens[p] != 0;
        if (!want && held) {
          accepting[p] = false;  // from now on its commands go to the new owner
          leaving.push_back(p);
        }
      }
      if (want && !held) {
        absl::StatusOr<int64_t> token = etcd->Claim(p);
        if (token.ok()) {
          // Whatever this node still caches of the partition, from an earlier ownership, is
          // stale: the next command reads the store.
          if (options.release_entities) options.release_entities(p);
          std::lock_guard<std::mutex> lock(mu);
          tokens[p] = *token;
          accepting[p] = true;
          ++claims;
        } else {
          pending = true;  // held by the old owner until it releases (or its lease expires)
        }
      }
    }
    if (!leaving.empty()) HandOver(leaving);
    return pending;
  }

  // Withdraws from the members while the function is down (after kFunctionDownRounds rounds),
  // and is listed again when it is back (unless departing).
  void FollowFunction() {
    if (!options.function_up) return;
    const bool up = options.function_up();
    bool change = false;
    bool member = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      function_down_rounds = up ? 0 : function_down_rounds + 1;
      if (!withdrawn && serving && function_down_rounds >= kFunctionDownRounds) {
        change = true;
        member = false;
      } else if (withdrawn && up && serving && !departing) {
        change = true;
        member = true;
      }
    }
    if (!change) return;
    absl::Status status = etcd->SetMember(member);
    if (!status.ok()) {
      spdlog::warn("cluster: {} the members: {}", member ? "joining" : "leaving",
                   status.ToString());
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    withdrawn = !member;
    if (member) {
      spdlog::warn("cluster: the function of node {} is back: it takes partitions again",
                   options.node_id);
    } else {
      spdlog::warn("cluster: the function of node {} is down: it hands its partitions over",
                   options.node_id);
    }
  }

  // Hands `partitions` (no longer taking commands) to their new owners: waits (a bounded time)
  // for their commands on this node to finish and drops their entities from the cache, then
  // releases the claims, and the new owners claim them.
  void HandOver(const std::vector<uint32_t>& partitions) {
    const Steady::time_point deadline = Steady::now() + options.drain_timeout;
    while (options.release_entities) {
      size_t busy = 0;
      for (uint32_t p : partitions) busy += options.release_entities(p);
      if (busy == 0) break;
      if (Steady::now() >= deadline) {
        spdlog::warn("cluster: handing over {} partition(s) with {} entities still busy",
                     partitions.size(), busy);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (uint32_t p : partitions) {
      {
        std::lock_guard<std::mutex> lock(mu);
        tokens[p] = 0;
        ++releases;
      }
      absl::Status released = etcd->Release(p);
      if (!released.ok()) {
        spdlog::warn("cluster: releasing partition {}: {}", p, released.ToString());
      }
    }
  }

  // Dispatches the waiting commands whose time has come, again, through the router.
  void RunWaiting() {
    std::vector<std::pair<Command, ResultCallback>> due;
    {
      std::lock_guard<std::mutex> lock(mu);
      const Steady::time_point now = Steady::now();
      while (!waiting.empty() && waiting.begin()->first <= now) {
        due.push_back(std::move(waiting.begin()->second));
        waiting.erase(waiting.begin());
      }
    }
    for (auto& [command, done] : due) local->Dispatch(std::move(command), std::move(done));
  }

  void Work() {
    Steady::time_point next_rebalance = Steady::now();
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu);
        Steady::time_point until = next_rebalance;
        if (!waiting.empty()) until = std::min(until, waiting.begin()->first);
        wake.wait_until(lock, until, [&] { return stopping || members_changed; });
        if (stopping) break;
        if (members_changed) {
          members_changed = false;
          next_rebalance = Steady::now();
        }
      }
      RunWaiting();
      if (Steady::now() >= next_rebalance) {
        // A partition waiting for its old owner's release is tried again soon.
        next_rebalance = Steady::now() + (Rebalance() ? kClaimRetry : kRebalanceEvery);
      }
    }
    // Whatever still waits is answered.
    std::multimap<Steady::time_point, std::pair<Command, ResultCallback>> left;
    {
      std::lock_guard<std::mutex> lock(mu);
      left.swap(waiting);
    }
    for (auto& [when, entry] : left) {
      std::move(entry.second)(Unavailable("this massa node is leaving the cluster"));
    }
  }
};

ClusterNode::ClusterNode(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterNode::~ClusterNode() { Stop(); }

absl::StatusOr<std::unique_ptr<ClusterNode>> ClusterNode::Start(ClusterOptions options) {
  if (options.partitions == 0) return absl::InvalidArgumentError("partitions must be positive");
  auto impl = std::make_shared<Impl>(options.secret != nullptr ? options.secret
                                                               : std::make_shared<PeerSecret>());
  impl->options = options;
  impl->tokens.assign(options.partitions, 0);
  impl->accepting.assign(options.partitions, false);
  impl->desired.assign(options.partitions, std::string());
  EtcdOptions etcd;
  etcd.endpoint = options.etcd_endpoint;
  etcd.cluster = options.cluster;
  etcd.node_id = options.node_id;
  etcd.peer_address = options.peer_address;
  etcd.ttl = options.lease_ttl;
  etcd.listed = false;  // Serve() lists it
  Impl* raw = impl.get();
  absl::StatusOr<std::unique_ptr<EtcdCluster>> joined = EtcdCluster::Start(
      etcd, [raw](const std::vector<Member>& members) { raw->OnMembers(members); });
  if (!joined.ok()) return joined.status();
  impl->etcd = *std::move(joined);
  if (absl::Status recorded = impl->etcd->RecordPartitions(options.partitions); !recorded.ok()) {
    return recorded;
  }
  absl::StatusOr<std::string> secret = impl->etcd->ClusterSecret();
  if (!secret.ok()) return secret.status();
  impl->secret->Set(*std::move(secret));
  impl->OnMembers(impl->etcd->members());
  impl->worker = std::thread([raw] { raw->Work(); });
  return std::unique_ptr<ClusterNode>(new ClusterNode(std::move(impl)));
}

void ClusterNode::SetLocal(Dispatcher* local) { impl_->local = local; }

bool ClusterNode::TakeRemote(std::string_view entity_type, Command& command,
                             ResultCallback& done) {
  Impl& impl = *impl_;
  if (!impl.etcd->healthy()) {
    std::move(done)(Unavailable(
        "this massa node lost its lease on etcd: it serves no entity until etcd is back"));
    return true;
  }
  const uint32_t p = PartitionOf(entity_type, command.entity_key, impl.options.partitions);
  const bool forwarded = Find(command.metadata, kForwardedMetadata) != nullptr;
  std::string owner;
  std::string address;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    if (impl.accepting[p]) {
      Erase(command.metadata, kForwardedMetadata);
      Erase(command.metadata, kOwnerWaitMetadata);
      return false;  // ours: run here
    }
    owner = impl.desired[p];
    auto it = impl.addresses.find(owner);
    if (it != impl.addresses.end()) address = it->second;
  }
  const std::string what = absl::StrCat("partition ", p, " (", std::string(entity_type), "/",
                                        command.entity_key, ")");
  if (owner == impl.options.node_id || owner.empty()) {
    // This node should own it and is claiming it (or nobody is a member yet): wait a little.
    int64_t until_ms = 0;
    if (const std::string* until = Find(command.metadata, kOwnerWaitMetadata);
        until == nullptr || !absl::SimpleAtoi(*until, &until_ms)) {
      until_ms = NowMs() + impl.options.owner_wait.count();
      Erase(command.metadata, kOwnerWaitMetadata);
      command.metadata.emplace_back(kOwnerWaitMetadata, std::to_string(until_ms));
    }
    const Steady::time_point retry = Steady::now() + kOwnerRetry;
    if (NowMs() + kOwnerRetry.count() > until_ms || retry > command.deadline ||
        impl.local == nullptr) {
      std::move(done)(Unavailable(absl::StrCat(what, " has no owner yet (ownership is moving)")));
      return true;
    }
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.waiting.emplace(retry, std::make_pair(std::move(command), std::move(done)));
    impl.wake.notify_all();
    return true;
  }
  if (forwarded) {
    // Sent here by a node whose view differs: tell it the owner this node knows.
    std::move(done)(Unavailable(absl::StrCat("node ", impl.options.node_id, " does not own ", what),
                                Metadata{{kOwnerHintMetadata, address}}));
    return true;
  }
  command.metadata.emplace_back(kForwardedMetadata, impl.options.node_id);
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    ++impl.forwarded;
  }
  std::shared_ptr<Impl> keep = impl_;
  Command copy = command;  // for the one retry at the owner the other node names
  impl.peers.Forward(
      address, std::move(command),
      [keep, address, copy = std::move(copy), done = std::move(done)](CommandResult result) mutable {
        const std::string* hint = Find(result.metadata, kOwnerHintMetadata);
        if (result.status.code() == absl::StatusCode::kUnavailable && hint != nullptr &&
            !hint->empty() && *hint != address) {
          keep->peers.Forward(*hint, std::move(copy), std::move(done));
          return;
        }
        std::move(done)(std::move(result));
      });
  return true;
}

uint64_t ClusterNode::FenceOf(std::string_view entity_type, std::string_view key) const {
  const uint32_t p = PartitionOf(entity_type, key, impl_->options.partitions);
  // A lease not known alive (a freeze past the TTL, etcd lost) may have taken the claim with it.
  if (!impl_->etcd->healthy()) return 0;
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<uint64_t>(impl_->tokens[p]);
}

void ClusterNode::ReplicateCrdt(const Command& like, std::string delta,
                                WriteConsistency consistency,
                                absl::AnyInvocable<void(absl::Status) &&> done) {
  Impl& impl = *impl_;
  std::vector<std::string> peers;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    for (const std::string& id : impl.ids) {
      if (id == impl.options.node_id) continue;
      if (auto it = impl.addresses.find(id); it != impl.addresses.end()) {
        peers.push_back(it->second);
      }
    }
  }
  const size_t replicas = peers.size() + 1;  // this node's too
  const size_t needed = consistency == WriteConsistency::kAll        ? peers.size()
                        : consistency == WriteConsistency::kMajority ? replicas / 2
                                                                     : 0;
  struct Tally {
    std::mutex mu;
    size_t confirmed = 0;
    size_t answered = 0;
    std::string first_error;
    absl::AnyInvocable<void(absl::Status) &&> done;  // empty once called
  };
  auto tally = std::make_shared<Tally>();
  if (needed == 0) {
    std::move(done)(absl::OkStatus());
  } else {
    tally->done = std::move(done);
  }
  const Steady::time_point deadline =
      std::min(like.deadline, Steady::now() + std::chrono::seconds(2));
  const char* level = consistency == WriteConsistency::kAll ? "ALL" : "MAJORITY";
  for (const std::string& address : peers) {
    Command merge;
    merge.service = like.service;
    merge.method = like.method;
    merge.entity_key = like.entity_key;
    merge.addressed = true;
    merge.deadline = deadline;
    merge.hops = like.hops;
    merge.crdt_merge = delta;
    std::shared_ptr<Impl> keep = impl_;
    impl.peers.Forward(address, std::move(merge),
                       [keep, tally, needed, count = peers.size(), replicas, level,
                        address](CommandResult result) {
                         absl::AnyInvocable<void(absl::Status) &&> call;
                         absl::Status status;
                         {
                           std::lock_guard<std::mutex> lock(tally->mu);
                           ++tally->answered;
                           if (result.status.ok()) {
                             ++tally->confirmed;
                           } else if (tally->first_error.empty()) {
                             tally->first_error = absl::StrCat(
                                 address, ": ", result.status.message());
                           }
                           if (tally->done && tally->confirmed >= needed) {
                             call = std::move(tally->done);
                             tally->done = nullptr;
                           } else if (tally->done && tally->answered == count) {
                             call = std::move(tally->done);
                             tally->done = nullptr;
                             status = absl::UnavailableError(absl::StrCat(
                                 "only ", tally->confirmed + 1, " of ", replicas,
                                 " replicas confirmed it (write consistency ", level,
                                 " needs ", needed + 1, "); first refusal: ",
                                 tally->first_error));
                           }
                         }
                         if (call) std::move(call)(std::move(status));
                       });
  }
}

std::vector<uint32_t> ClusterNode::Owned() const {
  std::vector<uint32_t> out;
  if (!impl_->etcd->healthy()) return out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (uint32_t p = 0; p < impl_->options.partitions; ++p) {
    if (impl_->tokens[p] != 0 && impl_->accepting[p]) out.push_back(p);
  }
  return out;
}

ClusterStats ClusterNode::stats() const {
  ClusterStats out;
  out.healthy = impl_->etcd->healthy();
  std::lock_guard<std::mutex> lock(impl_->mu);
  out.members = impl_->ids.size();
  out.owned = static_cast<size_t>(
      std::count_if(impl_->tokens.begin(), impl_->tokens.end(), [](int64_t t) { return t != 0; }));
  out.forwarded = impl_->forwarded;
  out.claims = impl_->claims;
  out.releases = impl_->releases;
  return out;
}

ClusterView ClusterNode::View() const {
  ClusterView out;
  out.node_id = impl_->options.node_id;
  out.cluster = impl_->options.cluster;
  out.partitions = impl_->options.partitions;
  out.stats = stats();
  out.healthy = out.stats.healthy;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const std::string& id : impl_->ids) {
    auto it = impl_->addresses.find(id);
    out.members.emplace_back(id, it == impl_->addresses.end() ? "" : it->second);
  }
  for (uint32_t p = 0; p < impl_->options.partitions; ++p) {
    if (impl_->tokens[p] != 0) out.owned.push_back(p);
  }
  return out;
}

bool ClusterNode::healthy() const { return impl_->etcd->healthy(); }

absl::Status ClusterNode::Serve() {
  Impl& impl = *impl_;
  absl::Status listed = impl.etcd->SetMember(true);
  if (!listed.ok()) return listed;
  std::lock_guard<std::mutex> lock(impl.mu);
  impl.serving = true;
  impl.withdrawn = false;
  return absl::OkStatus();
}

bool ClusterNode::Depart(std::chrono::milliseconds timeout) {
  Impl& impl = *impl_;
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    if (impl.stopping) return true;
    impl.departing = true;
  }
  if (absl::Status status = impl.etcd->SetMember(false); !status.ok()) {
    spdlog::warn("cluster: node {} could not withdraw before leaving: {}", impl.options.node_id,
                 status.ToString());
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    impl.withdrawn = true;
  }
  const Steady::time_point deadline = Steady::now() + timeout;
  while (Steady::now() < deadline) {
    if (stats().owned == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return stats().owned == 0;
}

void ClusterNode::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    std::fill(impl_->tokens.begin(), impl_->tokens.end(), 0);
    std::fill(impl_->accepting.begin(), impl_->accepting.end(), false);
    impl_->wake.notify_all();
  }
  if (impl_->worker.joinable()) impl_->worker.join();
  impl_->etcd->Leave();  // the lease goes, and the claims with it
}

}  // namespace massa::cluster
