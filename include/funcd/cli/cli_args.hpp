#pragma once
// Command-line arguments of the CLI's commands: `--name value`, `--name=value`, `-x`,
// repeatable options, `--` to end options. Each command declares what it takes.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace funcd::cli {

struct OptionSpec {
    std::string name;         // with its dashes: "--memory"
    char short_name = 0;      // 'f' for -f, or 0
    bool takes_value = false;
    bool repeatable = false;  // --env K=V --env K2=V2
    std::string value_name;   // for help: "MB"
    std::string help;
};

class ParsedArgs {
public:
    const std::vector<std::string>& positionals() const { return positionals_; }
    bool has(std::string_view name) const { return values_.count(std::string(name)) > 0; }
    // The option's value (the last one given); nullopt when absent.
    std::optional<std::string> value(std::string_view name) const;
    // Every value of a repeatable option, in order.
    std::vector<std::string> values(std::string_view name) const;

    void add_positional(std::string v) { positionals_.push_back(std::move(v)); }
    void add_value(const std::string& name, std::string v) { values_[name].push_back(std::move(v)); }

private:
    std::vector<std::string> positionals_;
    std::map<std::string, std::vector<std::string>> values_;
};

// Options every command takes (the endpoint and token, the output form, help).
const std::vector<OptionSpec>& global_options();

// Parses `args` against `options` plus the global options. Throws CliError (usage) naming
// an unknown option (with the closest known one), a missing value, or a repeated option
// that is not repeatable. A lone `-` is a positional (stdin).
ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<OptionSpec>& options);

// The option list for --help, one per line, aligned.
std::string describe_options(const std::vector<OptionSpec>& options);

// The candidate closest to `word` by edit distance, if it is close enough to be a typo
// (at most a third of the word's length, at least 1, off).
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

// Durations as users write them: "90s", "10m", "24h", "7d" (a bare number is seconds).
// nullopt when malformed.
std::optional<long long> parse_duration_seconds(std::string_view text);

}  // namespace funcd::cli
