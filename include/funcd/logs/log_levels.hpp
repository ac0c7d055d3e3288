#pragma once
// Names of Lambda's log levels and formats, as its API and its runtimes spell them.
#include <optional>
#include <string_view>

#include "funcd/logs/log_record.hpp"

namespace funcd {

// LoggingConfig.LogFormat: Text (funcd's and Lambda's default) or JSON.
enum class LogFormat : std::uint8_t { text, json };

// "Text", "JSON".
std::string_view to_string(LogFormat f);
// "TRACE" ... "FATAL"; "" for LogLevel::none.
std::string_view to_string(LogLevel l);
// Exactly as Lambda spells them ("Text", "JSON"; "TRACE" ... "FATAL"), or, with
// `any_case`, in any case ("json", "debug"): funcd's own API is not case-sensitive.
std::optional<LogFormat> parse_log_format(std::string_view text, bool any_case = false);
std::optional<LogLevel> parse_log_level(std::string_view text, bool any_case = false);

}  // namespace funcd
