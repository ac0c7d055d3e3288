#include "funcd/cli/time_range.hpp"

#include <charconv>

#include "funcd/cli/cli_args.hpp"

namespace funcd::cli {

std::optional<SystemTime> parse_time_arg(const std::string& text, SystemTime now) {
    // Thirteen digits and more are epoch milliseconds (a date after 2001), as the logs API
    // takes them; fewer are a look-back in seconds.
    constexpr std::size_t kEpochMillisDigits = 13;
    if (text.size() >= kEpochMillisDigits && text.find_first_not_of("0123456789") == std::string::npos) {
        long long ms = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
        if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
        return SystemTime(std::chrono::milliseconds(ms));
    }
    if (auto seconds = parse_duration_seconds(text)) return now - std::chrono::seconds(*seconds);
    return parse_rfc3339(text);
}

}  // namespace funcd::cli
