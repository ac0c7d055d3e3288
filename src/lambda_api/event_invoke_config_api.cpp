// Lambda's asynchronous invocation config (Put/Update/Get/Delete/ListFunctionEventInvokeConfigs),
// mapped onto funcd's retries and destinations (functions only).
#include <boost/asio/post.hpp>

#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

long long epoch_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void LambdaApi::event_invoke_config(const CallPtr& call, const FunctionRef& ref, bool list) {
    const std::string& m = call->req.method;
    FunctionRecordPtr r = registry_.find(ref.name);
    if (!r) throw LambdaError::not_found("The function doesn't exist.");
    // The unqualified function and $LATEST share one config, as on Lambda.
    const bool latest = !ref.qualifier || *ref.qualifier == kLatestLabel;
    const std::string target = latest ? ref.name : ref.name + ":" + *ref.qualifier;
    const std::string shown_arn = arn(*call, ref.name, latest ? std::string(kLatestLabel) : *ref.qualifier);
    if (!latest && !resolve(*r, *Qualifier::parse(*ref.qualifier), 1.0))
        throw LambdaError::not_found("The function doesn't exist.");
    auto destination_arn = [this, call](const std::optional<std::string>& t) {
        if (!t) return json::object();
        const AsyncTarget d = parse_async_target(*t);
        return json{{"Destination", arn(*call, d.name, d.qualifier.value_or(""))}};
    };
    auto describe = [this, call, destination_arn](const std::string& key, const EventConfig& c) {
        const AsyncTarget t = parse_async_target(key);
        return json{{"LastModified", c.last_modified_s},
                    {"FunctionArn", arn(*call, t.name, t.qualifier.value_or(std::string(kLatestLabel)))},
                    {"MaximumRetryAttempts", c.maximum_retry_attempts},
                    {"MaximumEventAgeInSeconds", c.maximum_event_age_s},
                    {"DestinationConfig",
                     {{"OnSuccess", destination_arn(c.on_success)}, {"OnFailure", destination_arn(c.on_failure)}}}};
    };
    if (list) {
        json configs = json::array();
        for (const auto& t : async_.configured_targets(ref.name)) configs.push_back(describe(t, *async_.own_config(t)));
        return call->reply(200, {{"FunctionEventInvokeConfigs", std::move(configs)}});
    }
    if (m == "GET") {
        auto c = async_.own_config(target);
        if (!c) throw LambdaError::not_found("The function " + shown_arn + " doesn't have an EventInvokeConfig");
        return call->reply(200, describe(target, *c));
    }
    if (m == "DELETE") {
        if (!async_.own_config(target))
            throw LambdaError::not_found("The function " + shown_arn + " doesn't have an EventInvokeConfig");
        offload(call, [this, target] {
            events_.delete_event_config(target);
            boost::asio::post(io_, [this, target] { async_.set_config(target, std::nullopt); });
            return http::Response{204, {}, {}, "application/json"};
        });
        return;
    }
    if (m != "PUT" && m != "POST")
        throw LambdaError::unknown_operation("funcd does not implement " + m + " event-invoke-config");
    const json body = call->body_json();
    const bool has_retries = body.contains("MaximumRetryAttempts") && !body["MaximumRetryAttempts"].is_null();
    const bool has_age = body.contains("MaximumEventAgeInSeconds") && !body["MaximumEventAgeInSeconds"].is_null();
    const bool has_destinations = body.contains("DestinationConfig") && !body["DestinationConfig"].is_null();
    if (!has_retries && !has_age && !has_destinations)
        throw LambdaError::invalid_parameter("You must specify at least one of error handling or destination setting.");
    // PUT replaces the whole config; POST (UpdateFunctionEventInvokeConfig) changes what it names.
    EventConfig c = m == "POST" ? async_.own_config(target).value_or(EventConfig{}) : EventConfig{};
    if (m == "POST" && !async_.own_config(target))
        throw LambdaError::not_found("The function " + shown_arn + " doesn't have an EventInvokeConfig");
    if (has_retries) {
        const json& v = body["MaximumRetryAttempts"];
        if (!v.is_number_integer() || v.get<int>() < 0 || v.get<int>() > limits::kMaxRetryAttempts)
            throw validation_error(v.dump(), "maximumRetryAttempts", "Member must have value less than or equal to 2");
        c.maximum_retry_attempts = v.get<int>();
    }
    if (has_age) {
        const json& v = body["MaximumEventAgeInSeconds"];
        if (!v.is_number_integer() || v.get<int>() < limits::kMinEventAgeS || v.get<int>() > limits::kMaxEventAgeS)
            throw validation_error(v.dump(), "maximumEventAgeInSeconds",
                                   "Member must have value between 60 and 21600");
        c.maximum_event_age_s = v.get<int>();
    }
    if (has_destinations) {
        const json& d = body["DestinationConfig"];
        if (!d.is_object()) throw LambdaError::invalid_content("DestinationConfig must be an object");
        for (const char* which : {"OnSuccess", "OnFailure"}) {
            auto it = d.find(which);
            if (it == d.end() || it->is_null()) continue;
            std::optional<std::string> dest;
            if (auto arn_it = it->find("Destination"); arn_it != it->end() && arn_it->is_string() &&
                                                        !arn_it->get<std::string>().empty()) {
                const std::string text = arn_it->get<std::string>();
                auto fn = text.starts_with("arn:") ? parse_function_ref(text) : std::nullopt;
                if (!fn)
                    throw LambdaError::invalid_parameter("funcd delivers destination records to functions only; " + text +
                                                         " is not a Lambda function ARN");
                if (fn->name == ref.name)
                    throw LambdaError::invalid_parameter("You can't specify the function as a destination for itself.");
                if (!registry_.find(fn->name))
                    throw LambdaError::invalid_parameter("The destination function " + text + " does not exist.");
                dest = fn->qualifier ? fn->name + ":" + *fn->qualifier : fn->name;
            }
            (std::string_view(which) == "OnSuccess" ? c.on_success : c.on_failure) = dest;
        }
    }
    c.last_modified_s = epoch_seconds();
    offload(call, [this, target, c, describe] {
        events_.put_event_config(target, c);
        boost::asio::post(io_, [this, target, c] { async_.set_config(target, c); });
        return http::Response{200, {}, describe(target, c).dump(), "application/json"};
    });
}

}  // namespace funcd
