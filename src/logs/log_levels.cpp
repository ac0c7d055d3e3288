#include "funcd/logs/log_levels.hpp"

#include <array>

#include "funcd/common/text.hpp"

namespace funcd {
namespace {

bool same(std::string_view a, std::string_view b, bool any_case) { return any_case ? iequals(a, b) : a == b; }

constexpr std::array<std::string_view, 7> kLevelNames{"", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

}  // namespace

std::string_view to_string(LogFormat f) { return f == LogFormat::json ? "JSON" : "Text"; }

std::string_view to_string(LogLevel l) {
    const auto i = static_cast<std::size_t>(l);
    return i < kLevelNames.size() ? kLevelNames[i] : "";
}

std::optional<LogFormat> parse_log_format(std::string_view text, bool any_case) {
    if (same(text, "Text", any_case)) return LogFormat::text;
    if (same(text, "JSON", any_case)) return LogFormat::json;
    return std::nullopt;
}

std::optional<LogLevel> parse_log_level(std::string_view text, bool any_case) {
    for (std::size_t i = 1; i < kLevelNames.size(); ++i)
        if (same(text, kLevelNames[i], any_case)) return static_cast<LogLevel>(i);
    return std::nullopt;
}

}  // namespace funcd
