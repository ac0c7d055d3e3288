// Lambda's reserved concurrency (Put/Get/DeleteFunctionConcurrency) and provisioned
// concurrency on a version or alias (Put/Get/Delete/ListProvisionedConcurrencyConfigs).
#include <fmt/format.h>

#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

int non_negative(const json& body, const char* key, const char* field, int min) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null())
        throw LambdaError::validation(fmt::format("1 validation error detected: Value null at '{}' failed to satisfy "
                                                  "constraint: Member must not be null",
                                                  field));
    if (!it->is_number_integer() || it->get<std::int64_t>() < min)
        throw validation_error(it->dump(), field, fmt::format("Member must have value greater than or equal to {}", min));
    return static_cast<int>(std::min<std::int64_t>(it->get<std::int64_t>(), 1'000'000));
}

void unqualified_only(const FunctionRef& ref) {
    if (ref.qualifier)
        throw LambdaError::invalid_parameter(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. "
            "Please specify either a function name or an unqualified function ARN.");
}

}  // namespace

void LambdaApi::put_concurrency(const CallPtr& call, const FunctionRef& ref) {
    unqualified_only(ref);
    record_for(*call, ref);
    offload(call, [this, call, ref] {
        const int n = non_negative(call->body_json(), "ReservedConcurrentExecutions", "reservedConcurrentExecutions", 0);
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, kLatestLabel));
            int provisioned = c.record->default_provisioned;
            for (const auto& [q, p] : c.record->provisioned) provisioned += p.requested;
            if (provisioned > n)
                throw LambdaError::invalid_parameter(fmt::format(
                    "ReservedConcurrentExecutions {} is below the function's provisioned concurrency {}", n, provisioned));
            c.record->reserved_concurrency = n;
        });
        return http::Response{200, {}, json{{"ReservedConcurrentExecutions", n}}.dump(), "application/json"};
    });
}

void LambdaApi::get_concurrency(const CallPtr& call, const FunctionRef& ref) {
    unqualified_only(ref);
    FunctionRecordPtr r = record_for(*call, ref);
    json out = json::object();
    if (r->reserved_concurrency) out["ReservedConcurrentExecutions"] = *r->reserved_concurrency;
    call->reply(200, out);
}

void LambdaApi::delete_concurrency(const CallPtr& call, const FunctionRef& ref) {
    unqualified_only(ref);
    record_for(*call, ref);
    offload(call, [this, call, ref] {
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, kLatestLabel));
            c.record->reserved_concurrency.reset();
        });
        return http::Response{204, {}, {}, "application/json"};
    });
}

void LambdaApi::provisioned(const CallPtr& call, const FunctionRef& ref) {
    const std::string& m = call->req.method;
    FunctionRecordPtr r = record_for(*call, ref);
    auto describe = [this, call](const FunctionRecord& rec, const std::string& q, const ProvisionedConfig& p) {
        // Workers are started for the alias's main version (or the version itself), on the
        // nodes its invocations go to when nodes share the state: ready counts them all.
        FunctionPtr v = resolve(rec, *Qualifier::parse(q), 1.0);
        const ProvisionedCounts counts = v ? pools_.provisioned(rec.name, v->label()) : ProvisionedCounts{};
        const std::size_t ready = counts.ready + counts.elsewhere;
        const std::size_t available = std::min<std::size_t>(ready, static_cast<std::size_t>(p.requested));
        return json{{"FunctionArn", arn(*call, rec.name, q)},
                    {"RequestedProvisionedConcurrentExecutions", p.requested},
                    {"AvailableProvisionedConcurrentExecutions", available},
                    {"AllocatedProvisionedConcurrentExecutions", available},
                    {"Status", available >= static_cast<std::size_t>(p.requested) ? "READY" : "IN_PROGRESS"},
                    {"LastModified", lambda_timestamp(p.last_modified)}};
    };
    if (m == "GET" && api::param(call->target, "List")) {
        json list = json::array();
        for (const auto& [q, p] : r->provisioned) list.push_back(describe(*r, q, p));
        return call->reply(200, {{"ProvisionedConcurrencyConfigs", std::move(list)}});
    }
    if (!ref.qualifier)
        throw LambdaError::validation("1 validation error detected: Value null at 'qualifier' failed to satisfy "
                                      "constraint: Member must not be null");
    const std::string q = *ref.qualifier;
    const Qualifier parsed = *Qualifier::parse(q);
    if (m == "GET") {
        auto it = r->provisioned.find(q);
        if (it == r->provisioned.end())
            throw LambdaError::provisioned_config_not_found("No Provisioned Concurrency Config found for this function");
        return call->reply(200, describe(*r, q, it->second));
    }
    if (m == "DELETE") {
        offload(call, [this, call, ref, q] {
            commit(ref.name, [&](RecordChange& c) {
                if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, q));
                c.record->provisioned.erase(q);
            });
            return http::Response{204, {}, {}, "application/json"};
        });
        return;
    }
    if (m != "PUT") throw LambdaError::unknown_operation("funcd does not implement " + m + " provisioned-concurrency");
    if (parsed.kind == Qualifier::Kind::latest)
        throw LambdaError::invalid_parameter(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions.");
    offload(call, [this, call, ref, q, parsed] {
        const int n = non_negative(call->body_json(), "ProvisionedConcurrentExecutions",
                                   "provisionedConcurrentExecutions", 1);
        FunctionRecordPtr after = commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, q));
            FunctionRecord& rec = *c.record;
            FunctionPtr v = resolve(rec, parsed, 1.0);
            if (!v) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, q));
            // An alias and the version it points to cannot both have workers provisioned.
            for (const auto& [other, p] : rec.provisioned) {
                if (other == q) continue;
                FunctionPtr ov = resolve(rec, *Qualifier::parse(other), 1.0);
                if (!ov || ov->version != v->version) continue;
                throw LambdaError::conflict(parsed.kind == Qualifier::Kind::alias
                                                ? "Alias can't be used for Provisioned Concurrency configuration on an "
                                                  "already Provisioned version"
                                                : "Version is pointed by a Provisioned Concurrency alias");
            }
            int total = n + rec.default_provisioned;
            for (const auto& [other, p] : rec.provisioned)
                if (other != q) total += p.requested;
            const int ceiling = rec.reserved_concurrency.value_or(options_.max_concurrency);
            if (total > ceiling)
                throw LambdaError::invalid_parameter(fmt::format(
                    "Requested Provisioned Concurrency ({} in all for the function) exceeds the {} of {}", total,
                    rec.reserved_concurrency ? "function's reserved concurrency" : "daemon's --max-concurrency",
                    ceiling));
            rec.provisioned[q] = {n, std::chrono::system_clock::now()};
        });
        // As Lambda answers: the workers are being started (GET shows them as they get ready).
        const ProvisionedConfig& p = after->provisioned.at(q);
        json out{{"RequestedProvisionedConcurrentExecutions", p.requested},
                 {"AllocatedProvisionedConcurrentExecutions", 0},
                 {"AvailableProvisionedConcurrentExecutions", 0},
                 {"Status", "IN_PROGRESS"},
                 {"LastModified", lambda_timestamp(p.last_modified)}};
        return http::Response{202, {}, out.dump(), "application/json"};
    });
}

}  // namespace funcd
