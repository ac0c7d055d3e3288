#include "funcd/common/storage_full.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

#include <ctime>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_text.hpp"
#include "funcd/common/ids.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's body limits (botocore's model and AWS's answers): CreateFunction and
// UpdateFunctionCode take a 50 MB zip in base64 inside JSON, 70,167,211 bytes in all;
// Invoke a 6 MB payload; the deprecated InvokeAsync 256 KB (funcd's async event limit).
constexpr std::size_t kCodeBodyLimit = 70'167'211;
constexpr std::size_t kInvokeBodyLimit = limits::kMaxPayloadBytes;
// Every other operation's body is a small JSON document (settings, a policy statement,
// tags); 4 KB of environment and 5 layers fit many times over.
constexpr std::size_t kSettingsBodyLimit = 256 * 1024;
// Bodies up to this size are hashed for the signature on the loop (well under a
// millisecond); larger ones (big invoke payloads, code uploads) on the blocking pool.
constexpr std::size_t kVerifyOnLoopBytes = 1024 * 1024;

// The API version dates that start Lambda's paths.
constexpr std::string_view kDates[] = {"/2015-03-31/", "/2014-11-13/", "/2016-08-19/", "/2017-03-31/",
                                       "/2017-10-31/", "/2018-10-31/", "/2019-09-25/", "/2019-09-30/",
                                       "/2020-04-22/", "/2020-06-30/", "/2021-07-20/", "/2021-10-31/",
                                       "/2021-11-15/", "/2024-08-31/"};

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// HTTP's date (RFC 9110 IMF-fixdate); the JS SDK corrects its clock skew from it.
std::string http_date() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

// The operation a request's head names, for its body limit and Lambda's 413 message.
std::string operation_of(std::string_view method, std::string_view path) {
    if (path.ends_with("/")) path.remove_suffix(1);
    if (path.ends_with("/invocations")) return "InvokeFunction";
    if (path.ends_with("/response-streaming-invocations")) return "InvokeWithResponseStream";
    if (path.ends_with("/invoke-async")) return "InvokeAsync";
    if (path.ends_with("/code")) return "UpdateFunctionCode";
    if (path.find("/layers/") != std::string_view::npos && method == "POST") return "PublishLayerVersion";
    if (path == "/2015-03-31/functions" && method == "POST")
        return "CreateFunction";
    return "this";
}

}  // namespace

void LambdaCall::reply(http::Response r) {
    r.headers.emplace_back("x-amzn-RequestId", request_id);
    respond(std::move(r));
}

void LambdaCall::reply(int status, const json& body) { reply(http::Response{status, {}, json_text(body), "application/json"}); }

void LambdaCall::reply_empty(int status) { reply(http::Response{status, {}, {}, "application/json"}); }

json LambdaCall::body_json() const {
    if (req.body.empty()) return json::object();
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object())
        throw LambdaError::invalid_content("Could not parse request body into json: the body is not a JSON object");
    return body;
}

void check_revision(const json& body, std::string_view current, std::string_view api) {
    auto rev = body.find("RevisionId");
    if (rev == body.end() || rev->is_null() || *rev == current) return;
    throw LambdaError::precondition_failed("The Revision Id provided does not match the latest Revision Id. Call the " +
                                           std::string(api) + " API to retrieve the latest Revision Id");
}

void LambdaCall::fail(const LambdaError& e) {
    http::Response r = lambda_error_response(e, request_id);
    r.headers.emplace_back("Date", http_date());
    respond(std::move(r));
}

namespace {

// The Lambda error for the exception being handled (call inside a catch): the one place the
// Lambda API turns failures into its error documents.
LambdaError current_lambda_error(const LambdaCall& call) {
    try {
        throw;
    } catch (const LambdaError& e) {
        return e;
    } catch (const ApiError& e) {
        return to_lambda_error(e);
    } catch (const StorageFull& e) {
        spdlog::error("lambda api: {} {} refused, storage full: {}", call.req.method, call.req.target, e.what());
        return LambdaError(507, "InsufficientStorage",
                           std::string(e.what()) + "; nothing was stored. Free space in funcd's data directory "
                                                   "and retry.");
    } catch (const std::exception& e) {
        spdlog::error("lambda api: {} {} failed: {}", call.req.method, call.req.target, e.what());
        return LambdaError::service("internal error; see funcd's log");
    }
}

}  // namespace

LambdaApi::LambdaApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, boost::asio::thread_pool& bulk,
                     Registry& registry,
                     PoolManager& pools, Dispatcher& dispatcher, AsyncInvoker& async, EventStore& events,
                     FunctionChanges& changes, EventSourceMappings& mappings, CodeLocations& locations, const sigv4::Verifier& verifier,
                     const RuntimeCatalog& runtimes, AwsCredentials credentials, LambdaApiOptions options)
    : io_(io),
      blocking_(blocking),
      bulk_(bulk),
      registry_(registry),
      pools_(pools),
      dispatcher_(dispatcher),
      async_(async),
      events_(events),
      changes_(changes),
      mappings_(mappings),
      locations_(locations),
      verifier_(verifier),
      runtimes_(runtimes),
      credentials_(std::move(credentials)),
      options_(options) {}

bool LambdaApi::is_lambda_path(std::string_view target) {
    for (auto d : kDates)
        if (target.starts_with(d)) return true;
    return false;
}

std::size_t LambdaApi::body_limit(std::string_view method, std::string_view target) {
    const std::string op = operation_of(method, path_of(target));
    if (op == "CreateFunction" || op == "UpdateFunctionCode" || op == "PublishLayerVersion") return kCodeBodyLimit;
    if (op == "InvokeFunction") return kInvokeBodyLimit;
    if (op == "InvokeAsync") return limits::kMaxAsyncPayloadBytes;
    return kSettingsBodyLimit;
}

http::Response LambdaApi::too_large(std::string_view method, std::string_view target,
                                    std::optional<std::uint64_t>, std::size_t limit) {
    const std::string op = operation_of(method, path_of(target));
    return lambda_error_response(
        LambdaError::too_large(fmt::format("Request must be smaller than {} bytes for the {} operation", limit, op)),
        new_uuid());
}

http::HeadDecision LambdaApi::check_head(const http::Request& head) const {
    const sigv4::Verification v = verifier_.verify_head(sigv4::RequestView{head.method, head.target, head.headers, {}});
    if (!v.ok())
        return http::HeadDecision::refuse(
            lambda_error_response(LambdaError(v.status(), v.error_type(), v.message()), new_uuid()));
    return http::HeadDecision::read_body(body_limit(head.method, head.target));
}

void LambdaApi::handle(http::Request req, http::Responder respond) {
    auto call = std::make_shared<LambdaCall>();
    call->req = std::move(req);
    call->respond = std::move(respond);
    call->request_id = new_uuid();
    // Verifying hashes the body: a code upload's tens of megabytes are hashed off the loop.
    if (call->req.body.size() > kVerifyOnLoopBytes) {
        boost::asio::post(bulk_, [this, call] {
            auto v = std::make_shared<sigv4::Verification>(verifier_.verify(
                sigv4::RequestView{call->req.method, call->req.target, call->req.headers, call->req.body}));
            boost::asio::post(io_, [this, call, v] { verified(call, *v); });
        });
        return;
    }
    verified(call, verifier_.verify(
                       sigv4::RequestView{call->req.method, call->req.target, call->req.headers, call->req.body}));
}

void LambdaApi::verified(const CallPtr& call, const sigv4::Verification& v) {
    try {
        if (!v.ok()) return call->fail(LambdaError(v.status(), v.error_type(), v.message()));
        call->scope = {v.identity().region, credentials_.account_id};
        call->principal = v.identity().principal;
        try {
            call->target = api::parse_target(call->req.target);
        } catch (const ApiError& e) {
            return call->fail(LambdaError::invalid_content(e.what()));
        }
        route(call);
    } catch (...) {
        call->fail(current_lambda_error(*call));
    }
}

void LambdaApi::route(const CallPtr& call) {
    const auto& s = call->target.segments;
    const std::string& m = call->req.method;
    const std::string date = s.empty() ? std::string() : s[0];
    const std::string_view path = path_of(call->req.target);
    // The key given to functions may invoke, and nothing else.
    const bool invoke = m == "POST" && s.size() == 4 && s[1] == "functions" &&
                        ((date == "2015-03-31" && s[3] == "invocations") ||
                         (date == "2021-11-15" && s[3] == "response-streaming-invocations") ||
                         (date == "2014-11-13" && s[3] == "invoke-async"));
    if (call->principal == kInvokerPrincipal && !invoke)
        throw LambdaError::access_denied("User: arn:aws:iam::" + credentials_.account_id +
                                         ":user/funcd-invoker is not authorized to perform this operation: the key "
                                         "given to functions may only invoke them");
    auto unknown = [&] {
        return LambdaError::unknown_operation("funcd does not implement " + m + " " + std::string(path) +
                                              " of Lambda's API; see docs/lambda-api.md");
    };
    if (s.size() >= 2 && s[1] == "functions") {
        if (s.size() == 2 && date == "2015-03-31") {
            if (m == "GET") return list_functions(call);
            if (m == "POST") return create_function(call);
            throw unknown();
        }
        if (s.size() >= 3) return route_function(call, s[2], date);
    }
    if (date == "2018-10-31" && s.size() >= 2 && s[1] == "layers") return route_layers(call);
    if (date == "2017-03-31" && s.size() == 3 && s[1] == "tags") return route_tags(call);
    if (date == "2016-08-19" && s.size() == 2 && s[1] == "account-settings" && m == "GET")
        return account_settings(call);
    if (date == "2015-03-31" && (s.size() == 2 || s.size() == 3) && s[1] == "event-source-mappings")
        return event_source_mappings(call);
    throw unknown();
}

void LambdaApi::route_function(const CallPtr& call, const std::string& function, std::string_view date) {
    const auto& s = call->target.segments;
    const std::string& m = call->req.method;
    const FunctionRef ref = function_ref(*call, function);
    const std::string sub = s.size() >= 4 ? s[3] : std::string();
    auto unknown = [&] {
        return LambdaError::unknown_operation("funcd does not implement " + m + " " +
                                              std::string(path_of(call->req.target)) + " of Lambda's API");
    };
    if (date == "2015-03-31") {
        if (s.size() == 3) {
            if (m == "GET") return get_function(call, ref, false);
            if (m == "DELETE") return delete_function(call, ref);
        } else if (s.size() == 4) {
            if (sub == "invocations" && m == "POST") return invoke(call, ref);
            if (sub == "configuration" && m == "GET") return get_function(call, ref, true);
            if (sub == "configuration" && m == "PUT") return update_configuration(call, ref);
            if (sub == "code" && m == "PUT") return update_code(call, ref);
            if (sub == "versions" && m == "POST") return publish_version(call, ref);
            if (sub == "versions" && m == "GET") return list_versions(call, ref);
            if (sub == "aliases" && m == "POST") return create_alias(call, ref);
            if (sub == "aliases" && m == "GET") return list_aliases(call, ref);
            if (sub == "policy" && m == "POST") return add_permission(call, ref);
            if (sub == "policy" && m == "GET") return get_policy(call, ref);
        } else if (s.size() == 5 && sub == "aliases") {
            if (m == "GET") return get_alias(call, ref, s[4]);
            if (m == "PUT") return update_alias(call, ref, s[4]);
            if (m == "DELETE") return delete_alias(call, ref, s[4]);
        } else if (s.size() == 5 && sub == "policy" && m == "DELETE") {
            return remove_permission(call, ref, s[4]);
        }
    } else if (date == "2014-11-13" && s.size() == 4 && sub == "invoke-async" && m == "POST") {
        return invoke_async(call, ref);
    } else if (date == "2017-10-31" && s.size() == 4 && sub == "concurrency") {
        if (m == "PUT") return put_concurrency(call, ref);
        if (m == "DELETE") return delete_concurrency(call, ref);
    } else if (date == "2019-09-30" && s.size() == 4 && sub == "concurrency" && m == "GET") {
        return get_concurrency(call, ref);
    } else if (date == "2019-09-30" && s.size() == 4 && sub == "provisioned-concurrency") {
        return provisioned(call, ref);
    } else if (date == "2019-09-25" && sub == "event-invoke-config") {
        if (s.size() == 4) return event_invoke_config(call, ref, false);
        if (s.size() == 5 && s[4] == "list" && m == "GET") return event_invoke_config(call, ref, true);
    } else if (date == "2021-11-15" && s.size() == 4 && sub == "response-streaming-invocations" && m == "POST") {
        return invoke_with_response_stream(call, ref);
    } else if (date == "2021-10-31" && s.size() == 4 && sub == "url") {
        return url_config(call, ref);
    } else if (date == "2021-10-31" && s.size() == 4 && sub == "urls" && m == "GET") {
        return list_url_configs(call, ref);
    } else if (date == "2020-06-30" && s.size() == 4 && sub == "code-signing-config" && m == "GET") {
        record_for(*call, ref);
        // funcd does not sign code; Terraform reads this for every zip function.
        return call->reply(200, {{"CodeSigningConfigArn", ""}, {"FunctionName", ref.name}});
    } else if (date == "2021-07-20" && s.size() == 4 && sub == "runtime-management-config" && m == "GET") {
        record_for(*call, ref);
        return call->reply(200, {{"UpdateRuntimeOn", "Auto"}, {"FunctionArn", arn(*call, ref.name)}});
    } else if (date == "2024-08-31" && s.size() == 4 && sub == "recursion-config" && m == "GET") {
        record_for(*call, ref);
        return call->reply(200, {{"RecursiveLoop", "Terminate"}});
    }
    throw unknown();
}

FunctionRef LambdaApi::function_ref(const LambdaCall& call, const std::string& label) const {
    auto ref = parse_function_ref(label);
    if (!ref)
        throw validation_error(label, "functionName",
                               "Member must satisfy regular expression pattern: "
                               "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
                               "(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?");
    // Lambda's limit on a function name (64), whatever form carries it.
    if (ref->name.size() > 64)
        throw validation_error(label, "functionName", "Member must have length less than or equal to 64");
    if (ref->region && *ref->region != call.scope.region)
        throw LambdaError::not_found("Functions from '" + *ref->region + "' are not reachable in this region ('" +
                                     call.scope.region + "')");
    if (ref->account && *ref->account != call.scope.account)
        throw LambdaError::access_denied("User: arn:aws:iam::" + call.scope.account +
                                         ":root is not authorized to access functions of account " + *ref->account);
    if (auto q = api::param(call.target, "Qualifier")) {
        if (ref->qualifier && *ref->qualifier != *q)
            throw LambdaError::invalid_parameter("The derived qualifier from the function name does not match the "
                                                 "specified qualifier.");
        if (!q->empty()) ref->qualifier = *q;
    }
    if (ref->qualifier && !Qualifier::parse(*ref->qualifier))
        throw validation_error(*ref->qualifier, "qualifier",
                               "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)");
    return *ref;
}

FunctionRecordPtr LambdaApi::record_for(const LambdaCall& call, const FunctionRef& ref) const {
    FunctionRecordPtr r = registry_.find(ref.name);
    if (!r) throw LambdaError::not_found("Function not found: " + arn(call, ref.name, ref.qualifier.value_or("")));
    return r;
}

std::string LambdaApi::arn(const LambdaCall& call, std::string_view name, std::string_view qualifier) const {
    return function_arn(call.scope.region, call.scope.account, name, qualifier);
}

void LambdaApi::offload(const CallPtr& call, std::function<http::Response()> work, bool bulk) {
    boost::asio::post(bulk ? bulk_ : blocking_, [this, call, work = std::move(work)]() mutable {
        std::optional<http::Response> ok;
        std::optional<LambdaError> error;
        try {
            ok = work();
        } catch (...) {
            error = current_lambda_error(*call);
        }
        boost::asio::post(io_, [call, ok = std::move(ok), error = std::move(error)]() mutable {
            if (error) return call->fail(*error);
            call->reply(std::move(*ok));
        });
    });
}

FunctionRecordPtr LambdaApi::commit(std::string_view name, const std::function<void(RecordChange&)>& edit) {
    FunctionRecordPtr record = registry_.update(name, edit);
    const std::string n(name);
    boost::asio::post(io_, [this, record, n] {
        if (record) changes_.changed(record);
        else changes_.deleted(n);
    });
    return record;
}

nlohmann::json LambdaApi::configuration(const LambdaCall& call, const FunctionVersion& v, ConfigurationView view) const {
    return function_configuration(v, call.scope, runtimes_, view);
}

}  // namespace funcd
