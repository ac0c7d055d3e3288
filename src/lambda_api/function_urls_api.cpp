// Lambda's function URL configs (Create/Get/Update/Delete/ListFunctionUrlConfigs): path-style
// URLs under funcd's own address, AuthType NONE or AWS_IAM, CORS.
#include <fmt/format.h>

#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limit on a function URL's CORS MaxAge (86,400 s).
constexpr int kMaxCorsMaxAge = 86400;

std::vector<std::string> strings(const json& v, std::string_view field) {
    if (v.is_null()) return {};
    if (!v.is_array()) throw LambdaError::invalid_content(fmt::format("{} must be a list of strings", field));
    std::vector<std::string> out;
    for (const auto& e : v) {
        if (!e.is_string()) throw LambdaError::invalid_content(fmt::format("{} must be a list of strings", field));
        out.push_back(e.get<std::string>());
    }
    return out;
}


CorsSettings parse_lambda_cors(const json& v) {
    CorsSettings c;
    if (v.is_null()) return c;
    if (!v.is_object()) throw LambdaError::invalid_content("Cors must be an object");
    c.allow_origins = strings(v.value("AllowOrigins", json()), "Cors.AllowOrigins");
    c.allow_methods = strings(v.value("AllowMethods", json()), "Cors.AllowMethods");
    c.allow_headers = strings(v.value("AllowHeaders", json()), "Cors.AllowHeaders");
    c.expose_headers = strings(v.value("ExposeHeaders", json()), "Cors.ExposeHeaders");
    c.allow_credentials = v.value("AllowCredentials", false);
    if (auto it = v.find("MaxAge"); it != v.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int>() < 0 || it->get<int>() > kMaxCorsMaxAge)
            throw validation_error(it->dump(), "cors.maxAge", "Member must have value less than or equal to 86400");
        c.max_age_s = it->get<int>();
    }
    return c;
}


json lambda_cors(const CorsSettings& c) {
    json j{{"AllowCredentials", c.allow_credentials},
           {"AllowHeaders", c.allow_headers},
           {"AllowMethods", c.allow_methods},
           {"AllowOrigins", c.allow_origins},
           {"ExposeHeaders", c.expose_headers},
           {"MaxAge", c.max_age_s}};
    return j;
}

// Lambda's policy statement for AddPermission (as GetPolicy shows it): Principal and
// Condition in the shapes Terraform's provider decodes (a map of maps of strings).

// Path-style under funcd's own address (the Host the request came to): the URL itself.
std::string function_url(std::string_view host, std::string_view name, std::string_view qualifier) {
    return fmt::format("http://{}/fn/{}{}{}/", host, name, qualifier.empty() ? "" : ":", qualifier);
}

// FunctionUrlConfig as Lambda shows it; CreateFunctionUrlConfig leaves out LastModifiedTime.
json url_document(const std::string& url, const std::string& fn_arn, const FunctionUrlConfig& u, bool created) {
    json j{{"FunctionUrl", url},
           {"FunctionArn", fn_arn},
           {"AuthType", to_string(u.auth)},
           {"CreationTime", lambda_timestamp(u.created)},
           {"InvokeMode", u.invoke_mode}};
    if (u.cors.enabled() || !u.cors.allow_methods.empty() || !u.cors.allow_headers.empty()) j["Cors"] = lambda_cors(u.cors);
    if (!created) j["LastModifiedTime"] = lambda_timestamp(u.last_modified);
    return j;
}

}  // namespace

void LambdaApi::url_config(const CallPtr& call, const FunctionRef& ref) {
    const std::string& m = call->req.method;
    FunctionRecordPtr r = registry_.find(ref.name);
    if (!r) throw LambdaError::not_found("Function does not exist");
    if (ref.qualifier) {
        auto q = Qualifier::parse(*ref.qualifier);
        if (!q || q->kind != Qualifier::Kind::alias)
            throw validation_error(*ref.qualifier, "qualifier",
                                   "Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)");
        if (!r->aliases.count(*ref.qualifier))
            throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, *ref.qualifier));
    }
    const std::string key = ref.qualifier.value_or("");
    const std::string fn_arn = arn(*call, ref.name, key);
    const std::string host(call->req.header("host"));
    const std::string url = function_url(host, ref.name, key);
    auto describe = [url, fn_arn](const FunctionUrlConfig& u, bool created) {
        return url_document(url, fn_arn, u, created);
    };
    if (m == "GET") {
        auto it = r->urls.find(key);
        if (it == r->urls.end()) throw LambdaError::not_found("The resource you requested does not exist.");
        return call->reply(200, describe(it->second, false));
    }
    if (m == "DELETE") {
        if (!r->urls.count(key)) throw LambdaError::not_found("The resource you requested does not exist.");
        offload(call, [this, ref, key] {
            commit(ref.name, [&](RecordChange& c) {
                if (c.record) c.record->urls.erase(key);
            });
            return http::Response{204, {}, {}, "application/json"};
        });
        return;
    }
    if (m != "POST" && m != "PUT") throw LambdaError::unknown_operation("funcd does not implement " + m + " url");
    const json body = call->body_json();
    const bool create = m == "POST";
    offload(call, [this, call, ref, key, fn_arn, body, create, describe] {
        FunctionUrlConfig shown;
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function does not exist");
            auto existing = c.record->urls.find(key);
            if (create && existing != c.record->urls.end())
                throw LambdaError::conflict("Failed to create function url config for [functionArn = " + fn_arn +
                                            "]. Error message:  FunctionUrlConfig exists for this Lambda function");
            if (!create && existing == c.record->urls.end())
                throw LambdaError::not_found("The resource you requested does not exist.");
            FunctionUrlConfig u = create ? FunctionUrlConfig{} : existing->second;
            const auto now = std::chrono::system_clock::now();
            if (create) u.created = now;
            u.last_modified = now;
            if (auto a = body.find("AuthType"); a != body.end()) {
                auto auth = a->is_string() ? parse_url_auth_type(a->get<std::string>()) : std::nullopt;
                if (!auth)
                    throw validation_error(a->dump(), "authType", "Member must satisfy enum value set: [NONE, AWS_IAM]");
                u.auth = *auth;
            } else if (create) {
                throw LambdaError::validation("1 validation error detected: Value null at 'authType' failed to "
                                              "satisfy constraint: Member must not be null");
            }
            if (auto cors = body.find("Cors"); cors != body.end()) u.cors = parse_lambda_cors(*cors);
            if (auto mode = body.find("InvokeMode"); mode != body.end() && !mode->is_null()) {
                if (!mode->is_string() || !parse_invoke_mode(mode->get<std::string>()))
                    throw validation_error(mode->dump(), "invokeMode",
                                           "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]");
                u.invoke_mode = mode->get<std::string>();
            }
            c.record->urls[key] = u;
            shown = u;
        });
        return http::Response{create ? 201 : 200, {}, describe(shown, create).dump(), "application/json"};
    });
}


void LambdaApi::list_url_configs(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = registry_.find(ref.name);
    if (!r) throw LambdaError::not_found("Function does not exist");
    const std::string host(call->req.header("host"));
    json list = json::array();
    for (const auto& [key, u] : r->urls)
        list.push_back(url_document(function_url(host, ref.name, key), arn(*call, ref.name, key), u, false));
    call->reply(200, {{"FunctionUrlConfigs", std::move(list)}});
}


}  // namespace funcd
