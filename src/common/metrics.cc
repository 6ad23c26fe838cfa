#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace massa {

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  const char* type;
  std::vector<std::pair<Labels, std::unique_ptr<Counter>>> counters;
  std::vector<std::pair<Labels, std::unique_ptr<Histogram>>> histograms;
  std::vector<std::pair<Labels, std::function<double()>>> gauges;
  std::function<std::vector<std::pair<Labels, double>>()> gauge_family;
};

namespace {

std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const Labels& labels, const std::string& extra_name = "",
                      const std::string& extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name + "=\"" + Escape(value) + "\"";
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.15g", value);
  return buffer;
}

}  // namespace

const std::vector<double>& Histogram::Bounds() {
  static const std::vector<double> bounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1,      2.5,     5,      10};
  return bounds;
}

Histogram::Histogram() : buckets_(new std::atomic<uint64_t>[Bounds().size() + 1]) {
  for (size_t i = 0; i <= Bounds().size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double seconds) {
  const auto& bounds = Bounds();
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
}

void Histogram::Snapshot(std::vector<uint64_t>& cumulative, uint64_t& count, double& sum) const {
  cumulative.assign(Bounds().size() + 1, 0);
  uint64_t running = 0;
  for (size_t i = 0; i <= Bounds().size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    cumulative[i] = running;
  }
  count = running;
  sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
}

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help, const char* type) {
  for (auto& family : families_) {
    if (family->name == name) return *family;
  }
  families_.push_back(std::make_unique<Family>());
  Family& family = *families_.back();
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

Counter& MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     Labels labels) {
  absl::MutexLock lock(&mu_);
  auto& counters = FamilyFor(name, help, "counter").counters;
  counters.emplace_back(std::move(labels), std::make_unique<Counter>());
  return *counters.back().second;
}

Histogram& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         Labels labels) {
  absl::MutexLock lock(&mu_);
  auto& histograms = FamilyFor(name, help, "histogram").histograms;
  histograms.emplace_back(std::move(labels), std::make_unique<Histogram>());
  return *histograms.back().second;
}

void MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                               std::function<double()> read, Labels labels) {
  absl::MutexLock lock(&mu_);
  FamilyFor(name, help, "gauge").gauges.emplace_back(std::move(labels), std::move(read));
}

void MetricsRegistry::AddCounterFunction(const std::string& name, const std::string& help,
                                         std::function<double()> read, Labels labels) {
  absl::MutexLock lock(&mu_);
  FamilyFor(name, help, "counter").gauges.emplace_back(std::move(labels), std::move(read));
}

void MetricsRegistry::AddGaugeFamily(
    const std::string& name, const std::string& help,
    std::function<std::vector<std::pair<Labels, double>>()> read) {
  absl::MutexLock lock(&mu_);
  FamilyFor(name, help, "gauge").gauge_family = std::move(read);
}

void MetricsRegistry::AddCollector(std::function<std::string()> render) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(render));
}

std::string MetricsRegistry::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  std::vector<uint64_t> cumulative;
  for (const auto& family : families_) {
    out += "# HELP " + family->name + " " + family->help + "\n";
    out += "# TYPE " + family->name + " " + family->type + "\n";
    for (const auto& [labels, counter] : family->counters) {
      out += family->name + LabelText(labels) + " " + std::to_string(counter->value()) + "\n";
    }
    for (const auto& [labels, read] : family->gauges) {
      out += family->name + LabelText(labels) + " " + Number(read()) + "\n";
    }
    if (family->gauge_family) {
      for (const auto& [labels, value] : family->gauge_family()) {
        out += family->name + LabelText(labels) + " " + Number(value) + "\n";
      }
    }
    for (const auto& [labels, histogram] : family->histograms) {
      uint64_t count = 0;
      double sum = 0;
      histogram->Snapshot(cumulative, count, sum);
      const auto& bounds = Histogram::Bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        std::string le = i < bounds.size() ? Number(bounds[i]) : "+Inf";
        out += family->name + "_bucket" + LabelText(labels, "le", le) + " " +
               std::to_string(cumulative[i]) + "\n";
      }
      out += family->name + "_sum" + LabelText(labels) + " " + Number(sum) + "\n";
      out += family->name + "_count" + LabelText(labels) + " " + std::to_string(count) + "\n";
    }
  }
  for (const auto& render : collectors_) out += render();
  return out;
}

struct RequestMetrics::Method {
  std::string service;
  std::string name;
  std::atomic<uint64_t> codes[2][17] = {};  // [http][code]
  Histogram latency[2];
};

namespace {
const char* kCodeNames[17] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
                              "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                              "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                              "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                              "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
}  // namespace

RequestMetrics::RequestMetrics(MetricsRegistry& registry,
                               const std::vector<std::pair<std::string, std::string>>& methods) {
  for (const auto& [service, method] : methods) {
    methods_.push_back(std::make_unique<Method>());
    methods_.back()->service = service;
    methods_.back()->name = method;
  }
  unknown_ = std::make_unique<Method>();
  unknown_->service = "unknown";
  unknown_->name = "unknown";
  registry.AddCollector([this] { return Render(); });
}

RequestMetrics::~RequestMetrics() = default;

RequestMetrics::Method& RequestMetrics::Find(const std::string& service,
                                             const std::string& method) {
  for (auto& m : methods_) {  // a handful of methods: a scan beats hashing
    if (m->name == method && m->service == service) return *m;
  }
  return *unknown_;
}

void RequestMetrics::Record(const std::string& service, const std::string& method, int code,
                            double seconds, bool http) {
  Method& m = Find(service, method);
  if (code < 0 || code > 16) code = 2;
  m.codes[http][code].fetch_add(1, std::memory_order_relaxed);
  m.latency[http].Observe(seconds);
}

std::string RequestMetrics::Render() const {
  std::string out =
      "# HELP massa_requests_total Requests served, by service, method, protocol and gRPC code.\n"
      "# TYPE massa_requests_total counter\n";
  std::string latency =
      "# HELP massa_request_duration_seconds Time from request to reply at the ingress.\n"
      "# TYPE massa_request_duration_seconds histogram\n";
  std::vector<uint64_t> cumulative;
  auto render = [&](const Method& m) {
    for (int http = 0; http < 2; ++http) {
      Labels labels = {{"service", m.service}, {"method", m.name},
                       {"protocol", http ? "http" : "grpc"}};
      bool any = false;
      for (int code = 0; code < 17; ++code) {
        uint64_t n = m.codes[http][code].load(std::memory_order_relaxed);
        if (n == 0) continue;
        any = true;
        out += "massa_requests_total" + LabelText(labels, "code", kCodeNames[code]) + " " +
               std::to_string(n) + "\n";
      }
      if (!any) continue;
      uint64_t count = 0;
      double sum = 0;
      m.latency[http].Snapshot(cumulative, count, sum);
      const auto& bounds = Histogram::Bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        latency += "massa_request_duration_seconds_bucket" +
                   LabelText(labels, "le", i < bounds.size() ? Number(bounds[i]) : "+Inf") + " " +
                   std::to_string(cumulative[i]) + "\n";
      }
      latency += "massa_request_duration_seconds_sum" + LabelText(labels) + " " + Number(sum) +
                 "\n";
      latency += "massa_request_duration_seconds_count" + LabelText(labels) + " " +
                 std::to_string(count) + "\n";
    }
  };
  for (const auto& m : methods_) render(*m);
  render(*unknown_);
  return out + latency;
}

}  // namespace massa
