#include "funcd/pool/keep_alive.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace funcd {
namespace {

using std::chrono::milliseconds;

// Bounds the counters to 2 KiB whatever the options say (102 bins with the defaults).
constexpr std::size_t kMaxBins = 1024;
// Edges are whole milliseconds: below these, neighbouring edges would round together.
constexpr milliseconds kSmallestFirstBin{100};
constexpr double kSmallestBinGrowth = 1.01;
// p * n computed in floating point can land a hair above an integer (0.99 * 100).
constexpr double kRankSlack = 1e-9;

class FixedKeepAlive final : public KeepAlivePolicy {
public:
    explicit FixedKeepAlive(milliseconds keep_alive) : keep_alive_(keep_alive) {}

    void on_arrival(Clock::time_point) override {}
    KeepAliveDecision on_idle(Clock::time_point) override {
        return {milliseconds{0}, keep_alive_, false, KeepAliveReason::fixed_policy};
    }

private:
    milliseconds keep_alive_;
};

const HybridHistogramOptions& validated(const HybridHistogramOptions& o) {
    auto fail = [](const char* what) { throw std::invalid_argument(std::string("keep-alive options: ") + what); };
    if (!(o.head_percentile >= 0.0 && o.head_percentile <= o.tail_percentile && o.tail_percentile <= 1.0))
        fail("need 0 <= head_percentile <= tail_percentile <= 1");
    if (!(o.margin >= 0.0 && o.margin < 1.0)) fail("margin must be in [0, 1)");
    if (!(o.cv_threshold >= 0.0)) fail("cv_threshold must not be negative");
    if (o.cv_cell <= milliseconds{0} || o.range / o.cv_cell < 2) fail("cv_cell must split range in at least 2 cells");
    if (o.min_samples < 1) fail("min_samples must be at least 1");
    if (!(o.max_out_of_range >= 0.0 && o.max_out_of_range <= 1.0)) fail("max_out_of_range must be in [0, 1]");
    if (o.min_prewarm < milliseconds{0}) fail("min_prewarm must not be negative");
    return o;
}

class HybridHistogramKeepAlive final : public KeepAlivePolicy {
public:
    HybridHistogramKeepAlive(milliseconds fallback, const HybridHistogramOptions& o)
        : options_(validated(o)),
          fallback_(fallback),
          histogram_(o.first_bin, o.bin_growth, o.range, o.max_samples) {
        // After halving the histogram must still hold min_samples, or it would fall back
        // to the fixed policy every time it ages. Halving rounds each bin down, so it can
        // lose half a count per bin (and the out-of-range count) on top of half the total.
        const auto kept = (static_cast<std::int64_t>(o.max_samples) - static_cast<std::int64_t>(histogram_.bins()) - 1) / 2;
        if (kept < static_cast<std::int64_t>(o.min_samples))
            throw std::invalid_argument("keep-alive options: max_samples too small for min_samples");
    }

    void on_arrival(Clock::time_point t) override {
        // Only the first arrival after the function went idle ends an idle time; arrivals
        // while invocations run (concurrency > 1) are not gaps in the function's use.
        if (!idle_) return;
        idle_ = false;
        histogram_.add(std::max(milliseconds{0}, std::chrono::duration_cast<milliseconds>(t - idle_since_)));
    }

    KeepAliveDecision on_idle(Clock::time_point t) override {
        idle_ = true;
        idle_since_ = t;
        return decide();
    }

private:
    KeepAliveDecision fixed(KeepAliveReason why) const { return {milliseconds{0}, fallback_, false, why}; }

    KeepAliveDecision decide() const {
        const auto& h = histogram_;
        if (h.total() < options_.min_samples) return fixed(KeepAliveReason::too_few_samples);
        // Where the paper forecasts with ARIMA we have no forecast, so the fixed policy
        // serves functions whose gaps are mostly longer than the histogram.
        if (static_cast<double>(h.out_of_range()) > options_.max_out_of_range * h.total())
            return fixed(KeepAliveReason::out_of_range);
        if (h.in_range() < options_.min_samples) return fixed(KeepAliveReason::too_few_samples);
        if (h.cv_on_grid(options_.cv_cell) < options_.cv_threshold) return fixed(KeepAliveReason::unpredictable);

        // The head bin's lower edge and the tail bin's upper edge: the window covers every
        // idle time in those bins before the margin widens it further.
        const double head_ms = static_cast<double>(h.lower_edge(h.percentile_bin(options_.head_percentile)).count());
        const double tail_ms = static_cast<double>(h.upper_edge(h.percentile_bin(options_.tail_percentile)).count());
        auto prewarm = milliseconds{static_cast<std::int64_t>(std::floor(head_ms * (1.0 - options_.margin)))};
        if (prewarm < options_.min_prewarm) prewarm = milliseconds{0};
        const auto end = milliseconds{static_cast<std::int64_t>(std::ceil(tail_ms * (1.0 + options_.margin)))};
        return {prewarm, end - prewarm, true, KeepAliveReason::histogram};
    }

    HybridHistogramOptions options_;
    milliseconds fallback_;
    IdleTimeHistogram histogram_;
    Clock::time_point idle_since_{};
    bool idle_ = false;
};

}  // namespace

std::string_view to_string(KeepAliveReason r) {
    switch (r) {
        case KeepAliveReason::fixed_policy: return "fixed";
        case KeepAliveReason::too_few_samples: return "too_few_samples";
        case KeepAliveReason::out_of_range: return "out_of_range";
        case KeepAliveReason::unpredictable: return "unpredictable";
        case KeepAliveReason::histogram: return "histogram";
    }
    return "unknown";
}

std::unique_ptr<KeepAlivePolicy> make_fixed_keep_alive(std::chrono::seconds keep_alive) {
    return std::make_unique<FixedKeepAlive>(keep_alive);
}

std::unique_ptr<KeepAlivePolicy> make_hybrid_keep_alive(std::chrono::seconds fallback_keep_alive,
                                                        HybridHistogramOptions options) {
    return std::make_unique<HybridHistogramKeepAlive>(fallback_keep_alive, options);
}

IdleTimeHistogram::IdleTimeHistogram(milliseconds first_bin, double bin_growth, milliseconds range,
                                     std::uint32_t max_samples)
    : first_ms_(first_bin.count()),
      range_ms_(range.count()),
      growth_(bin_growth),
      log_growth_(std::log(bin_growth)),
      max_samples_(static_cast<std::uint16_t>(max_samples)) {
    if (first_bin < kSmallestFirstBin) throw std::invalid_argument("keep-alive histogram: first bin under 100 ms");
    if (!(bin_growth >= kSmallestBinGrowth)) throw std::invalid_argument("keep-alive histogram: bin growth under 1.01");
    if (range <= first_bin) throw std::invalid_argument("keep-alive histogram: range not above the first bin");
    if (max_samples < 2 || max_samples > std::numeric_limits<std::uint16_t>::max())
        throw std::invalid_argument("keep-alive histogram: max_samples must fit 16-bit counters");
    // Geometric bins until one reaches the range: 1 + ceil(log_g(range / first)).
    const double geometric = std::ceil(std::log(static_cast<double>(range_ms_) / static_cast<double>(first_ms_)) /
                                       log_growth_ - kRankSlack);
    if (!(geometric < static_cast<double>(kMaxBins)))
        throw std::invalid_argument("keep-alive histogram: too many bins");
    counts_.assign(1 + static_cast<std::size_t>(geometric), 0);
}

milliseconds IdleTimeHistogram::upper_edge(std::size_t bin) const {
    if (bin + 1 >= counts_.size()) return milliseconds{range_ms_};
    const double edge = static_cast<double>(first_ms_) * std::pow(growth_, static_cast<double>(bin));
    return milliseconds{std::min<std::int64_t>(range_ms_, std::llround(edge))};
}

milliseconds IdleTimeHistogram::lower_edge(std::size_t bin) const {
    return bin == 0 ? milliseconds{0} : upper_edge(bin - 1);
}

std::size_t IdleTimeHistogram::bin_of(milliseconds idle_time) const {
    const auto ms = idle_time.count();
    if (ms >= range_ms_) return counts_.size();
    if (ms < first_ms_) return 0;
    // The logarithm gives the bin up to rounding; the edges themselves decide.
    auto bin = static_cast<std::size_t>(
        std::log(static_cast<double>(ms) / static_cast<double>(first_ms_)) / log_growth_ + 1.0);
    bin = std::clamp<std::size_t>(bin, 1, counts_.size() - 1);
    while (bin > 1 && idle_time < lower_edge(bin)) --bin;
    while (bin + 1 < counts_.size() && idle_time >= upper_edge(bin)) ++bin;
    return bin;
}

void IdleTimeHistogram::add(milliseconds idle_time) {
    if (total() >= max_samples_) halve();
    const auto bin = bin_of(idle_time);
    if (bin == counts_.size()) {
        ++out_of_range_;
    } else {
        ++counts_[bin];
        ++in_range_;
    }
}

void IdleTimeHistogram::halve() {
    in_range_ = 0;
    for (auto& c : counts_) {
        c = static_cast<std::uint16_t>(c / 2);
        in_range_ = static_cast<std::uint16_t>(in_range_ + c);
    }
    out_of_range_ = static_cast<std::uint16_t>(out_of_range_ / 2);
}

std::size_t IdleTimeHistogram::percentile_bin(double p) const {
    const double n = in_range_;
    const double rank = std::max(1.0, std::ceil(p * n - kRankSlack));
    double seen = 0;
    for (std::size_t bin = 0; bin < counts_.size(); ++bin) {
        seen += counts_[bin];
        if (seen >= rank) return bin;
    }
    return counts_.size() - 1;
}

double IdleTimeHistogram::cv_on_grid(milliseconds cell) const {
    if (in_range_ == 0) return 0.0;
    const std::int64_t c = cell.count();
    const std::int64_t cells = (range_ms_ + c - 1) / c;
    // Bins come in time order, so each cell's share arrives contiguously: sum one cell,
    // square it when the next one starts. No per-call allocation.
    double sum_sq = 0.0;
    double current = 0.0;
    std::int64_t current_cell = -1;
    for (std::size_t bin = 0; bin < counts_.size(); ++bin) {
        if (counts_[bin] == 0) continue;
        const std::int64_t lo = lower_edge(bin).count();
        const std::int64_t hi = upper_edge(bin).count();
        const double per_ms = counts_[bin] / static_cast<double>(hi - lo);
        for (std::int64_t j = lo / c; j <= (hi - 1) / c; ++j) {
            const std::int64_t overlap = std::min(hi, (j + 1) * c) - std::max(lo, j * c);
            if (j != current_cell) {
                sum_sq += current * current;
                current = 0.0;
                current_cell = j;
            }
            current += per_ms * static_cast<double>(overlap);
        }
    }
    sum_sq += current * current;
    const double mean = static_cast<double>(in_range_) / static_cast<double>(cells);
    const double variance = std::max(0.0, sum_sq / static_cast<double>(cells) - mean * mean);
    return std::sqrt(variance) / mean;
}

}  // namespace funcd
