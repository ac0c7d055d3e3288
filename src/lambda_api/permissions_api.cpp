// Lambda's resource policy: AddPermission, GetPolicy, RemovePermission. Statements are
// stored and shown in Lambda's exact shape; they do not grant or deny anything in funcd.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "funcd/common/ids.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

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


}  // namespace funcd
