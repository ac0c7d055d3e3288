#include "funcd/dispatch/event_config.hpp"

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_body.hpp"
#include "funcd/registry/function_config.hpp"

namespace funcd {
namespace {

using json = nlohmann::json;

int int_field(const json& v, std::string_view field, int min, int max) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < min || v.get<std::int64_t>() > max)
        throw ApiError::bad_parameter(std::string(field) + " must be an integer from " + std::to_string(min) +
                                      " to " + std::to_string(max) + " (got " + v.dump() + ")");
    return v.get<int>();
}

std::optional<std::string> destination(const json& v, std::string_view field) {
    if (v.is_null()) return std::nullopt;
    if (!v.is_string())
        throw ApiError::bad_parameter(std::string(field) + " must be a function name or null (got " + v.dump() + ")");
    const auto& name = v.get_ref<const std::string&>();
    try {
        validate_function_name(name);
    } catch (const ApiError& e) {
        throw ApiError::bad_parameter(std::string(field) + ": " + e.what());
    }
    return name;
}

}  // namespace

EventConfig parse_event_config(std::string_view body, const EventConfig& current) {
    json doc = parse_json_object(body);
    EventConfig c = current;
    for (const auto& [key, value] : doc.items()) {
        if (key == "maximum_retry_attempts") {
            c.maximum_retry_attempts = int_field(value, key, 0, limits::kMaxRetryAttempts);
        } else if (key == "retry_delays_s") {
            if (!value.is_array() || value.empty() || value.size() > limits::kMaxRetryAttempts)
                throw ApiError::bad_parameter("retry_delays_s must be an array of 1 to " +
                                              std::to_string(limits::kMaxRetryAttempts) + " delays in seconds");
            c.retry_delays_s.clear();
            for (const auto& d : value) c.retry_delays_s.push_back(int_field(d, "retry_delays_s[]", 0, limits::kMaxRetryDelayS));
        } else if (key == "maximum_event_age_s") {
            c.maximum_event_age_s = int_field(value, key, limits::kMinEventAgeS, limits::kMaxEventAgeS);
        } else if (key == "on_success") {
            c.on_success = destination(value, key);
        } else if (key == "on_failure") {
            c.on_failure = destination(value, key);
        } else {
            throw ApiError::bad_parameter("unknown field '" + key +
                                          "' (expected maximum_retry_attempts, retry_delays_s, maximum_event_age_s, "
                                          "on_success, on_failure)");
        }
    }
    return c;
}

json to_json(const EventConfig& c) {
    return {{"maximum_retry_attempts", c.maximum_retry_attempts},
            {"retry_delays_s", c.retry_delays_s},
            {"maximum_event_age_s", c.maximum_event_age_s},
            {"on_success", c.on_success ? json(*c.on_success) : json(nullptr)},
            {"on_failure", c.on_failure ? json(*c.on_failure) : json(nullptr)},
            {"last_modified_s", c.last_modified_s}};
}

EventConfig event_config_from_json(const json& j) {
    EventConfig c;
    c.maximum_retry_attempts = j.value("maximum_retry_attempts", c.maximum_retry_attempts);
    c.retry_delays_s = j.value("retry_delays_s", c.retry_delays_s);
    c.maximum_event_age_s = j.value("maximum_event_age_s", c.maximum_event_age_s);
    if (auto it = j.find("on_success"); it != j.end() && it->is_string()) c.on_success = it->get<std::string>();
    if (auto it = j.find("on_failure"); it != j.end() && it->is_string()) c.on_failure = it->get<std::string>();
    c.last_modified_s = j.value("last_modified_s", std::int64_t{0});
    return c;
}

int retry_delay_s(const EventConfig& c, int retry) {
    if (c.retry_delays_s.empty()) return 0;
    const auto i = static_cast<std::size_t>(std::max(1, retry) - 1);
    return c.retry_delays_s[std::min(i, c.retry_delays_s.size() - 1)];
}

}  // namespace funcd
