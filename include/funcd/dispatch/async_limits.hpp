#pragma once
// Bounds of asynchronous invocation (part of DaemonLimits).
#include <chrono>
#include <cstddef>

namespace funcd {

struct AsyncLimits {
    // Events accepted and not yet delivered, per function; beyond it Event invocations get 429.
    std::size_t queue_depth_per_function = 100'000;
    // Deliveries of one function running at once, so one function's backlog cannot take the
    // whole account concurrency from synchronous callers.
    int max_in_flight_per_function = 100;
    // Dead letters older than this are removed (hourly). Fourteen days: the longest an SQS
    // queue, Lambda's usual dead-letter target, keeps a message.
    std::chrono::seconds dead_letter_retention{14 * 24 * 3600};
};

}  // namespace funcd
