// Replays synthetic one-function traces against the fixed 10-minute keep-alive and the
// adaptive (hybrid histogram) policy, and prints a markdown table: cold starts, idle
// worker-seconds (memory kept loaded for nothing) and the adaptive/fixed ratios.
// The traces are seeded, so the table is the same on every run; docs/keep-alive.md
// shows it.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "funcd/pool/keep_alive.hpp"
#include "funcd/pool/keep_alive_simulation.hpp"

namespace {

using namespace std::chrono_literals;
using funcd::InvocationTrace;
namespace traces = funcd::traces;

// Lambda's fixed keep-alive, and funcd's default keep_alive_s.
constexpr auto kFixedKeepAlive = std::chrono::seconds(600);
// A short handler; the policies care about gaps, not about run time.
constexpr auto kDuration = 200ms;

struct Row {
    std::string name;
    InvocationTrace trace;
};

// Passes everything on to the policy and remembers its last decision, to show the
// windows the adaptive policy ended up with.
class LastDecision final : public funcd::KeepAlivePolicy {
public:
    explicit LastDecision(std::unique_ptr<funcd::KeepAlivePolicy> inner) : inner_(std::move(inner)) {}
    void on_arrival(Clock::time_point t) override { inner_->on_arrival(t); }
    funcd::KeepAliveDecision on_idle(Clock::time_point t) override { return last = inner_->on_idle(t); }
    funcd::KeepAliveDecision last;

private:
    std::unique_ptr<funcd::KeepAlivePolicy> inner_;
};

std::string human(std::chrono::milliseconds d) {
    char buf[32];
    const double s = std::chrono::duration<double>(d).count();
    if (s < 60.0) {
        std::snprintf(buf, sizeof buf, "%.1f s", s);
    } else if (s < 3600.0) {
        std::snprintf(buf, sizeof buf, "%.1f min", s / 60.0);
    } else {
        std::snprintf(buf, sizeof buf, "%.2f h", s / 3600.0);
    }
    return buf;
}

std::string windows(const funcd::KeepAliveDecision& d) {
    if (!d.adaptive) return "fixed (" + std::string(funcd::to_string(d.reason)) + ")";
    return (d.prewarm.count() == 0 ? std::string("none") : human(d.prewarm)) + " / " + human(d.keep_alive);
}

std::string ratio(double adaptive, double fixed) {
    if (fixed == 0.0) return adaptive == 0.0 ? "1.00" : "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", adaptive / fixed);
    return buf;
}

}  // namespace

int main() {
    const std::vector<Row> rows = {
        {"periodic 5 min +-10%, 7 days", traces::periodic(5min, 0.10, 2016, kDuration, 1)},
        {"periodic 30 s +-10%, 1 day", traces::periodic(30s, 0.10, 2880, kDuration, 2)},
        {"periodic 20 min +-10%, 14 days", traces::periodic(20min, 0.10, 1008, kDuration, 3)},
        {"Poisson, mean gap 2 min, 7 days", traces::poisson(2min, 5040, kDuration, 4)},
        {"bursts of 200 (~1 s apart), 30-90 min quiet, 14 days", traces::bursty(336, 200, 1s, 30min, 90min, kDuration, 5)},
        {"bursts of 20 (~1 s apart), 30-90 min quiet, 14 days", traces::bursty(336, 20, 1s, 30min, 90min, kDuration, 6)},
        {"office hours: 8 h/day, Poisson mean 3 min, 14 days", traces::daily(14, 8h, 3min, kDuration, 7)},
        {"uniform gaps 0-4 h, 60 days", traces::uniform_gaps(0ms, 4h, 720, kDuration, 8)},
    };

    std::printf("| trace | invocations | cold starts fixed | cold starts adaptive | cold ratio "
                "| idle worker-s fixed | idle worker-s adaptive | idle ratio | adaptive decisions "
                "| last pre-warm / keep-alive |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
    for (const auto& row : rows) {
        auto fixed_policy = funcd::make_fixed_keep_alive(kFixedKeepAlive);
        LastDecision adaptive_policy(funcd::make_hybrid_keep_alive(kFixedKeepAlive));
        const auto fixed = funcd::simulate_keep_alive(*fixed_policy, row.trace);
        const auto adaptive = funcd::simulate_keep_alive(adaptive_policy, row.trace);
        const double adaptive_share =
            adaptive.idle_decisions == 0
                ? 0.0
                : 100.0 * static_cast<double>(adaptive.adaptive_decisions) / static_cast<double>(adaptive.idle_decisions);
        std::printf("| %s | %zu | %zu | %zu | %s | %.0f | %.0f | %s | %.0f%% | %s |\n", row.name.c_str(),
                    fixed.invocations, fixed.cold_starts, adaptive.cold_starts,
                    ratio(static_cast<double>(adaptive.cold_starts), static_cast<double>(fixed.cold_starts)).c_str(),
                    fixed.idle_worker_seconds, adaptive.idle_worker_seconds,
                    ratio(adaptive.idle_worker_seconds, fixed.idle_worker_seconds).c_str(), adaptive_share,
                    windows(adaptive_policy.last).c_str());
    }
    return 0;
}
