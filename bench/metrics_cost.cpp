// What counting costs one invocation, in nanoseconds: the dispatcher's part of it (finding
// the function's record among N, holding it, and completing it: outcome, two histograms,
// billed memory-time), repeated in a loop. bench/run's metrics section compares it with a
// warm invocation's p50; the end-to-end on/off runs there are within the machine's noise.
//
//   metrics-cost [FUNCTIONS] [ITERATIONS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "funcd/observe/function_metrics_table.hpp"

int main(int argc, char** argv) {
    using namespace funcd::observe;
    const int functions = argc > 1 ? std::atoi(argv[1]) : 1000;
    const long iterations = argc > 2 ? std::atol(argv[2]) : 5'000'000;
    FunctionMetricsTable table;
    std::vector<std::string> names;
    for (int i = 0; i < functions; ++i) names.push_back(fmt::format("function-{:04}", i));
    for (const auto& n : names) table.add(n);
    const std::string runtime = "provided.al2023";
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < iterations; ++i) {
        const std::string& name = names[static_cast<std::size_t>(i) % names.size()];
        std::shared_ptr<FunctionMetrics> m = table.find(name);
        const std::int64_t us = 80 + (i & 1023);
        m->completed({funcd::Outcome::success, us, (us + 999) / 1000, 128,
                      (i & 4095) == 0 ? std::optional<std::int64_t>(5'000) : std::nullopt, runtime});
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"functions\": %d, \"iterations\": %ld, \"ns_per_invocation\": %.1f}\n", functions, iterations,
                ns / static_cast<double>(iterations));
    // Keeps the loop's work observable.
    return table.find(names[0])->invocations(InvocationOutcome::success) == 0 ? 1 : 0;
}
