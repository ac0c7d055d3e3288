#pragma once
// Per-step statistics of one function's invocations, from its usage records: counts,
// errors, throttles, duration percentiles, cold starts and their mean init, GB-seconds and
// cost. The buckets are aligned to multiples of the step since the Unix epoch (as
// CloudWatch aligns its periods), so the same step always cuts time at the same instants.
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/metering/pricing.hpp"
#include "funcd/metering/usage_record.hpp"

namespace funcd {

// CloudWatch's limit of data points in one GetMetricStatistics answer; a step too small
// for the range is refused (400) rather than building an answer of unbounded size.
inline constexpr std::int64_t kMaxStatsBuckets = 1440;

// What the statistics need of one usage record.
struct StatsSample {
    std::int64_t start_us = 0;
    std::int64_t duration_us = 0;
    std::int64_t billed_ms = 0;
    int memory_mb = 0;
    std::optional<std::int64_t> init_duration_us;
    Outcome outcome = Outcome::success;
};

struct StatsBucket {
    SystemTime start;
    std::int64_t invocations = 0;  // every record but throttles (Lambda's Invocations)
    std::int64_t errors = 0;       // invocations whose outcome is not success
    std::int64_t throttles = 0;
    std::int64_t cold_starts = 0;  // invocations with an init duration
    std::int64_t init_duration_us_sum = 0;
    // Nearest-rank percentiles of the durations of invocations that ran (all but init
    // failures); unset when none did.
    std::optional<std::int64_t> p50_us, p90_us, p99_us;
    std::int64_t billed_ms = 0;
    std::int64_t mb_ms = 0;  // billed_ms * memory_mb, summed (pricing.hpp)
};

// The nearest-rank p-th percentile (1 <= p <= 100) of `values` (not empty): the smallest
// value with at least p% of the values at or below it. Reorders `values`.
std::int64_t nearest_rank_percentile(std::vector<std::int64_t>& values, int p);

class StatsBuckets {
public:
    // Buckets from the step boundary at or before `since` up to `until` (exclusive);
    // samples are counted when since <= start < until. Needs since < until and a step of
    // at least 1 s (callers check, with bucket_count, that the count is within
    // kMaxStatsBuckets).
    StatsBuckets(SystemTime since, SystemTime until, std::chrono::seconds step);

    static std::int64_t bucket_count(SystemTime since, SystemTime until, std::chrono::seconds step);

    void add(const StatsSample& s);
    // Every bucket, empty ones included, oldest first.
    std::vector<StatsBucket> finish();

private:
    std::int64_t first_us_, since_us_, until_us_, step_us_;
    std::vector<StatsBucket> buckets_;
    std::vector<std::vector<std::int64_t>> durations_;
};

// {"start", "invocations", "errors", "throttles", "cold_starts", "init_ms_mean",
//  "duration_ms": {"p50", "p90", "p99"}, "billed_ms", "gb_seconds", "cost_usd"}
nlohmann::json to_json(const StatsBucket& b, const Prices& prices);

}  // namespace funcd
