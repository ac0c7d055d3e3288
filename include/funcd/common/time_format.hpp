#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace funcd {

using SystemTime = std::chrono::system_clock::time_point;

// RFC 3339 in UTC with millisecond precision: 2026-11-26T23:40:18.123Z
std::string format_rfc3339(SystemTime t);

// Parses RFC 3339 (`Z` or a numeric offset, optional fraction); nullopt when malformed.
std::optional<SystemTime> parse_rfc3339(std::string_view text);

// Microseconds since the Unix epoch.
inline std::int64_t to_unix_us(SystemTime t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
inline SystemTime from_unix_us(std::int64_t us) {
    return SystemTime(std::chrono::microseconds(us));
}

}  // namespace funcd
