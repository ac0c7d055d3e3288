#pragma once
// How a function's asynchronous invocations are retried and where their outcomes go:
// Lambda's "event invoke config" (PutFunctionEventInvokeConfig), per function.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace funcd {

namespace limits {
// Lambda's ranges for MaximumRetryAttempts and MaximumEventAgeInSeconds.
inline constexpr int kMaxRetryAttempts = 2;
inline constexpr int kMinEventAgeS = 60;
inline constexpr int kMaxEventAgeS = 21600;
// funcd's own: Lambda waits 1 minute, then 2, between retries and does not let users
// choose; a delay may be 0 here so tests and impatient users can retry at once.
inline constexpr int kMaxRetryDelayS = 21600;
// Lambda's limit on an asynchronous invocation's event (256 KB), before the 2025 raise.
inline constexpr std::size_t kMaxAsyncPayloadBytes = 256 * 1024;
}  // namespace limits

struct EventConfig {
    int maximum_retry_attempts = limits::kMaxRetryAttempts;
    // The wait before retry 1, 2, ...; the last one repeats if the list is shorter.
    std::vector<int> retry_delays_s = {60, 120};
    int maximum_event_age_s = limits::kMaxEventAgeS;
    std::optional<std::string> on_success;  // function receiving a destination record
    std::optional<std::string> on_failure;
    // When it was last set (Unix seconds; Lambda's LastModified); 0: never.
    std::int64_t last_modified_s = 0;

    bool operator==(const EventConfig&) const = default;
};

// Body of PUT /v1/functions/{name}/event-config; what it omits keeps its value in
// `current`, null clears a destination. Throws ApiError(400) naming the field.
EventConfig parse_event_config(std::string_view body, const EventConfig& current);
nlohmann::json to_json(const EventConfig& c);
EventConfig event_config_from_json(const nlohmann::json& j);

// The delay before retry number `retry` (1-based).
int retry_delay_s(const EventConfig& c, int retry);

}  // namespace funcd
