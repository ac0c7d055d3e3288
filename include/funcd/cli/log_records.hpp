#pragma once
// Log records as the daemon's logs API sends them (docs/api.md#get-v1functionsnamelogs):
// JSON lines, or Server-Sent Events when followed.
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "funcd/cli/output.hpp"

namespace funcd::cli {

// The records of a JSON-lines body; lines that are not JSON objects are skipped.
nlohmann::json parse_log_lines(std::string_view body);

// One record for a terminal: `TIME  REQUEST  [LEVEL] MESSAGE`, the request id shortened to
// its first 8 characters, platform records dim, levels from WARN up coloured.
std::string format_log_record(const nlohmann::json& record, const Output& out);

struct SseEvent {
    std::string event;  // "" for a plain `data:` event
    std::string data;
};

// An event stream read piece by piece: comments (`: heartbeat`) are skipped, `data:` lines
// of one event joined with '\n', an event ends at a blank line (LF or CRLF line ends).
class SseParser {
public:
    void feed(std::string_view piece, const std::function<void(const SseEvent&)>& on_event);

private:
    void line(std::string_view text, const std::function<void(const SseEvent&)>& on_event);

    std::string partial_;
    SseEvent current_;
    bool has_data_ = false;
};

}  // namespace funcd::cli
