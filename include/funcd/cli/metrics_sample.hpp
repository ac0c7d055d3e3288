#pragma once
// What `funcd top` reads from the daemon's /metrics (docs/observability.md): the Prometheus
// text format parsed into points, and each function's figures gathered from them.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace funcd::cli {

struct MetricPoint {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

// The samples of a Prometheus (or OpenMetrics) text exposition; comments and lines that do
// not parse are skipped.
std::vector<MetricPoint> parse_metrics_text(std::string_view text);

// One function's counters (totals since the daemon started) and gauges (now).
struct FunctionFigures {
    double invocations = 0;  // that ran or failed to start: every outcome but throttled
    double errors = 0;       // function_error, timeout, crash, init_error
    double throttles = 0;
    double cold_starts = 0;
    double duration_sum_s = 0;
    double duration_count = 0;
    double running = 0;
    double idle = 0;         // idle and provisioned workers, ready
    double busy = 0;
    double starting = 0;
    double queue_depth = 0;
};

struct MetricsSample {
    std::map<std::string, FunctionFigures> functions;
    double memory_used_bytes = 0;
    double memory_limit_bytes = 0;
    double waiting = 0;
};

MetricsSample gather_sample(const std::vector<MetricPoint>& points);

// What happened between two samples `seconds` apart, per function.
struct FunctionRates {
    double invocations_per_s = 0;
    double errors_per_s = 0;
    double throttles = 0;     // in the interval
    double cold_starts = 0;   // in the interval
    double mean_duration_ms = -1;  // of the invocations that ended in the interval; -1: none
};

FunctionRates rates_between(const FunctionFigures& before, const FunctionFigures& after, double seconds);

}  // namespace funcd::cli
