// `funcd top`: a refreshing table of what each function is doing, from /metrics (rates
// between two samples, workers now) and the stats API (the p50 and p99 durations of the last minutes).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/metrics_sample.hpp"
#include "funcd/common/time_format.hpp"

namespace funcd::cli {

namespace {

using Clock = std::chrono::steady_clock;

// As many rows as fit a common terminal with the header; the busiest come first.
constexpr std::size_t kMaxRows = 20;
// The window of the percentile columns: long enough to hold a few hundred invocations of a
// moderately busy function, short enough to follow a change.
constexpr auto kPercentileWindow = std::chrono::minutes(5);
constexpr double kDefaultIntervalS = 2.0;

struct Percentiles {
    std::optional<double> p50_ms;
    std::optional<double> p99_ms;
};

struct Row {
    std::string name;
    FunctionFigures now;
    FunctionRates rates;
    Percentiles recent;
};

MetricsSample take_sample(CliContext& ctx) {
    RequestOptions options;
    options.headers.emplace_back("Accept", "text/plain");
    return gather_sample(parse_metrics_text(ctx.client().call("GET", "/metrics", {}, options).body));
}

// The p50 and p99 durations of the last kPercentileWindow from the stats API. A window that
// spans midnight (UTC) comes as two daily steps: each figure is then the larger of the two.
Percentiles recent_percentiles(CliContext& ctx, const std::string& name) {
    const auto since = std::chrono::system_clock::now() - kPercentileWindow;
    const ApiResponse r = ctx.client().send(
        "GET", "/v1/functions/" + url_encode(name) + "/stats?step=1d&since=" + url_encode(format_rfc3339(since)));
    Percentiles out;
    if (!r.ok()) return out;  // deleted in between: the row just has no percentiles
    auto larger = [](std::optional<double>& into, const nlohmann::json& d, const char* key) {
        if (d.contains(key) && d[key].is_number()) into = std::max(into.value_or(0.0), d[key].get<double>());
    };
    for (const auto& step : r.json().value("steps", nlohmann::json::array())) {
        const auto d = step.value("duration_ms", nlohmann::json());
        if (!d.is_object()) continue;
        larger(out.p50_ms, d, "p50");
        larger(out.p99_ms, d, "p99");
    }
    return out;
}

std::string fixed(double v, int decimals) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

void show(CliContext& ctx, const MetricsSample& now, const std::vector<Row>& rows, double interval_s, bool clear) {
    const auto& o = ctx.out();
    if (o.json()) {
        nlohmann::json functions = nlohmann::json::array();
        for (const auto& r : rows)
            functions.push_back({{"function", r.name},
                                 {"invocations_per_s", r.rates.invocations_per_s},
                                 {"errors_per_s", r.rates.errors_per_s},
                                 {"throttles", r.rates.throttles},
                                 {"cold_starts", r.rates.cold_starts},
                                 {"mean_duration_ms", r.rates.mean_duration_ms < 0 ? nlohmann::json(nullptr)
                                                                                    : nlohmann::json(r.rates.mean_duration_ms)},
                                 {"p50_duration_ms_5m", r.recent.p50_ms ? nlohmann::json(*r.recent.p50_ms) : nlohmann::json(nullptr)},
                                 {"p99_duration_ms_5m", r.recent.p99_ms ? nlohmann::json(*r.recent.p99_ms) : nlohmann::json(nullptr)},
                                 {"running", r.now.running},
                                 {"workers", {{"idle", r.now.idle}, {"busy", r.now.busy}, {"starting", r.now.starting}}},
                                 {"queue_depth", r.now.queue_depth}});
        o.line(nlohmann::json{{"time", format_rfc3339(std::chrono::system_clock::now())},
                              {"interval_s", interval_s},
                              {"memory_used_bytes", now.memory_used_bytes},
                              {"memory_limit_bytes", now.memory_limit_bytes},
                              {"waiting", now.waiting},
                              {"functions", functions}}
                   .dump());
        std::fflush(o.out());
        return;
    }
    if (clear) std::fputs("\x1b[H\x1b[J", o.out());
    constexpr double kMiB = 1024.0 * 1024.0;
    o.line(o.bold("funcd top") + "  " + ctx.client().endpoint().url + "  " +
           format_rfc3339(std::chrono::system_clock::now()).substr(11, 8) + " UTC  memory " +
           fixed(now.memory_used_bytes / kMiB, 0) + "/" + fixed(now.memory_limit_bytes / kMiB, 0) + " MiB  waiting " +
           fixed(now.waiting, 0) + "  functions " + std::to_string(now.functions.size()));
    std::vector<std::vector<std::string>> table;
    for (const auto& r : rows) {
        std::string errors = fixed(r.rates.errors_per_s, 1);
        if (r.rates.errors_per_s > 0) errors = o.red(errors);
        table.push_back({r.name, fixed(r.rates.invocations_per_s, 1), errors, fixed(r.now.running, 0),
                         fixed(r.now.idle, 0) + "/" + fixed(r.now.busy, 0) + "/" + fixed(r.now.starting, 0),
                         fixed(r.rates.cold_starts, 0), fixed(r.rates.throttles, 0),
                         r.rates.mean_duration_ms < 0 ? "-" : fixed(r.rates.mean_duration_ms, 2),
                         r.recent.p50_ms ? fixed(*r.recent.p50_ms, 2) : "-",
                         r.recent.p99_ms ? fixed(*r.recent.p99_ms, 2) : "-", fixed(r.now.queue_depth, 0)});
    }
    o.table({"FUNCTION", "REQ/S", "ERR/S", "RUNNING", "WORKERS I/B/S", "COLD", "THROTTLED", "AVG MS", "P50 MS (5M)",
             "P99 MS (5M)", "QUEUE"},
            table);
    if (now.functions.size() > rows.size())
        o.line(o.dim("(" + std::to_string(now.functions.size() - rows.size()) + " quieter functions not shown)"));
    std::fflush(o.out());
}

int run_top(CliContext& ctx) {
    if (!ctx.args().positionals().empty()) throw ctx.usage_error("top takes no arguments");
    double interval_s = kDefaultIntervalS;
    if (auto v = ctx.args().value("--interval")) {
        char* end = nullptr;
        interval_s = std::strtod(v->c_str(), &end);
        if (v->empty() || end != v->c_str() + v->size() || !(interval_s >= 0.1 && interval_s <= 3600))
            throw ctx.usage_error("--interval takes seconds from 0.1 to 3600 (got '" + *v + "')");
    }
    long iterations = -1;  // until interrupted
    if (auto v = ctx.args().value("--iterations")) {
        if (v->empty() || v->size() > 9 || v->find_first_not_of("0123456789") != std::string::npos || *v == "0")
            throw ctx.usage_error("--iterations takes a positive whole number (got '" + *v + "')");
        iterations = std::stol(*v);
    }
    const auto only = ctx.args().value("--function");
    const bool clear = !ctx.out().json() && ::isatty(STDOUT_FILENO) == 1;
    const auto interval = std::chrono::duration<double>(interval_s);

    MetricsSample before = take_sample(ctx);
    auto before_at = Clock::now();
    for (long i = 0; iterations < 0 || i < iterations; ++i) {
        std::this_thread::sleep_until(before_at + std::chrono::duration_cast<Clock::duration>(interval));
        MetricsSample now = take_sample(ctx);
        const auto now_at = Clock::now();
        const double seconds = std::chrono::duration<double>(now_at - before_at).count();
        std::vector<Row> rows;
        for (const auto& [name, figures] : now.functions) {
            if (only && name != *only) continue;
            auto prev = before.functions.find(name);
            rows.push_back({name, figures,
                            rates_between(prev == before.functions.end() ? FunctionFigures{} : prev->second, figures,
                                          seconds),
                            {}});
        }
        std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
            if (a.rates.invocations_per_s != b.rates.invocations_per_s)
                return a.rates.invocations_per_s > b.rates.invocations_per_s;
            if (a.now.running != b.now.running) return a.now.running > b.now.running;
            return a.name < b.name;
        });
        if (rows.size() > kMaxRows) rows.resize(kMaxRows);
        for (auto& r : rows) r.recent = recent_percentiles(ctx, r.name);
        if (only && rows.empty()) throw ctx.function_not_found(*only);
        show(ctx, now, rows, seconds, clear);
        if (!clear && !ctx.out().json() && (iterations < 0 || i + 1 < iterations)) ctx.out().line("");
        before = std::move(now);
        before_at = now_at;
    }
    return 0;
}

}  // namespace

CliCommand top_command() {
    return {
        "top",
        "a refreshing table of each function's traffic, errors, workers and latency",
        "[--interval S] [--iterations N] [--function NAME]",
        "Every interval: invocations and errors per second, throttles and cold starts in the\n"
        "interval, the mean duration of the invocations that ended in it (from /metrics), running\n"
        "invocations, workers idle/busy/starting, the async queue, and the p50 and p99 durations of\n"
        "the last 5 minutes (from the stats API); the busiest 20 functions first. On a terminal the screen is\n"
        "redrawn; otherwise frames follow each other (with -o json, one JSON document per line).",
        {
            {"--interval", 0, true, false, "S", "seconds between frames (default 2)"},
            {"--iterations", 0, true, false, "N", "stop after N frames (default: until interrupted)"},
            {"--function", 0, true, false, "NAME", "only this function"},
        },
        run_top,
    };
}

}  // namespace funcd::cli
