#pragma once
// One record of a function's log: what its process wrote (a line of stdout/stderr, or one
// framed record of the runtime's telemetry descriptor, which may span lines) or what funcd
// wrote about it (START, END, REPORT, platform.* records).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace funcd {

// Lambda's levels, lowest first; `none` for a line that carries no level (bare stdout).
enum class LogLevel : std::uint8_t { none, trace, debug, info, warn, error, fatal };
// Lambda's Telemetry API names: `function` is the function's own output, `platform` is funcd's.
enum class LogStream : std::uint8_t { function, platform };

struct LogRecord {
    std::string_view request_id;  // empty outside an invocation
    LogStream stream = LogStream::function;
    LogLevel level = LogLevel::none;
    std::string_view message;  // may hold '\n' (a stack trace stays one record)
    // When the runtime stamped it (telemetry frames carry a time); now if unset.
    std::optional<std::chrono::system_clock::time_point> time;
};

}  // namespace funcd
