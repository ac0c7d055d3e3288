#include "funcd/cli/function_settings.hpp"

#include <optional>

#include "funcd/registry/arn.hpp"

namespace funcd::cli {

namespace {

// Where funcd's Lambda API says its functions and layers live (docs/lambda-api.md).
constexpr const char* kRegion = "us-east-1";
constexpr const char* kAccount = "000000000000";

}  // namespace

nlohmann::json settings_of(const nlohmann::json& d) {
    nlohmann::json s = nlohmann::json::object();
    for (const char* field : {"runtime", "handler", "memory_mb", "timeout_s", "keep_alive_s", "keep_alive", "url_auth",
                              "invoke_mode", "description", "ephemeral_storage_mb", "network", "log_format", "env"}) {
        if (d.contains(field) && !d[field].is_null()) s[field] = d[field];
    }
    if (d.contains("preload") && d["preload"].is_array() && !d["preload"].empty()) s["preload"] = d["preload"];
    // The levels are refused unless the format is JSON; described as null otherwise.
    for (const char* field : {"application_log_level", "system_log_level"})
        if (d.contains(field) && d[field].is_string()) s[field] = d[field];
    if (d.contains("cors") && d["cors"].is_object() && !d["cors"].value("allow_origins", nlohmann::json::array()).empty())
        s["cors"] = d["cors"];
    if (d.contains("layers") && d["layers"].is_array()) {
        nlohmann::json arns = nlohmann::json::array();
        for (const auto& l : d["layers"])
            arns.push_back(layer_version_arn(kRegion, kAccount, l.value("name", ""), l.value("version", 0)));
        s["layers"] = std::move(arns);
    }
    return s;
}

std::optional<std::string> layer_arn_for(std::string_view text) {
    if (parse_layer_version_arn(text)) return std::string(text);
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
    const std::string_view number = text.substr(colon + 1);
    for (char c : number)
        if (c < '0' || c > '9') return std::nullopt;
    if (number.size() > 15) return std::nullopt;
    const std::string arn =
        layer_version_arn(kRegion, kAccount, text.substr(0, colon), std::stoll(std::string(number)));
    if (!parse_layer_version_arn(arn)) return std::nullopt;
    return arn;
}

}  // namespace funcd::cli
