#pragma once
// Replays an invocation trace of one function against a keep-alive policy and counts what
// the policy costs: cold starts, and the time workers spend loaded with nothing to do.
// Used by the tests and by bench/keep_alive_traces.cpp (the table in docs/keep-alive.md).
//
// The model, kept as simple as the pool it stands for:
// - Workers are interchangeable. An arrival takes a loaded idle worker (warm start) or
//   loads a new one (cold start); overlapping invocations run on separate workers, as
//   in WorkerPool. Loading takes no time: the trace's timeline is not shifted.
// - A worker that finishes while other invocations still run stays loaded and idle until
//   the function goes idle; then the policy's decision applies to every idle worker:
//   prewarm == 0 keeps them all until keep_alive after that moment; prewarm > 0 unloads
//   them at once and loads one worker at the pre-warm point for keep_alive.
// - After the last invocation the final decision plays out in full (its pre-warm load
//   and keep-alive included), so every policy is charged for its last window.
#include <chrono>
#include <cstdint>
#include <vector>

#include "funcd/pool/keep_alive.hpp"

namespace funcd {

struct TracedInvocation {
    std::chrono::milliseconds arrival;   // since the start of the trace
    std::chrono::milliseconds duration;  // how long it runs
};

// Sorted by arrival.
using InvocationTrace = std::vector<TracedInvocation>;

struct KeepAliveSimulation {
    std::size_t invocations = 0;
    std::size_t cold_starts = 0;
    std::size_t warm_starts = 0;
    std::size_t prewarm_loads = 0;       // workers loaded at a pre-warm point
    std::size_t peak_workers = 0;        // most workers loaded at once
    std::size_t idle_decisions = 0;      // times the function went idle
    std::size_t adaptive_decisions = 0;  // ... and the decision came from the histogram
    // Worker-seconds spent loaded but idle: the memory the policy keeps for nothing.
    double idle_worker_seconds = 0.0;
};

// The policy is used as the pool would use it; pass a fresh one per run.
KeepAliveSimulation simulate_keep_alive(KeepAlivePolicy& policy, const InvocationTrace& trace);

// Synthetic traces. The same seed gives the same trace on every platform: the generators
// use std::mt19937_64 (whose output the standard fixes) and their own distributions.
namespace traces {

// One invocation every `period`, each gap moved by up to +-jitter (uniform): a cron job
// or a health check.
InvocationTrace periodic(std::chrono::milliseconds period, double jitter, std::size_t count,
                         std::chrono::milliseconds duration, std::uint64_t seed);

// Poisson arrivals (exponential gaps with the given mean): independent users.
InvocationTrace poisson(std::chrono::milliseconds mean_gap, std::size_t count, std::chrono::milliseconds duration,
                        std::uint64_t seed);

// Gaps drawn uniformly from [min_gap, max_gap]: no pattern to learn when the interval
// is wide.
InvocationTrace uniform_gaps(std::chrono::milliseconds min_gap, std::chrono::milliseconds max_gap, std::size_t count,
                             std::chrono::milliseconds duration, std::uint64_t seed);

// `bursts` bursts of `per_burst` invocations with Poisson gaps of mean `in_burst_gap`,
// separated by quiet periods drawn uniformly from [min_quiet, max_quiet]: batch jobs, an
// upload resized into several images.
InvocationTrace bursty(std::size_t bursts, std::size_t per_burst, std::chrono::milliseconds in_burst_gap,
                       std::chrono::milliseconds min_quiet, std::chrono::milliseconds max_quiet,
                       std::chrono::milliseconds duration, std::uint64_t seed);

// Office hours: for `active` of each day, Poisson arrivals with mean gap `mean_gap`;
// nothing for the rest of the day (a gap far beyond any keep-alive).
InvocationTrace daily(std::size_t days, std::chrono::milliseconds active, std::chrono::milliseconds mean_gap,
                      std::chrono::milliseconds duration, std::uint64_t seed);

}  // namespace traces
}  // namespace funcd
