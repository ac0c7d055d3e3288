#pragma once
// How the daemon's own log is written (`--log-format`): today's text lines for a terminal,
// or one JSON object per line for journald, a log shipper or `jq`.
#include <memory>
#include <string_view>

#include <spdlog/formatter.h>

namespace funcd {

enum class DaemonLogFormat { text, json };

// `text` or `json`; std::invalid_argument naming the value otherwise.
DaemonLogFormat parse_daemon_log_format(std::string_view value);

// The JSON lines: {"time": RFC 3339 UTC with milliseconds, "level", "component" (the word
// before the first ": " of the message, which is how every log call here names its part;
// absent when the message has none), "message", "thread"}. Bytes that are not UTF-8 become
// U+FFFD, so a line is always valid JSON whatever a message quotes.
class JsonLogFormatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override;
};

// Installs the format on spdlog's default logger.
void use_daemon_log_format(DaemonLogFormat format);

}  // namespace funcd
