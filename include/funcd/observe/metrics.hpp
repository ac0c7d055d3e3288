#pragma once
// The counts the daemon keeps for /metrics: one record per function and the daemon-wide
// counters. Built by run_daemon and handed by reference (null: --metrics off) to the parts
// that count; the gauges (workers, concurrency, queue depth, memory) are not here but read
// from their owners at scrape time (metrics_endpoint.hpp).
#include "funcd/observe/counter.hpp"
#include "funcd/observe/function_metrics_table.hpp"
#include "funcd/observe/histogram.hpp"

namespace funcd::observe {

struct Metrics {
    FunctionMetricsTable functions;
    // Accepted asynchronous events discarded undelivered and without a dead letter: their
    // function was deleted (the asynchronous invoker counts them).
    Counter async_events_dropped;
    // Launches of a worker's sandbox, on the launch threads, observed on the loop (the pool).
    Histogram launch_duration{kLaunchBucketsUs};
};

}  // namespace funcd::observe
