// A cluster of real massa nodes on loopback (docs/cluster.md): a throwaway etcd and PostgreSQL,
// three shopping-cart functions and three `massa serve --cluster`; commands go to any node and
// reach their entity's owner; nothing acknowledged is lost when a node is killed, frozen,
// leaves or joins, or loses its function; a cut peer link moves no ownership; without etcd
// every node stops serving, and serves again when etcd is back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "example/escart/escart.grpc.pb.h"
#include "example/orders/orders.grpc.pb.h"
#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "fakes/etcd_server.h"
#include "fakes/postgres_server.h"
#include "fakes/spawn.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"
#include "massa/internal/v1/peer.grpc.pb.h"
#include "massa/test/crdt.grpc.pb.h"
#include "massa/test/slow.grpc.pb.h"

namespace massa::testing {
namespace {

namespace cart = ::example::shoppingcart;
namespace orders = ::example::orders;
namespace escart = ::example::escart;
namespace slow = ::massa::test::slow;
namespace crdtfn = ::massa::test::crdt;

constexpr int kNodes = 3;
constexpr int kPartitions = 16;
constexpr int kCarts = 20;
constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kEventually = std::chrono::seconds(30);

std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds deadline = std::chrono::seconds(10)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + deadline);
  return context;
}

std::string CartId(int i) { return "c" + std::to_string(i); }

// A TCP relay on loopback that the test controls: relays each connection to 127.0.0.1:target
// until Cut(), which shuts every relayed connection down and refuses new ones until Restore().
class TcpRelay {
 public:
  TcpRelay() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        listen(listener_, 64) == 0 &&
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    threads_.emplace_back([this] { Accept(); });
  }
  ~TcpRelay() {
    stop_ = true;
    for (;;) {  // pumps started by the accept loop meanwhile are joined too
      std::vector<std::thread> threads;
      {
        std::lock_guard<std::mutex> lock(mu_);
        threads.swap(threads_);
      }
      if (threads.empty()) break;
      for (std::thread& thread : threads) thread.join();
    }
    close(listener_);
  }

  int port() const { return port_; }
  void SetTarget(int port) { target_ = port; }
  // Shuts every relayed connection down before it returns, so that no byte sent after the cut
  // reaches the target (a pump waiting in poll() would otherwise relay one more request).
  void Cut() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = true;
    for (int fd : live_) shutdown(fd, SHUT_RDWR);
  }
  void Restore() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = false;
  }

 private:
  void Accept() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (poll(&ready, 1, 50) <= 0) continue;
      const int client = accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      const int server = cut_ || target_ == 0 ? -1 : Connect(target_);
      std::lock_guard<std::mutex> lock(mu_);
      if (server < 0 || cut_) {  // cut while connecting
        close(client);
        if (server >= 0) close(server);
        continue;
      }
      live_.insert(client);
      live_.insert(server);
      threads_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  static int Connect(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  // Copies bytes both ways until either side closes (Cut() shuts both down), or the relay stops.
  void Pump(int a, int b) {
    char buffer[16384];
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    while (!stop_) {
      if (poll(fds, 2, 50) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        closed = n <= 0;
        for (ssize_t sent = 0; !closed && sent < n;) {
          // MSG_NOSIGNAL: a side Cut() shut down is EPIPE here, not a SIGPIPE for the test.
          const ssize_t w =
              send(fds[1 - i].fd, buffer + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
          closed = w <= 0;
          sent += std::max<ssize_t>(w, 0);
        }
      }
      if (closed) break;
    }
    std::lock_guard<std::mutex> lock(mu_);  // not shut down by Cut() once the number is reused
    live_.erase(a);
    live_.erase(b);
    close(a);
    close(b);
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<int> target_{0};
  std::atomic<bool> cut_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::set<int> live_;  // relayed sockets open now
  std::vector<std::thread> threads_;
};

// The value of metric `name` (summed over labels) in /metrics of the admin port; -1 when the
// admin server does not answer.
double Metric(int admin_port, const std::string& name) {
  HttpResult result = HttpCall(admin_port, "GET", "/metrics", "", "");
  if (result.status != 200) return -1;
  double sum = 0;
  size_t at = 0;
  while ((at = result.body.find('\n' + name, at)) != std::string::npos) {
    at += 1;
    const size_t end = result.body.find('\n', at);
    const std::string line = result.body.substr(at, end - at);
    const char after = line.size() > name.size() ? line[name.size()] : '\0';
    if (after == ' ' || after == '{') sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<PostgresServer>> started = PostgresServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    postgres_ = started->release();
  }
  static void TearDownTestSuite() {
    delete postgres_;
    postgres_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(postgres_, nullptr);
    absl::StatusOr<std::unique_ptr<EtcdServer>> etcd = EtcdServer::Start();
    if (etcd.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << etcd.status();
    }
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    absl::StatusOr<std::string> db = postgres_->CreateDatabase(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(db.ok()) << db.status();
    conninfo_ = *db;
    nodes_.resize(kNodes);
    for (int i = 0; i < kNodes; ++i) ASSERT_NO_FATAL_FAILURE(StartNode(i));
    ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2}));
  }

  struct Node {
    std::unique_ptr<Process> function;
    std::unique_ptr<Process> massa;
    MassaEndpoints endpoints;
    std::shared_ptr<grpc::Channel> channel;
    int starts = 0;
  };

  // Starts node i's function unless it runs, then (unless `function_only`) its massa.
  void StartNode(int i, bool function_only = false) {
    Node& node = nodes_[i];
    const std::string socket = "unix:" + dir_.path() + "/function-" + std::to_string(i) + ".sock";
    if (node.function == nullptr) {
      std::vector<std::string> argv = {"/usr/bin/env"};
      argv.insert(argv.end(), function_env_.begin(), function_env_.end());
      argv.insert(argv.end(), {function_bin_, "--listen", socket});
      node.function = std::make_unique<Process>(
          argv, dir_.path() + "/function-" + std::to_string(i) + ".log");
      ASSERT_TRUE(node.function->WaitForLine("listening on", kStartTimeout))
          << node.function->log();
    }
    if (function_only) return;
    std::vector<std::string> flags = {
        "--store", conninfo_, "--cluster", "etcd://" + etcd_->endpoint(), "--node-id",
        "n" + std::to_string(i), "--partitions", std::to_string(kPartitions), "--lease-ttl", "2s"};
    // The other nodes reach n2 through the relay.
    if (i == 2 && relay_ != nullptr) {
      flags.push_back("--advertise-address");
      flags.push_back("127.0.0.1:" + std::to_string(relay_->port()));
    }
    std::optional<MassaEndpoints> endpoints = StartMassa(
        node.massa, socket, dir_.path() + "/unused",
        dir_.path() + "/massa-" + std::to_string(i) + "-" + std::to_string(node.starts++) + ".log",
        flags);
    ASSERT_TRUE(endpoints.has_value()) << node.massa->log();
    node.endpoints = *endpoints;
    if (i == 2 && relay_ != nullptr) {
      const std::string& address = endpoints->grpc_address;
      relay_->SetTarget(std::stoi(address.substr(address.rfind(':') + 1)));
    }
    node.channel = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
  }

  // Waits until the nodes `live` see each other and own every partition between them.
  void WaitForPartitions(const std::vector<int>& live) {
    ASSERT_TRUE(PollUntil(
        [&] {
          double owned = 0;
          for (int i : live) {
            const int admin = nodes_[i].endpoints.admin_port;
            if (Metric(admin, "massa_cluster_members") != static_cast<double>(live.size())) {
              return false;
            }
            const double mine = Metric(admin, "massa_cluster_partitions_owned");
            if (mine <= 0) return false;  // not settled: the moves to a new node are under way
            owned += mine;
          }
          return owned == kPartitions;
        },
        kEventually))
        << "the partitions did not settle on nodes " << live.size() << "\n"
        << nodes_[live[0]].massa->log();
  }

  // The two cart examples (value entity and event sourced) share their API's shape.
  struct ValueCart {
    using Service = cart::ShoppingCart;
    using Add = cart::AddLineItem;
    using Get = cart::GetShoppingCart;
    using Cart = cart::Cart;
  };
  struct EventSourcedCart {
    using Service = escart::ShoppingCart;
    using Add = escart::AddLineItem;
    using Get = escart::GetShoppingCart;
    using Cart = escart::Cart;
  };

  // The quantity of product "p" in cart `id`, read through node `i`; -1 on failure.
  template <typename Api = ValueCart>
  int Quantity(int i, const std::string& id) {
    typename Api::Get get;
    get.set_cart_id(id);
    typename Api::Cart c;
    grpc::Status status =
        Api::Service::NewStub(nodes_[i].channel)->GetCart(Context().get(), get, &c);
    if (!status.ok()) return -1;
    for (const auto& item : c.items()) {
      if (item.product_id() == "p") return item.quantity();
    }
    return 0;
  }

  // Adds one "p" to cart `id` through `channel`.
  template <typename Api = ValueCart>
  static grpc::Status Add(const std::shared_ptr<grpc::Channel>& channel, const std::string& id) {
    typename Api::Add add;
    add.set_cart_id(id);
    add.set_product_id("p");
    add.set_name("P");
    add.set_quantity(1);
    google::protobuf::Empty empty;
    return Api::Service::NewStub(channel)->AddItem(Context().get(), add, &empty);
  }

  static inline PostgresServer* postgres_ = nullptr;
  std::unique_ptr<TcpRelay> relay_;  // set (before SetUp) to put n2's peer link through it
  std::string function_bin_ = CART_FUNCTION_BIN;  // the function beside every node
  std::vector<std::string> function_env_;         // NAME=value in its environment
  TempDir dir_;
  std::unique_ptr<EtcdServer> etcd_;
  std::string conninfo_;
  std::vector<Node> nodes_;
};

// Writers on every node add to 20 carts: every cart ends with exactly the number of acknowledged
// adds, whichever node reads it, and commands were forwarded between nodes.
TEST_F(ClusterTest, CommandsReachTheOwnerFromAnyNodeAndNothingIsLost) {
  std::vector<std::atomic<int>> acknowledged(kCarts);
  std::vector<std::thread> writers;
  for (int w = 0; w < 2 * kNodes; ++w) {
    writers.emplace_back([&, w] {
      const std::shared_ptr<grpc::Channel>& channel = nodes_[w % kNodes].channel;
      for (int round = 0; round < 30; ++round) {
        const int c = (round + w) % kCarts;
        if (Add(channel, CartId(c)).ok()) ++acknowledged[c];
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  int total = 0;
  for (int c = 0; c < kCarts; ++c) {
    total += acknowledged[c];
    for (int i = 0; i < kNodes; ++i) {
      EXPECT_EQ(Quantity(i, CartId(c)), acknowledged[c].load()) << CartId(c) << " via n" << i;
    }
  }
  EXPECT_EQ(total, 2 * kNodes * 30) << "every add should succeed with all nodes up";
  double forwarded = 0;
  for (const Node& node : nodes_) forwarded += Metric(node.endpoints.admin_port, "massa_cluster_forwarded_total");
  EXPECT_GT(forwarded, 0);
  // The admin endpoint shows the node's view: members, partitions held, counters.
  for (int i = 0; i < kNodes; ++i) {
    HttpResult view = HttpCall(nodes_[i].endpoints.admin_port, "GET", "/v1/cluster", "", "");
    ASSERT_EQ(view.status, 200) << view.body;
    EXPECT_NE(view.body.find("\"node\":\"n" + std::to_string(i) + "\""), std::string::npos)
        << view.body;
    for (int j = 0; j < kNodes; ++j) {
      EXPECT_NE(view.body.find("{\"id\":\"n" + std::to_string(j) + "\""), std::string::npos)
          << view.body;
    }
    const size_t owned = view.body.find("\"owned\":[");
    ASSERT_NE(owned, std::string::npos) << view.body;
    const std::string list = view.body.substr(owned + 9, view.body.find(']', owned) - owned - 9);
    const double held =
        list.empty() ? 0 : 1 + static_cast<double>(std::count(list.begin(), list.end(), ','));
    EXPECT_EQ(held, Metric(nodes_[i].endpoints.admin_port, "massa_cluster_partitions_owned"))
        << view.body;
    EXPECT_NE(view.body.find("\"healthy\":true"), std::string::npos) << view.body;
  }
  // The Peer service shares the public gRPC port: a client that is not a node (it lacks the
  // cluster's secret) is refused, and its command reaches no entity.
  massa::internal::v1::PeerCommand forged;
  forged.set_service("example.shoppingcart.ShoppingCart");
  forged.set_method("AddItem");
  cart::AddLineItem add;
  add.set_cart_id(CartId(0));
  add.set_product_id("p");
  add.set_name("P");
  add.set_quantity(100);
  forged.set_payload(add.SerializeAsString());
  forged.set_cluster_secret("guess");
  massa::internal::v1::PeerResult refused;
  grpc::Status call = massa::internal::v1::Peer::NewStub(nodes_[0].channel)
                          ->Forward(Context().get(), forged, &refused);
  ASSERT_TRUE(call.ok()) << call.error_message();
  EXPECT_EQ(refused.code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED))
      << refused.message();
  EXPECT_EQ(Quantity(0, CartId(0)), acknowledged[0].load());
}

// A node killed with SIGKILL under load: its partitions move to the others within the lease TTL
// and every acknowledged add is there (an add that failed may or may not have been applied).
TEST_F(ClusterTest, AKilledNodesPartitionsMoveAndNothingAcknowledgedIsLost) {
  std::vector<std::atomic<int>> acknowledged(kCarts);
  std::vector<std::atomic<int>> attempted(kCarts);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      const std::shared_ptr<grpc::Channel>& channel = nodes_[w % 2].channel;  // n0 and n1
      for (int round = 0; !stop.load(); ++round) {
        const int c = (round + w) % kCarts;
        ++attempted[c];
        if (Add(channel, CartId(c)).ok()) ++acknowledged[c];
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  nodes_[2].massa->Signal(SIGKILL);
  ASSERT_NE(nodes_[2].massa->Wait(std::chrono::seconds(10)), -1);
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writes on the new owners
  stop = true;
  for (std::thread& writer : writers) writer.join();
  for (int c = 0; c < kCarts; ++c) {
    const int quantity = Quantity(0, CartId(c));
    EXPECT_GE(quantity, acknowledged[c].load()) << CartId(c) << ": an acknowledged add is lost";
    EXPECT_LE(quantity, attempted[c].load()) << CartId(c);
    EXPECT_EQ(Quantity(1, CartId(c)), quantity) << CartId(c);
  }
}

// The same over HTTP/JSON: adds through every node's HTTP port reach the owner, and every node
// reads each cart with all of them.
TEST_F(ClusterTest, HttpJsonThroughAnyNodeReachesTheOwner) {
  for (int c = 0; c < kCarts; ++c) {
    for (int i = 0; i < kNodes; ++i) {
      HttpResult added = HttpCall(nodes_[i].endpoints.http_port, "POST",
                                  "/carts/" + CartId(c) + "/items",
                                  R"({"productId":"p","name":"P","quantity":1})");
      ASSERT_EQ(added.status, 200) << CartId(c) << " via n" << i << ": " << added.body;
    }
  }
  for (int c = 0; c < kCarts; ++c) {
    for (int i = 0; i < kNodes; ++i) {
      HttpResult got = HttpCall(nodes_[i].endpoints.http_port, "GET", "/carts/" + CartId(c));
      ASSERT_EQ(got.status, 200) << got.body;
      EXPECT_NE(got.body.find(R"("quantity":3)"), std::string::npos)
          << CartId(c) << " via n" << i << ": " << got.body;
    }
  }
}

// A second node with the id of a live one is refused, and exits saying why; the live one goes on.
TEST_F(ClusterTest, ASecondNodeWithALiveNodesIdExitsNamingIt) {
  std::unique_ptr<Process> twin;
  (void)StartMassa(twin, "unix:" + dir_.path() + "/function-0.sock", dir_.path() + "/unused",
                   dir_.path() + "/twin.log",
                   {"--store", conninfo_, "--cluster", "etcd://" + etcd_->endpoint(), "--node-id",
                    "n0", "--partitions", std::to_string(kPartitions)});
  ASSERT_NE(twin, nullptr);
  EXPECT_NE(twin->Wait(std::chrono::seconds(20)), 0);
  EXPECT_NE(twin->log().find("held by a live node"), std::string::npos) << twin->log();
  EXPECT_TRUE(Add(nodes_[0].channel, CartId(0)).ok());
  EXPECT_EQ(Metric(nodes_[1].endpoints.admin_port, "massa_cluster_members"), kNodes);
}

// A node started with another partition count than the cluster was created with exits naming
// both (it would place entities elsewhere); the others go on.
TEST_F(ClusterTest, ANodeWithAnotherPartitionCountExitsNamingBoth) {
  std::unique_ptr<Process> odd;
  (void)StartMassa(odd, "unix:" + dir_.path() + "/function-0.sock", dir_.path() + "/unused",
                   dir_.path() + "/odd.log",
                   {"--store", conninfo_, "--cluster", "etcd://" + etcd_->endpoint(), "--node-id",
                    "odd", "--partitions", std::to_string(2 * kPartitions)});
  ASSERT_NE(odd, nullptr);
  EXPECT_NE(odd->Wait(std::chrono::seconds(20)), 0);
  EXPECT_NE(odd->log().find("created with " + std::to_string(kPartitions) + " partitions"),
            std::string::npos)
      << odd->log();
  EXPECT_EQ(Metric(nodes_[0].endpoints.admin_port, "massa_cluster_members"), kNodes);
  EXPECT_TRUE(Add(nodes_[0].channel, CartId(0)).ok());
}

// A planned scale-out and scale-in under load (3 -> 4 -> 3 nodes, SIGTERM for the leaver, gRPC
// clients of the others and an HTTP/JSON client of the leaver): the partitions move to the new
// node and back, nothing acknowledged is lost, and every node reads
// the latest state afterwards (a node that gets a partition back must not serve the copy it
// cached before the partition left).
TEST_F(ClusterTest, AJoinAndALeaveUnderLoadLoseNothingAndNoNodeReadsAStaleCopy) {
  std::vector<std::atomic<int>> acknowledged(kCarts);
  std::vector<std::atomic<int>> attempted(kCarts);
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> even_only{false};
  // Every cart is cached on its first owner before anything moves.
  for (int c = 0; c < kCarts; ++c) {
    ++attempted[c];
    ASSERT_TRUE(Add(nodes_[c % kNodes].channel, CartId(c)).ok());
    ++acknowledged[c];
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < kNodes; ++w) {
    // A copy: nodes_ grows below.
    writers.emplace_back([&, w, channel = nodes_[w].channel] {
      for (int round = 0; !stop.load(); ++round) {
        const int c = (round + w) % kCarts;
        if (even_only.load() && c % 2 == 1) continue;
        ++attempted[c];
        if (Add(channel, CartId(c)).ok()) {
          ++acknowledged[c];
        } else {
          ++failed;
        }
      }
    });
  }
  nodes_.resize(kNodes + 1);
  ASSERT_NO_FATAL_FAILURE(StartNode(kNodes));
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2, 3}));
  // A client of the new node over HTTP/JSON, until it is gone: what it acknowledged before and
  // during the SIGTERM must be there too.
  writers.emplace_back([&, port = nodes_[kNodes].endpoints.http_port] {
    for (int round = 0; !stop.load(); ++round) {
      const int c = round % kCarts;
      if (even_only.load() && c % 2 == 1) continue;
      ++attempted[c];
      HttpResult added = HttpCall(port, "POST", "/carts/" + CartId(c) + "/items",
                                  R"({"productId":"p","name":"P","quantity":1})");
      if (added.status == 200) {
        ++acknowledged[c];
      } else if (added.status == 0 && even_only.load()) {
        break;  // the node is gone
      } else {
        ++failed;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writes on the new owner
  // From now on the odd carts are only read: those the new node wrote go back to owners that
  // cached them before, and are read (not written) there after the leave.
  even_only = true;
  nodes_[kNodes].massa->Signal(SIGTERM);
  EXPECT_EQ(nodes_[kNodes].massa->Wait(std::chrono::seconds(20)), 0) << nodes_[kNodes].massa->log();
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writes on the old owners
  stop = true;
  for (std::thread& writer : writers) writer.join();
  int total = 0;
  for (int c = 0; c < kCarts; ++c) {
    total += acknowledged[c];
    for (int i = 0; i < kNodes; ++i) {
      const int quantity = Quantity(i, CartId(c));
      EXPECT_GE(quantity, acknowledged[c].load()) << CartId(c) << " via n" << i
                                                  << ": an acknowledged add is lost or stale";
      EXPECT_LE(quantity, attempted[c].load()) << CartId(c) << " via n" << i;
    }
  }
  std::printf("scale 3 -> 4 -> 3: %d adds acknowledged, %d failed during the moves\n", total,
              failed.load());
  double handoffs = 0;
  for (int i = 0; i <= kNodes; ++i) {
    handoffs += Metric(nodes_[i].endpoints.admin_port, "massa_cluster_handoffs_total");
  }
  EXPECT_GT(handoffs, 0) << "the old owners should have handed partitions to the new node";
}

// A node frozen (SIGSTOP) past its lease TTL: the others take its partitions; commands sent to
// it meanwhile wait. Thawed (SIGCONT), it finds its lease gone: it serves nothing under the old
// claims (what it was doing is fenced or version-checked by the store, and fails), joins again
// and serves. No acknowledged add is lost, none is applied twice.
TEST_F(ClusterTest, AFrozenNodeLosesItsPartitionsIsFencedAndRejoins) {
  std::vector<std::atomic<int>> acknowledged(kCarts);
  std::vector<std::atomic<int>> attempted(kCarts);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kNodes; ++w) {
    writers.emplace_back([&, w] {
      for (int round = 0; !stop.load(); ++round) {
        const int c = (round + w) % kCarts;
        ++attempted[c];
        if (Add(nodes_[w].channel, CartId(c)).ok()) ++acknowledged[c];
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  nodes_[2].massa->Signal(SIGSTOP);
  // n0 and n1 see n2 go (TTL 2 s) and take its partitions.
  ASSERT_TRUE(PollUntil(
      [&] {
        return Metric(nodes_[0].endpoints.admin_port, "massa_cluster_members") == 2 &&
               Metric(nodes_[0].endpoints.admin_port, "massa_cluster_partitions_owned") +
                       Metric(nodes_[1].endpoints.admin_port, "massa_cluster_partitions_owned") ==
                   kPartitions;
      },
      kEventually));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writes under the new claims
  nodes_[2].massa->Signal(SIGCONT);
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2}));
  EXPECT_TRUE(PollUntil(
      [&] {
        ++attempted[0];  // a failed add may still have been applied
        return Add(nodes_[2].channel, CartId(0)).ok();
      },
      kEventually))
      << "n2 does not serve again after it rejoined\n" << nodes_[2].massa->log();
  ++acknowledged[0];
  stop = true;
  for (std::thread& writer : writers) writer.join();
  for (int c = 0; c < kCarts; ++c) {
    for (int i = 0; i < kNodes; ++i) {
      const int quantity = Quantity(i, CartId(c));
      EXPECT_GE(quantity, acknowledged[c].load()) << CartId(c) << " via n" << i;
      EXPECT_LE(quantity, attempted[c].load()) << CartId(c) << " via n" << i;
    }
  }
  const std::string log = nodes_[2].massa->log();
  EXPECT_NE(log.find("lost its lease and joined again"), std::string::npos) << log;
}

// A node whose function is down withdraws from the members: the others take its partitions,
// and it still takes commands for them (it forwards them). With the function back it is a
// member again and owns partitions.
TEST_F(ClusterTest, ANodeWhoseFunctionIsDownHandsItsPartitionsOverAndTakesThemBack) {
  nodes_[2].function->Signal(SIGKILL);
  ASSERT_NE(nodes_[2].function->Wait(std::chrono::seconds(10)), -1);
  nodes_[2].function.reset();
  ASSERT_TRUE(PollUntil(
      [&] {
        return Metric(nodes_[0].endpoints.admin_port, "massa_cluster_members") == 2 &&
               Metric(nodes_[2].endpoints.admin_port, "massa_cluster_partitions_owned") == 0 &&
               Metric(nodes_[0].endpoints.admin_port, "massa_cluster_partitions_owned") +
                       Metric(nodes_[1].endpoints.admin_port, "massa_cluster_partitions_owned") ==
                   kPartitions;
      },
      kEventually))
      << nodes_[2].massa->log();
  for (int c = 0; c < kCarts; ++c) {
    EXPECT_TRUE(Add(nodes_[2].channel, CartId(c)).ok()) << "n2 should forward " << CartId(c);
    EXPECT_EQ(Quantity(0, CartId(c)), 1) << CartId(c);
  }
  ASSERT_NO_FATAL_FAILURE(StartNode(2, /*function_only=*/true));
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2}));
  EXPECT_GT(Metric(nodes_[2].endpoints.admin_port, "massa_cluster_partitions_owned"), 0);
  for (int c = 0; c < kCarts; ++c) EXPECT_EQ(Quantity(2, CartId(c)), 1) << CartId(c);
}

class ClusterLinkTest : public ClusterTest {
 protected:
  ClusterLinkTest() { relay_ = std::make_unique<TcpRelay>(); }
};

// The peer link to n2 cut (etcd still sees every node): commands for n2's entities sent to
// another node fail with UNAVAILABLE, ownership does not move, n2 still serves them itself,
// and with the link back they are forwarded again.
TEST_F(ClusterLinkTest, ACutPeerLinkIsUnavailableAndMovesNoOwnership) {
  ASSERT_NE(relay_->port(), 0);
  for (int c = 0; c < kCarts; ++c) ASSERT_TRUE(Add(nodes_[0].channel, CartId(c)).ok()) << c;
  const double n2_owned = Metric(nodes_[2].endpoints.admin_port, "massa_cluster_partitions_owned");
  ASSERT_GT(n2_owned, 0);

  relay_->Cut();
  std::vector<int> unreachable;
  for (int c = 0; c < kCarts; ++c) {
    grpc::Status status = Add(nodes_[0].channel, CartId(c));
    if (!status.ok()) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
      unreachable.push_back(c);
    }
  }
  EXPECT_FALSE(unreachable.empty()) << "no cart of n2 among " << kCarts;
  for (int c : unreachable) {
    EXPECT_EQ(Quantity(2, CartId(c)), 1) << CartId(c) << ": n2 serves its own entities";
  }
  EXPECT_EQ(Metric(nodes_[2].endpoints.admin_port, "massa_cluster_partitions_owned"), n2_owned);
  EXPECT_EQ(Metric(nodes_[0].endpoints.admin_port, "massa_cluster_members"), kNodes);

  relay_->Restore();
  for (int c : unreachable) {
    EXPECT_TRUE(PollUntil([&] { return Quantity(0, CartId(c)) == 1; }, kEventually))
        << CartId(c) << " is not forwarded again";
  }
}

class ClusterOrdersTest : public ClusterTest {
 protected:
  ClusterOrdersTest() {
    function_bin_ = ORDERS_FUNCTION_BIN;
    function_env_ = {"ORDERS_PAYMENT_WINDOW=1h"};
  }
};

// Orders placed through every node, each with a payment deadline (a durable timer) and events
// to the report (the outbox); the node owning some of them is killed before the deadlines: each
// deadline fires once, on the orders' new owners (each node fires the timers of its own
// partitions only), and the report counts every order and every cancellation exactly once.
TEST_F(ClusterOrdersTest, ADeadNodesTimersFireOnceOnTheNewOwner) {
  constexpr int kOrders = 12;
  auto channel_of = [&](int i) { return nodes_[i % kNodes].channel; };
  for (int i = 0; i < kOrders; ++i) {
    orders::PlaceOrder place;
    place.set_order_id("o" + std::to_string(i));
    place.set_customer("ann");
    place.set_total_cents(500);
    place.set_payment_window_ms(3000);
    orders::Order reply;
    grpc::Status status = orders::Orders::NewStub(channel_of(i))->Place(Context().get(), place, &reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  nodes_[2].massa->Signal(SIGKILL);
  ASSERT_NE(nodes_[2].massa->Wait(std::chrono::seconds(10)), -1);
  auto get = [&](int i) -> std::optional<orders::Order> {
    orders::GetOrder request;
    request.set_order_id("o" + std::to_string(i));
    orders::Order reply;
    if (!orders::Orders::NewStub(channel_of(i % 2))->Get(Context().get(), request, &reply).ok()) {
      return std::nullopt;
    }
    return reply;
  };
  auto report = [&]() -> std::optional<orders::ReportState> {
    orders::GetReport request;
    request.set_report_id("all");
    orders::ReportState reply;
    if (!orders::Reports::NewStub(nodes_[0].channel)->Get(Context().get(), request, &reply).ok()) {
      return std::nullopt;
    }
    return reply;
  };
  EXPECT_TRUE(PollUntil(
      [&] {
        for (int i = 0; i < kOrders; ++i) {
          std::optional<orders::Order> order = get(i);
          if (!order.has_value() || order->status() != orders::ORDER_STATUS_CANCELLED) return false;
        }
        return true;
      },
      kEventually))
      << "every unpaid order should be cancelled by its deadline";
  EXPECT_TRUE(PollUntil(
      [&] {
        std::optional<orders::ReportState> r = report();
        return r.has_value() && r->today().cancelled() == kOrders;
      },
      kEventually));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a duplicate would arrive by now
  std::optional<orders::ReportState> r = report();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->today().placed(), kOrders) << "each placement reported once";
  EXPECT_EQ(r->today().cancelled(), kOrders) << "each deadline fired once";
  EXPECT_EQ(Metric(nodes_[0].endpoints.admin_port, "massa_timer_ticks_total") +
                Metric(nodes_[1].endpoints.admin_port, "massa_timer_ticks_total"),
            kOrders)
      << "each deadline fired by one node only";
}

class ClusterScaleTest : public ClusterTest {
 protected:
  ClusterScaleTest() {
    function_bin_ = SLOW_FUNCTION_BIN;
    function_env_ = {"SLOW_FUNCTION_TRACE=" + dir_.path() + "/trace"};
  }

  // Adds one to counter `key` through `channel`, the handler taking 1 ms.
  static grpc::Status Count(const std::shared_ptr<grpc::Channel>& channel, int key) {
    slow::SleepRequest request;
    request.set_id("k" + std::to_string(key));
    request.set_ms(1);
    slow::Count reply;
    return slow::SlowCounter::NewStub(channel)->Add(Context().get(), request, &reply);
  }

  // Counter `key` read through `channel`; -1 on failure.
  static int64_t Counted(const std::shared_ptr<grpc::Channel>& channel, int key) {
    slow::SleepRequest request;
    request.set_id("k" + std::to_string(key));
    slow::Count reply;
    if (!slow::SlowCounter::NewStub(channel)->Get(Context().get(), request, &reply).ok()) return -1;
    return reply.value();
  }

  // The commands every function ran, from their traces: per entity, [enter, exit] in ns.
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> Executions() {
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> executions;
    for (const std::filesystem::directory_entry& file :
         std::filesystem::directory_iterator(dir_.path())) {
      if (file.path().filename().string().rfind("trace.", 0) != 0) continue;
      std::istringstream lines(ReadFile(file.path().string()));
      std::string key;
      int64_t enter = 0;
      int64_t exit = 0;
      while (lines >> key >> enter >> exit) executions[key].emplace_back(enter, exit);
    }
    return executions;
  }
};

// Scale 3 -> 5 -> 3 (two joins at once, then two SIGTERMs at once) while writers on the staying
// nodes go through 10,000 entities: no acknowledged write lost, none invented, and no two
// commands of one entity ever overlapped in time across the five functions (each logs when it
// enters and leaves a command, on the machine's steady clock). Prints how long a command took
// to succeed (retried until it did) during the moves.
TEST_F(ClusterScaleTest, ThreeToFiveToThreeLosesNothingAndNeverOverlaps) {
  constexpr int kEntities = 10000;
  constexpr int kWriters = 6;
  std::vector<std::atomic<int>> acknowledged(kEntities);
  std::vector<std::atomic<int>> attempted(kEntities);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<int64_t> waits_us;  // per command: first attempt until acknowledged
  int failed = 0;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w, channel = nodes_[w % kNodes].channel] {
      std::vector<int64_t> waits;
      int failures = 0;
      // Each writer goes through its share of the entities at least once.
      for (int round = 0; !stop.load() || round < kEntities / kWriters + 1; ++round) {
        const int key = (round * kWriters + w) % kEntities;
        const auto start = std::chrono::steady_clock::now();
        for (;;) {  // a command that failed is sent again until it succeeds (or the test ends)
          ++attempted[key];
          if (Count(channel, key).ok()) {
            ++acknowledged[key];
            break;
          }
          ++failures;
          if (stop.load()) break;
        }
        waits.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count());
      }
      std::lock_guard<std::mutex> lock(mu);
      waits_us.insert(waits_us.end(), waits.begin(), waits.end());
      failed += failures;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  nodes_.resize(kNodes + 2);
  ASSERT_NO_FATAL_FAILURE(StartNode(3));
  ASSERT_NO_FATAL_FAILURE(StartNode(4));
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2, 3, 4}));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // writes on the new owners
  nodes_[3].massa->Signal(SIGTERM);
  nodes_[4].massa->Signal(SIGTERM);
  EXPECT_EQ(nodes_[3].massa->Wait(std::chrono::seconds(20)), 0) << nodes_[3].massa->log();
  EXPECT_EQ(nodes_[4].massa->Wait(std::chrono::seconds(20)), 0) << nodes_[4].massa->log();
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1, 2}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writes on the old owners
  stop = true;
  for (std::thread& writer : writers) writer.join();

  // Every entity, read through the three nodes in turn, four readers at once.
  std::atomic<int> lost{0}, invented{0}, unread{0}, written{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&, r] {
      for (int key = r; key < kEntities; key += 4) {
        const int64_t value = Counted(nodes_[key % kNodes].channel, key);
        if (value < 0) {
          ++unread;
        } else {
          if (value < acknowledged[key].load()) ++lost;
          if (value > attempted[key].load()) ++invented;
        }
        if (acknowledged[key].load() > 0) ++written;
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(unread.load(), 0);
  EXPECT_EQ(lost.load(), 0) << "acknowledged writes lost";
  EXPECT_EQ(invented.load(), 0) << "more than attempted";
  EXPECT_EQ(written.load(), kEntities) << "the writers should go through every entity";

  int overlaps = 0;
  int64_t commands = 0;
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> executions = Executions();
  for (auto& [key, runs] : executions) {
    std::sort(runs.begin(), runs.end());
    commands += static_cast<int64_t>(runs.size());
    for (size_t i = 1; i < runs.size(); ++i) {
      if (runs[i].first < runs[i - 1].second) {
        if (++overlaps <= 5) {
          ADD_FAILURE() << key << " ran twice at once: [" << runs[i - 1].first << ", "
                        << runs[i - 1].second << "] and [" << runs[i].first << ", "
                        << runs[i].second << "]";
        }
      }
    }
  }
  EXPECT_EQ(overlaps, 0);
  EXPECT_GE(executions.size(), static_cast<size_t>(kEntities));
  std::sort(waits_us.begin(), waits_us.end());
  ASSERT_FALSE(waits_us.empty());
  auto at = [&](double q) { return waits_us[static_cast<size_t>(q * (waits_us.size() - 1))]; };
  std::printf(
      "scale 3 -> 5 -> 3 on %d entities: %zu commands acknowledged, %d failed attempts, %lld "
      "commands traced; time to success p50 %lld us, p99 %lld us, max %lld us\n",
      kEntities, waits_us.size(), failed, static_cast<long long>(commands),
      static_cast<long long>(at(0.5)), static_cast<long long>(at(0.99)),
      static_cast<long long>(waits_us.back()));
}

class ClusterEventSourcedTest : public ClusterTest {
 protected:
  ClusterEventSourcedTest() { function_bin_ = ES_CART_FUNCTION_BIN; }
};

// Event-sourced carts (journal and snapshots) written through every node, then a node killed
// with SIGKILL under load: its carts are rebuilt from their journals on the new owners, and
// every cart holds each acknowledged add (and no more than were attempted), read alike through
// both survivors.
TEST_F(ClusterEventSourcedTest, AKilledNodesJournalsAreReplayedOnTheNewOwnersLosingNothing) {
  std::vector<std::atomic<int>> acknowledged(kCarts);
  std::vector<std::atomic<int>> attempted(kCarts);
  std::atomic<bool> stop{false};
  std::atomic<bool> n2_gone{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2 * kNodes; ++w) {
    writers.emplace_back([&, w] {
      const int i = w % kNodes;
      for (int round = 0; !stop.load(); ++round) {
        if (i == 2 && n2_gone.load()) return;
        const int c = (round + w) % kCarts;
        ++attempted[c];
        if (Add<EventSourcedCart>(nodes_[i].channel, CartId(c)).ok()) ++acknowledged[c];
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  n2_gone = true;
  nodes_[2].massa->Signal(SIGKILL);
  ASSERT_NE(nodes_[2].massa->Wait(std::chrono::seconds(10)), -1);
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // writes on the new owners
  stop = true;
  for (std::thread& writer : writers) writer.join();
  int total = 0;
  for (int c = 0; c < kCarts; ++c) {
    total += acknowledged[c];
    const int quantity = Quantity<EventSourcedCart>(0, CartId(c));
    EXPECT_GE(quantity, acknowledged[c].load()) << CartId(c) << ": an acknowledged add is lost";
    EXPECT_LE(quantity, attempted[c].load()) << CartId(c);
    EXPECT_EQ(Quantity<EventSourcedCart>(1, CartId(c)), quantity) << CartId(c);
  }
  EXPECT_GT(total, kCarts) << "the writers should have got through";
}

class ClusterLikesTest : public ClusterTest {
 protected:
  ClusterLikesTest() { function_bin_ = LIKES_FUNCTION_BIN; }
};

// CRDT entities in a cluster (the likes example over HTTP/JSON): likes (a PNCounter) and a
// room's users (an ORSet) written through every node, each on that node's replica; every node
// reads the whole value, and a node killed with SIGKILL loses none of it.
TEST_F(ClusterLikesTest, CrdtEntitiesThroughEveryNodeSurviveANodesDeath) {
  constexpr int kArticles = 8;
  for (int a = 0; a < kArticles; ++a) {
    for (int i = 0; i < kNodes; ++i) {
      HttpResult liked = HttpCall(nodes_[i].endpoints.http_port, "POST",
                                  "/articles/a" + std::to_string(a) + ":like", "{}");
      ASSERT_EQ(liked.status, 200) << "a" << a << " via n" << i << ": " << liked.body;
    }
  }
  for (int i = 0; i < kNodes; ++i) {
    HttpResult joined = HttpCall(nodes_[i].endpoints.http_port, "POST", "/rooms/lobby:join",
                                 R"({"user":"u)" + std::to_string(i) + R"("})");
    ASSERT_EQ(joined.status, 200) << joined.body;
  }
  HttpResult left =
      HttpCall(nodes_[2].endpoints.http_port, "POST", "/rooms/lobby:leave", R"({"user":"u0"})");
  ASSERT_EQ(left.status, 200) << left.body;
  nodes_[2].massa->Signal(SIGKILL);
  ASSERT_NE(nodes_[2].massa->Wait(std::chrono::seconds(10)), -1);
  ASSERT_NO_FATAL_FAILURE(WaitForPartitions({0, 1}));
  for (int a = 0; a < kArticles; ++a) {
    for (int i = 0; i < 2; ++i) {
      HttpResult got;
      EXPECT_TRUE(PollUntil(
          [&] {
            got = HttpCall(nodes_[i].endpoints.http_port, "GET",
                           "/articles/a" + std::to_string(a) + "/likes");
            return got.body.find(R"("likes":"3")") != std::string::npos;
          },
          kEventually))
          << "a" << a << " via n" << i << ": " << got.body;
    }
  }
  for (int i = 0; i < 2; ++i) {
    HttpResult online;
    EXPECT_TRUE(PollUntil(
        [&] {
          online = HttpCall(nodes_[i].endpoints.http_port, "GET", "/rooms/lobby/online");
          return online.body.find(R"("users":["u1","u2"])") != std::string::npos;
        },
        kEventually))
        << "via n" << i << ": " << online.body;
  }
}

class ClusterCrdtTest : public ClusterTest {
 protected:
  ClusterCrdtTest() {
    function_bin_ = CRDT_FUNCTION_BIN;
    relay_ = std::make_unique<TcpRelay>();  // n2's peer link goes through it
  }

  // Adds `n` to PNCounter `id` through node `i`, with write consistency `consistency`.
  grpc::Status AddTo(int i, const std::string& id, int64_t n, const std::string& consistency = "") {
    crdtfn::Op op;
    op.set_id(id);
    op.set_n(n);
    op.set_consistency(consistency);
    crdtfn::View view;
    return crdtfn::Balance::NewStub(nodes_[i].channel)->Add(Context().get(), op, &view);
  }

  // PNCounter `id` read through node `i`; INT64_MIN on failure.
  int64_t BalanceOf(int i, const std::string& id) {
    crdtfn::Op op;
    op.set_id(id);
    crdtfn::View view;
    if (!crdtfn::Balance::NewStub(nodes_[i].channel)->Get(Context().get(), op, &view).ok()) {
      return INT64_MIN;
    }
    return view.counter();
  }

  // Waits until every node reads `expected` in `id`.
  void ExpectEverywhere(const std::string& id, int64_t expected) {
    for (int i = 0; i < kNodes; ++i) {
      int64_t seen = 0;
      EXPECT_TRUE(PollUntil([&] { return (seen = BalanceOf(i, id)) == expected; }, kEventually))
          << id << " via n" << i << " reads " << seen << ", not " << expected;
    }
  }
};

// Writers on every node add to one CRDT at once: each add runs where it arrives, on that
// node's replica (nothing is forwarded), no add is lost to another node's concurrent write,
// and every node reads the exact total.
TEST_F(ClusterCrdtTest, EveryNodeWritesItsReplicaAndEveryNodeReadsTheTotal) {
  constexpr int kAdds = 40;
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2 * kNodes; ++w) {
    writers.emplace_back([&, w] {
      for (int r = 0; r < kAdds; ++r) {
        if (!AddTo(w % kNodes, "b", 1).ok()) ++failed;
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(failed.load(), 0);
  ExpectEverywhere("b", 2 * kNodes * kAdds);
  double forwarded = 0;
  for (const Node& node : nodes_) {
    forwarded += Metric(node.endpoints.admin_port, "massa_cluster_forwarded_total");
  }
  EXPECT_EQ(forwarded, 0) << "a CRDT's commands run where they arrive";
}

// The peer link to n2 cut: n2 still writes its replica (and the store has it); a write with
// consistency ALL through n0 is applied and durable but answered UNAVAILABLE, naming how many
// replicas confirmed it; MAJORITY succeeds with n0 and n1. With the link back every node reads
// every write.
TEST_F(ClusterCrdtTest, WithALinkCutTheReplicasStayWritableAndAllSaysWhoIsMissing) {
  ASSERT_TRUE(AddTo(0, "b", 1).ok());
  relay_->Cut();
  grpc::Status local = AddTo(2, "b", 10);
  EXPECT_TRUE(local.ok()) << local.error_message();
  grpc::Status all = AddTo(0, "b", 100, "all");
  EXPECT_EQ(all.error_code(), grpc::StatusCode::UNAVAILABLE) << all.error_message();
  EXPECT_NE(all.error_message().find("only 2 of 3 replicas confirmed it"), std::string::npos)
      << all.error_message();
  grpc::Status majority = AddTo(0, "b", 1000, "majority");
  EXPECT_TRUE(majority.ok()) << majority.error_message();
  relay_->Restore();
  ExpectEverywhere("b", 1111);
}

// A CRDT entity's timer on another service fires once (on the owner of the entity's partition),
// and moving the timer on carries no token: the entity stays writable on every node.
TEST_F(ClusterCrdtTest, ATimerACrdtSetsOnAnotherServiceLeavesItWritableEverywhere) {
  crdtfn::Op remind;
  remind.set_id("b");
  remind.set_item("h");
  remind.set_n(5);
  crdtfn::View view;
  grpc::Status set =
      crdtfn::Balance::NewStub(nodes_[1].channel)->Remind(Context().get(), remind, &view);
  ASSERT_TRUE(set.ok()) << set.error_message();
  for (int i = 0; i < kNodes; ++i) {
    int64_t hits = 0;
    EXPECT_TRUE(PollUntil(
        [&] {
          crdtfn::Op op;
          op.set_id("h");
          crdtfn::View got;
          if (!crdtfn::Hits::NewStub(nodes_[i].channel)->Get(Context().get(), op, &got).ok()) {
            return false;
          }
          return (hits = got.counter()) == 5;
        },
        kEventually))
        << "n" << i << " reads " << hits << " hits";
  }
  for (int i = 0; i < kNodes; ++i) {
    grpc::Status added = AddTo(i, "b", 1);
    EXPECT_TRUE(added.ok()) << "n" << i << ": " << added.error_message();
  }
  ExpectEverywhere("b", kNodes);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a second tick would be here
  crdtfn::Op op;
  op.set_id("h");
  crdtfn::View got;
  ASSERT_TRUE(crdtfn::Hits::NewStub(nodes_[0].channel)->Get(Context().get(), op, &got).ok());
  EXPECT_EQ(got.counter(), 5) << "the timer fired once";
}

// etcd gone: entity commands stop (ownership is unknown), but CRDTs, which no node owns, are
// still served by every node.
TEST_F(ClusterCrdtTest, WithoutEtcdCrdtsAreStillServed) {
  ASSERT_TRUE(AddTo(0, "b", 1).ok());
  ASSERT_TRUE(etcd_->Kill().ok());
  EXPECT_TRUE(PollUntil(
      [&] {
        return HttpCall(nodes_[1].endpoints.admin_port, "GET", "/readyz", "", "").status == 503;
      },
      kEventually));
  for (int i = 0; i < kNodes; ++i) {
    grpc::Status added = AddTo(i, "b", 1);
    EXPECT_TRUE(added.ok()) << "n" << i << ": " << added.error_message();
  }
  ExpectEverywhere("b", 1 + kNodes);
  ASSERT_TRUE(etcd_->Restart().ok());
}

// etcd gone: every node stops serving entities (consistency over availability) and turns not
// ready; etcd back: they serve again.
TEST_F(ClusterTest, WithoutEtcdNoNodeServesAndWithItBackTheyDo) {
  ASSERT_TRUE(Add(nodes_[0].channel, CartId(0)).ok());
  ASSERT_TRUE(etcd_->Kill().ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(PollUntil([&] { return !Add(nodes_[i].channel, CartId(1)).ok(); }, kEventually))
        << "n" << i << " still serves without etcd";
    EXPECT_TRUE(PollUntil(
        [&] { return HttpCall(nodes_[i].endpoints.admin_port, "GET", "/readyz", "", "").status == 503; },
        kEventually))
        << "n" << i;
  }
  ASSERT_TRUE(etcd_->Restart().ok());
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(PollUntil([&] { return Add(nodes_[i].channel, CartId(2)).ok(); }, kEventually))
        << "n" << i << " does not serve again";
  }
}

}  // namespace
}  // namespace massa::testing
