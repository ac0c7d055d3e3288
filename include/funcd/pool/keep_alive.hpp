#pragma once
// How long a function's idle workers stay loaded. Two policies:
//
// - fixed: every worker is kept for the function's `keep_alive_s` after the function goes
//   idle (Lambda's model, 10 minutes by default).
// - hybrid histogram (adaptive): the policy of Shahrad et al., "Serverless in the Wild:
//   Characterizing and Optimizing the Serverless Workload at a Large Cloud Provider",
//   USENIX ATC 2020, section 4.2. Per function, a histogram of idle times (from the end
//   of the last running invocation to the next arrival) gives a pre-warm window (unload
//   at once, load one worker again just before the next invocation is likely) and a
//   keep-alive window (how long that worker waits). While the histogram cannot be
//   trusted it falls back to the fixed policy.
//
// Both are pure logic: the caller reports arrivals and idleness and applies the windows.
// docs/keep-alive.md describes the policies and their settings.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace funcd {

// Why a decision has the windows it has (for logs and tests).
enum class KeepAliveReason {
    fixed_policy,     // the function uses the fixed policy
    too_few_samples,  // adaptive, but the histogram has not seen enough idle times yet
    out_of_range,     // adaptive, but too many idle times were longer than the histogram
    unpredictable,    // adaptive, but the idle times are spread out (low CV)
    histogram,        // the windows come from the histogram
};

std::string_view to_string(KeepAliveReason r);

struct KeepAliveDecision {
    // 0: keep the workers that are loaded; > 0: unload idle workers now and have one
    // loaded again this long after the function went idle.
    std::chrono::milliseconds prewarm{0};
    // How long a loaded idle worker is kept: from the moment the function went idle when
    // prewarm == 0, else from the pre-warm point.
    std::chrono::milliseconds keep_alive{0};
    bool adaptive = false;  // false: the fixed fallback produced it (for logs/tests)
    KeepAliveReason reason = KeepAliveReason::fixed_policy;
};

class KeepAlivePolicy {
public:
    using Clock = std::chrono::steady_clock;
    virtual ~KeepAlivePolicy() = default;
    // An invocation arrived at t.
    virtual void on_arrival(Clock::time_point t) = 0;
    // The function has no invocation running any more (its last one ended at t): the
    // windows to apply from t.
    virtual KeepAliveDecision on_idle(Clock::time_point t) = 0;
};

std::unique_ptr<KeepAlivePolicy> make_fixed_keep_alive(std::chrono::seconds keep_alive);

namespace keep_alive_defaults {
using namespace std::chrono_literals;
// From the paper (section 4.2): the head and tail percentiles of the idle-time
// distribution, the margin that widens the window on both sides, the CV below which the
// histogram is not trusted, and the histogram's range.
inline constexpr double kHeadPercentile = 0.05;
inline constexpr double kTailPercentile = 0.99;
inline constexpr double kMargin = 0.10;
inline constexpr double kCvThreshold = 2.0;
inline constexpr std::chrono::milliseconds kRange = 4h;
// The paper's bin width. Its CV threshold was chosen on 1-minute bins over 4 h, so the
// CV is computed on that grid (our own bins are finer and unequal, see kBinGrowth).
inline constexpr std::chrono::milliseconds kCvCell = 1min;
// Ours. Keep-alives here are seconds to minutes and the shortest configurable one is 1 s
// (limits::kMinKeepAliveS), so the first bin is [0, 1 s). Above it bins grow
// geometrically by kBinGrowth: each is at most 10% wide relative to its start, the same
// as the paper's margin, so rounding to a bin edge never costs more than one margin.
// Linear 1 s bins over 4 h would take 14,400 counters (28 KiB) per function; these take
// 102 (204 bytes).
inline constexpr std::chrono::milliseconds kFirstBin = 1s;
inline constexpr double kBinGrowth = 1.10;
// Ours. The paper fixes no minimum. With too few idle times the CV says nothing: n
// samples spread evenly over all 240 cells still give CV^2 ~ 240/n from counting noise
// alone, which is above 2^2 until n > 60; 100 leaves room for that noise.
inline constexpr std::uint32_t kMinSamples = 100;
// Ours. The paper keeps every idle time of its two-week trace. We halve every count when
// the total reaches this, so counters fit in 16 bits and the histogram follows a
// function whose pattern changes (older idle times weigh half per halving).
inline constexpr std::uint32_t kMaxSamples = 1000;
// Ours. The paper switches to an ARIMA forecast when many idle times are longer than the
// range, without giving a number. We have no forecast and fall back to the fixed policy
// once those are more than half: the histogram then describes a minority of the gaps.
inline constexpr double kMaxOutOfRange = 0.5;
// Follows the paper: with its 1-minute bins a head in the first bin gave no pre-warm
// window, so it never unloaded for less than a minute. Unloading for less saves under a
// minute of memory, costs a worker start, and turns any shorter gap into a cold start.
inline constexpr std::chrono::milliseconds kMinPrewarm = 1min;
}  // namespace keep_alive_defaults

struct HybridHistogramOptions {
    double head_percentile = keep_alive_defaults::kHeadPercentile;
    double tail_percentile = keep_alive_defaults::kTailPercentile;
    double margin = keep_alive_defaults::kMargin;
    double cv_threshold = keep_alive_defaults::kCvThreshold;
    std::chrono::milliseconds range = keep_alive_defaults::kRange;
    std::chrono::milliseconds cv_cell = keep_alive_defaults::kCvCell;
    std::chrono::milliseconds first_bin = keep_alive_defaults::kFirstBin;
    double bin_growth = keep_alive_defaults::kBinGrowth;
    std::uint32_t min_samples = keep_alive_defaults::kMinSamples;
    std::uint32_t max_samples = keep_alive_defaults::kMaxSamples;
    double max_out_of_range = keep_alive_defaults::kMaxOutOfRange;
    std::chrono::milliseconds min_prewarm = keep_alive_defaults::kMinPrewarm;
};

// Throws std::invalid_argument when the options are inconsistent.
std::unique_ptr<KeepAlivePolicy> make_hybrid_keep_alive(std::chrono::seconds fallback_keep_alive,
                                                        HybridHistogramOptions options = {});

// The idle-time histogram behind the hybrid policy, public for tests and tools.
// Bin 0 is [0, first_bin); bin i >= 1 is [first_bin * g^(i-1), first_bin * g^i) with
// g = bin_growth, the last one cut at `range`. Edges are whole milliseconds.
class IdleTimeHistogram {
public:
    // Throws std::invalid_argument when the layout is unusable.
    IdleTimeHistogram(std::chrono::milliseconds first_bin, double bin_growth, std::chrono::milliseconds range,
                      std::uint32_t max_samples);

    void add(std::chrono::milliseconds idle_time);

    std::size_t bins() const { return counts_.size(); }
    // Index of the bin holding `idle_time`; bins() when it is out of range.
    std::size_t bin_of(std::chrono::milliseconds idle_time) const;
    std::chrono::milliseconds lower_edge(std::size_t bin) const;
    std::chrono::milliseconds upper_edge(std::size_t bin) const;
    std::uint32_t count(std::size_t bin) const { return counts_[bin]; }

    std::uint32_t in_range() const { return in_range_; }
    std::uint32_t out_of_range() const { return out_of_range_; }
    std::uint32_t total() const { return in_range_ + out_of_range_; }

    // The bin holding the p-th quantile of the in-range idle times (p in [0, 1]);
    // requires in_range() > 0.
    std::size_t percentile_bin(double p) const;
    // The coefficient of variation of the counts of `cell`-wide bins over [0, range),
    // each bin's count spread evenly over the time it covers; 0 when empty.
    double cv_on_grid(std::chrono::milliseconds cell) const;

    // What this histogram holds in memory, its counters included.
    std::size_t memory_bytes() const { return sizeof(*this) + counts_.capacity() * sizeof(std::uint16_t); }

private:
    void halve();

    std::int64_t first_ms_;
    std::int64_t range_ms_;
    double growth_;
    double log_growth_;
    std::vector<std::uint16_t> counts_;
    std::uint16_t max_samples_;
    std::uint16_t in_range_ = 0;
    std::uint16_t out_of_range_ = 0;
};

}  // namespace funcd
