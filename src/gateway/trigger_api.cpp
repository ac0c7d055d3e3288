#include "funcd/gateway/trigger_api.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

json to_json(const ScheduleStatus& s) {
    const ScheduleDefinition& d = s.definition;
    json j{{"function", d.function},
           {"name", d.name},
           {"expression", d.expression},
           {"enabled", d.enabled},
           {"created", format_rfc3339(d.created)},
           {"next_fire", s.next_fire ? json(format_rfc3339(*s.next_fire)) : json(nullptr)},
           {"last_fire", s.last_fire ? json(format_rfc3339(*s.last_fire)) : json(nullptr)}};
    if (d.input) j["input"] = *d.input;
    return j;
}

// Trigger names follow function names' rules: they appear in ARNs and mount paths.
void validate_trigger_name(std::string_view kind, const std::string& name) {
    try {
        validate_function_name(name);
    } catch (const ApiError&) {
        throw ApiError::bad_parameter(std::string(kind) + " name '" + name +
                                      "' is invalid: use 1 to 64 letters, digits, '-' or '_'");
    }
}

ScheduleDefinition parse_schedule(const std::string& function, const std::string& name, std::string_view body) {
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) throw ApiError::bad_content("the request body is not valid JSON");
    if (!doc.is_object()) throw ApiError::bad_content("the request body must be a JSON object");
    ScheduleDefinition s;
    s.function = function;
    s.name = name;
    s.created = std::chrono::system_clock::now();
    for (const auto& [key, value] : doc.items()) {
        if (key == "expression") {
            if (!value.is_string()) throw ApiError::bad_parameter("expression must be a string");
            s.expression = value.get<std::string>();
        } else if (key == "input") {
            s.input = value;
        } else if (key == "enabled") {
            if (!value.is_boolean()) throw ApiError::bad_parameter("enabled must be true or false");
            s.enabled = value.get<bool>();
        } else {
            throw ApiError::bad_parameter("unknown field '" + key + "' (expected expression, input, enabled)");
        }
    }
    if (s.expression.empty())
        throw ApiError::bad_parameter("expression is required: rate(5 minutes) or cron(0 12 * * ? *)");
    ScheduleExpression::parse(s.expression);  // throws naming the bad part
    return s;
}

}  // namespace

TriggerApi::TriggerApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                       TriggerStore& store, Scheduler& scheduler)
    : io_(io), blocking_(blocking), registry_(registry), store_(store), scheduler_(scheduler) {}

void TriggerApi::start() {
    std::size_t schedules = 0;
    for (auto& s : store_.schedules()) {
        if (!registry_.find(s.function)) continue;
        try {
            scheduler_.set(std::move(s));
            ++schedules;
        } catch (const std::exception& e) {
            spdlog::error("schedule: stored schedule {}/{} is unusable: {}", s.function, s.name, e.what());
        }
    }
    spdlog::info("triggers: {} schedules loaded", schedules);
}

bool TriggerApi::handle(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    const std::string& m = req.method;
    if (s.size() < 4 || s[1] != "functions" || s[3] != "schedules") return false;
    const std::string& function = s[2];
    validate_function_name(function);
    if (!registry_.find(function)) throw ApiError::not_found("function '" + function + "' does not exist");
    if (s.size() == 4) {
        if (m != "GET") return respond(method_not_allowed(m, "GET")), true;
        json list = json::array();
        for (const auto& st : scheduler_.list(function)) list.push_back(to_json(st));
        respond(json_response(200, {{"schedules", std::move(list)}}));
        return true;
    }
    if (s.size() != 5) return false;
    const std::string& name = s[4];
    validate_trigger_name("schedule", name);
    if (m == "PUT") put_schedule(function, name, req, respond);
    else if (m == "DELETE") delete_schedule(function, name, respond);
    else if (m == "GET") {
        auto st = scheduler_.get(function, name);
        if (!st) throw ApiError::not_found("schedule '" + name + "' of function '" + function + "' does not exist");
        respond(json_response(200, to_json(*st)));
    } else {
        respond(method_not_allowed(m, "GET, PUT, DELETE"));
    }
    return true;
}

void TriggerApi::put_schedule(const std::string& function, const std::string& name, http::Request& req,
                              http::Responder& respond) {
    require_json(req);
    ScheduleDefinition s = parse_schedule(function, name, req.body);
    const bool existed = scheduler_.get(function, name).has_value();
    commit_then_apply(
        io_, blocking_, std::move(respond), [this, s] { store_.put_schedule(s); },
        [this, s, existed] {
            scheduler_.set(s);
            return json_response(existed ? 200 : 201, to_json(*scheduler_.get(s.function, s.name)));
        });
}

void TriggerApi::delete_schedule(const std::string& function, const std::string& name, http::Responder& respond) {
    offload(io_, blocking_, std::move(respond), [this, function, name] {
        if (!store_.delete_schedule(function, name))
            throw ApiError::not_found("schedule '" + name + "' of function '" + function + "' does not exist");
        boost::asio::post(io_, [this, function, name] { scheduler_.remove(function, name); });
        return http::Response{204, {}, {}, "application/json"};
    });
}

void TriggerApi::function_deleted(const std::string& name) {
    scheduler_.function_deleted(name);
    boost::asio::post(blocking_, [this, name] {
        try {
            store_.drop_function(name);
        } catch (const std::exception& e) {
            spdlog::error("triggers: cannot drop the triggers of deleted function={}: {}", name, e.what());
        }
    });
}

}  // namespace funcd
