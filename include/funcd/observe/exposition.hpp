#pragma once
// Writes metric families in Prometheus' text exposition format 0.0.4 or in OpenMetrics 1.0.
//
// The two differ in a few rules, all kept here: OpenMetrics names a counter's family without
// its `_total` (`# TYPE funcd_invocations counter`, samples `funcd_invocations_total`), has an
// `info` type (text 0.0.4 calls it a gauge), escapes `"` in HELP, and ends with `# EOF`.
// Both escape label values (`\\`, `\"`, `\n`) and write bucket bounds as floats ("1.0").
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "funcd/observe/histogram.hpp"

namespace funcd::observe {

enum class ExpositionFormat { prometheus_text, openmetrics };

// The format a scraper's Accept header prefers among those served (the higher q; OpenMetrics
// on a tie, as it is the richer one); text 0.0.4 when it names neither.
ExpositionFormat negotiate_format(std::string_view accept);
std::string_view content_type(ExpositionFormat f);

enum class MetricType { counter, gauge, histogram, info };

struct Label {
    std::string_view name;
    std::string_view value;
};
using Labels = std::initializer_list<Label>;

class ExpositionWriter {
public:
    explicit ExpositionWriter(ExpositionFormat format) : format_(format) {}

    // Starts a family. `name` is what its samples are called: a counter's ends in `_total`,
    // an info's in `_info`; a histogram's samples add `_bucket`, `_sum` and `_count`.
    void family(std::string_view name, MetricType type, std::string_view help);
    // A sample of the current family.
    void sample(Labels labels, std::uint64_t value);
    void sample(Labels labels, std::int64_t value);
    void sample(Labels labels, double value);
    // `number` already written as a decimal ("0.0000166667"): exact values such as costs.
    void sample_decimal(Labels labels, std::string_view number);
    // The buckets (cumulative, `le` last among the labels), `_sum` in seconds and `_count`.
    void histogram(Labels labels, const HistogramSnapshot& h);

    // The exposition, with OpenMetrics' `# EOF`.
    std::string finish() &&;

private:
    void line(std::string_view suffix, Labels labels, const Label* extra, std::string_view value);

    ExpositionFormat format_;
    std::string out_;
    std::string name_;
};

// How a float is written: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string format_value(double v);
// A bucket bound or quantile: always with a point or exponent ("1.0", "0.0005", "+Inf").
std::string format_bound(double v);
// A label value inside its quotes: backslash, double quote and line feed escaped.
std::string escape_label_value(std::string_view v);

}  // namespace funcd::observe
