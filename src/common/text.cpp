#include "funcd/common/text.hpp"

namespace funcd {
namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool is_ows(char c) { return c == ' ' || c == '\t'; }

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

}  // namespace funcd
