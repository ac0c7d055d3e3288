#pragma once
// How the CLI writes: human tables (colour only on a terminal) or JSON for scripts.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace funcd::cli {

enum class OutputFormat { human, json };

class Output {
public:
    Output(OutputFormat format, bool color, std::FILE* out = stdout, std::FILE* err = stderr)
        : format_(format), color_(color), out_(out), err_(err) {}

    // The format from --output (throws CliError usage for another value), colour when
    // stdout is a terminal, NO_COLOR is unset and --no-color was not given.
    static Output from_flags(const std::string& format, bool no_color);

    bool json() const { return format_ == OutputFormat::json; }
    bool color() const { return color_; }

    // Columns padded to their widest cell; the header dim on a terminal.
    void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) const;
    // `key: value` lines, keys aligned.
    void fields(const std::vector<std::pair<std::string, std::string>>& rows) const;
    void print_json(const nlohmann::json& doc) const;
    void line(std::string_view text) const;     // stdout
    void note(std::string_view text) const;     // stderr
    void error(std::string_view text) const;    // stderr, "error: " in red on a terminal

    std::string bold(std::string_view s) const { return paint("1", s); }
    std::string dim(std::string_view s) const { return paint("2", s); }
    std::string red(std::string_view s) const { return paint("31", s); }
    std::string green(std::string_view s) const { return paint("32", s); }
    std::string yellow(std::string_view s) const { return paint("33", s); }

    std::FILE* out() const { return out_; }
    std::FILE* err() const { return err_; }

private:
    std::string paint(std::string_view code, std::string_view s) const;

    OutputFormat format_;
    bool color_;
    std::FILE* out_;
    std::FILE* err_;
};

// The width of `s` on a terminal: UTF-8 code points, colour escapes not counted.
std::size_t display_width(std::string_view s);

// A JSON value as a table cell: strings bare, null as "-", others as JSON.
std::string cell(const nlohmann::json& v);

}  // namespace funcd::cli
