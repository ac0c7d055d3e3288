#pragma once
// The query parameters of a function's invocation history and statistics:
//   GET /v1/functions/{name}/invocations?since=&until=&outcome=&limit=
//   GET /v1/functions/{name}/stats?since=&until=&step=
// Each throws ApiError(400) naming the parameter and what it must be.
#include <chrono>
#include <string>
#include <string_view>

#include "funcd/gateway/api_request.hpp"
#include "funcd/metering/usage_store.hpp"

namespace funcd {

inline constexpr int kDefaultHistoryLimit = 100;
inline constexpr int kMaxHistoryLimit = 1000;
// Without since, the statistics cover the hour before `until` (60 steps of the default step).
inline constexpr std::chrono::seconds kDefaultStatsWindow = std::chrono::hours(1);
inline constexpr std::chrono::seconds kDefaultStatsStep{60};
// From one second (CloudWatch's high-resolution period) to a day.
inline constexpr std::chrono::seconds kMinStatsStep{1};
inline constexpr std::chrono::seconds kMaxStatsStep = std::chrono::hours(24);

// "60s", "5m", "1h", "1d", or a bare number of seconds, within [kMinStatsStep, kMaxStatsStep].
std::chrono::seconds parse_stats_step(std::string_view text);

InvocationQuery parse_invocation_query(const std::string& function, const api::ParsedTarget& t);
// `now`: until's default.
StatsQuery parse_stats_query(const std::string& function, const api::ParsedTarget& t, SystemTime now);

}  // namespace funcd
