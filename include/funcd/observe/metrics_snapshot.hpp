#pragma once
// Every figure of one scrape, copied out of the counters and the parts that own the gauges.
//
// Why a copy: the gauges (workers, concurrency, queues) belong to the loop and are read
// there, but writing the exposition grows with the number of functions (about a hundred
// lines each; 1,000 functions are megabytes of text), which would hold the loop for tens
// of milliseconds. Taking the numbers is a copy; the text is written on the blocking pool.
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "funcd/metering/pricing.hpp"
#include "funcd/observe/exposition.hpp"
#include "funcd/observe/function_metrics.hpp"
#include "funcd/observe/histogram.hpp"
#include "funcd/observe/process_stats.hpp"

namespace funcd::observe {

struct FunctionSnapshot {
    std::string name;
    // Counted by the function's record.
    std::array<std::uint64_t, kInvocationOutcomes> invocations{};
    std::array<std::uint64_t, kThrottleReasons> throttles{};
    std::array<std::uint64_t, kDeadLetterReasons> dead_letters{};
    std::array<std::uint64_t, kEventSources> async_events{};
    std::array<std::uint64_t, kStatusClasses> http_responses{};
    std::uint64_t async_retries = 0;
    std::uint64_t cold_starts = 0;
    std::uint64_t billed_mb_ms = 0;
    std::uint64_t billed_requests = 0;
    HistogramSnapshot duration;
    HistogramSnapshot billed_duration;
    std::vector<std::pair<std::string, HistogramSnapshot>> init_durations;  // by runtime
    // Read from their owners.
    std::uint64_t running = 0;
    std::uint64_t workers_starting = 0, workers_idle = 0, workers_provisioned = 0, workers_busy = 0;
    std::uint64_t async_queue_depth = 0;
    double async_oldest_age_s = 0;
    std::uint64_t log_bytes_dropped = 0;

    // The counted part, from the function's record.
    static FunctionSnapshot of(std::string name, const FunctionMetrics& m);
};

// One event source mapping's delivery, from its runner (its counts start again when the
// runner does: after a restart or a change of the mapping; Prometheus takes that as a reset).
struct MappingSnapshot {
    std::string function;
    std::string mapping;
    std::uint64_t records_delivered = 0;
    std::uint64_t batches_succeeded = 0;
    std::uint64_t batches_failed = 0;  // given up on: dead letters
    std::uint64_t invocation_errors = 0;
    std::uint64_t throttles = 0;
    std::uint64_t lag_bytes = 0;
    double age_s = 0;  // of the oldest change read and not yet delivered (Lambda's IteratorAge)
};

struct MetricsSnapshot {
    std::vector<FunctionSnapshot> functions;  // by name
    std::vector<MappingSnapshot> mappings;    // by function, then mapping
    std::uint64_t async_events_dropped = 0;
    std::uint64_t invocations_waiting = 0;
    HistogramSnapshot launch_duration;
    std::int64_t memory_budget_limit_mb = 0;
    std::int64_t memory_budget_used_mb = 0;
    std::uint64_t usage_records_pending = 0;
    std::uint64_t python_templates = 0;  // live runtime templates, by runtime
    std::uint64_t node_templates = 0;
    ProcessStats process;
};

// The whole exposition of `s`; costs in dollars at `prices`.
std::string write_exposition(const MetricsSnapshot& s, ExpositionFormat format, const Prices& prices);

}  // namespace funcd::observe
