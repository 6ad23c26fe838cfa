#include "common/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsRegistryTest, RendersCountersGaugesAndHistograms) {
  MetricsRegistry registry;
  Counter& errors = registry.AddCounter("massa_errors_total", "Errors.", {{"kind", "a\"b"}});
  errors.Add(3);
  registry.AddGauge("massa_things", "Things.", [] { return 2.5; });
  registry.AddCounterFunction("massa_kept_total", "Kept elsewhere.", [] { return 7.0; });
  Histogram& latency = registry.AddHistogram("massa_seconds", "Latency.");
  latency.Observe(0.0002);
  latency.Observe(3);

  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE massa_errors_total counter\n"));
  EXPECT_THAT(text, HasSubstr("massa_errors_total{kind=\"a\\\"b\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE massa_things gauge\nmassa_things 2.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE massa_kept_total counter\nmassa_kept_total 7\n"));
  EXPECT_THAT(text, HasSubstr("massa_seconds_bucket{le=\"0.0001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("massa_seconds_bucket{le=\"0.00025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("massa_seconds_bucket{le=\"2.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("massa_seconds_bucket{le=\"5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("massa_seconds_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("massa_seconds_count 2\n"));
}

TEST(RequestMetricsTest, CountsOnlyWhatHappenedAndFoldsUnknownMethods) {
  MetricsRegistry registry;
  RequestMetrics requests(registry, {{"pkg.Svc", "Get"}});
  requests.Record("pkg.Svc", "Get", 0, 0.001, /*http=*/false);
  requests.Record("pkg.Svc", "Get", 3, 0.001, /*http=*/true);
  requests.Record("evil.Service", "Whatever", 12, 0.001, /*http=*/false);

  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("massa_requests_total{service=\"pkg.Svc\",method=\"Get\","
                              "protocol=\"grpc\",code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("massa_requests_total{service=\"pkg.Svc\",method=\"Get\","
                              "protocol=\"http\",code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("service=\"unknown\",method=\"unknown\",protocol=\"grpc\","
                              "code=\"UNIMPLEMENTED\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("evil.Service")));  // callers cannot blow up the label set
  EXPECT_THAT(text, Not(HasSubstr("code=\"INTERNAL\"")));
}

}  // namespace
}  // namespace massa
