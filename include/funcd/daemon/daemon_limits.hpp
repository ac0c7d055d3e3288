#pragma once
// Every protective limit of the daemon in one place: connections, sessions, bytes kept,
// queue depths, deadlines. run_daemon hands each part to the component it bounds; tests
// shrink them (unit tests directly, integration tests with `--limit NAME=VALUE`).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/dispatch/async_limits.hpp"
#include "funcd/event_sources/event_source_limits.hpp"
#include "funcd/gateway/connection_limits.hpp"
#include "funcd/logs/logs_api_limits.hpp"
#include "funcd/logs/output_limits.hpp"
#include "funcd/metering/metering_limits.hpp"
#include "funcd/observe/observe_limits.hpp"
#include "funcd/runtime_api/runtime_api_limits.hpp"

namespace funcd {

struct DaemonLimits {
    http::ConnectionLimits gateway;
    RuntimeApiLimits runtime_api;
    OutputLimits output;
    LogsApiLimits logs;
    MeteringLimits metering;
    AsyncLimits async;
    EventSourceLimits event_sources;
    // The metrics listener (--metrics-listen).
    http::ConnectionLimits metrics = observe::default_metrics_listener_limits();
};

// One limit as `--limit` names it: "gateway.max_connections", "runtime_api.request_deadline_ms".
struct LimitInfo {
    std::string name;
    std::string meaning;
    std::int64_t value = 0;  // the current value, in the unit the name gives
};

// Sets the limit `assignment` ("NAME=VALUE", VALUE a positive integer) names.
// Throws std::invalid_argument naming what is wrong.
void set_limit(DaemonLimits& limits, std::string_view assignment);

// Every settable limit with its value in `limits`, in a stable order.
std::vector<LimitInfo> describe_limits(const DaemonLimits& limits);

}  // namespace funcd
