// massa-store-bench: durable writes per second through the store seam, with group commit,
// for 1, 16 and 64 concurrent writers (each writer waits for its write before the next, as an
// entity does). Prints a table and appends JSON records to --json-out.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "massa/store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  int writers;
  double writes_per_s;
  double records_per_flush;
  double p50_us;
  double p99_us;
};

Result Run(const std::filesystem::path& dir, int writers, double seconds, size_t value_bytes) {
  std::filesystem::remove_all(dir);
  auto store = massa::store::OpenRocksDbStore({dir, true});
  if (!store.ok()) {
    std::fprintf(stderr, "cannot open store: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  const std::string value(value_bytes, 'v');
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(writers);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        massa::store::WriteBatch batch;
        batch.Put("bench.Entity", "w" + std::to_string(w) + "-" + std::to_string(i % 1000), value);
        std::promise<absl::Status> done;
        auto t0 = Clock::now();
        (*store)->Write(std::move(batch), [&done](absl::Status s) { done.set_value(s); });
        absl::Status status = done.get_future().get();
        if (!status.ok()) {
          std::fprintf(stderr, "write failed: %s\n", status.ToString().c_str());
          std::exit(1);
        }
        latencies[w].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  auto stats = (*store)->stats();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[static_cast<size_t>(p * (all.size() - 1))]; };
  Result r{writers, static_cast<double>(stats.writes) / elapsed,
           stats.flushes ? static_cast<double>(stats.writes) / static_cast<double>(stats.flushes) : 0,
           pct(0.5), pct(0.99)};
  store->reset();
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_out;
  std::string dir = std::filesystem::temp_directory_path() / "massa-store-bench";
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--json-out") json_out = argv[i + 1];
    else if (flag == "--dir") dir = argv[i + 1];
    else if (flag == "--seconds") seconds = std::stod(argv[i + 1]);
  }
  std::printf("%-28s %8s %12s %14s %9s %9s\n", "scenario", "writers", "writes/s", "records/flush",
              "p50 us", "p99 us");
  for (int writers : {1, 16, 64}) {
    Result r = Run(dir, writers, seconds, 128);
    std::printf("%-28s %8d %12.0f %14.1f %9.0f %9.0f\n", "store-rocksdb-durable-append",
                r.writers, r.writes_per_s, r.records_per_flush, r.p50_us, r.p99_us);
    if (!json_out.empty()) {
      std::ofstream out(json_out, std::ios::app);
      out << "{\"scenario\":\"store-rocksdb-durable-append\",\"writers\":" << r.writers
          << ",\"throughput\":" << r.writes_per_s << ",\"records_per_flush\":"
          << r.records_per_flush << ",\"p50_us\":" << r.p50_us << ",\"p99_us\":" << r.p99_us
          << "}\n";
    }
  }
  return 0;
}
