#include "funcd/pool/keep_alive.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include <gtest/gtest.h>

#include "funcd/pool/keep_alive_simulation.hpp"

namespace {

using namespace std::chrono_literals;
using funcd::HybridHistogramOptions;
using funcd::IdleTimeHistogram;
using funcd::InvocationTrace;
using funcd::KeepAliveDecision;
using funcd::KeepAlivePolicy;
using funcd::KeepAliveReason;
using std::chrono::milliseconds;
using TimePoint = KeepAlivePolicy::Clock::time_point;

namespace traces = funcd::traces;

constexpr auto kFallback = std::chrono::seconds(600);
// Time points are built from durations: no test reads the clock.
const TimePoint kStart = TimePoint{} + 1h;

// Drives a policy through idle times: idle, wait `it`, one arrival, run 100 ms, idle
// again. Returns the decision taken after the last idle time.
struct Driver {
    KeepAlivePolicy& policy;
    TimePoint now = kStart;

    KeepAliveDecision idle_then_arrive(milliseconds it) {
        policy.on_idle(now);
        now += it;
        policy.on_arrival(now);
        now += 100ms;
        return policy.on_idle(now);
    }
    KeepAliveDecision feed(milliseconds it, std::size_t times) {
        KeepAliveDecision d;
        for (std::size_t i = 0; i < times; ++i) d = idle_then_arrive(it);
        return d;
    }
};

IdleTimeHistogram default_histogram() {
    const HybridHistogramOptions o;
    return IdleTimeHistogram(o.first_bin, o.bin_growth, o.range, o.max_samples);
}

// A low-discrepancy sequence over [0, range): as even a spread as there can be.
milliseconds spread(std::size_t k, milliseconds range) {
    const double frac = std::fmod(static_cast<double>(k) * 0.6180339887498949, 1.0);
    return milliseconds{static_cast<std::int64_t>(frac * static_cast<double>(range.count()))};
}

TEST(KeepAliveFixed, AlwaysTheConfiguredWindow) {
    auto policy = funcd::make_fixed_keep_alive(42s);
    Driver drive{*policy};
    const auto d = drive.feed(5min, 300);
    EXPECT_EQ(d.prewarm, 0ms);
    EXPECT_EQ(d.keep_alive, 42s);
    EXPECT_FALSE(d.adaptive);
    EXPECT_EQ(d.reason, KeepAliveReason::fixed_policy);
}

TEST(KeepAliveHistogram, DefaultLayoutIsOneSecondThenTenPercentBinsToFourHours) {
    const auto h = default_histogram();
    ASSERT_EQ(h.bins(), 102u);
    EXPECT_EQ(h.lower_edge(0), 0ms);
    EXPECT_EQ(h.upper_edge(0), 1s);
    EXPECT_EQ(h.upper_edge(1), 1100ms);
    EXPECT_EQ(h.upper_edge(h.bins() - 1), 4h);
    for (std::size_t b = 1; b < h.bins(); ++b) {
        const auto lo = h.lower_edge(b);
        const auto hi = h.upper_edge(b);
        ASSERT_LT(lo, hi) << "bin " << b;
        EXPECT_LE(static_cast<double>(hi.count()), 1.1 * static_cast<double>(lo.count()) + 1.0) << "bin " << b;
        // Every millisecond lands in the bin whose edges hold it.
        EXPECT_EQ(h.bin_of(lo), b);
        EXPECT_EQ(h.bin_of(hi - 1ms), b);
    }
    EXPECT_EQ(h.bin_of(999ms), 0u);
    EXPECT_EQ(h.bin_of(4h - 1ms), h.bins() - 1);
    EXPECT_EQ(h.bin_of(4h), h.bins());  // out of range
}

TEST(KeepAliveHistogram, MemoryStaysBoundedAndOldSamplesAge) {
    auto h = default_histogram();
    const auto bytes = h.memory_bytes();
    // 102 16-bit counters plus the layout: well under half a kilobyte per function.
    EXPECT_LE(bytes, 320u);
    for (int i = 0; i < 100'000; ++i) h.add(milliseconds{(i * 7919) % 20'000'000});
    EXPECT_LE(h.total(), funcd::keep_alive_defaults::kMaxSamples);
    // Halving rounds each bin down: at most half a count lost per bin.
    EXPECT_GE(h.total(), (funcd::keep_alive_defaults::kMaxSamples - h.bins() - 1) / 2);
    EXPECT_EQ(h.memory_bytes(), bytes);
}

TEST(KeepAliveHybrid, TooFewIdleTimesFallBackToFixed) {
    auto policy = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive{*policy};
    // The first idle period has no idle time yet.
    auto d = policy->on_idle(drive.now);
    EXPECT_FALSE(d.adaptive);
    EXPECT_EQ(d.reason, KeepAliveReason::too_few_samples);
    EXPECT_EQ(d.prewarm, 0ms);
    EXPECT_EQ(d.keep_alive, kFallback);

    d = drive.feed(5min, funcd::keep_alive_defaults::kMinSamples - 1);
    EXPECT_FALSE(d.adaptive);
    EXPECT_EQ(d.reason, KeepAliveReason::too_few_samples);
    EXPECT_EQ(d.keep_alive, kFallback);

    d = drive.idle_then_arrive(5min);
    EXPECT_TRUE(d.adaptive);
    EXPECT_EQ(d.reason, KeepAliveReason::histogram);
}

TEST(KeepAliveHybrid, PeriodicIdleTimesGiveWindowsAroundThePeriod) {
    auto policy = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive{*policy};
    KeepAliveDecision d;
    // 5 minutes +-10%, spread evenly over the jitter.
    for (std::size_t k = 0; k < 300; ++k) d = drive.idle_then_arrive(270s + spread(k, 60s));
    ASSERT_TRUE(d.adaptive);
    // Loaded before the shortest idle time and until after the longest, but unloaded
    // for most of the gap and not kept much past it.
    EXPECT_GT(d.prewarm, 200s);
    EXPECT_LE(d.prewarm, 270s);
    EXPECT_GE(d.prewarm + d.keep_alive, 330s);
    EXPECT_LE(d.prewarm + d.keep_alive, 400s);
}

TEST(KeepAliveHybrid, MarginsWidenTheWindowOnBothSides) {
    const auto h = default_histogram();
    const auto bin = h.bin_of(5min);
    const auto lo = h.lower_edge(bin);
    const auto hi = h.upper_edge(bin);

    auto paper = funcd::make_hybrid_keep_alive(kFallback);
    auto d = Driver{*paper}.feed(5min, 200);
    ASSERT_TRUE(d.adaptive);
    // The paper's 10%: pre-warm 10% before the head bin, keep until 10% after the tail bin.
    EXPECT_EQ(d.prewarm, milliseconds{static_cast<std::int64_t>(std::floor(0.9 * static_cast<double>(lo.count())))});
    EXPECT_EQ(d.prewarm + d.keep_alive,
              milliseconds{static_cast<std::int64_t>(std::ceil(1.1 * static_cast<double>(hi.count())))});

    HybridHistogramOptions none;
    none.margin = 0.0;
    auto exact = funcd::make_hybrid_keep_alive(kFallback, none);
    d = Driver{*exact}.feed(5min, 200);
    ASSERT_TRUE(d.adaptive);
    EXPECT_EQ(d.prewarm, lo);
    EXPECT_EQ(d.prewarm + d.keep_alive, hi);

    HybridHistogramOptions wide;
    wide.margin = 0.25;
    auto wider = funcd::make_hybrid_keep_alive(kFallback, wide);
    d = Driver{*wider}.feed(5min, 200);
    ASSERT_TRUE(d.adaptive);
    EXPECT_EQ(d.prewarm, milliseconds{static_cast<std::int64_t>(std::floor(0.75 * static_cast<double>(lo.count())))});
    EXPECT_EQ(d.prewarm + d.keep_alive,
              milliseconds{static_cast<std::int64_t>(std::ceil(1.25 * static_cast<double>(hi.count())))});
}

TEST(KeepAliveHybrid, ShortIdleTimesKeepTheWorkerInsteadOfPrewarming) {
    // Seconds apart: no pre-warm, a keep-alive just past the idle time (not 10 minutes).
    auto fast = funcd::make_hybrid_keep_alive(kFallback);
    auto d = Driver{*fast}.feed(5s, 200);
    ASSERT_TRUE(d.adaptive);
    EXPECT_EQ(d.prewarm, 0ms);
    EXPECT_GE(d.keep_alive, 5s);
    EXPECT_LE(d.keep_alive, 6500ms);

    // 40 s apart: the pre-warm point (about 34 s) is under a minute, not worth an unload.
    auto medium = funcd::make_hybrid_keep_alive(kFallback);
    d = Driver{*medium}.feed(40s, 200);
    ASSERT_TRUE(d.adaptive);
    EXPECT_EQ(d.prewarm, 0ms);
    EXPECT_GE(d.keep_alive, 40s);
    EXPECT_LE(d.keep_alive, 50s);

    HybridHistogramOptions eager;
    eager.min_prewarm = 0ms;
    auto unfloored = funcd::make_hybrid_keep_alive(kFallback, eager);
    d = Driver{*unfloored}.feed(40s, 200);
    ASSERT_TRUE(d.adaptive);
    EXPECT_GT(d.prewarm, 30s);
    EXPECT_LT(d.prewarm, 40s);
}

TEST(KeepAliveHybrid, IdleTimesSpreadOverTheRangeFallBack) {
    auto policy = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive{*policy};
    KeepAliveDecision d;
    for (std::size_t k = 0; k < 400; ++k) d = drive.idle_then_arrive(spread(k, 4h));
    EXPECT_FALSE(d.adaptive);
    EXPECT_EQ(d.reason, KeepAliveReason::unpredictable);
    EXPECT_EQ(d.prewarm, 0ms);
    EXPECT_EQ(d.keep_alive, kFallback);

    // The same spread over the first hour is concentrated enough (a quarter of the range).
    auto narrower = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive2{*narrower};
    for (std::size_t k = 0; k < 400; ++k) d = drive2.idle_then_arrive(spread(k, 30min));
    EXPECT_TRUE(d.adaptive);
}

TEST(KeepAliveHybrid, MostlyOutOfRangeIdleTimesFallBack) {
    auto policy = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive{*policy};
    KeepAliveDecision d;
    // Three in five gaps are longer than the 4 h histogram.
    for (int i = 0; i < 100; ++i) {
        drive.idle_then_arrive(5min);
        drive.idle_then_arrive(5min);
        drive.idle_then_arrive(6h);
        drive.idle_then_arrive(6h);
        d = drive.idle_then_arrive(6h);
    }
    EXPECT_FALSE(d.adaptive);
    EXPECT_EQ(d.reason, KeepAliveReason::out_of_range);
    EXPECT_EQ(d.keep_alive, kFallback);

    // One in ten out of range (a nightly gap, say): the histogram still describes the rest.
    auto mostly_in = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive2{*mostly_in};
    for (int i = 0; i < 30; ++i) {
        drive2.feed(5min, 9);
        d = drive2.idle_then_arrive(12h);
    }
    EXPECT_TRUE(d.adaptive);
    EXPECT_LE(d.prewarm + d.keep_alive, 6min);
}

TEST(KeepAliveHybrid, ArrivalsWhileBusyAddNoIdleTimes) {
    auto policy = funcd::make_hybrid_keep_alive(kFallback);
    TimePoint t = kStart;
    // Arrivals before the function was ever idle are not idle times either.
    policy->on_arrival(t);
    policy->on_arrival(t + 1s);
    t += 2s;
    KeepAliveDecision d;
    const auto cycles = funcd::keep_alive_defaults::kMinSamples;
    for (std::uint32_t i = 0; i < cycles; ++i) {
        d = policy->on_idle(t);
        EXPECT_EQ(d.reason, KeepAliveReason::too_few_samples) << i;
        t += 5min;
        policy->on_arrival(t);  // ends the idle time: one sample
        // Concurrent arrivals long after the idle period began: if they counted, they
        // would add idle times of 15 and 45 minutes.
        policy->on_arrival(t + 10min);
        policy->on_arrival(t + 40min);
        t += 41min;
    }
    d = policy->on_idle(t);
    ASSERT_TRUE(d.adaptive) << funcd::to_string(d.reason);
    EXPECT_LE(d.prewarm + d.keep_alive, 6min);
}

TEST(KeepAliveHybrid, FollowsAChangedPattern) {
    auto policy = funcd::make_hybrid_keep_alive(kFallback);
    Driver drive{*policy};
    auto d = drive.feed(5min, 1000);
    ASSERT_TRUE(d.adaptive);
    EXPECT_LT(d.prewarm + d.keep_alive, 6min);
    // The function is now called every 20 minutes: the tail moves first...
    d = drive.feed(20min, 20);
    ASSERT_TRUE(d.adaptive);
    EXPECT_GE(d.prewarm + d.keep_alive, 20min);
    EXPECT_LT(d.prewarm, 5min);
    // ...and once the old idle times have aged out, the pre-warm point follows.
    d = drive.feed(20min, 3000);
    ASSERT_TRUE(d.adaptive);
    EXPECT_GT(d.prewarm, 15min);
    EXPECT_LE(d.prewarm, 20min);
}

TEST(KeepAliveHybrid, RejectsInconsistentOptions) {
    auto with = [](auto change) {
        HybridHistogramOptions o;
        change(o);
        return o;
    };
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) { o.head_percentile = 0.995; })),
                 std::invalid_argument);
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) { o.margin = 1.0; })), std::invalid_argument);
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) { o.bin_growth = 1.0; })),
                 std::invalid_argument);
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) { o.max_samples = 100'000; })),
                 std::invalid_argument);
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) { o.max_samples = 250; })),
                 std::invalid_argument);
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) { o.cv_cell = 3h; })),
                 std::invalid_argument);
    // 5% bins from 100 ms to 4 h (245 bins) are fine; 1% bins (1,194) exceed the bound.
    EXPECT_NO_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) {
        o.bin_growth = 1.05;
        o.first_bin = 100ms;
    })));
    EXPECT_THROW(funcd::make_hybrid_keep_alive(kFallback, with([](auto& o) {
                     o.bin_growth = 1.01;
                     o.first_bin = 100ms;
                 })),
                 std::invalid_argument);
}

// A policy that always answers the same decision, to check the simulator's accounting.
class ScriptedPolicy final : public KeepAlivePolicy {
public:
    explicit ScriptedPolicy(KeepAliveDecision d) : d_(d) {}
    void on_arrival(Clock::time_point) override { ++arrivals; }
    KeepAliveDecision on_idle(Clock::time_point) override {
        ++idles;
        return d_;
    }
    int arrivals = 0;
    int idles = 0;

private:
    KeepAliveDecision d_;
};

TEST(KeepAliveSimulation, CountsColdWarmAndIdleTime) {
    auto fixed = funcd::make_fixed_keep_alive(10s);
    const InvocationTrace trace = {{0s, 1s}, {5s, 1s}, {20s, 1s}};
    const auto r = funcd::simulate_keep_alive(*fixed, trace);
    EXPECT_EQ(r.invocations, 3u);
    EXPECT_EQ(r.cold_starts, 2u);  // 0 s, and 20 s (unloaded at 16 s)
    EXPECT_EQ(r.warm_starts, 1u);
    EXPECT_EQ(r.peak_workers, 1u);
    EXPECT_EQ(r.idle_decisions, 3u);
    // Idle 1-5 s, 6-16 s, 21-31 s.
    EXPECT_DOUBLE_EQ(r.idle_worker_seconds, 24.0);
}

TEST(KeepAliveSimulation, OverlappingInvocationsGetAnotherWorker) {
    auto fixed = funcd::make_fixed_keep_alive(5s);
    const InvocationTrace trace = {{0s, 10s}, {1s, 1s}, {12s, 1s}};
    const auto r = funcd::simulate_keep_alive(*fixed, trace);
    EXPECT_EQ(r.cold_starts, 2u);
    EXPECT_EQ(r.warm_starts, 1u);
    EXPECT_EQ(r.peak_workers, 2u);
    // The second worker idles 2-10 s while the first runs; both idle 10-12 s; one is
    // taken at 12 s and the other stays idle until the function is idle at 13 s; then
    // both are kept 5 s.
    EXPECT_DOUBLE_EQ(r.idle_worker_seconds, 8.0 + 2 * 2.0 + 1.0 + 2 * 5.0);
}

TEST(KeepAliveSimulation, PrewarmUnloadsAndLoadsOneWorkerLater) {
    ScriptedPolicy policy({10s, 5s, true, KeepAliveReason::histogram});
    // Idle at 1 s: loaded again at 11 s, kept until 16 s. The arrival at 13 s is warm;
    // idle at 14 s: loaded at 24 s; the arrival at 20 s comes too early and is cold.
    const InvocationTrace trace = {{0s, 1s}, {13s, 1s}, {20s, 1s}};
    const auto r = funcd::simulate_keep_alive(policy, trace);
    EXPECT_EQ(policy.arrivals, 3);
    EXPECT_EQ(policy.idles, 3);
    EXPECT_EQ(r.cold_starts, 2u);
    EXPECT_EQ(r.warm_starts, 1u);
    EXPECT_EQ(r.adaptive_decisions, 3u);
    // Pre-warm loads at 11 s and, after the last invocation, at 31 s (kept 5 s).
    EXPECT_EQ(r.prewarm_loads, 2u);
    EXPECT_DOUBLE_EQ(r.idle_worker_seconds, 2.0 + 5.0);
}

TEST(KeepAliveTraces, SeededAndShapedAsDescribed) {
    const auto a = traces::periodic(5min, 0.1, 500, 200ms, 7);
    const auto b = traces::periodic(5min, 0.1, 500, 200ms, 7);
    ASSERT_EQ(a.size(), 500u);
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].arrival, b[i].arrival);
    for (std::size_t i = 1; i < a.size(); ++i) {
        const auto gap = a[i].arrival - a[i - 1].arrival;
        EXPECT_GE(gap, 270s);
        EXPECT_LE(gap, 330s);
    }
    EXPECT_NE(traces::periodic(5min, 0.1, 500, 200ms, 8)[1].arrival, a[1].arrival);

    const auto p = traces::poisson(2min, 5000, 200ms, 1);
    const double mean_s = std::chrono::duration<double>(p.back().arrival).count() / static_cast<double>(p.size() - 1);
    EXPECT_NEAR(mean_s, 120.0, 6.0);

    const auto bursts = traces::bursty(10, 50, 1s, 30min, 90min, 200ms, 1);
    ASSERT_EQ(bursts.size(), 500u);
    std::size_t long_gaps = 0;
    for (std::size_t i = 1; i < bursts.size(); ++i)
        if (bursts[i].arrival - bursts[i - 1].arrival >= 30min) ++long_gaps;
    EXPECT_EQ(long_gaps, 9u);

    const auto office = traces::daily(3, 8h, 3min, 200ms, 1);
    for (const auto& inv : office) EXPECT_LT(inv.arrival % 24h, 8h);
}

TEST(KeepAliveSimulation, PeriodicTraceAdaptiveKeepsLessIdleWithoutMoreColdStarts) {
    const auto trace = traces::periodic(5min, 0.1, 2016, 200ms, 1);  // a week
    auto fixed = funcd::make_fixed_keep_alive(10min);
    auto adaptive = funcd::make_hybrid_keep_alive(10min);
    const auto f = funcd::simulate_keep_alive(*fixed, trace);
    const auto a = funcd::simulate_keep_alive(*adaptive, trace);
    EXPECT_EQ(f.cold_starts, 1u);
    EXPECT_LE(a.cold_starts, f.cold_starts + 2);
    EXPECT_LT(a.idle_worker_seconds, 0.5 * f.idle_worker_seconds);
    EXPECT_GT(a.prewarm_loads, 1800u);
    EXPECT_GT(a.adaptive_decisions, 1900u);
}

TEST(KeepAliveSimulation, PeriodLongerThanFixedKeepAliveStopsColdStarts) {
    // Every 20 minutes: a 10-minute keep-alive misses every invocation.
    const auto trace = traces::periodic(20min, 0.1, 1008, 200ms, 3);
    auto fixed = funcd::make_fixed_keep_alive(10min);
    auto adaptive = funcd::make_hybrid_keep_alive(10min);
    const auto f = funcd::simulate_keep_alive(*fixed, trace);
    const auto a = funcd::simulate_keep_alive(*adaptive, trace);
    EXPECT_EQ(f.cold_starts, trace.size());
    // Only the learning period (kMinSamples idle times) is cold.
    EXPECT_LE(a.cold_starts, funcd::keep_alive_defaults::kMinSamples + 2);
    EXPECT_LT(a.idle_worker_seconds, f.idle_worker_seconds);
}

TEST(KeepAliveSimulation, UnpredictableTraceBehavesExactlyLikeFixed) {
    const auto trace = traces::uniform_gaps(0ms, 4h, 720, 200ms, 8);
    auto fixed = funcd::make_fixed_keep_alive(10min);
    auto adaptive = funcd::make_hybrid_keep_alive(10min);
    const auto f = funcd::simulate_keep_alive(*fixed, trace);
    const auto a = funcd::simulate_keep_alive(*adaptive, trace);
    EXPECT_EQ(a.adaptive_decisions, 0u);
    EXPECT_EQ(a.cold_starts, f.cold_starts);
    EXPECT_DOUBLE_EQ(a.idle_worker_seconds, f.idle_worker_seconds);
}

}  // namespace
