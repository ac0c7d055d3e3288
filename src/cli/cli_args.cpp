#include "funcd/cli/cli_args.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "funcd/cli/cli_error.hpp"

namespace funcd::cli {

std::optional<std::string> ParsedArgs::value(std::string_view name) const {
    auto it = values_.find(std::string(name));
    if (it == values_.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
}

std::vector<std::string> ParsedArgs::values(std::string_view name) const {
    auto it = values_.find(std::string(name));
    return it == values_.end() ? std::vector<std::string>{} : it->second;
}

const std::vector<OptionSpec>& global_options() {
    static const std::vector<OptionSpec> options = {
        {"--endpoint", 0, true, false, "URL", "the daemon (env FUNCD_ENDPOINT; default http://127.0.0.1:8080)"},
        {"--token", 0, true, false, "TOKEN", "the API token (env FUNCD_API_TOKEN; else ./data/api-token, else funcd login)"},
        {"--output", 'o', true, false, "FORMAT", "human (default) or json"},
        {"--no-color", 0, false, false, "", "no colours (also: env NO_COLOR, or output not a terminal)"},
        {"--help", 'h', false, false, "", "this help"},
    };
    return options;
}

namespace {

const OptionSpec* find_long(const std::vector<const OptionSpec*>& all, std::string_view name) {
    for (const auto* o : all)
        if (o->name == name) return o;
    return nullptr;
}

const OptionSpec* find_short(const std::vector<const OptionSpec*>& all, char c) {
    for (const auto* o : all)
        if (o->short_name == c) return o;
    return nullptr;
}

}  // namespace

ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<OptionSpec>& options) {
    std::vector<const OptionSpec*> all;
    for (const auto& o : options) all.push_back(&o);
    for (const auto& o : global_options()) all.push_back(&o);

    ParsedArgs out;
    auto record = [&](const OptionSpec& spec, std::string value) {
        if (out.has(spec.name) && !spec.repeatable && spec.takes_value)
            throw CliError::usage(spec.name + " given twice");
        out.add_value(spec.name, std::move(value));
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            for (++i; i < args.size(); ++i) out.add_positional(args[i]);
            break;
        }
        if (a.size() > 2 && a.starts_with("--")) {
            const auto eq = a.find('=');
            const std::string name = a.substr(0, eq);
            const OptionSpec* spec = find_long(all, name);
            if (!spec) {
                std::vector<std::string> names;
                for (const auto* o : all) names.push_back(o->name);
                std::string message = "unknown option '" + name + "'";
                if (auto near = closest_match(name, names)) message += "; did you mean '" + *near + "'?";
                throw CliError::usage(message);
            }
            if (!spec->takes_value) {
                if (eq != std::string::npos) throw CliError::usage(name + " takes no value");
                record(*spec, "");
            } else if (eq != std::string::npos) {
                record(*spec, a.substr(eq + 1));
            } else {
                if (i + 1 >= args.size()) throw CliError::usage(name + " needs a value (" + spec->value_name + ")");
                record(*spec, args[++i]);
            }
            continue;
        }
        if (a.size() > 1 && a[0] == '-' && a[1] != '-') {
            // -f, -o json, -ojson, or several flags at once: -fh.
            for (std::size_t k = 1; k < a.size(); ++k) {
                const OptionSpec* spec = find_short(all, a[k]);
                if (!spec) throw CliError::usage("unknown option '-" + std::string(1, a[k]) + "'");
                if (!spec->takes_value) {
                    record(*spec, "");
                    continue;
                }
                if (k + 1 < a.size()) {
                    record(*spec, a.substr(k + 1));
                } else {
                    if (i + 1 >= args.size()) throw CliError::usage(spec->name + " needs a value (" + spec->value_name + ")");
                    record(*spec, args[++i]);
                }
                break;
            }
            continue;
        }
        out.add_positional(a);
    }
    return out;
}

std::string describe_options(const std::vector<OptionSpec>& options) {
    std::vector<std::pair<std::string, std::string>> lines;
    std::size_t width = 0;
    for (const auto& o : options) {
        std::string left = o.short_name ? std::string("-") + o.short_name + ", " : std::string("    ");
        left += o.name;
        if (o.takes_value) left += " " + o.value_name;
        width = std::max(width, left.size());
        lines.emplace_back(std::move(left), o.help + (o.repeatable ? " (repeatable)" : ""));
    }
    std::string out;
    for (const auto& [left, help] : lines) out += "  " + left + std::string(width - left.size() + 2, ' ') + help + "\n";
    return out;
}

namespace {

// Edits (insertions, deletions, substitutions, swaps of neighbours) from `a` to `b`: the
// optimal string alignment distance, so "ecoh" is one swap from "echo".
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates) {
    const std::size_t allowed = std::max<std::size_t>(1, word.size() / 3);
    std::optional<std::string> best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const auto& c : candidates) {
        const std::size_t d = edit_distance(word, c);
        if (d <= allowed && d < best_distance && c != word) {
            best = c;
            best_distance = d;
        }
    }
    return best;
}

std::optional<long long> parse_duration_seconds(std::string_view text) {
    if (text.empty()) return std::nullopt;
    long long unit = 1;
    switch (text.back()) {
        case 's': unit = 1; text.remove_suffix(1); break;
        case 'm': unit = 60; text.remove_suffix(1); break;
        case 'h': unit = 3600; text.remove_suffix(1); break;
        case 'd': unit = 86400; text.remove_suffix(1); break;
        case 'w': unit = 7 * 86400; text.remove_suffix(1); break;
        default: break;
    }
    long long n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    // A bound far beyond any useful look-back (about 30 years) keeps the product in range.
    constexpr long long kMaxAmount = 1'000'000'000;
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n < 0 || n > kMaxAmount)
        return std::nullopt;
    return n * unit;
}

}  // namespace funcd::cli
