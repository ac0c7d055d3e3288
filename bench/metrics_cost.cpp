// What counting costs one invocation, in nanoseconds: the dispatcher's part of it (finding
// the function's record among N, holding it, and completing it: outcome, two histograms,
// billed memory-time), repeated in a loop. bench/run's metrics section compares it with a
// warm invocation's p50; the end-to-end on/off runs there are within the machine's noise.
// Also what a scrape of N functions costs: the copy taken on the loop, and the text written
// on the blocking pool.
//
//   metrics-cost [FUNCTIONS] [ITERATIONS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "funcd/observe/function_metrics_table.hpp"
#include "funcd/observe/metrics_snapshot.hpp"

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
    // A scrape: the copy (on the loop in the daemon), then the text (on the blocking pool).
    constexpr int kScrapes = 20;
    double copy_us = 0, text_us = 0;
    std::size_t bytes = 0;
    for (int i = 0; i < kScrapes; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        MetricsSnapshot snap;
        snap.functions.reserve(table.all().size());  // as the endpoint does
        for (const auto& [name, m] : table.all()) snap.functions.push_back(FunctionSnapshot::of(name, *m));
        const auto t1 = std::chrono::steady_clock::now();
        bytes = write_exposition(snap, ExpositionFormat::openmetrics, funcd::Prices{}).size();
        const auto t2 = std::chrono::steady_clock::now();
        copy_us += std::chrono::duration<double, std::micro>(t1 - t0).count();
        text_us += std::chrono::duration<double, std::micro>(t2 - t1).count();
    }
    std::printf("{\"functions\": %d, \"iterations\": %ld, \"ns_per_invocation\": %.1f, \"scrape_copy_us\": %.0f, "
                "\"scrape_text_us\": %.0f, \"scrape_bytes\": %zu}\n",
                functions, iterations, ns / static_cast<double>(iterations), copy_us / kScrapes, text_us / kScrapes,
                bytes);
    // Keeps the loop's work observable.
    return table.find(names[0])->invocations(InvocationOutcome::success) == 0 ? 1 : 0;
}
