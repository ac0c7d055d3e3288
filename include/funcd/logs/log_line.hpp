#pragma once
// One record as one line of a function's log file, and back.
//
//   <time>\t<request id or ->\t<message>                 the function's output, no level
//   <time>\t<request id or ->\t<tag>\t<message>          anything else
//
// <time> is RFC 3339 in UTC with milliseconds (2026-11-26T23:40:18.123Z): fixed width, so
// times compare as text. <tag> is the level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) of a
// function's record, `platform` for funcd's own records (START, END, REPORT, INIT_*,
// LOGS_DROPPED...), `platform.<LEVEL>` for one with a level. The message is the record's
// text with as little changed as possible, so `tail -f` and grep keep working:
//   - a line feed is written as U+2424 (a visible "NL" symbol), so a stack trace stays one
//     line;
//   - U+241B (a visible "ESC" symbol) before U+2424 or U+241B makes it the message's own, and
//     followed by '.' stands for nothing: an untagged message that itself begins with a tag
//     and a tab starts with it, so it is never read back as tagged.
// Those symbols are as good as absent from real output, so everything else (JSON's \n
// escapes, backslashes, carriage returns) is written as it is.
// Tabs and every other byte, invalid UTF-8 included, are written as they are.
#include <optional>
#include <string>
#include <string_view>

#include "funcd/common/time_format.hpp"
#include "funcd/logs/log_record.hpp"

namespace funcd {

// A level as the API and the files name it (any case; WARNING is WARN). nullopt if unknown.
std::optional<LogLevel> parse_level(std::string_view text);
// "function" or "platform" (Lambda's Telemetry API names).
std::string_view stream_name(LogStream stream);

// The width of a record's time: "2026-11-26T23:40:18.123Z".
inline constexpr std::size_t kLogStampWidth = 24;

// Appends the line of a record (without its '\n') to `out`. `stamp` is the record's time
// as format_rfc3339 writes it.
void append_log_line(std::string& out, std::string_view stamp, std::string_view request_id, LogStream stream,
                     LogLevel level, std::string_view message);
// The prefix of a record's line, up to where its message starts.
void append_log_prefix(std::string& out, std::string_view stamp, std::string_view request_id, LogStream stream,
                       LogLevel level);
// Escapes the message written raw into out[from, end): for text formatted straight into a
// buffer. `tagged`: whether the line has a tag (else a leading tag is escaped).
void escape_message_in_place(std::string& out, std::size_t from, bool tagged);
// The escaped form of `message` appended to `out`.
void append_escaped_message(std::string& out, std::string_view message, bool tagged);
// The message back from its escaped form.
std::string unescape_message(std::string_view escaped);

// A line read back; views into the line.
struct LogLine {
    std::string_view stamp;       // as written (compare as text with format_rfc3339's)
    std::string_view request_id;  // empty for "-"
    LogStream stream = LogStream::function;
    LogLevel level = LogLevel::none;
    std::string_view escaped_message;

    std::string message() const { return unescape_message(escaped_message); }
};

// Parses one line (without its '\n'). Lines written before records had tags (a platform
// line was "<time>\t<text>") read as platform records. nullopt for a line that has no time
// and tab (a line cut by a failed write).
std::optional<LogLine> parse_log_line(std::string_view line);

// The request id column of a line, cheaply (what the index is built from); empty for none.
std::string_view log_line_request_id(std::string_view line);

}  // namespace funcd
