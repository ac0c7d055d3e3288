#include "funcd/pool/keep_alive_simulation.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>
#include <random>

namespace funcd {
namespace {

using std::chrono::milliseconds;
using TimePoint = KeepAlivePolicy::Clock::time_point;
// "Not scheduled" for the unload and pre-warm times (std::optional trips GCC 12's
// -Wmaybe-uninitialized here).
constexpr TimePoint kNever = TimePoint::max();

// The loaded workers of one function between events. While the function is idle, idle
// workers share one unload time (the windows apply from the moment it went idle) and at
// most one pre-warm load is pending.
class Simulator {
public:
    explicit Simulator(KeepAlivePolicy& policy) : policy_(policy) {}

    void arrive(TimePoint t, milliseconds duration) {
        finish_until(t);
        advance_to(t);
        policy_.on_arrival(t);
        ++result_.invocations;
        if (idle_ > 0) {
            --idle_;
            ++result_.warm_starts;
        } else {
            ++result_.cold_starts;
        }
        // The function is busy: no window runs, a pending pre-warm is moot.
        unload_at_ = kNever;
        prewarm_at_ = kNever;
        running_.push(t + duration);
        result_.peak_workers = std::max(result_.peak_workers, idle_ + running_.size());
    }

    KeepAliveSimulation finish() {
        finish_until(kNever);
        advance_to(kNever);
        return result_;
    }

private:
    // Completes every invocation that ends at or before t, in order; an arrival at the
    // same instant as a completion finds that worker free.
    void finish_until(TimePoint t) {
        while (!running_.empty() && running_.top() <= t) {
            const TimePoint end = running_.top();
            advance_to(end);
            running_.pop();
            ++idle_;
            if (running_.empty()) went_idle(end);
        }
    }

    void went_idle(TimePoint t) {
        const KeepAliveDecision d = policy_.on_idle(t);
        ++result_.idle_decisions;
        if (d.adaptive) ++result_.adaptive_decisions;
        if (d.prewarm > milliseconds{0}) {
            idle_ = 0;
            unload_at_ = kNever;
            prewarm_at_ = t + d.prewarm;
            prewarm_keep_ = d.keep_alive;
        } else {
            unload_at_ = t + d.keep_alive;
        }
    }

    // Moves the clock to t, charging idle workers and playing out the windows on the way.
    void advance_to(TimePoint t) {
        while (true) {
            if (idle_ > 0 && unload_at_ != kNever && unload_at_ <= t) {
                charge(unload_at_);
                idle_ = 0;
                unload_at_ = kNever;
            } else if (prewarm_at_ != kNever && prewarm_at_ <= t) {
                charge(prewarm_at_);
                ++idle_;
                ++result_.prewarm_loads;
                unload_at_ = prewarm_at_ + prewarm_keep_;
                prewarm_at_ = kNever;
                result_.peak_workers = std::max(result_.peak_workers, idle_ + running_.size());
            } else {
                break;
            }
        }
        // At the end (t == kNever) nothing is loaded or pending any more.
        if (t == kNever) return;
        if (idle_ > 0) charge(t);
        now_ = t;
    }

    void charge(TimePoint until) {
        result_.idle_worker_seconds +=
            static_cast<double>(idle_) * std::chrono::duration<double>(until - now_).count();
        now_ = until;
    }

    KeepAlivePolicy& policy_;
    KeepAliveSimulation result_;
    TimePoint now_{};
    std::size_t idle_ = 0;
    std::priority_queue<TimePoint, std::vector<TimePoint>, std::greater<>> running_;
    TimePoint unload_at_ = kNever;
    TimePoint prewarm_at_ = kNever;
    milliseconds prewarm_keep_{0};
};

// Uniform in [0, 1) from the top 53 bits: the standard fixes mt19937_64's output but not
// what std::uniform_real_distribution does with it.
class Random {
public:
    explicit Random(std::uint64_t seed) : engine_(seed) {}
    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    double exponential(double mean) { return -mean * std::log1p(-uniform()); }

private:
    std::mt19937_64 engine_;
};

milliseconds ms(double v) { return milliseconds{std::llround(v)}; }

}  // namespace

KeepAliveSimulation simulate_keep_alive(KeepAlivePolicy& policy, const InvocationTrace& trace) {
    Simulator sim(policy);
    for (const auto& inv : trace) sim.arrive(TimePoint{} + inv.arrival, inv.duration);
    return sim.finish();
}

namespace traces {

InvocationTrace periodic(milliseconds period, double jitter, std::size_t count, milliseconds duration,
                         std::uint64_t seed) {
    Random rng(seed);
    InvocationTrace trace;
    trace.reserve(count);
    milliseconds t{0};
    for (std::size_t i = 0; i < count; ++i) {
        trace.push_back({t, duration});
        t += ms(static_cast<double>(period.count()) * rng.uniform(1.0 - jitter, 1.0 + jitter));
    }
    return trace;
}

InvocationTrace poisson(milliseconds mean_gap, std::size_t count, milliseconds duration, std::uint64_t seed) {
    Random rng(seed);
    InvocationTrace trace;
    trace.reserve(count);
    milliseconds t{0};
    for (std::size_t i = 0; i < count; ++i) {
        trace.push_back({t, duration});
        t += ms(rng.exponential(static_cast<double>(mean_gap.count())));
    }
    return trace;
}

InvocationTrace uniform_gaps(milliseconds min_gap, milliseconds max_gap, std::size_t count, milliseconds duration,
                             std::uint64_t seed) {
    Random rng(seed);
    InvocationTrace trace;
    trace.reserve(count);
    milliseconds t{0};
    for (std::size_t i = 0; i < count; ++i) {
        trace.push_back({t, duration});
        t += ms(rng.uniform(static_cast<double>(min_gap.count()), static_cast<double>(max_gap.count())));
    }
    return trace;
}

InvocationTrace bursty(std::size_t bursts, std::size_t per_burst, milliseconds in_burst_gap, milliseconds min_quiet,
                       milliseconds max_quiet, milliseconds duration, std::uint64_t seed) {
    Random rng(seed);
    InvocationTrace trace;
    trace.reserve(bursts * per_burst);
    milliseconds t{0};
    for (std::size_t b = 0; b < bursts; ++b) {
        for (std::size_t i = 0; i < per_burst; ++i) {
            trace.push_back({t, duration});
            t += ms(rng.exponential(static_cast<double>(in_burst_gap.count())));
        }
        t += ms(rng.uniform(static_cast<double>(min_quiet.count()), static_cast<double>(max_quiet.count())));
    }
    return trace;
}

InvocationTrace daily(std::size_t days, milliseconds active, milliseconds mean_gap, milliseconds duration,
                      std::uint64_t seed) {
    using namespace std::chrono_literals;
    Random rng(seed);
    InvocationTrace trace;
    for (std::size_t d = 0; d < days; ++d) {
        const milliseconds start = std::chrono::duration_cast<milliseconds>(24h) * static_cast<std::int64_t>(d);
        for (milliseconds t = start; t < start + active;
             t += ms(rng.exponential(static_cast<double>(mean_gap.count()))))
            trace.push_back({t, duration});
    }
    return trace;
}

}  // namespace traces
}  // namespace funcd
