// massa-cluster-bench: the client side of bench/cluster.sh (docs/cluster.md). It picks carts by
// the node that owns them, computing placement the way every node does (PartitionOf over the
// entity type and cart id, DesiredOwner over the sorted member ids, src/cluster/partition.h),
// and sends shopping-cart AddItem calls over gRPC.
//
//   massa-cluster-bench load --targets A[,B...] [--owner n1 --members n0,n1,n2] ...
//       closed loop: --concurrency threads, each one call in flight; call n goes to cart
//       n % carts through target n % targets; prints calls/s, p50, p99 and errors, and appends
//       one JSON record to --json-out. With --route, each call goes to its cart's owner (the
//       targets are the members' nodes, in the order of the sorted member ids).
//   massa-cluster-bench scaleout --targets A,B,C --members n0,n1,n2 --members-after n0,n1,n2,n3
//       --marks FILE ...
//       one lane per cart: each cart gets an AddItem every --interval-ms (sooner if a call was
//       late), whatever the other carts do, so a cart's gap between successful calls is its
//       unavailability. At the end it reads FILE ("start_ns N" and "settled_ns N", Unix ns,
//       written by the script while the load runs) and reports, per cart, the longest gap
//       between successes that overlaps [start, settled], against the same figure over an
//       equally long window before start; carts whose owner changes (moving) and the others
//       separately. Then it reads every cart back and checks its quantity against the
//       acknowledged adds (none lost) and the attempted ones (none invented).
//   massa-cluster-bench watch --admins n0=HOST:PORT,...,n3=HOST:PORT --start-ns N --marks FILE
//       polls every node's admin /metrics and /readyz (every --poll-ms) from --start-ns (the exec
//       of the new node, whose admin port is fixed in advance) until every node sees all the
//       members and owns exactly its rendezvous share; prints each change of the nodes'
//       owned/members counts with its time, appends "settled_ns N" to FILE, and one JSON
//       record with the times (ms after start) to --json-out.
//   massa-cluster-bench placement --partitions N --members n0,n1,n2,n3
//       prints "ID COUNT" per member: how many partitions rendezvous hashing gives it, what
//       massa_cluster_partitions_owned of each node reads once the partitions settled.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "cluster/partition.h"
#include "example/shoppingcart/shoppingcart.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

namespace cart = ::example::shoppingcart;
using Clock = std::chrono::steady_clock;
using Wall = std::chrono::system_clock;

struct Options {
  std::vector<std::string> targets;
  std::string entity_type = "example.shoppingcart.ShoppingCart";
  std::string prefix = "c";
  int carts = 200;
  uint32_t partitions = 64;
  std::vector<std::string> members;        // sorted ids, for --owner and moving carts
  std::vector<std::string> members_after;  // scaleout: the membership after the new node
  std::string owner;                       // only carts this member owns
  bool route = false;                      // each call to its cart's owner (targets by member)
  int concurrency = 1;
  double duration_s = 3;
  double warmup_s = 0.5;
  int interval_ms = 50;
  std::string marks;
  std::vector<std::string> admins;  // watch: id=host:port
  int64_t start_ns = 0;
  int poll_ms = 10;
  int timeout_ms = 8000;
  std::string scenario = "cluster";
  std::string json_out;
};

std::string OwnerOf(const Options& options, const std::vector<std::string>& members,
                    const std::string& id) {
  return massa::cluster::DesiredOwner(
      massa::cluster::PartitionOf(options.entity_type, id, options.partitions), members);
}

// The first --carts ids "<prefix><i>" (i = 0, 1, ...) whose desired owner is --owner (any
// owner without it).
std::vector<std::string> PickCarts(const Options& options) {
  std::vector<std::string> ids;
  for (int i = 0; static_cast<int>(ids.size()) < options.carts; ++i) {
    std::string id = options.prefix + std::to_string(i);
    if (options.owner.empty() || OwnerOf(options, options.members, id) == options.owner) {
      ids.push_back(std::move(id));
    }
    if (i > options.carts * 1000) {
      std::fprintf(stderr, "massa-cluster-bench: no carts owned by %s\n", options.owner.c_str());
      std::exit(2);
    }
  }
  return ids;
}

std::vector<std::unique_ptr<cart::ShoppingCart::Stub>> Stubs(const Options& options) {
  std::vector<std::unique_ptr<cart::ShoppingCart::Stub>> stubs;
  for (const std::string& target : options.targets) {
    stubs.push_back(cart::ShoppingCart::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials())));
  }
  return stubs;
}

grpc::Status Add(cart::ShoppingCart::Stub& stub, const std::string& id) {
  cart::AddLineItem add;
  add.set_cart_id(id);
  add.set_product_id("p");
  add.set_name("P");
  add.set_quantity(1);
  grpc::ClientContext context;
  context.set_deadline(Wall::now() + std::chrono::seconds(10));
  google::protobuf::Empty empty;
  return stub.AddItem(&context, add, &empty);
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// "CODE: message" with digits collapsed, so that errors differing only in a partition or key
// count together.
std::string ErrorKind(const grpc::Status& status) {
  std::string out = "code " + std::to_string(status.error_code()) + ": ";
  for (char c : status.error_message()) {
    if (c >= '0' && c <= '9') {
      if (out.empty() || out.back() != '#') out += '#';
    } else {
      out += c;
    }
  }
  return out.substr(0, 160);
}

std::string JsonEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

void Append(const Options& options, const std::string& record) {
  std::printf("%s\n", record.c_str());
  if (!options.json_out.empty()) std::ofstream(options.json_out, std::ios::app) << record << "\n";
}

int RunLoad(const Options& options) {
  const std::vector<std::string> ids = PickCarts(options);
  auto stubs = Stubs(options);
  // --route: the targets are the members' nodes in the members' (sorted) order; each cart's
  // calls go to its owner's.
  std::vector<size_t> route(ids.size());
  if (options.route) {
    if (options.targets.size() != options.members.size()) {
      std::fprintf(stderr, "massa-cluster-bench: --route needs one target per member\n");
      return 2;
    }
    for (size_t c = 0; c < ids.size(); ++c) {
      const std::string owner = OwnerOf(options, options.members, ids[c]);
      route[c] = static_cast<size_t>(
          std::find(options.members.begin(), options.members.end(), owner) -
          options.members.begin());
    }
  }
  std::atomic<uint64_t> next{0};
  std::atomic<int64_t> total_ok{0};  // with the warm-up's and the last ones'
  std::mutex mu;
  std::vector<double> latencies_us;
  int64_t errors = 0;
  std::map<std::string, int64_t> kinds;
  const Clock::time_point measure_from =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.warmup_s));
  const Clock::time_point end =
      measure_from + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.duration_s));
  std::vector<std::thread> threads;
  for (int t = 0; t < options.concurrency; ++t) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      int64_t my_errors = 0;
      std::map<std::string, int64_t> my_kinds;
      while (true) {
        const Clock::time_point sent = Clock::now();
        if (sent >= end) break;
        const uint64_t n = next.fetch_add(1);
        const size_t c = n % ids.size();  // with N carts a multiple of the targets, each cart
                                          // goes to one target (or, --route, to its owner)
        grpc::Status status = Add(*stubs[options.route ? route[c] : n % stubs.size()], ids[c]);
        const Clock::time_point done = Clock::now();
        if (status.ok()) total_ok.fetch_add(1);
        if (sent < measure_from || done > end) continue;
        if (status.ok()) {
          mine.push_back(std::chrono::duration<double, std::micro>(done - sent).count());
        } else {
          ++my_errors;
          ++my_kinds[ErrorKind(status)];
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
      errors += my_errors;
      for (const auto& [kind, count] : my_kinds) kinds[kind] += count;
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double rate = static_cast<double>(latencies_us.size()) / options.duration_s;
  std::fprintf(stderr, "%-28s %8.0f calls/s  p50 %6.0f us  p99 %6.0f us  errors %lld\n",
               options.scenario.c_str(), rate, Percentile(latencies_us, 50),
               Percentile(latencies_us, 99), static_cast<long long>(errors));
  for (const auto& [kind, count] : kinds) {
    std::fprintf(stderr, "  %lld x %s\n", static_cast<long long>(count), kind.c_str());
  }
  std::ostringstream record;
  record << "{\"scenario\":\"" << options.scenario << "\",\"targets\":" << options.targets.size()
         << ",\"owner\":\"" << options.owner << "\",\"routed\":" << (options.route ? "true" : "false")
         << ",\"carts\":" << ids.size()
         << ",\"concurrency\":" << options.concurrency << ",\"seconds\":" << options.duration_s
         << ",\"calls\":" << latencies_us.size() << ",\"calls_total\":" << total_ok.load()
         << ",\"calls_per_s\":" << static_cast<int64_t>(rate)
         << ",\"p50_us\":" << static_cast<int64_t>(Percentile(latencies_us, 50))
         << ",\"p99_us\":" << static_cast<int64_t>(Percentile(latencies_us, 99))
         << ",\"errors\":" << errors << "}";
  Append(options, record.str());
  return 0;
}

// Unix time in ns from a line "NAME N" of the marks file; 0 when absent.
int64_t Mark(const std::string& file, const std::string& name) {
  std::ifstream in(file);
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == name) return value;
  }
  return 0;
}

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Wall::now().time_since_epoch())
      .count();
}

int RunScaleout(const Options& options) {
  const std::vector<std::string> ids = PickCarts(options);
  auto stubs = Stubs(options);
  struct Lane {
    std::vector<int64_t> successes_ns;  // completion times (Unix ns) of successful adds
    std::vector<double> latencies_us;   // with their completion times, below
    std::vector<int64_t> latency_at_ns;
    int64_t attempted = 0;
    int64_t errors = 0;
    std::map<std::string, int64_t> kinds;
  };
  std::vector<Lane> lanes(ids.size());
  const int64_t start_ns = WallNs();
  const int64_t end_ns = start_ns + static_cast<int64_t>(options.duration_s * 1e9);
  const auto interval = std::chrono::milliseconds(options.interval_ms);
  std::vector<std::thread> threads;
  for (size_t c = 0; c < ids.size(); ++c) {
    threads.emplace_back([&, c] {
      Lane& lane = lanes[c];
      cart::ShoppingCart::Stub& stub = *stubs[c % stubs.size()];
      // Spread the lanes' first calls over one interval.
      Clock::time_point next = Clock::now() + interval * c / static_cast<int64_t>(ids.size());
      while (true) {
        std::this_thread::sleep_until(next);
        next = std::max(next + interval, Clock::now());
        const Clock::time_point sent = Clock::now();
        if (WallNs() >= end_ns) break;
        ++lane.attempted;
        grpc::Status status = Add(stub, ids[c]);
        const int64_t done = WallNs();
        if (status.ok()) {
          lane.successes_ns.push_back(done);
          lane.latencies_us.push_back(
              std::chrono::duration<double, std::micro>(Clock::now() - sent).count());
          lane.latency_at_ns.push_back(done);
        } else {
          ++lane.errors;
          ++lane.kinds[ErrorKind(status)];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  const int64_t marked_start = Mark(options.marks, "start_ns");
  int64_t marked_settled = Mark(options.marks, "settled_ns");
  if (marked_start == 0) {
    std::fprintf(stderr, "massa-cluster-bench: no start_ns in %s\n", options.marks.c_str());
    return 2;
  }
  const bool settled = marked_settled != 0;
  if (!settled) marked_settled = end_ns;
  const int64_t window = marked_settled - marked_start;
  const int64_t baseline_from = std::max(start_ns + 1'000'000'000, marked_start - window);

  // The longest gap between consecutive successes (with the window's edges as successes when
  // none falls there) that overlaps [from, to].
  auto longest_gap_ms = [&](const Lane& lane, int64_t from, int64_t to) {
    int64_t last = from;
    int64_t longest = 0;
    for (int64_t at : lane.successes_ns) {
      if (at <= from) {
        last = std::max(last, at);
        continue;
      }
      longest = std::max(longest, at - last);
      last = at;
      if (at >= to) break;
    }
    if (last < to) longest = std::max(longest, end_ns - last);  // none after: to the end
    return static_cast<double>(longest) / 1e6;
  };
  std::vector<double> during_all, during_moving, during_staying, before_all;
  std::vector<double> latencies_during;
  int64_t attempted = 0, errors = 0, calls = 0;
  std::map<std::string, int64_t> kinds;
  int moving = 0;
  for (size_t c = 0; c < ids.size(); ++c) {
    const Lane& lane = lanes[c];
    const bool moves = OwnerOf(options, options.members, ids[c]) !=
                       OwnerOf(options, options.members_after, ids[c]);
    moving += moves ? 1 : 0;
    const double during = longest_gap_ms(lane, marked_start, marked_settled);
    during_all.push_back(during);
    (moves ? during_moving : during_staying).push_back(during);
    before_all.push_back(longest_gap_ms(lane, baseline_from, marked_start));
    for (size_t i = 0; i < lane.latencies_us.size(); ++i) {
      if (lane.latency_at_ns[i] >= marked_start && lane.latency_at_ns[i] <= marked_settled) {
        latencies_during.push_back(lane.latencies_us[i]);
      }
    }
    attempted += lane.attempted;
    errors += lane.errors;
    calls += static_cast<int64_t>(lane.successes_ns.size());
    for (const auto& [kind, count] : lane.kinds) kinds[kind] += count;
  }

  // Every cart read back (through the first target): quantity >= acknowledged adds (none lost)
  // and <= attempted (a failed add may or may not have been applied).
  int lost = 0, invented = 0, unreadable = 0, maybe_applied = 0;
  for (size_t c = 0; c < ids.size(); ++c) {
    cart::GetShoppingCart get;
    get.set_cart_id(ids[c]);
    cart::Cart state;
    grpc::ClientContext context;
    context.set_deadline(Wall::now() + std::chrono::seconds(10));
    if (!stubs[0]->GetCart(&context, get, &state).ok()) {
      ++unreadable;
      continue;
    }
    int64_t quantity = 0;
    for (const auto& item : state.items()) quantity += item.quantity();
    const int64_t acked = static_cast<int64_t>(lanes[c].successes_ns.size());
    if (quantity < acked) ++lost;
    if (quantity > lanes[c].attempted) ++invented;
    if (quantity > acked) maybe_applied += static_cast<int>(quantity - acked);
  }

  const double seconds = static_cast<double>(end_ns - start_ns) / 1e9;
  std::fprintf(stderr,
               "scale-out: %zu carts (%d moving), an add every %d ms each: %lld calls "
               "(%.0f/s), %lld errors\n",
               ids.size(), moving, options.interval_ms, static_cast<long long>(calls),
               static_cast<double>(calls) / seconds, static_cast<long long>(errors));
  std::fprintf(stderr, "  window start..settled %.0f ms%s\n", static_cast<double>(window) / 1e6,
               settled ? "" : " (NOT settled: window runs to the end)");
  std::fprintf(stderr,
               "  longest gap per cart during:  p50 %.0f ms  p99 %.0f ms  max %.0f ms "
               "(moving carts: p50 %.0f max %.0f; others: p50 %.0f max %.0f)\n",
               Percentile(during_all, 50), Percentile(during_all, 99), Percentile(during_all, 100),
               Percentile(during_moving, 50), Percentile(during_moving, 100),
               Percentile(during_staying, 50), Percentile(during_staying, 100));
  std::fprintf(stderr, "  longest gap per cart before: p50 %.0f ms  p99 %.0f ms  max %.0f ms\n",
               Percentile(before_all, 50), Percentile(before_all, 99), Percentile(before_all, 100));
  std::fprintf(stderr, "  call latency during: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
               Percentile(latencies_during, 50) / 1e3, Percentile(latencies_during, 99) / 1e3,
               Percentile(latencies_during, 100) / 1e3);
  std::fprintf(stderr,
               "  read back: %d carts lost an acknowledged add, %d have more than attempted, "
               "%d unreadable; %d failed adds were applied anyway\n",
               lost, invented, unreadable, maybe_applied);
  std::ostringstream errors_json;
  for (const auto& [kind, count] : kinds) {
    std::fprintf(stderr, "  %lld x %s\n", static_cast<long long>(count), kind.c_str());
    errors_json << (errors_json.tellp() > 0 ? "," : "") << "{\"count\":" << count
                << ",\"error\":\"" << JsonEscape(kind) << "\"}";
  }
  std::ostringstream record;
  record << "{\"scenario\":\"" << options.scenario << "\",\"carts\":" << ids.size()
         << ",\"moving_carts\":" << moving << ",\"interval_ms\":" << options.interval_ms
         << ",\"seconds\":" << seconds << ",\"calls\":" << calls << ",\"attempted\":" << attempted
         << ",\"errors\":" << errors << ",\"settled\":" << (settled ? "true" : "false")
         << ",\"window_ms\":" << window / 1'000'000
         << ",\"gap_p50_ms\":" << Percentile(during_all, 50)
         << ",\"gap_p99_ms\":" << Percentile(during_all, 99)
         << ",\"gap_max_ms\":" << Percentile(during_all, 100)
         << ",\"gap_moving_p50_ms\":" << Percentile(during_moving, 50)
         << ",\"gap_moving_max_ms\":" << Percentile(during_moving, 100)
         << ",\"gap_staying_p50_ms\":" << Percentile(during_staying, 50)
         << ",\"gap_staying_max_ms\":" << Percentile(during_staying, 100)
         << ",\"gap_before_p50_ms\":" << Percentile(before_all, 50)
         << ",\"gap_before_p99_ms\":" << Percentile(before_all, 99)
         << ",\"gap_before_max_ms\":" << Percentile(before_all, 100)
         << ",\"latency_during_p50_us\":" << static_cast<int64_t>(Percentile(latencies_during, 50))
         << ",\"latency_during_p99_us\":" << static_cast<int64_t>(Percentile(latencies_during, 99))
         << ",\"latency_during_max_us\":" << static_cast<int64_t>(Percentile(latencies_during, 100))
         << ",\"carts_lost_acknowledged\":" << lost << ",\"carts_over_attempted\":" << invented
         << ",\"carts_unreadable\":" << unreadable << ",\"failed_adds_applied\":" << maybe_applied
         << ",\"error_kinds\":[" << errors_json.str() << "]}";
  Append(options, record.str());
  return lost == 0 && invented == 0 ? 0 : 3;
}

// One HTTP/1.0-style GET to 127.0.0.1-like "host:port" (the connection closes after the
// reply); the status (-1 when nothing answers) and the body.
int HttpGet(const std::string& address, const std::string& path, std::string& body) {
  const size_t colon = address.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + address +
                              "\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  std::string response;
  char chunk[16384];
  for (ssize_t n; (n = recv(fd, chunk, sizeof chunk, 0)) > 0;) {
    response.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (response.size() < 12 || header_end == std::string::npos) return -1;
  body = response.substr(header_end + 4);
  return std::atoi(response.c_str() + 9);
}

// The value of metric `name` (summed over its labels) in a /metrics body; -1 when absent.
double MetricValue(const std::string& body, const std::string& name) {
  double sum = -1;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != ' ' && line[name.size()] != '{') continue;
    sum = std::max(sum, 0.0) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

int RunWatch(const Options& options) {
  std::vector<std::string> ids, addresses;
  for (const std::string& admin : options.admins) {
    const size_t eq = admin.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "massa-cluster-bench: --admins wants id=host:port\n");
      return 2;
    }
    ids.push_back(admin.substr(0, eq));
    addresses.push_back(admin.substr(eq + 1));
  }
  std::vector<std::string> members = ids;
  std::sort(members.begin(), members.end());
  std::map<std::string, int> want;
  for (uint32_t p = 0; p < options.partitions; ++p) {
    ++want[massa::cluster::DesiredOwner(p, members)];
  }
  const int64_t start = options.start_ns != 0 ? options.start_ns : WallNs();
  auto since = [&] { return static_cast<double>(WallNs() - start) / 1e6; };
  std::vector<double> admin_up(ids.size(), -1), ready(ids.size(), -1), sees_all(ids.size(), -1);
  double sum_ms = -1, settled_ms = -1;
  std::string last;
  while (since() < options.timeout_ms) {
    std::string state;
    int sum = 0;
    bool all_see = true, exact = true;
    for (size_t i = 0; i < ids.size(); ++i) {
      std::string body;
      const int status = HttpGet(addresses[i], "/metrics", body);
      const double members_seen = status == 200 ? MetricValue(body, "massa_cluster_members") : -1;
      const double owned = status == 200 ? MetricValue(body, "massa_cluster_partitions_owned") : -1;
      if (status == 200 && admin_up[i] < 0) admin_up[i] = since();
      if (admin_up[i] >= 0 && ready[i] < 0 && HttpGet(addresses[i], "/readyz", body) == 200) {
        ready[i] = since();
      }
      if (members_seen == static_cast<double>(ids.size()) && sees_all[i] < 0) sees_all[i] = since();
      all_see = all_see && members_seen == static_cast<double>(ids.size());
      exact = exact && owned == want[ids[i]];
      sum += owned > 0 ? static_cast<int>(owned) : 0;
      char part[96];
      if (status == 200) {
        std::snprintf(part, sizeof part, " %s=%.0f/%.0f", ids[i].c_str(), owned, members_seen);
      } else {
        std::snprintf(part, sizeof part, " %s=down", ids[i].c_str());
      }
      state += part;
    }
    if (state != last) {
      std::printf("    +%.0f ms%s\n", since(), state.c_str());
      std::fflush(stdout);
      last = state;
    }
    if (all_see && sum == static_cast<int>(options.partitions) && sum_ms < 0) sum_ms = since();
    if (all_see && exact && sum == static_cast<int>(options.partitions)) {
      settled_ms = since();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.poll_ms));
  }
  if (settled_ms >= 0 && !options.marks.empty()) {
    std::ofstream(options.marks, std::ios::app)
        << "settled_ns " << start + static_cast<int64_t>(settled_ms * 1e6) << "\n";
  }
  // The new node is the last of --admins.
  const size_t n = ids.size() - 1;
  double all_see_ms = 0;
  for (double t : sees_all) all_see_ms = t < 0 || all_see_ms < 0 ? -1 : std::max(all_see_ms, t);
  auto ms = [](double t) { return t < 0 ? std::string("null") : std::to_string(static_cast<int64_t>(t)); };
  std::ostringstream record;
  record << "{\"scenario\":\"" << options.scenario << "\",\"new_node\":\"" << ids[n]
         << "\",\"admin_up_ms\":" << ms(admin_up[n]) << ",\"ready_ms\":" << ms(ready[n])
         << ",\"all_see_members_ms\":" << ms(all_see_ms) << ",\"sum_settled_ms\":" << ms(sum_ms)
         << ",\"settled_ms\":" << ms(settled_ms) << ",\"want_new_node\":" << want[ids[n]] << "}";
  if (!options.json_out.empty()) std::ofstream(options.json_out, std::ios::app) << record.str() << "\n";
  std::printf("%s\n", record.str().c_str());
  return settled_ms >= 0 ? 0 : 1;
}

int RunPlacement(const Options& options) {
  std::map<std::string, int> counts;
  for (const std::string& member : options.members) counts[member] = 0;
  for (uint32_t p = 0; p < options.partitions; ++p) {
    ++counts[massa::cluster::DesiredOwner(p, options.members)];
  }
  for (const auto& [member, count] : counts) std::printf("%s %d\n", member.c_str(), count);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("massa-cluster-bench: shopping-cart load on a massa cluster");
  app.require_subcommand(1);
  Options options;
  auto common = [&](CLI::App* sub) {
    sub->add_option("--targets", options.targets, "gRPC addresses of nodes, comma-separated")
        ->delimiter(',')
        ->required();
    sub->add_option("--entity-type", options.entity_type, "entity type of the carts");
    sub->add_option("--prefix", options.prefix, "cart ids are PREFIX0, PREFIX1, ...");
    sub->add_option("--carts", options.carts, "carts");
    sub->add_option("--partitions", options.partitions, "partitions of the cluster");
    sub->add_option("--members", options.members, "member ids, comma-separated")->delimiter(',');
    sub->add_option("--duration", options.duration_s, "seconds (measured, for load); last wins")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    sub->add_option("--scenario", options.scenario, "name in the output");
    sub->add_option("--json-out", options.json_out, "append the JSON record here");
  };
  CLI::App* load = app.add_subcommand("load", "closed-loop AddItem calls");
  common(load);
  load->add_option("--owner", options.owner, "only carts this member owns (needs --members)");
  load->add_flag("--route", options.route,
                 "send each cart's calls to its owner (--targets in the order of --members)");
  load->add_option("--concurrency", options.concurrency, "calls in flight");
  load->add_option("--warmup", options.warmup_s, "seconds before measuring");
  CLI::App* scaleout = app.add_subcommand("scaleout", "per-cart lanes across a membership change");
  common(scaleout);
  scaleout->add_option("--members-after", options.members_after, "member ids after the change")
      ->delimiter(',')
      ->required();
  scaleout->add_option("--interval-ms", options.interval_ms, "an add per cart this often");
  scaleout->add_option("--marks", options.marks, "file with start_ns and settled_ns")->required();
  CLI::App* watch = app.add_subcommand("watch", "time a membership change from /metrics");
  watch->add_option("--admins", options.admins, "id=host:port of every node's admin, new last")
      ->delimiter(',')
      ->required();
  watch->add_option("--partitions", options.partitions, "partitions of the cluster");
  watch->add_option("--start-ns", options.start_ns, "Unix ns the change started (default now)");
  watch->add_option("--marks", options.marks, "append settled_ns here");
  watch->add_option("--poll-ms", options.poll_ms, "poll every");
  watch->add_option("--timeout-ms", options.timeout_ms, "give up after (from start)");
  watch->add_option("--scenario", options.scenario, "name in the output");
  watch->add_option("--json-out", options.json_out, "append the JSON record here");
  CLI::App* placement = app.add_subcommand("placement", "partitions per member");
  placement->add_option("--partitions", options.partitions, "partitions of the cluster");
  placement->add_option("--members", options.members, "member ids, comma-separated")
      ->delimiter(',')
      ->required();
  CLI11_PARSE(app, argc, argv);
  std::sort(options.members.begin(), options.members.end());
  std::sort(options.members_after.begin(), options.members_after.end());
  if (!options.owner.empty() && options.members.empty()) {
    std::fprintf(stderr, "massa-cluster-bench: --owner needs --members\n");
    return 2;
  }
  if (*placement) return RunPlacement(options);
  if (*watch) return RunWatch(options);
  return *load ? RunLoad(options) : RunScaleout(options);
}
