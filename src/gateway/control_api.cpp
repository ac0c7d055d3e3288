#include "funcd/gateway/control_api.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>


#include <fmt/format.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/text.hpp"
#include "funcd/common/trace_id.hpp"
#include "funcd/gateway/api_request.hpp"
#include "funcd/gateway/dashboard.hpp"
#include "funcd/registry/record_changes.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

// Body limits by endpoint. A deploy's JSON carries the zip base64-encoded (4/3 larger)
// plus settings; the raw-zip form is checked against the zip limit after reading.
constexpr std::size_t kDeployBodyLimit = limits::kMaxZipBytes / 3 * 4 + 64 * 1024;
constexpr std::size_t kDefaultBodyLimit = 64 * 1024;
constexpr int kDefaultRecordsLimit = 100;

std::string millis3(std::int64_t us) { return fmt::format("{:.3f}", us / 1000.0); }

}  // namespace

ControlApi::ControlApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking,
                       boost::asio::thread_pool& bulk, Registry& registry,
                       PoolManager& pools, Dispatcher& dispatcher, UsageStore& usage, EventApi& events,
                       TriggerApi& triggers, EventSourceApi& event_sources, HttpTrigger& http, FunctionChanges& changes, LambdaApi& lambda,
                       CodeLocations& locations, const RuntimeCatalog& runtimes, Prices prices,
                       std::string api_token, LogsApi& logs, ClusterApi& cluster,
                       const observe::MetricsEndpoint* metrics)
    : io_(io),
      blocking_(blocking),
      bulk_(bulk),
      registry_(registry),
      pools_(pools),
      dispatcher_(dispatcher),
      usage_(usage),
      events_(events),
      triggers_(triggers),
      event_sources_(event_sources),
      http_(http),
      changes_(changes),
      lambda_(lambda),
      locations_(locations),
      runtimes_(runtimes),
      prices_(prices),
      api_token_(std::move(api_token)),
      logs_(logs),
      cluster_(cluster),
      metrics_(metrics) {}

http::Response ControlApi::too_large(std::string_view method, std::string_view target,
                                     std::optional<std::uint64_t> declared, std::size_t limit) {
    if (LambdaApi::is_lambda_path(target)) return LambdaApi::too_large(method, target, declared, limit);
    return error_response(413, "RequestTooLargeException",
                          declared ? "request body is " + std::to_string(*declared) +
                                         " bytes; the limit for this endpoint is " + std::to_string(limit) + " bytes"
                                   : "request body exceeds " + std::to_string(limit) +
                                         " bytes, the limit for this endpoint");
}

std::size_t ControlApi::body_limit(std::string_view method, std::string_view target) {
    if (LambdaApi::is_lambda_path(target)) return LambdaApi::body_limit(method, target);
    const bool functions = target.starts_with("/v1/functions/");
    // Function URLs and routes carry an HTTP request that becomes the event.
    if (target.starts_with("/fn/") || target.starts_with("/api/")) return limits::kMaxPayloadBytes;
    if (method == "PUT" && functions) return kDeployBodyLimit;
    if (method == "POST" && functions) return limits::kMaxPayloadBytes;
    return kDefaultBodyLimit;
}

bool ControlApi::authorized(const http::Request& req) const { return bearer_token_matches(req, api_token_); }

http::Response ControlApi::unauthorized() {
    return error_response(401, "UnauthorizedException",
                          "missing or wrong API token: send 'Authorization: Bearer <token>' "
                          "(the token is in DATA_DIR/api-token unless configured)");
}

http::HeadDecision ControlApi::check_head(const http::Request& head) const {
    if (LambdaApi::is_lambda_path(head.target)) return lambda_.check_head(head);
    const std::size_t limit = body_limit(head.method, head.target);
    ParsedTarget t;
    try {
        t = parse_target(head.target);
    } catch (const ApiError&) {
        return http::HeadDecision::read_body(limit);  // handle() answers it as it routes it
    }
    // The same segments handle() routes by, so no spelling of a path escapes the check.
    const auto& s = t.segments;
    // /metrics is behind the API token here (--metrics-listen serves it without one).
    const bool metrics = s.size() == 1 && s[0] == "metrics";
    if (((!s.empty() && s[0] == "v1") || metrics) && !authorized(head))
        return http::HeadDecision::refuse(unauthorized());
    if (auto decision = http_.check_head(t, head)) return std::move(*decision);
    return http::HeadDecision::read_body(limit);
}

void ControlApi::handle(http::Request req, http::Responder respond) {
    // Lambda's API answers in its own shapes, errors included.
    if (LambdaApi::is_lambda_path(req.target)) return lambda_.handle(std::move(req), std::move(respond));
    try {
        ParsedTarget t = parse_target(req.target);
        const auto& s = t.segments;
        const std::string& m = req.method;

        if (s.size() == 1 && s[0] == "healthz") {
            if (m != "GET" && m != "HEAD") return respond(method_not_allowed(m, "GET"));
            return respond(json_response(200, {{"status", "ok"}}));
        }
        if (s.size() == 1 && s[0] == "metrics") {
            if (!authorized(req)) return respond(unauthorized());
            if (!metrics_)
                return respond(error_response(404, "NotFoundException", "metrics are off (--metrics off)"));
            return metrics_->respond(req, std::move(respond));
        }
        // The dashboard's files: public, they hold no data (the page reads /v1 with the token).
        if (auto page = dashboard::respond(t, req)) return respond(std::move(*page));
        if (http_.handle_endpoint(t, req, respond)) return;
        if (locations_.handle(t, req, respond)) return;
        if (s.empty() || s[0] != "v1")
            return respond(error_response(404, "NotFoundException", "no route for " + req.target));
        if (!authorized(req)) return respond(unauthorized());

        if (s.size() == 2 && s[1] == "functions") {
            if (m != "GET") return respond(method_not_allowed(m, "GET"));
            return list_functions(respond);
        }
        if (events_.handle(t, req, respond)) return;
        if (triggers_.handle(t, req, respond)) return;
        if (event_sources_.handle(t, req, respond)) return;
        if (logs_.handle(t, req, respond)) return;
        if (cluster_.handle(t, req, respond)) return;
        if (http_.handle_api(t, req, respond)) return;
        if (s.size() >= 3 && s[1] == "functions") {
            const std::string& name = s[2];
            validate_function_name(name);
            if (s.size() == 3) {
                if (m == "PUT") return deploy(name, req, respond);
                if (m == "GET") return get_function(name, respond);
                if (m == "DELETE") return remove(name, respond);
                return respond(method_not_allowed(m, "GET, PUT, DELETE"));
            }
            if (s.size() == 4 && s[3] == "invoke") {
                if (m != "POST") return respond(method_not_allowed(m, "POST"));
                return invoke(name, req, respond);
            }
            if (s.size() == 4 && s[3] == "invocations") {
                if (m != "GET") return respond(method_not_allowed(m, "GET"));
                return invocations(name, req, respond);
            }
            if (s.size() == 4 && s[3] == "stats") {
                if (m != "GET") return respond(method_not_allowed(m, "GET"));
                return stats(name, req, respond);
            }
            if (s.size() == 4 && s[3] == "concurrency") {
                if (m == "GET") return get_concurrency(name, respond);
                if (m == "PUT") return put_concurrency(name, req, respond);
                if (m == "DELETE") return put_concurrency(name, std::nullopt, respond);
                return respond(method_not_allowed(m, "GET, PUT, DELETE"));
            }
        }
        if (s.size() == 2 && s[1] == "usage") {
            if (m != "GET") return respond(method_not_allowed(m, "GET"));
            return usage(req, respond);
        }
        if (s.size() == 3 && s[1] == "usage" && s[2] == "records") {
            if (m != "GET") return respond(method_not_allowed(m, "GET"));
            return usage_records(req, respond);
        }
        respond(error_response(404, "NotFoundException", "no route for " + req.target));
    } catch (...) {
        respond(response_for_current_exception());
    }
}

void ControlApi::offload(http::Responder respond, std::function<http::Response()> work) {
    api::offload(io_, blocking_, std::move(respond), std::move(work));
}

void ControlApi::deploy(const std::string& name, http::Request& req, http::Responder& respond) {
    const std::string type(media_type(req.header("content-type")));
    if (!iequals(type, "application/json") && !iequals(type, "application/zip"))
        throw ApiError::unsupported_media(
            "send the function as application/json (with code.zip_base64) or as application/zip "
            "(settings as query parameters); got Content-Type '" + type + "'");
    // Parsing, base64 and unzipping take time in proportion to the body: off the loop, on the
    // pool kept for such work.
    api::offload(io_, bulk_, std::move(respond), [this, name, type, target = std::move(req.target),
                                                  body = std::move(req.body)]() mutable {
        DeployRequest parsed;
        if (iequals(type, "application/json")) {
            parsed = parse_deploy_json(name, body);
        } else {
            if (body.size() > limits::kMaxZipBytes)
                throw ApiError::too_large(fmt::format("the zip is {} bytes; the limit is {} bytes", body.size(),
                                                      limits::kMaxZipBytes));
            parsed = parse_deploy_query(name, parse_target(target).params, std::move(body));
        }
        // A Node.js newer than the host's cannot run here: refused now, not at every invoke.
        if (auto why = runtimes_.refusal(parsed.config.runtime_name())) throw ApiError::bad_parameter(*why);
        if (auto why = runtimes_.preload_refusal(parsed.config.preload)) throw ApiError::bad_parameter(*why);
        bool created = false;
        std::string previous;  // the version /v1 invoked before this deploy
        FunctionRecordPtr record = registry_.update(name, [&](RecordChange& c) {
            created = !c.record;
            FunctionConfig config = parsed.config;
            if (c.record) {
                previous = c.record->default_target()->label();
                // Lambda's own settings, which /v1 does not name, stay as they were.
                config.recorded = c.record->latest->config.recorded;
                config.architecture = c.record->latest->config.architecture;
            }
            for (const auto& l : parsed.layers) {
                auto layer = c.layer(l.name, l.version);
                if (!layer)
                    throw ApiError::bad_parameter("layer " + l.name + " version " + std::to_string(l.version) +
                                                  " does not exist");
                config.layers.push_back({layer->name, layer->version, layer->code_sha256, layer->code_size});
            }
            std::optional<StoredCode> code;
            if (parsed.code_zip) code = c.put_code(*parsed.code_zip);
            else if (!c.record)
                throw ApiError::bad_parameter("code is required when creating function '" + name +
                                              "': send code.zip_base64 or the zip as the body");
            set_latest(c, std::move(config), code ? &*code : nullptr, CodeCheck::entry_point);
            // A /v1 deploy is a new version, as Lambda's Publish: true makes one.
            publish_latest(*c.record, std::nullopt, /*reuse_unchanged=*/false);
            if (parsed.concurrency_given) {
                validate_concurrency(parsed.config.concurrency, registry_.max_concurrency());
                c.record->reserved_concurrency = parsed.config.concurrency.reserved;
                c.record->default_provisioned = parsed.config.concurrency.provisioned;
            }
        });
        // Route new invocations to the new version, retire the old version's idle workers,
        // start provisioned ones.
        boost::asio::post(io_, [this, record, previous] {
            const FunctionPtr& now = record->default_target();
            auto q = Qualifier::parse(previous);
            // The version /v1 ran until now keeps no idle workers, unless something still
            // routes to it.
            if (q && q->kind == Qualifier::Kind::version && previous != now->label() &&
                aliases_of(*record, q->number).empty() && !record->provisioned.count(previous))
                pools_.retire_version(record->name, previous);
            changes_.changed(record);
        });
        return json_response(created ? 201 : 200, describe_with_runtime(*record));
    });
}

void ControlApi::remove(const std::string& name, http::Responder& respond) {
    offload(std::move(respond), [this, name] {
        registry_.update(name, [&](RecordChange& c) {
            if (!c.record) throw ApiError::not_found("function '" + name + "' does not exist");
            c.record.reset();
        });
        boost::asio::post(io_, [this, name] { changes_.deleted(name); });
        return http::Response{204, {}, {}, "application/json"};
    });
}

json ControlApi::concurrency_json(const FunctionRecord& fn) const {
    json body{{"reserved_concurrency", fn.reserved_concurrency ? json(*fn.reserved_concurrency) : json(nullptr)},
              {"provisioned_concurrency", fn.default_provisioned}};
    ProvisionedCounts p = pools_.provisioned(fn.name, fn.default_target()->label());
    // `ready` counts every node's (nodes sharing the state place them where the function's
    // invocations go: docs/scaling.md); `this_node` what this one keeps.
    body["provisioned"] = {{"requested", fn.default_provisioned},
                           {"ready", p.ready + p.elsewhere},
                           {"this_node", {{"share", p.here}, {"ready", p.ready}}}};
    return body;
}

void ControlApi::get_concurrency(const std::string& name, http::Responder& respond) {
    FunctionRecordPtr fn = registry_.find(name);
    if (!fn) throw ApiError::not_found("function '" + name + "' does not exist");
    json body = concurrency_json(*fn);
    body["running"] = dispatcher_.running(name);
    respond(json_response(200, body));
}

void ControlApi::put_concurrency(const std::string& name, std::optional<std::reference_wrapper<http::Request>> req,
                                 http::Responder& respond) {
    if (!registry_.find(name)) throw ApiError::not_found("function '" + name + "' does not exist");
    // DELETE removes both settings; PUT changes what its body names.
    std::optional<std::string> body;
    if (req) {
        if (!iequals(media_type(req->get().header("content-type")), "application/json"))
            throw ApiError::unsupported_media("send the settings as application/json");
        body = std::move(req->get().body);
    }
    offload(std::move(respond), [this, name, body = std::move(body)] {
        ConcurrencySettings settings;
        FunctionRecordPtr record = registry_.update(name, [&](RecordChange& c) {
            if (!c.record) throw ApiError::not_found("function '" + name + "' does not exist");
            if (body)
                settings = parse_concurrency_json(*body, {c.record->reserved_concurrency, c.record->default_provisioned});
            validate_concurrency(settings, registry_.max_concurrency());
            c.record->reserved_concurrency = settings.reserved;
            c.record->default_provisioned = settings.provisioned;
        });
        boost::asio::post(io_, [this, record] { changes_.changed(record); });
        return json_response(200, describe(settings));
    });
}

json ControlApi::describe_with_runtime(const FunctionRecord& fn) const {
    json body = describe(fn);
    // What really runs it: python3.12 may run on the host's Python 3.11, nodejs18.x on its
    // Node.js 20 (the same as Lambda's INIT_START line names).
    body["runtime_version"] = runtimes_.runtime_version(fn.default_target()->config.runtime_name());
    return body;
}

void ControlApi::get_function(const std::string& name, http::Responder& respond) {
    FunctionRecordPtr fn = registry_.find(name);
    if (!fn) throw ApiError::not_found("function '" + name + "' does not exist");
    json body = describe_with_runtime(*fn);
    InstanceCounts c = pools_.instances(name);
    body["instances"] = {{"idle", c.idle}, {"busy", c.busy}};
    body["provisioned"] = concurrency_json(*fn)["provisioned"];
    body["running"] = dispatcher_.running(name);
    AsyncQueueStats q = events_.queue_stats(name);
    body["async"] = {{"queue_depth", q.depth},
                     {"oldest_event_age_s", q.oldest_age_s ? json(*q.oldest_age_s) : json(nullptr)}};
    respond(json_response(200, body));
}

void ControlApi::list_functions(http::Responder& respond) {
    json list = json::array();
    for (const auto& fn : registry_.list()) list.push_back(describe_with_runtime(*fn));
    respond(json_response(200, {{"functions", std::move(list)}}));
}

void ControlApi::invoke(const std::string& name, http::Request& req, http::Responder& respond) {
    std::string payload = std::move(req.body);
    if (payload.empty()) {
        payload = "{}";
    } else if (!json::accept(payload)) {
        throw ApiError::bad_content("the request body must be JSON (the event passed to the function)");
    }
    // Lambda's InvocationType, under our header name or Lambda's own.
    std::string_view type = req.header("x-funcd-invocation-type");
    if (type.empty()) type = req.header("x-amz-invocation-type");
    if (!type.empty() && type != "RequestResponse" && type != "Event" && type != "DryRun")
        throw ApiError::bad_parameter("X-Funcd-Invocation-Type must be RequestResponse, Event or DryRun (got '" +
                                      std::string(type) + "')");
    // X-Funcd-Response-Mode: streaming sends a streamed response as the function writes it.
    const std::string_view mode = req.header("x-funcd-response-mode");
    if (!mode.empty() && mode != "streaming" && mode != "buffered")
        throw ApiError::bad_parameter("X-Funcd-Response-Mode must be streaming or buffered (got '" +
                                      std::string(mode) + "')");
    const bool stream = mode == "streaming";
    if (stream && type == "Event")
        throw ApiError::bad_parameter("X-Funcd-Response-Mode streaming needs a synchronous invocation "
                                      "(X-Funcd-Invocation-Type RequestResponse)");
    // ?qualifier=N or an alias runs that version; without it, what /v1 last deployed.
    // (The query is parsed only when there is one: this is the warm path.)
    std::optional<Qualifier> qualifier;
    if (req.target.find('?') != std::string::npos) {
        if (auto q = param(parse_target(req.target), "qualifier")) {
            qualifier = Qualifier::parse(*q);
            if (!qualifier)
                throw ApiError::bad_parameter("qualifier '" + *q +
                                              "' is not $LATEST, a version number or an alias name");
        }
    }
    FunctionPtr fn = dispatcher_.admit(name, qualifier ? &*qualifier : nullptr);
    if (type == "DryRun") return respond(http::Response{204, {}, {}, "application/json"});
    // The caller's trace (X-Ray's header, else W3C's), or a new one; a malformed header is ignored.
    std::string trace = trace_id_for(req.header("x-amzn-trace-id"), req.header("traceparent"));
    // Queued for what was named: the qualifier is resolved again at delivery.
    if (type == "Event")
        return events_.invoke_async(qualifier ? name + ":" + qualifier->text() : name, std::move(payload), respond,
                                    std::move(trace));
    // Whichever answers first: the stream, once the function starts one, or the result.
    auto responder = std::make_shared<http::Responder>(std::move(respond));
    auto streamed = std::make_shared<bool>(false);
    InvokeOptions options;
    options.trace_id = std::move(trace);
    if (stream)
        options.on_stream = [responder, streamed](const Invocation& inv, std::shared_ptr<ResponseStream> s) {
            *streamed = true;
            http::Response out;
            out.status = 200;
            out.content_type = s->content_type().empty() ? "application/octet-stream" : s->content_type();
            out.headers.emplace_back("X-Funcd-Request-Id", inv.request_id);
            out.headers.emplace_back("X-Funcd-Executed-Version", inv.function->label());
            out.headers.emplace_back("X-Funcd-Response-Mode", "streaming");
            out.headers.emplace_back("X-Amzn-Trace-Id", inv.trace_id);
            out.stream = std::move(s);
            (*responder)(std::move(out));
        };
    dispatcher_.invoke(std::move(fn), std::move(payload), [responder, streamed](const Invocation& inv,
                                                                               InvocationResult r) {
        if (*streamed) return;  // answered by the stream
        auto respond = std::move(*responder);
        http::Response out;
        out.headers.reserve(7);
        out.headers.emplace_back("X-Funcd-Request-Id", inv.request_id);
        if (r.throttled) {
            // Lambda's throttle: TooManyRequestsException with the limit's reason. Retry-After
            // is in whole seconds (RFC 9110), the smallest it can say.
            out = error_response(429, r.error_type, r.body);
            json body = json::parse(out.body);
            body["Reason"] = *r.throttled;
            out.body = body.dump();
            out.headers.emplace_back("X-Funcd-Request-Id", inv.request_id);
            out.headers.emplace_back("X-Amzn-Trace-Id", inv.trace_id);
            out.headers.emplace_back("Retry-After", "1");
            return respond(std::move(out));
        }
        out.headers.emplace_back("X-Funcd-Executed-Version",
                                 r.version == kLatestVersion ? std::string(kLatestLabel) : std::to_string(r.version));
        out.headers.emplace_back("X-Amzn-Trace-Id", inv.trace_id);
        if (r.outcome == Outcome::init_error) {
            // The runtime never became ready: not the function's answer but a failed
            // start, hence a gateway error rather than Lambda's 200 + error body.
            json doc = json::parse(r.body, nullptr, false);
            std::string message = doc.is_object() ? doc.value("errorMessage", r.body) : r.body;
            json body{{"error", {{"type", r.error_type}, {"message", message}}},
                      {"errorType", r.error_type},
                      {"errorMessage", message}};
            if (doc.is_object() && doc.contains("stackTrace")) body["stackTrace"] = doc["stackTrace"];
            out.status = 502;
            out.body = body.dump();
            out.headers.emplace_back("X-Funcd-Function-Error", "Unhandled");
            if (r.init_duration_us) out.headers.emplace_back("X-Funcd-Init-Duration-Ms", millis3(*r.init_duration_us));
            return respond(std::move(out));
        }
        out.status = 200;
        out.body = std::move(r.body);
        out.headers.emplace_back("X-Funcd-Duration-Ms", millis3(r.duration_us));
        out.headers.emplace_back("X-Funcd-Billed-Duration-Ms", std::to_string(billed_ms_for(r.duration_us)));
        if (r.init_duration_us) out.headers.emplace_back("X-Funcd-Init-Duration-Ms", millis3(*r.init_duration_us));
        if (r.outcome != Outcome::success) out.headers.emplace_back("X-Funcd-Function-Error", "Unhandled");
        respond(std::move(out));
    }, std::move(options));
}

void ControlApi::usage(const http::Request& req, http::Responder& respond) {
    ParsedTarget t = parse_target(req.target);
    reject_unknown_params(t, {"function", "since", "until"});
    UsageQuery q;
    q.function = param(t, "function");
    q.since = time_param(t, "since");
    q.until = time_param(t, "until");
    offload(std::move(respond), [this, q] {
        UsageReport report = usage_.report(q);
        json functions = json::array();
        for (const auto& f : report.functions) functions.push_back(to_json(f, prices_, true));
        // Money as exact decimal strings (pricing.hpp), never binary floating point.
        return json_response(200, {{"functions", std::move(functions)},
                                   {"total", to_json(report.total, prices_, false)},
                                   {"prices",
                                    {{"per_gb_second", format_decimal(prices_.per_gb_second, kPriceDecimals)},
                                     {"per_request", format_decimal(prices_.per_request, kPriceDecimals)}}}});
    });
}

void ControlApi::usage_records(const http::Request& req, http::Responder& respond) {
    ParsedTarget t = parse_target(req.target);
    reject_unknown_params(t, {"function", "limit"});
    const int limit = int_param(t, "limit", 1, 1000, kDefaultRecordsLimit);
    offload(std::move(respond), [this, function = param(t, "function"), limit] {
        json records = json::array();
        for (const auto& r : usage_.records(function, limit)) records.push_back(to_json(r));
        return json_response(200, {{"records", std::move(records)}});
    });
}

}  // namespace funcd
