#include "funcd/observe/exposition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "funcd/common/text.hpp"

namespace funcd::observe {
namespace {

// A media range's quality, 0 to 1 (a malformed q counts as 0: "not acceptable").
double quality(std::string_view q) {
    double v = 0;
    const auto [end, ec] = std::from_chars(q.data(), q.data() + q.size(), v);
    if (ec != std::errc() || end != q.data() + q.size()) return 0;
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

std::string_view family_name(std::string_view name, MetricType type) {
    if (type == MetricType::counter && name.ends_with("_total")) name.remove_suffix(6);
    if (type == MetricType::info && name.ends_with("_info")) name.remove_suffix(5);
    return name;
}

std::string_view type_name(MetricType type, ExpositionFormat f) {
    switch (type) {
        case MetricType::counter: return "counter";
        case MetricType::gauge: return "gauge";
        case MetricType::histogram: return "histogram";
        case MetricType::info: return f == ExpositionFormat::openmetrics ? "info" : "gauge";
    }
    return "unknown";
}

}  // namespace

ExpositionFormat negotiate_format(std::string_view accept) {
    double openmetrics = 0, text = 0;
    while (!accept.empty()) {
        const auto comma = accept.find(',');
        std::string_view range = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
        const auto semi = range.find(';');
        const std::string_view type = trim_ows(range.substr(0, semi));
        std::string_view params = semi == std::string_view::npos ? std::string_view() : range.substr(semi + 1);
        double q = 1;
        std::string_view version;
        while (!params.empty()) {
            const auto next = params.find(';');
            const std::string_view p = trim_ows(params.substr(0, next));
            params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
            const auto eq = p.find('=');
            if (eq == std::string_view::npos) continue;
            const std::string_view key = trim_ows(p.substr(0, eq)), value = trim_ows(p.substr(eq + 1));
            if (iequals(key, "q")) q = quality(value);
            else if (iequals(key, "version")) version = value;
        }
        if (iequals(type, "application/openmetrics-text")) {
            // 0.0.1 is the draft Prometheus still offers; what we write is valid for both.
            if (version.empty() || version == "1.0.0" || version == "0.0.1") openmetrics = std::max(openmetrics, q);
        } else if (iequals(type, "text/plain") || iequals(type, "text/*") || iequals(type, "*/*")) {
            if (version.empty() || version == "0.0.4") text = std::max(text, q);
        }
    }
    return openmetrics > 0 && openmetrics >= text ? ExpositionFormat::openmetrics : ExpositionFormat::prometheus_text;
}

std::string_view content_type(ExpositionFormat f) {
    return f == ExpositionFormat::openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                              : "text/plain; version=0.0.4; charset=utf-8";
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

std::string format_bound(double v) {
    std::string s = format_value(v);
    if (s.find_first_of(".eIN") == std::string::npos) s += ".0";
    return s;
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

void ExpositionWriter::family(std::string_view name, MetricType type, std::string_view help) {
    name_ = std::string(name);
    const bool om = format_ == ExpositionFormat::openmetrics;
    const std::string_view family = om ? family_name(name, type) : name;
    std::string escaped;
    for (char c : help) {
        if (c == '\\') escaped += "\\\\";
        else if (c == '\n') escaped += "\\n";
        else if (c == '"' && om) escaped += "\\\"";
        else escaped += c;
    }
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", family, escaped, family,
                   type_name(type, format_));
}

void ExpositionWriter::line(std::string_view suffix, Labels labels, const Label* extra, std::string_view value) {
    out_ += name_;
    out_ += suffix;
    if (labels.size() > 0 || extra) {
        out_ += '{';
        bool first = true;
        auto put = [&](const Label& l) {
            if (!first) out_ += ',';
            first = false;
            out_ += l.name;
            out_ += "=\"";
            out_ += escape_label_value(l.value);
            out_ += '"';
        };
        for (const auto& l : labels) put(l);
        if (extra) put(*extra);
        out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
}

void ExpositionWriter::sample(Labels labels, std::uint64_t value) { line("", labels, nullptr, fmt::format("{}", value)); }
void ExpositionWriter::sample(Labels labels, std::int64_t value) { line("", labels, nullptr, fmt::format("{}", value)); }
void ExpositionWriter::sample(Labels labels, double value) { line("", labels, nullptr, format_value(value)); }
void ExpositionWriter::sample_decimal(Labels labels, std::string_view number) { line("", labels, nullptr, number); }

void ExpositionWriter::histogram(Labels labels, const HistogramSnapshot& h) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.buckets(); ++i) {
        cumulative += h.counts[i];
        const std::string le = i < h.bounds.size() ? format_bound(static_cast<double>(h.bounds[i]) / 1e6) : "+Inf";
        const Label extra{"le", le};
        line("_bucket", labels, &extra, fmt::format("{}", cumulative));
    }
    line("_sum", labels, nullptr, format_value(static_cast<double>(h.sum_us) / 1e6));
    line("_count", labels, nullptr, fmt::format("{}", cumulative));
}

std::string ExpositionWriter::finish() && {
    if (format_ == ExpositionFormat::openmetrics) out_ += "# EOF\n";
    return std::move(out_);
}

}  // namespace funcd::observe
