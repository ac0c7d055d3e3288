#include "funcd/cli/metrics_sample.hpp"

#include <cstdlib>
#include <string>

namespace funcd::cli {

namespace {

// `k="v",k2="v2"` (the text between the braces); false when malformed.
bool parse_labels(std::string_view text, std::map<std::string, std::string>& out) {
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ',' || text[i] == ' ')) ++i;
        if (i >= text.size()) break;
        const std::size_t eq = text.find('=', i);
        if (eq == std::string_view::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
        const std::string key(text.substr(i, eq - i));
        std::string value;
        std::size_t j = eq + 2;
        for (; j < text.size() && text[j] != '"'; ++j) {
            if (text[j] == '\\' && j + 1 < text.size()) {
                ++j;
                value += text[j] == 'n' ? '\n' : text[j];
            } else {
                value += text[j];
            }
        }
        if (j >= text.size()) return false;
        out[key] = std::move(value);
        i = j + 1;
    }
    return true;
}

}  // namespace

std::vector<MetricPoint> parse_metrics_text(std::string_view text) {
    std::vector<MetricPoint> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty() || line.front() == '#') continue;
        MetricPoint p;
        std::size_t name_end = line.find_first_of("{ ");
        if (name_end == std::string_view::npos) continue;
        p.name = std::string(line.substr(0, name_end));
        std::size_t rest = name_end;
        if (line[name_end] == '{') {
            // The closing brace is the last one: label values may hold braces but not a
            // brace followed by the value, which is what ends the label set.
            const std::size_t close = line.rfind('}');
            if (close == std::string_view::npos || close < name_end) continue;
            if (!parse_labels(line.substr(name_end + 1, close - name_end - 1), p.labels)) continue;
            rest = close + 1;
        }
        while (rest < line.size() && line[rest] == ' ') ++rest;
        const std::string value(line.substr(rest, line.find(' ', rest) - rest));
        char* parsed_end = nullptr;
        p.value = std::strtod(value.c_str(), &parsed_end);
        if (value.empty() || parsed_end != value.c_str() + value.size()) continue;
        out.push_back(std::move(p));
    }
    return out;
}

MetricsSample gather_sample(const std::vector<MetricPoint>& points) {
    MetricsSample s;
    for (const auto& p : points) {
        auto label = [&p](const char* k) {
            auto it = p.labels.find(k);
            return it == p.labels.end() ? std::string() : it->second;
        };
        if (p.name == "funcd_memory_budget_bytes") {
            (label("state") == "limit" ? s.memory_limit_bytes : s.memory_used_bytes) = p.value;
            continue;
        }
        if (p.name == "funcd_invocations_waiting") {
            s.waiting = p.value;
            continue;
        }
        const std::string function = label("function");
        if (function.empty()) continue;
        FunctionFigures& f = s.functions[function];
        if (p.name == "funcd_invocations_total") {
            const std::string outcome = label("outcome");
            if (outcome == "throttled") continue;  // counted by funcd_throttles_total
            f.invocations += p.value;
            if (outcome != "success") f.errors += p.value;
        } else if (p.name == "funcd_throttles_total") {
            f.throttles += p.value;
        } else if (p.name == "funcd_cold_starts_total") {
            f.cold_starts = p.value;
        } else if (p.name == "funcd_invocation_duration_seconds_sum") {
            f.duration_sum_s = p.value;
        } else if (p.name == "funcd_invocation_duration_seconds_count") {
            f.duration_count = p.value;
        } else if (p.name == "funcd_concurrent_executions") {
            f.running = p.value;
        } else if (p.name == "funcd_workers") {
            const std::string state = label("state");
            if (state == "busy") f.busy = p.value;
            else if (state == "starting") f.starting = p.value;
            else f.idle += p.value;  // idle and provisioned
        } else if (p.name == "funcd_async_queue_depth") {
            f.queue_depth = p.value;
        }
    }
    return s;
}

FunctionRates rates_between(const FunctionFigures& a, const FunctionFigures& b, double seconds) {
    FunctionRates r;
    // A counter that went down means the daemon restarted in between: count from zero.
    auto delta = [](double before, double after) { return after >= before ? after - before : after; };
    const double per = seconds > 0 ? 1.0 / seconds : 0;
    r.invocations_per_s = delta(a.invocations, b.invocations) * per;
    r.errors_per_s = delta(a.errors, b.errors) * per;
    r.throttles = delta(a.throttles, b.throttles);
    r.cold_starts = delta(a.cold_starts, b.cold_starts);
    const double count = delta(a.duration_count, b.duration_count);
    if (count > 0) r.mean_duration_ms = delta(a.duration_sum_s, b.duration_sum_s) / count * 1000.0;
    return r;
}

}  // namespace funcd::cli
