// Lambda's tags on functions: TagResource, UntagResource, ListTags, and the tags
// CreateFunction takes.
#include <fmt/format.h>

#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limits on tags (50 per resource; keys 128, values 256 characters).
constexpr std::size_t kMaxTags = 50;
constexpr std::size_t kMaxTagKey = 128;
constexpr std::size_t kMaxTagValue = 256;

}  // namespace

std::map<std::string, std::string> parse_tags(const json& tags) {
    if (!tags.is_object()) throw LambdaError::invalid_content("Tags must be an object of strings");
    if (tags.size() > kMaxTags) throw LambdaError::invalid_parameter("Number of tags exceeds resource tag limit.");
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : tags.items()) {
        if (!v.is_string()) throw LambdaError::invalid_content("Tags must be an object of strings");
        if (k.empty() || k.size() > kMaxTagKey || k.starts_with("aws:"))
            throw validation_error(k, "tags", "Member must have length between 1 and 128 and not start with 'aws:'");
        if (v.get_ref<const std::string&>().size() > kMaxTagValue)
            throw validation_error(v.get<std::string>(), "tags", "Member must have length less than or equal to 256");
        out[k] = v.get<std::string>();
    }
    return out;
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
        const std::map<std::string, std::string> add = parse_tags(*tags);
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


}  // namespace funcd
