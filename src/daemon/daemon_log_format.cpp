#include "funcd/daemon/daemon_log_format.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"

namespace funcd {
namespace {

// A component name is one short lowercase word ("dispatch", "pool", "logs", "lambda-api"):
// longer or other prefixes are part of the message, not a name.
constexpr std::size_t kMaxComponentLength = 24;

std::string_view component_of(std::string_view message) {
    const auto colon = message.find(": ");
    if (colon == std::string_view::npos || colon == 0 || colon > kMaxComponentLength) return {};
    const auto word = message.substr(0, colon);
    for (char c : word)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return {};
    return word;
}

std::string_view level_name(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace: return "trace";
        case spdlog::level::debug: return "debug";
        case spdlog::level::info: return "info";
        case spdlog::level::warn: return "warn";
        case spdlog::level::err: return "error";
        case spdlog::level::critical: return "critical";
        default: return "off";
    }
}

}  // namespace

DaemonLogFormat parse_daemon_log_format(std::string_view value) {
    if (value == "text") return DaemonLogFormat::text;
    if (value == "json") return DaemonLogFormat::json;
    throw std::invalid_argument("--log-format must be text or json, not '" + std::string(value) + "'");
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const auto component = component_of(text);
    nlohmann::ordered_json line;
    line["time"] = format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(msg.time));
    line["level"] = level_name(msg.level);
    if (!component.empty()) {
        line["component"] = component;
        line["message"] = text.substr(component.size() + 2);
    } else {
        line["message"] = text;
    }
    line["thread"] = msg.thread_id;
    const auto out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(out.data(), out.data() + out.size());
    dest.push_back('\n');
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const { return std::make_unique<JsonLogFormatter>(); }

void use_daemon_log_format(DaemonLogFormat format) {
    if (format == DaemonLogFormat::json) {
        spdlog::set_formatter(std::make_unique<JsonLogFormatter>());
        return;
    }
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
}

}  // namespace funcd
