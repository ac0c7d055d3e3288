// Lambda's aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases, with
// weighted routing to a second version (RoutingConfig.AdditionalVersionWeights).
#include <algorithm>
#include <charconv>

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include "funcd/common/ids.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

void check_alias_name(const std::string& name) {
    auto q = Qualifier::parse(name);
    if (!q || q->kind != Qualifier::Kind::alias)
        throw validation_error(name, "name", "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)");
}

std::int64_t parse_function_version(const json& v) {
    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    auto q = Qualifier::parse(text);
    if (!q || q->kind == Qualifier::Kind::alias)
        throw validation_error(text, "functionVersion", "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)");
    return q->number;
}

// AdditionalVersionWeights, checked as Lambda checks it against the alias's main version.
std::optional<std::pair<std::int64_t, double>> parse_routing(const json& routing, std::int64_t primary,
                                                             const FunctionRecord& r, const std::string& fn_arn) {
    if (routing.is_null()) return std::nullopt;
    if (!routing.is_object()) throw LambdaError::invalid_content("RoutingConfig must be an object");
    auto weights = routing.find("AdditionalVersionWeights");
    if (weights == routing.end() || weights->is_null() || weights->empty()) return std::nullopt;
    if (!weights->is_object()) throw LambdaError::invalid_content("AdditionalVersionWeights must be an object");
    if (weights->size() > 1)
        throw LambdaError::invalid_parameter("Number of items in AdditionalVersionWeights cannot be greater than 1");
    std::string key;
    json value;
    for (const auto& [k, v] : weights->items()) {
        key = k;
        value = v;
    }
    auto q = Qualifier::parse(key);
    if (!q || q->kind != Qualifier::Kind::version)
        throw validation_error("{" + key + "=" + value.dump() + "}", "routingConfig.additionalVersionWeights",
                               "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]");
    if (!value.is_number() || value.get<double>() < 0.0 || value.get<double>() > 1.0)
        throw validation_error("{" + key + "=" + value.dump() + "}", "routingConfig.additionalVersionWeights",
                               "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
                               "Member must have value greater than or equal to 0.0, Member must not be null]");
    if (primary == kLatestVersion)
        throw LambdaError::invalid_parameter("$LATEST is not supported for an alias pointing to more than 1 version");
    if (q->number == primary)
        throw LambdaError::invalid_parameter(fmt::format("Invalid function version {0}. Function version {0} is already "
                                                         "included in routing configuration.",
                                                         primary));
    if (!r.version(q->number)) throw LambdaError::not_found("Function not found: " + fn_arn + ":" + key);
    return std::make_pair(q->number, value.get<double>());
}

}  // namespace

void LambdaApi::create_alias(const CallPtr& call, const FunctionRef& ref) {
    record_for(*call, ref);
    offload(call, [this, call, ref] {
        const json body = call->body_json();
        if (!body.contains("Name") || !body["Name"].is_string())
            throw LambdaError::validation("1 validation error detected: Value null at 'name' failed to satisfy "
                                          "constraint: Member must not be null");
        if (!body.contains("FunctionVersion"))
            throw LambdaError::validation("1 validation error detected: Value null at 'functionVersion' failed to "
                                          "satisfy constraint: Member must not be null");
        Alias a;
        a.name = body["Name"].get<std::string>();
        check_alias_name(a.name);
        a.function_version = parse_function_version(body["FunctionVersion"]);
        if (auto d = body.find("Description"); d != body.end() && d->is_string()) a.description = d->get<std::string>();
        FunctionRecordPtr after = commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
            if (c.record->aliases.count(a.name))
                throw LambdaError::conflict("Alias already exists: " + arn(*call, ref.name, a.name));
            if (!c.record->version(a.function_version))
                throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, std::to_string(a.function_version)));
            a.additional_version =
                parse_routing(body.value("RoutingConfig", json()), a.function_version, *c.record, arn(*call, ref.name));
            a.revision_id = new_uuid();
            c.record->aliases[a.name] = a;
        });
        return http::Response{201, {}, alias_configuration(*after, after->aliases.at(a.name), call->scope).dump(),
                              "application/json"};
    });
}

void LambdaApi::get_alias(const CallPtr& call, const FunctionRef& ref, const std::string& name) {
    FunctionRecordPtr r = record_for(*call, ref);
    auto it = r->aliases.find(name);
    if (it == r->aliases.end()) throw LambdaError::not_found("Cannot find alias arn: " + arn(*call, ref.name, name));
    call->reply(200, alias_configuration(*r, it->second, call->scope));
}

void LambdaApi::update_alias(const CallPtr& call, const FunctionRef& ref, const std::string& name) {
    record_for(*call, ref);
    offload(call, [this, call, ref, name] {
        const json body = call->body_json();
        FunctionRecordPtr after = commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
            auto it = c.record->aliases.find(name);
            if (it == c.record->aliases.end())
                throw LambdaError::not_found("Alias not found: " + arn(*call, ref.name, name));
            Alias a = it->second;
            check_revision(body, a.revision_id);
            if (auto v = body.find("FunctionVersion"); v != body.end()) {
                a.function_version = parse_function_version(*v);
                if (!c.record->version(a.function_version))
                    throw LambdaError::not_found("Function not found: " +
                                                 arn(*call, ref.name, std::to_string(a.function_version)));
            }
            if (auto d = body.find("Description"); d != body.end() && d->is_string()) a.description = d->get<std::string>();
            // RoutingConfig given (even {}) replaces the weights; left out, they stay.
            if (auto routing = body.find("RoutingConfig"); routing != body.end())
                a.additional_version = parse_routing(*routing, a.function_version, *c.record, arn(*call, ref.name));
            else if (a.additional_version && a.additional_version->first == a.function_version)
                a.additional_version.reset();
            a.revision_id = new_uuid();
            c.record->aliases[name] = a;
        });
        return http::Response{200, {}, alias_configuration(*after, after->aliases.at(name), call->scope).dump(),
                              "application/json"};
    });
}

void LambdaApi::delete_alias(const CallPtr& call, const FunctionRef& ref, const std::string& name) {
    record_for(*call, ref);
    offload(call, [this, call, ref, name] {
        bool existed = false;
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
            existed = c.record->aliases.erase(name) > 0;
            // What was configured on the alias goes with it.
            c.record->provisioned.erase(name);
            c.record->urls.erase(name);
            c.record->policies.erase(name);
        });
        if (existed) {
            const std::string target = ref.name + ":" + name;
            events_.delete_event_config(target);
            boost::asio::post(io_, [this, target] { async_.set_config(target, std::nullopt); });
        }
        // Lambda answers 204 for an alias that does not exist too.
        return http::Response{204, {}, {}, "application/json"};
    });
}

void LambdaApi::list_aliases(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = record_for(*call, ref);
    std::optional<std::int64_t> only;
    if (auto v = api::param(call->target, "FunctionVersion")) only = parse_function_version(json(*v));
    std::vector<const Alias*> items;
    for (const auto& [name, a] : r->aliases)
        if (!only || a.function_version == *only) items.push_back(&a);
    // Marker: the last alias name of the page before (aliases are listed by name).
    std::size_t start = 0;
    if (auto m = api::param(call->target, "Marker"); m && !m->empty()) {
        while (start < items.size() && items[start]->name <= *m) ++start;
    }
    int limit = kMaxPageItems;
    if (auto mi = api::param(call->target, "MaxItems")) {
        int n = 0;
        if (std::from_chars(mi->data(), mi->data() + mi->size(), n).ec != std::errc() || n < 1 || n > 10000)
            throw validation_error(*mi, "maxItems", "Member must have value between 1 and 10000");
        limit = std::min(n, kMaxPageItems);
    }
    json list = json::array();
    std::size_t i = start;
    for (; i < items.size() && static_cast<int>(list.size()) < limit; ++i)
        list.push_back(alias_configuration(*r, *items[i], call->scope));
    json out{{"Aliases", std::move(list)}};
    if (i < items.size()) out["NextMarker"] = items[i - 1]->name;
    call->reply(200, out);
}

}  // namespace funcd
