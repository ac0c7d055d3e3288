// What `funcd top` makes of /metrics.
#include <gtest/gtest.h>

#include "funcd/cli/metrics_sample.hpp"

namespace funcd::cli {
namespace {

const char* kBefore = R"(# HELP funcd_invocations_total Invocations.
# TYPE funcd_invocations_total counter
funcd_invocations_total{function="hello",outcome="success"} 10
funcd_invocations_total{function="hello",outcome="function_error"} 2
funcd_invocations_total{function="hello",outcome="throttled"} 5
funcd_invocation_duration_seconds_bucket{function="hello",le="0.005"} 12
funcd_invocation_duration_seconds_sum{function="hello"} 0.024
funcd_invocation_duration_seconds_count{function="hello"} 12
funcd_cold_starts_total{function="hello"} 1
funcd_throttles_total{function="hello",reason="reserved_concurrency"} 5
funcd_workers{function="hello",state="idle"} 1
funcd_workers{function="hello",state="provisioned"} 2
funcd_workers{function="hello",state="busy"} 3
funcd_concurrent_executions{function="hello"} 3
funcd_async_queue_depth{function="hello"} 4
funcd_memory_budget_bytes{state="limit"} 1073741824
funcd_memory_budget_bytes{state="used"} 134217728
funcd_invocations_waiting 2
funcd_workers{function="odd \"name\", {x}",state="busy"} 1
not a sample line
)";

TEST(MetricsSample, ParsesTheExposition) {
    const auto points = parse_metrics_text(kBefore);
    ASSERT_EQ(points.size(), 17u);
    EXPECT_EQ(points[0].name, "funcd_invocations_total");
    EXPECT_EQ(points[0].labels.at("outcome"), "success");
    EXPECT_EQ(points[0].value, 10);
    EXPECT_EQ(points[15].name, "funcd_invocations_waiting");
    EXPECT_TRUE(points[15].labels.empty());
    EXPECT_EQ(points[16].labels.at("function"), "odd \"name\", {x}");

    const MetricsSample s = gather_sample(points);
    const FunctionFigures& f = s.functions.at("hello");
    EXPECT_EQ(f.invocations, 12) << "throttles are not invocations";
    EXPECT_EQ(f.errors, 2);
    EXPECT_EQ(f.throttles, 5);
    EXPECT_EQ(f.idle, 3) << "provisioned idle workers are idle";
    EXPECT_EQ(f.busy, 3);
    EXPECT_EQ(f.running, 3);
    EXPECT_EQ(f.queue_depth, 4);
    EXPECT_EQ(s.memory_limit_bytes, 1073741824);
    EXPECT_EQ(s.memory_used_bytes, 134217728);
    EXPECT_EQ(s.waiting, 2);
}

TEST(MetricsSample, RatesBetweenSamples) {
    FunctionFigures a;
    a.invocations = 12;
    a.errors = 2;
    a.duration_sum_s = 0.024;
    a.duration_count = 12;
    a.cold_starts = 1;
    FunctionFigures b = a;
    b.invocations = 32;
    b.errors = 4;
    b.duration_sum_s = 0.024 + 0.1;
    b.duration_count = 32;
    b.cold_starts = 3;
    const FunctionRates r = rates_between(a, b, 2.0);
    EXPECT_DOUBLE_EQ(r.invocations_per_s, 10);
    EXPECT_DOUBLE_EQ(r.errors_per_s, 1);
    EXPECT_DOUBLE_EQ(r.cold_starts, 2);
    EXPECT_NEAR(r.mean_duration_ms, 5.0, 1e-9) << "100 ms over 20 invocations";

    EXPECT_EQ(rates_between(a, a, 2.0).mean_duration_ms, -1) << "no invocation ended: no mean";
    FunctionFigures restarted;
    restarted.invocations = 4;
    EXPECT_DOUBLE_EQ(rates_between(b, restarted, 1.0).invocations_per_s, 4) << "a daemon restart counts from zero";
}

}  // namespace
}  // namespace funcd::cli
