#include "funcd/event_sources/row_change.hpp"

#include <charconv>
#include <cstdio>

namespace funcd {

std::string format_lsn(std::uint64_t lsn) {
    char text[24];
    const int n = std::snprintf(text, sizeof text, "%X/%X", static_cast<unsigned>(lsn >> 32),
                                static_cast<unsigned>(lsn & 0xFFFFFFFFu));
    return std::string(text, static_cast<std::size_t>(n));
}

bool parse_lsn(std::string_view text, std::uint64_t& lsn) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) return false;
    auto half = [](std::string_view part, std::uint32_t& out) {
        if (part.size() > 8) return false;
        const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out, 16);
        return ec == std::errc{} && end == part.data() + part.size();
    };
    std::uint32_t high = 0;
    std::uint32_t low = 0;
    if (!half(text.substr(0, slash), high) || !half(text.substr(slash + 1), low)) return false;
    lsn = (static_cast<std::uint64_t>(high) << 32) | low;
    return true;
}

}  // namespace funcd
