#include "funcd/common/text.hpp"

namespace funcd {
namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_ows(char c) { return c == ' ' || c == '\t'; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

template <typename Pred>
std::string_view trim_if(std::string_view s, Pred pred) {
    while (!s.empty() && pred(s.front())) s.remove_prefix(1);
    while (!s.empty() && pred(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

std::string_view trim_view(std::string_view s) { return trim_if(s, is_ascii_space); }

std::string trim(std::string_view s) { return std::string(trim_view(s)); }

std::string_view trim_ows(std::string_view s) { return trim_if(s, is_ows); }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

std::vector<std::string> split_commas(std::string_view s) {
    std::vector<std::string> parts;
    if (s.empty()) return parts;
    for (;;) {
        const auto comma = s.find(',');
        parts.emplace_back(s.substr(0, comma));
        if (comma == std::string_view::npos) return parts;
        s.remove_prefix(comma + 1);
    }
}

}  // namespace funcd
