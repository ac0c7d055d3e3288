// Lambda's event source mapping operations (Create/Get/Update/Delete/ListEventSourceMappings)
// over funcd's mappings; the shapes are in event_source_mapping_shapes.cpp.
#include <algorithm>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/lambda_api/event_source_mapping_shapes.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// ListEventSourceMappings' MaxItems (botocore's model: 1 to 10000) and Lambda's page size.
constexpr int kMaxListItems = 10'000;
constexpr int kDefaultListItems = 100;

LambdaError not_found() { return LambdaError::not_found("The resource you requested does not exist."); }

// Answers a change from EventSourceMappings in Lambda's terms.
EventSourceMappings::Done answer(const CallPtr& call, EventSourceMappings& mappings, int status) {
    return [call, &mappings, status](std::exception_ptr error, std::optional<MappingView> view, bool) {
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const ApiError& e) {
                return call->fail(to_lambda_error(e));
            } catch (const std::exception& e) {
                return call->fail(LambdaError::service("the mapping could not be stored; see funcd's log"));
            }
        }
        call->reply(status, lambda_mapping_configuration(*view, call->scope, mappings.arn(view->config.uuid)));
    };
}

}  // namespace

void LambdaApi::event_source_mappings(const CallPtr& call) {
    const auto& s = call->target.segments;
    const std::string& m = call->req.method;
    if (s.size() == 2) {
        if (m == "GET") return list_mappings(call);
        if (m == "POST") return create_mapping(call);
        throw LambdaError::unknown_operation("funcd does not implement " + m + " on event-source-mappings");
    }
    const std::string& uuid = s[2];
    auto view = mappings_.get(uuid);
    if (!view) throw not_found();
    if (m == "GET") return call->reply(200, lambda_mapping_configuration(*view, call->scope, mappings_.arn(uuid)));
    if (m == "PUT") return update_mapping(call, uuid);
    if (m == "DELETE") {
        json shown = lambda_mapping_configuration(*view, call->scope, mappings_.arn(uuid));
        shown["State"] = "Deleting";
        mappings_.remove(uuid, [call, shown](std::exception_ptr error) {
            if (error) {
                try {
                    std::rethrow_exception(error);
                } catch (const ApiError& e) {
                    return call->fail(to_lambda_error(e));
                } catch (const std::exception&) {
                    return call->fail(LambdaError::service("the mapping could not be deleted; see funcd's log"));
                }
            }
            call->reply(202, shown);
        });
        return;
    }
    throw LambdaError::unknown_operation("funcd does not implement " + m + " on an event source mapping");
}

void LambdaApi::create_mapping(const CallPtr& call) {
    const json body = call->body_json();
    auto fn = body.find("FunctionName");
    if (fn == body.end() || !fn->is_string())
        throw validation_error("null", "functionName", "Member must not be null");
    const FunctionRef ref = function_ref(*call, fn->get<std::string>());
    record_for(*call, ref);
    if (ref.qualifier)
        throw LambdaError::invalid_parameter("funcd's mappings invoke the function's default version; give "
                                             "FunctionName without a qualifier");
    MappingConfig c = mapping_from_lambda(body, ref.name, nullptr);
    c.uuid = new_uuid();
    c.name = c.uuid;  // Lambda's mappings have no name of their own
    mappings_.put(std::move(c), answer(call, mappings_, 202));
}

void LambdaApi::update_mapping(const CallPtr& call, const std::string& uuid) {
    const json body = call->body_json();
    const MappingView current = *mappings_.get(uuid);
    if (auto fn = body.find("FunctionName"); fn != body.end() && !fn->is_null()) {
        if (!fn->is_string()) throw LambdaError::validation("FunctionName must be a string");
        const FunctionRef ref = function_ref(*call, fn->get<std::string>());
        if (ref.name != current.config.function || ref.qualifier)
            throw LambdaError::invalid_parameter("a mapping cannot move to another function; delete it and create "
                                                 "one for that function");
    }
    MappingConfig c = mapping_from_lambda(body, current.config.function, &current.config);
    mappings_.put(std::move(c), answer(call, mappings_, 202));
}

void LambdaApi::list_mappings(const CallPtr& call) {
    api::reject_unknown_params(call->target, {"FunctionName", "EventSourceArn", "Marker", "MaxItems"});
    std::optional<std::string> function;
    if (auto f = api::param(call->target, "FunctionName")) {
        const FunctionRef ref = function_ref(*call, *f);
        function = ref.name;
    }
    // funcd's mappings have no EventSourceArn: a filter by one matches none of them.
    const bool by_source_arn = api::param(call->target, "EventSourceArn").has_value();
    int max_items = kDefaultListItems;
    try {
        max_items = api::int_param(call->target, "MaxItems", 1, kMaxListItems, kDefaultListItems);
    } catch (const ApiError& e) {
        throw LambdaError::validation(e.what());
    }
    std::vector<MappingView> all = by_source_arn ? std::vector<MappingView>{} : mappings_.list(function);
    // Pages in a stable order (by UUID), each continuing after the Marker's mapping.
    std::sort(all.begin(), all.end(), [](const MappingView& a, const MappingView& b) {
        return a.config.uuid < b.config.uuid;
    });
    auto begin = all.begin();
    if (auto marker = api::param(call->target, "Marker"))
        begin = std::upper_bound(all.begin(), all.end(), *marker,
                                 [](const std::string& m, const MappingView& v) { return m < v.config.uuid; });
    json page = json::array();
    auto it = begin;
    for (; it != all.end() && static_cast<int>(page.size()) < max_items; ++it)
        page.push_back(lambda_mapping_configuration(*it, call->scope, mappings_.arn(it->config.uuid)));
    json out{{"EventSourceMappings", std::move(page)}};
    if (it != all.end()) out["NextMarker"] = std::prev(it)->config.uuid;
    call->reply(200, out);
}

}  // namespace funcd
