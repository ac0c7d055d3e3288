// Lambda's function URL configs, resource policies (AddPermission, GetPolicy,
// RemovePermission), tags, and account settings.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "funcd/common/ids.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limits on a function URL's CORS settings (MaxAge up to 86,400 s).
constexpr int kMaxCorsMaxAge = 86400;
constexpr std::size_t kMaxTags = 50;

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
json statement_for(const json& body, const std::string& resource) {
    const std::string principal = body.value("Principal", "");
    json p;
    if (principal == "*") {
        p = "*";
    } else if (principal.ends_with(".amazonaws.com")) {
        p = {{"Service", principal}};
    } else if (principal.size() == 12 && principal.find_first_not_of("0123456789") == std::string::npos) {
        p = {{"AWS", "arn:aws:iam::" + principal + ":root"}};
    } else if (principal.starts_with("arn:aws:iam::")) {
        p = {{"AWS", principal}};
    } else {
        throw LambdaError::invalid_parameter("The provided principal was invalid. Please check the principal and try again.");
    }
    json s{{"Sid", body.value("StatementId", "")},
           {"Effect", "Allow"},
           {"Principal", p},
           {"Action", body.value("Action", "")},
           {"Resource", resource}};
    json condition = json::object();
    auto add = [&](const char* field, const char* op, const char* key) {
        if (auto it = body.find(field); it != body.end() && it->is_string() && !it->get<std::string>().empty())
            condition[op][key] = it->get<std::string>();
    };
    add("SourceAccount", "StringEquals", "AWS:SourceAccount");
    add("PrincipalOrgID", "StringEquals", "aws:PrincipalOrgID");
    add("EventSourceToken", "StringEquals", "lambda:EventSourceToken");
    add("FunctionUrlAuthType", "StringEquals", "lambda:FunctionUrlAuthType");
    add("SourceArn", "ArnLike", "AWS:SourceArn");
    if (auto it = body.find("InvokedViaFunctionUrl"); it != body.end() && it->is_boolean())
        condition["Bool"]["lambda:InvokedViaFunctionUrl"] = it->get<bool>() ? "true" : "false";
    if (!condition.empty()) s["Condition"] = std::move(condition);
    return s;
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
    // Path-style under funcd's own address: http://HOST/fn/NAME[:ALIAS]/ is the URL itself.
    const std::string url = "http://" + host + "/fn/" + ref.name + (key.empty() ? "" : ":" + key) + "/";
    auto describe = [url, fn_arn](const FunctionUrlConfig& u, bool created) {
        json j{{"FunctionUrl", url},
               {"FunctionArn", fn_arn},
               {"AuthType", to_string(u.auth)},
               {"CreationTime", lambda_timestamp(u.created)},
               {"InvokeMode", u.invoke_mode}};
        if (u.cors.enabled() || !u.cors.allow_methods.empty() || !u.cors.allow_headers.empty())
            j["Cors"] = lambda_cors(u.cors);
        if (!created) j["LastModifiedTime"] = lambda_timestamp(u.last_modified);
        return j;
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
                if (*mode == "RESPONSE_STREAM")
                    throw LambdaError::invalid_parameter("funcd answers function URLs with buffered responses; "
                                                         "InvokeMode RESPONSE_STREAM is not supported yet");
                if (*mode != "BUFFERED")
                    throw validation_error(mode->dump(), "invokeMode",
                                           "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]");
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
    for (const auto& [key, u] : r->urls) {
        json j{{"FunctionUrl", "http://" + host + "/fn/" + ref.name + (key.empty() ? "" : ":" + key) + "/"},
               {"FunctionArn", arn(*call, ref.name, key)},
               {"AuthType", to_string(u.auth)},
               {"CreationTime", lambda_timestamp(u.created)},
               {"LastModifiedTime", lambda_timestamp(u.last_modified)},
               {"InvokeMode", u.invoke_mode}};
        if (u.cors.enabled()) j["Cors"] = lambda_cors(u.cors);
        list.push_back(std::move(j));
    }
    call->reply(200, {{"FunctionUrlConfigs", std::move(list)}});
}

void LambdaApi::add_permission(const CallPtr& call, const FunctionRef& ref) {
    record_for(*call, ref);
    if (ref.qualifier && *ref.qualifier == kLatestLabel)
        throw LambdaError::invalid_parameter("We currently do not support adding policies for $LATEST.");
    offload(call, [this, call, ref] {
        const json body = call->body_json();
        for (const char* field : {"StatementId", "Action", "Principal"})
            if (!body.contains(field) || !body[field].is_string())
                throw LambdaError::validation(fmt::format("1 validation error detected: Value null at '{}{}' failed to "
                                                          "satisfy constraint: Member must not be null",
                                                          static_cast<char>(std::tolower(field[0])), field + 1));
        const std::string sid = body["StatementId"].get<std::string>();
        // botocore's model: StatementId is 1 to 100 of [a-zA-Z0-9-_.].
        const bool sid_ok = !sid.empty() && sid.size() <= 100 && std::all_of(sid.begin(), sid.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
        });
        if (!sid_ok)
            throw validation_error(sid, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)");
        const std::string key = ref.qualifier.value_or("");
        json statement = statement_for(body, arn(*call, ref.name, key));
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, key));
            if (ref.qualifier && !resolve(*c.record, *Qualifier::parse(*ref.qualifier), 1.0))
                throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, key));
            check_revision(body, c.record->policy_revision_id, "GetPolicy");
            auto& statements = c.record->policies[key];
            for (const auto& s : statements)
                if (s.value("Sid", "") == sid)
                    throw LambdaError::conflict("The statement id (" + sid +
                                                ") provided already exists. Please provide a new statement id, or "
                                                "remove the existing statement.");
            statements.push_back(statement);
            c.record->policy_revision_id = new_uuid();
        });
        return http::Response{201, {}, json{{"Statement", statement.dump()}}.dump(), "application/json"};
    });
}

void LambdaApi::get_policy(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = registry_.find(ref.name);
    auto it = r ? r->policies.find(ref.qualifier.value_or("")) : decltype(r->policies.end()){};
    if (!r || it == r->policies.end() || it->second.empty())
        throw LambdaError::not_found("The resource you requested does not exist.");
    json policy{{"Version", "2012-10-17"}, {"Id", "default"}, {"Statement", it->second}};
    call->reply(200, {{"Policy", policy.dump()}, {"RevisionId", r->policy_revision_id}});
}

void LambdaApi::remove_permission(const CallPtr& call, const FunctionRef& ref, const std::string& sid) {
    const std::string key = ref.qualifier.value_or("");
    if (!registry_.find(ref.name)) throw LambdaError::not_found("No policy found for: " + arn(*call, ref.name, key));
    offload(call, [this, call, ref, sid, key] {
        const auto revision = api::param(call->target, "RevisionId");
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("No policy found for: " + arn(*call, ref.name, key));
            if (revision) check_revision(json{{"RevisionId", *revision}}, c.record->policy_revision_id, "GetPolicy");
            auto it = c.record->policies.find(key);
            if (it == c.record->policies.end() || it->second.empty())
                throw LambdaError::not_found("No policy is associated with the given resource.");
            const auto before = it->second.size();
            std::erase_if(it->second, [&](const json& s) { return s.value("Sid", "") == sid; });
            if (it->second.size() == before)
                throw LambdaError::not_found("Statement " + sid + " is not found in resource policy.");
            if (it->second.empty()) c.record->policies.erase(it);
            c.record->policy_revision_id = new_uuid();
        });
        return http::Response{204, {}, {}, "application/json"};
    });
}

void LambdaApi::route_tags(const CallPtr& call) {
    const std::string& m = call->req.method;
    const std::string resource = call->target.segments[2];
    auto ref = parse_function_ref(resource);
    if (!ref || !resource.starts_with("arn:"))
        throw validation_error(resource, "resource",
                               "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}"
                               "((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:function:[a-zA-Z0-9-_]+");
    if (ref->qualifier)
        throw LambdaError::invalid_parameter(
            "Tags on function aliases and versions are not supported. Please specify a function ARN.");
    if (ref->region && *ref->region != call->scope.region)
        throw LambdaError::not_found("Functions from '" + *ref->region + "' are not reachable in this region ('" +
                                     call->scope.region + "')");
    FunctionRecordPtr r = registry_.find(ref->name);
    if (!r) throw LambdaError::not_found("Function not found: " + resource);
    if (m == "GET") return call->reply(200, {{"Tags", r->tags}});
    if (m == "POST") {
        const json body = call->body_json();
        auto tags = body.find("Tags");
        if (tags == body.end() || !tags->is_object())
            throw LambdaError::validation("1 validation error detected: Value null at 'tags' failed to satisfy "
                                          "constraint: Member must not be null");
        std::map<std::string, std::string> add;
        for (const auto& [k, v] : tags->items()) {
            if (!v.is_string() || k.empty() || k.size() > 128 || v.get_ref<const std::string&>().size() > 256)
                throw validation_error(k, "tags", "Member must have keys of 1 to 128 and values of up to 256 characters");
            add[k] = v.get<std::string>();
        }
        offload(call, [this, call, name = ref->name, resource, add] {
            commit(name, [&](RecordChange& c) {
                if (!c.record) throw LambdaError::not_found("Function not found: " + resource);
                for (const auto& [k, v] : add) c.record->tags[k] = v;
                if (c.record->tags.size() > kMaxTags)
                    throw LambdaError::invalid_parameter("Number of tags exceeds resource tag limit.");
            });
            return http::Response{204, {}, {}, "application/json"};
        });
        return;
    }
    if (m == "DELETE") {
        std::vector<std::string> keys;
        for (const auto& [k, v] : call->target.params)
            if (k == "tagKeys") keys.push_back(v);
        if (keys.empty())
            throw LambdaError::validation("1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                                          "constraint: Member must not be null");
        offload(call, [this, name = ref->name, resource, keys] {
            commit(name, [&](RecordChange& c) {
                if (!c.record) throw LambdaError::not_found("Function not found: " + resource);
                for (const auto& k : keys) c.record->tags.erase(k);
            });
            return http::Response{204, {}, {}, "application/json"};
        });
        return;
    }
    throw LambdaError::unknown_operation("funcd does not implement " + m + " on tags");
}

void LambdaApi::account_settings(const CallPtr& call) {
    const int reserved = registry_.reserved_total();
    offload(call, [this, reserved] {
        // funcd's real limits: code sizes are Lambda's (funcd enforces the same), concurrency
        // is --max-concurrency, and TotalCodeSize is bounded only by the disk.
        json out{{"AccountLimit",
                  {{"TotalCodeSize", 80'530'636'800LL},
                   {"CodeSizeUnzipped", static_cast<long long>(limits::kMaxUnpackedBytes)},
                   {"CodeSizeZipped", static_cast<long long>(limits::kMaxZipBytes)},
                   {"ConcurrentExecutions", options_.max_concurrency},
                   {"UnreservedConcurrentExecutions", options_.max_concurrency - reserved}}},
                 {"AccountUsage",
                  {{"TotalCodeSize", registry_.total_code_size()}, {"FunctionCount", registry_.list().size()}}}};
        return http::Response{200, {}, out.dump(), "application/json"};
    });
}

}  // namespace funcd
