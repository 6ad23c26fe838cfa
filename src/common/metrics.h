// Prometheus metrics without a client library: counters, gauges read at scrape time, and
// histograms with fixed buckets, rendered in the text exposition format (version 0.0.4).
// Recording is lock-free (relaxed atomics); registration happens at start-up.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace massa {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Latency histogram in seconds; buckets from 50 us to 10 s.
class Histogram {
 public:
  static const std::vector<double>& Bounds();
  Histogram();
  void Observe(double seconds);
  // Copies for rendering: cumulative counts per bound, total count, sum.
  void Snapshot(std::vector<uint64_t>& cumulative, uint64_t& count, double& sum) const;

 private:
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

// Thread-safe. Metrics live as long as the registry; references stay valid.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  Counter& AddCounter(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help, Labels labels = {});
  // A gauge whose value is read at scrape time; `read` must be thread-safe.
  void AddGauge(const std::string& name, const std::string& help, std::function<double()> read,
                Labels labels = {});
  // A counter kept elsewhere (e.g. by the store), read at scrape time; `read` must be
  // thread-safe and never decrease.
  void AddCounterFunction(const std::string& name, const std::string& help,
                          std::function<double()> read, Labels labels = {});
  // A family of gauges read together at scrape time (e.g. one per entity type).
  void AddGaugeFamily(const std::string& name, const std::string& help,
                      std::function<std::vector<std::pair<Labels, double>>()> read);

  // Text appended to the exposition as it is (for collectors that render themselves).
  void AddCollector(std::function<std::string()> render);

  // The text exposition of every metric.
  std::string Render() const;

 private:
  struct Family;
  Family& FamilyFor(const std::string& name, const std::string& help, const char* type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Family>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<std::string()>> collectors_ ABSL_GUARDED_BY(mu_);
};

// Requests served by the ingresses, by service, method and status code, with latency. Methods
// are fixed at start; anything else is counted under service="unknown". Lock-free to record.
class RequestMetrics {
 public:
  // `methods`: (service, method) pairs. Registers itself with `registry`.
  RequestMetrics(MetricsRegistry& registry,
                 const std::vector<std::pair<std::string, std::string>>& methods);
  ~RequestMetrics();

  // `code` is a gRPC status code (0 = OK); `protocol` "grpc" or "http".
  void Record(const std::string& service, const std::string& method, int code, double seconds,
              bool http);

 private:
  struct Method;
  std::string Render() const;
  Method& Find(const std::string& service, const std::string& method);

  std::vector<std::unique_ptr<Method>> methods_;
  std::unique_ptr<Method> unknown_;
};

}  // namespace massa
