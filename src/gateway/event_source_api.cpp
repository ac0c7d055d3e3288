#include "funcd/gateway/event_source_api.hpp"

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

// Mapping names follow function names' rules: they appear in paths and logs.
void validate_mapping_name(const std::string& name) {
    try {
        validate_function_name(name);
    } catch (const ApiError&) {
        throw ApiError::bad_parameter("event source mapping name '" + name.substr(0, 100) +
                                      "' is invalid: use 1 to 64 letters, digits, '-' or '_'");
    }
}

// Answers a change from EventSourceMappings: its view, or its error.
EventSourceMappings::Done answer(EventSourceMappings& mappings, http::Responder respond, bool report_created) {
    return [&mappings, respond = std::move(respond), report_created](std::exception_ptr error,
                                                                     std::optional<MappingView> view, bool created) {
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (...) {
                return respond(response_for_current_exception());
            }
        }
        respond(json_response(report_created && created ? 201 : 200, to_json(*view, mappings.arn(view->config.uuid))));
    };
}

}  // namespace

EventSourceApi::EventSourceApi(Registry& registry, EventSourceMappings& mappings)
    : registry_(registry), mappings_(mappings) {}

MappingView EventSourceApi::require(const std::string& function, const std::string& name) const {
    auto v = mappings_.find(function, name);
    if (!v)
        throw ApiError::not_found("event source mapping '" + name + "' of function '" + function + "' does not exist");
    return *v;
}

bool EventSourceApi::handle(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    const std::string& m = req.method;
    if (s.size() < 4 || s[1] != "functions" || s[3] != "event-sources") return false;
    const std::string& function = s[2];
    validate_function_name(function);
    if (!registry_.find(function)) throw ApiError::not_found("function '" + function + "' does not exist");
    if (s.size() == 4) {
        if (m != "GET") return respond(method_not_allowed(m, "GET")), true;
        json list = json::array();
        for (const auto& v : mappings_.list(function)) list.push_back(to_json(v, mappings_.arn(v.config.uuid)));
        respond(json_response(200, {{"event_sources", std::move(list)}}));
        return true;
    }
    const std::string& name = s[4];
    validate_mapping_name(name);
    if (s.size() == 6 && (s[5] == "enable" || s[5] == "disable")) {
        if (m != "POST") return respond(method_not_allowed(m, "POST")), true;
        set_enabled(function, name, s[5] == "enable", respond);
        return true;
    }
    if (s.size() != 5) return false;
    if (m == "PUT") {
        put(function, name, req, respond);
    } else if (m == "GET") {
        // A disabled mapping's slot is read first: the answer shows what it holds now.
        const std::string uuid = require(function, name).config.uuid;
        mappings_.refresh_retained(uuid, [this, function, name, respond = std::move(respond)] {
            try {
                const MappingView v = require(function, name);  // deleted meanwhile: 404
                respond(json_response(200, to_json(v, mappings_.arn(v.config.uuid))));
            } catch (...) {
                respond(response_for_current_exception());
            }
        });
    } else if (m == "DELETE") {
        const MappingView v = require(function, name);
        mappings_.remove(v.config.uuid, [respond = std::move(respond)](std::exception_ptr error) {
            if (error) {
                try {
                    std::rethrow_exception(error);
                } catch (...) {
                    return respond(response_for_current_exception());
                }
            }
            respond(http::Response{204, {}, {}, "application/json"});
        });
    } else {
        respond(method_not_allowed(m, "GET, PUT, DELETE"));
    }
    return true;
}

void EventSourceApi::put(const std::string& function, const std::string& name, http::Request& req,
                         http::Responder& respond) {
    require_json(req);
    const auto existing = mappings_.find(function, name);
    MappingConfig c = parse_mapping_config(function, name, req.body, existing ? &existing->config : nullptr);
    mappings_.put(std::move(c), answer(mappings_, std::move(respond), true));
}

void EventSourceApi::set_enabled(const std::string& function, const std::string& name, bool enabled,
                                 http::Responder& respond) {
    MappingConfig c = require(function, name).config;
    c.enabled = enabled;
    mappings_.put(std::move(c), answer(mappings_, std::move(respond), false));
}

}  // namespace funcd
