#include "funcd/cli/output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "funcd/cli/cli_error.hpp"

namespace funcd::cli {

Output Output::from_flags(const std::string& format, bool no_color) {
    OutputFormat f;
    if (format.empty() || format == "human" || format == "table") f = OutputFormat::human;
    else if (format == "json") f = OutputFormat::json;
    else throw CliError::usage("--output must be human or json (got '" + format + "')");
    const char* no_color_env = std::getenv("NO_COLOR");
    const bool color = !no_color && !(no_color_env && *no_color_env) && ::isatty(STDOUT_FILENO) == 1;
    return Output(f, color);
}

std::size_t display_width(std::string_view s) {
    std::size_t width = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\x1b') {
            while (i < s.size() && s[i] != 'm') ++i;
            continue;
        }
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++width;
    }
    return width;
}

std::string cell(const nlohmann::json& v) {
    if (v.is_null()) return "-";
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

std::string Output::paint(std::string_view code, std::string_view s) const {
    if (!color_) return std::string(s);
    return "\x1b[" + std::string(code) + "m" + std::string(s) + "\x1b[0m";
}

void Output::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) const {
    std::vector<std::size_t> width(header.size(), 0);
    for (std::size_t c = 0; c < header.size(); ++c) width[c] = display_width(header[c]);
    for (const auto& r : rows)
        for (std::size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], display_width(r[c]));
    auto print_row = [&](const std::vector<std::string>& r, bool is_header) {
        std::string text;
        for (std::size_t c = 0; c < r.size() && c < width.size(); ++c) {
            const bool last = c + 1 == r.size();
            std::string v = r[c];
            if (!last) v += std::string(width[c] - display_width(r[c]) + 2, ' ');
            text += v;
        }
        if (is_header) text = dim(text);
        std::fprintf(out_, "%s\n", text.c_str());
    };
    print_row(header, true);
    for (const auto& r : rows) print_row(r, false);
}

void Output::fields(const std::vector<std::pair<std::string, std::string>>& rows) const {
    std::size_t width = 0;
    for (const auto& [k, v] : rows) width = std::max(width, display_width(k));
    for (const auto& [k, v] : rows) {
        const std::string key = k + ":" + std::string(width - display_width(k) + 1, ' ');
        std::fprintf(out_, "%s%s\n", dim(key).c_str(), v.c_str());
    }
}

void Output::print_json(const nlohmann::json& doc) const {
    // Bytes a function logged that are not UTF-8 reach us as U+FFFD already; replace
    // anything else rather than fail half-way through a listing.
    std::fprintf(out_, "%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void Output::line(std::string_view text) const {
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fputc('\n', out_);
}

void Output::note(std::string_view text) const {
    std::fwrite(text.data(), 1, text.size(), err_);
    std::fputc('\n', err_);
}

void Output::error(std::string_view text) const {
    const bool tty = ::isatty(fileno(err_)) == 1 && color_;
    std::string prefix = tty ? "\x1b[31merror:\x1b[0m " : "error: ";
    std::fprintf(err_, "%s%.*s\n", prefix.c_str(), static_cast<int>(text.size()), text.data());
}

}  // namespace funcd::cli
