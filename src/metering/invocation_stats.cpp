#include "funcd/metering/invocation_stats.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace funcd {
namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

nlohmann::json millis(const std::optional<std::int64_t>& us) {
    return us ? nlohmann::json(static_cast<double>(*us) / 1000.0) : nlohmann::json(nullptr);
}

}  // namespace

std::int64_t nearest_rank_percentile(std::vector<std::int64_t>& values, int p) {
    const auto n = static_cast<std::int64_t>(values.size());
    // rank = ceil(p / 100 * n), in integers; at least 1.
    const std::int64_t rank = std::max<std::int64_t>(1, (p * n + 99) / 100);
    auto nth = values.begin() + (rank - 1);
    std::nth_element(values.begin(), nth, values.end());
    return *nth;
}

std::int64_t StatsBuckets::bucket_count(SystemTime since, SystemTime until, std::chrono::seconds step) {
    const std::int64_t step_us = step.count() * 1'000'000;
    const std::int64_t first = floor_div(to_unix_us(since), step_us) * step_us;
    const std::int64_t span = to_unix_us(until) - first;
    return span <= 0 ? 0 : (span + step_us - 1) / step_us;
}

StatsBuckets::StatsBuckets(SystemTime since, SystemTime until, std::chrono::seconds step)
    : since_us_(to_unix_us(since)), until_us_(to_unix_us(until)), step_us_(step.count() * 1'000'000) {
    first_us_ = floor_div(since_us_, step_us_) * step_us_;
    const auto n = static_cast<std::size_t>(bucket_count(since, until, step));
    buckets_.resize(n);
    durations_.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        buckets_[i].start = from_unix_us(first_us_ + static_cast<std::int64_t>(i) * step_us_);
}

void StatsBuckets::add(const StatsSample& s) {
    if (s.start_us < since_us_ || s.start_us >= until_us_) return;
    const auto i = static_cast<std::size_t>((s.start_us - first_us_) / step_us_);
    StatsBucket& b = buckets_[i];
    if (s.outcome == Outcome::throttled) {
        ++b.throttles;
        return;
    }
    ++b.invocations;
    if (s.outcome != Outcome::success) ++b.errors;
    if (s.init_duration_us) {
        ++b.cold_starts;
        b.init_duration_us_sum += *s.init_duration_us;
    }
    b.billed_ms += s.billed_ms;
    b.mb_ms += s.billed_ms * s.memory_mb;
    if (s.outcome != Outcome::init_error) durations_[i].push_back(s.duration_us);
}

std::vector<StatsBucket> StatsBuckets::finish() {
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        auto& d = durations_[i];
        if (d.empty()) continue;
        buckets_[i].p50_us = nearest_rank_percentile(d, 50);
        buckets_[i].p90_us = nearest_rank_percentile(d, 90);
        buckets_[i].p99_us = nearest_rank_percentile(d, 99);
        d = {};
    }
    return std::move(buckets_);
}

nlohmann::json to_json(const StatsBucket& b, const Prices& prices) {
    return {
        {"start", format_rfc3339(b.start)},
        {"invocations", b.invocations},
        {"errors", b.errors},
        {"throttles", b.throttles},
        {"cold_starts", b.cold_starts},
        {"init_ms_mean", b.cold_starts ? nlohmann::json(static_cast<double>(b.init_duration_us_sum) / 1000.0 /
                                                        static_cast<double>(b.cold_starts))
                                       : nlohmann::json(nullptr)},
        {"duration_ms", {{"p50", millis(b.p50_us)}, {"p90", millis(b.p90_us)}, {"p99", millis(b.p99_us)}}},
        {"billed_ms", b.billed_ms},
        {"gb_seconds", gb_seconds_text(b.mb_ms)},
        {"cost_usd", cost_usd_text(b.mb_ms, b.invocations, prices)},
    };
}

}  // namespace funcd
