#include "funcd/cli/log_records.hpp"

namespace funcd::cli {

nlohmann::json parse_log_lines(std::string_view body) {
    nlohmann::json out = nlohmann::json::array();
    std::size_t start = 0;
    while (start < body.size()) {
        std::size_t end = body.find('\n', start);
        if (end == std::string_view::npos) end = body.size();
        auto rec = nlohmann::json::parse(body.substr(start, end - start), nullptr, false);
        if (rec.is_object()) out.push_back(std::move(rec));
        start = end + 1;
    }
    return out;
}

std::string format_log_record(const nlohmann::json& r, const Output& out) {
    const std::string time = r.value("timestamp", "");
    std::string request = r.contains("request_id") && r["request_id"].is_string() ? r["request_id"].get<std::string>() : "-";
    if (request.size() > 8) request.resize(8);
    request.resize(8, ' ');
    const std::string message = r.value("message", "");
    const bool platform = r.value("stream", "") == "platform";
    std::string level = r.contains("level") && r["level"].is_string() ? r["level"].get<std::string>() : "";
    std::string text = out.dim(time + "  " + request) + "  ";
    if (!level.empty()) {
        std::string tag = level;
        if (level == "ERROR" || level == "FATAL") tag = out.red(level);
        else if (level == "WARN") tag = out.yellow(level);
        text += tag + " ";
    }
    text += platform ? out.dim(message) : message;
    return text;
}

void SseParser::feed(std::string_view piece, const std::function<void(const SseEvent&)>& on_event) {
    partial_.append(piece);
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = partial_.find('\n', start);
        if (end == std::string::npos) break;
        std::string_view text(partial_.data() + start, end - start);
        if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
        line(text, on_event);
        start = end + 1;
    }
    partial_.erase(0, start);
}

void SseParser::line(std::string_view text, const std::function<void(const SseEvent&)>& on_event) {
    if (text.empty()) {
        if (has_data_ || !current_.event.empty()) on_event(current_);
        current_ = {};
        has_data_ = false;
        return;
    }
    if (text.front() == ':') return;
    const auto colon = text.find(':');
    const std::string_view field = text.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
    if (value.starts_with(" ")) value.remove_prefix(1);
    if (field == "data") {
        if (has_data_) current_.data += '\n';
        current_.data.append(value);
        has_data_ = true;
    } else if (field == "event") {
        current_.event = std::string(value);
    }
}

}  // namespace funcd::cli
