#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "funcd/common/time_format.hpp"

namespace funcd {

// throttled: refused by a concurrency or memory limit before it ran (nothing billed, and
// left out of the usage totals and /v1/usage/records; the invocation history shows it).
enum class Outcome { success, function_error, timeout, exit_error, init_error, throttled };

std::string_view to_string(Outcome o);
std::optional<Outcome> parse_outcome(std::string_view text);

// What one invocation cost. Written once per invocation, whatever its outcome.
struct UsageRecord {
    std::string request_id;
    std::string function;
    std::int64_t version = 0;
    SystemTime start;                 // when the event was handed to the worker (or the failure, if it never was)
    std::int64_t duration_us = 0;     // event handed to the worker -> its response or error
    std::int64_t billed_ms = 0;       // duration rounded up to the next whole millisecond
    int memory_mb = 0;                // configured memory size
    std::int64_t max_memory_used_mb = 0;
    std::optional<std::int64_t> init_duration_us;  // set on cold starts
    Outcome outcome = Outcome::success;
    // The invocation's trace id (trace_id.hpp), as the runtime got it; empty in records
    // from before trace ids.
    std::string trace_id;
    // What started it (InvokeOptions::trigger); empty in records from before.
    std::string trigger;
};

// Lambda bills in 1 ms steps, rounding up, and never less than 1 ms,
// so billed = max(1, ceil(duration_us / 1000)).
std::int64_t billed_ms_for(std::int64_t duration_us);

}  // namespace funcd
