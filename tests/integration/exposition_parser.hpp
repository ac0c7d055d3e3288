#pragma once
// A strict parser of Prometheus' text exposition format 0.0.4 and of OpenMetrics 1.0, for
// tests: anything either format forbids (or funcd never writes) throws, naming the line.
// Checks names, label syntax and escapes, duplicate series, TYPE before samples, contiguous
// families, the sample names each type allows (OpenMetrics: counters' `_total`, info's
// `_info`), histograms (ascending `le`, cumulative buckets, +Inf = _count, a _sum), and
// OpenMetrics' closing `# EOF`.
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace funcd::testing {

struct ParsedSample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct ParsedFamily {
    std::string type;
    std::string help;
    std::vector<ParsedSample> samples;
};

struct ParsedExposition {
    std::map<std::string, ParsedFamily> families;  // by the name in its TYPE line

    // The value of the sample `name` with exactly these labels.
    std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
        for (const auto& [f, fam] : families)
            for (const auto& s : fam.samples)
                if (s.name == name && s.labels == labels) return s.value;
        return std::nullopt;
    }
    // The sum over samples `name` whose labels include `subset`.
    double sum(const std::string& name, const std::map<std::string, std::string>& subset = {}) const {
        double total = 0;
        for (const auto& [f, fam] : families)
            for (const auto& s : fam.samples) {
                if (s.name != name) continue;
                bool match = true;
                for (const auto& [k, v] : subset) {
                    auto it = s.labels.find(k);
                    if (it == s.labels.end() || it->second != v) match = false;
                }
                if (match) total += s.value;
            }
        return total;
    }
};

namespace exposition_detail {

inline bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
inline bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

inline bool valid_metric_name(std::string_view n) {
    if (n.empty() || !name_start(n[0])) return false;
    for (char c : n)
        if (!name_char(c)) return false;
    return true;
}

inline bool valid_label_name(std::string_view n) {
    if (n.empty() || !name_start(n[0]) || n[0] == ':') return false;
    for (char c : n)
        if (!name_char(c) || c == ':') return false;
    return true;
}

// Go's ParseFloat as both formats use it, less hex and underscores: digits, one point, an
// exponent, or +Inf/-Inf/NaN.
inline std::optional<double> parse_number(std::string_view s) {
    if (s == "+Inf" || s == "Inf") return INFINITY;
    if (s == "-Inf") return -INFINITY;
    if (s == "NaN") return NAN;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
    }
    if (digits == 0) return std::nullopt;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        std::size_t exp = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp;
        if (exp == 0) return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    return std::strtod(std::string(s).c_str(), nullptr);
}

inline std::string series_key(const ParsedSample& s, bool without_le) {
    std::string k = s.name + "{";
    for (const auto& [n, v] : s.labels)
        if (!(without_le && n == "le")) k += n + "=" + v + ",";
    return k + "}";
}

}  // namespace exposition_detail

// Throws std::runtime_error("line N: ...") at the first violation.
inline ParsedExposition parse_exposition(std::string_view text, bool openmetrics) {
    using namespace exposition_detail;
    ParsedExposition out;
    std::set<std::string> closed, series;
    std::string current;
    std::size_t line_no = 0;
    bool eof = false;
    auto fail = [&](const std::string& why) { throw std::runtime_error("line " + std::to_string(line_no) + ": " + why); };
    auto family_of = [&](const std::string& name) -> ParsedFamily& {
        if (name != current) {
            if (!current.empty()) closed.insert(current);
            if (closed.count(name)) fail("family " + name + " is not contiguous");
            current = name;
        }
        return out.families[name];
    };
    if (!text.empty() && text.back() != '\n') throw std::runtime_error("the exposition does not end with a line feed");
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        ++line_no;
        if (eof) fail("text after # EOF");
        if (line.empty()) fail("empty line");
        if (line[0] == '#') {
            if (line == "# EOF") {
                if (!openmetrics) fail("# EOF in the text format");
                eof = true;
                continue;
            }
            if (!line.starts_with("# HELP ") && !line.starts_with("# TYPE ")) {
                if (openmetrics) fail("a comment OpenMetrics does not allow: " + std::string(line));
                continue;
            }
            const bool help = line.starts_with("# HELP ");
            std::string_view rest = line.substr(7);
            const auto sp = rest.find(' ');
            if (sp == std::string_view::npos && !help) fail("TYPE without a type");
            const std::string name(rest.substr(0, sp));
            if (!valid_metric_name(name)) fail("bad metric name '" + name + "'");
            const std::string_view arg = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
            ParsedFamily& fam = family_of(name);
            if (help) {
                if (!fam.help.empty()) fail("second HELP for " + name);
                for (std::size_t i = 0; i < arg.size(); ++i)
                    if (arg[i] == '\\') {
                        if (i + 1 >= arg.size()) fail("HELP ends in a backslash");
                        const char e = arg[++i];
                        if (e != '\\' && e != 'n' && !(openmetrics && e == '"')) fail("bad escape in HELP");
                    } else if (openmetrics && arg[i] == '"') {
                        fail("unescaped double quote in an OpenMetrics HELP");
                    }
                fam.help = std::string(arg.empty() ? " " : arg);
            } else {
                if (!fam.type.empty()) fail("second TYPE for " + name);
                if (!fam.samples.empty()) fail("TYPE after samples of " + name);
                static const std::set<std::string> text_types = {"counter", "gauge", "histogram", "summary", "untyped"};
                static const std::set<std::string> om_types = {"counter", "gauge", "histogram", "gaugehistogram",
                                                               "stateset", "info", "summary", "unknown"};
                const std::string type(arg);
                if (!(openmetrics ? om_types : text_types).count(type)) fail("unknown type '" + type + "'");
                if (openmetrics && type == "counter" && name.ends_with("_total"))
                    fail("OpenMetrics counter family " + name + " ends in _total");
                fam.type = type;
            }
            continue;
        }
        // A sample.
        ParsedSample s;
        std::size_t i = 0;
        while (i < line.size() && name_char(line[i])) ++i;
        s.name = std::string(line.substr(0, i));
        if (!valid_metric_name(s.name)) fail("bad sample name '" + s.name + "'");
        if (i < line.size() && line[i] == '{') {
            ++i;
            bool first = true;
            while (true) {
                if (i >= line.size()) fail("unterminated labels");
                if (line[i] == '}') {
                    ++i;
                    break;
                }
                if (!first) {
                    if (line[i] != ',') fail("labels not separated by commas");
                    ++i;
                }
                first = false;
                const std::size_t start = i;
                while (i < line.size() && line[i] != '=') ++i;
                const std::string label(line.substr(start, i - start));
                if (!valid_label_name(label)) fail("bad label name '" + label + "'");
                if (i + 1 >= line.size() || line[i + 1] != '"') fail("label value not quoted");
                i += 2;
                std::string value;
                while (true) {
                    if (i >= line.size()) fail("unterminated label value");
                    const char c = line[i++];
                    if (c == '"') break;
                    if (c == '\\') {
                        if (i >= line.size()) fail("label value ends in a backslash");
                        const char e = line[i++];
                        if (e == '\\') value += '\\';
                        else if (e == '"') value += '"';
                        else if (e == 'n') value += '\n';
                        else fail(std::string("bad escape \\") + e + " in a label value");
                    } else {
                        value += c;
                    }
                }
                if (!s.labels.emplace(label, value).second) fail("label " + label + " twice");
            }
        }
        if (i >= line.size() || line[i] != ' ') fail("no space before the value");
        const std::string_view value = line.substr(i + 1);
        if (value.find(' ') != std::string_view::npos) fail("a timestamp or trailing text after the value");
        const auto v = parse_number(value);
        if (!v) fail("bad value '" + std::string(value) + "'");
        s.value = *v;

        // Which family it belongs to: the current one, with the suffixes its type allows.
        if (current.empty()) fail("sample " + s.name + " before any TYPE");
        ParsedFamily& fam = out.families[current];
        if (fam.type.empty()) fail("sample " + s.name + " of a family without TYPE");
        std::vector<std::string> allowed;
        if (fam.type == "histogram") allowed = {current + "_bucket", current + "_sum", current + "_count"};
        else if (openmetrics && fam.type == "counter") allowed = {current + "_total"};
        else if (openmetrics && fam.type == "info") allowed = {current + "_info"};
        else allowed = {current};
        bool ok = false;
        for (const auto& a : allowed) ok = ok || a == s.name;
        if (!ok) fail("sample " + s.name + " does not belong to family " + current + " (" + fam.type + ")");
        if (fam.type == "counter" && (*v < 0 || std::isnan(*v))) fail("negative or NaN counter");
        if (s.labels.count("le") != (s.name.ends_with("_bucket") && fam.type == "histogram" ? 1u : 0u))
            fail("le label on a sample that is not a bucket, or a bucket without one");
        if (!series.insert(series_key(s, false)).second) fail("duplicate series " + series_key(s, false));
        fam.samples.push_back(std::move(s));
    }
    if (openmetrics && !eof) throw std::runtime_error("no # EOF at the end");

    // Histograms: per series, ascending le, cumulative counts, +Inf last and equal to _count, a _sum.
    for (const auto& [name, fam] : out.families) {
        if (fam.type != "histogram") continue;
        std::map<std::string, std::vector<std::pair<double, double>>> buckets;
        std::map<std::string, double> counts, sums;
        for (const auto& s : fam.samples) {
            ParsedSample base = s;
            base.name = name;
            base.labels.erase("le");
            const std::string key = series_key(base, true);
            if (s.name == name + "_bucket") {
                const auto le = parse_number(s.labels.at("le"));
                if (!le) throw std::runtime_error(name + ": bad le '" + s.labels.at("le") + "'");
                buckets[key].push_back({*le, s.value});
            } else if (s.name == name + "_count") {
                counts[key] = s.value;
            } else {
                sums[key] = s.value;
            }
        }
        for (const auto& [key, b] : buckets) {
            for (std::size_t j = 1; j < b.size(); ++j) {
                if (!(b[j].first > b[j - 1].first)) throw std::runtime_error(key + ": le not ascending");
                if (b[j].second < b[j - 1].second) throw std::runtime_error(key + ": buckets not cumulative");
            }
            if (b.empty() || !std::isinf(b.back().first)) throw std::runtime_error(key + ": no +Inf bucket");
            if (!counts.count(key) || counts[key] != b.back().second)
                throw std::runtime_error(key + ": _count missing or not the +Inf bucket");
            if (!sums.count(key)) throw std::runtime_error(key + ": no _sum");
        }
        if (counts.size() != buckets.size() || sums.size() != buckets.size())
            throw std::runtime_error(name + ": _count or _sum without buckets");
    }
    return out;
}

}  // namespace funcd::testing
