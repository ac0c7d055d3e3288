#include "funcd/gateway/http_trigger.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/trace_id.hpp"
#include "funcd/triggers/http_event.hpp"
#include "funcd/triggers/http_prelude.hpp"

namespace funcd {
namespace {

// Replaces every `name` header (lower case) of `req` with one of `value`.
void set_header(http::Request& req, std::string_view name, const std::string& value) {
    std::erase_if(req.headers, [&](const auto& h) { return h.first == name; });
    req.headers.emplace_back(std::string(name), value);
}

using nlohmann::json;
using namespace api;

// API Gateway's own answers, in its shape ({"message": ...}), so clients written against
// HTTP APIs see what they expect.
http::Response gateway_error(int status, std::string_view message) {
    return json_response(status, json{{"message", message}});
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// The part of `path` after its first `skip` segments, with its leading '/' ("/" if none).
std::string path_after(std::string_view path, int skip) {
    std::size_t at = 0;
    for (int i = 0; i <= skip && at != std::string_view::npos; ++i) at = path.find('/', at + 1);
    return at == std::string_view::npos ? "/" : std::string(path.substr(at));
}

bool listed(const std::vector<std::string>& list, std::string_view value) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& v) { return v == "*" || v == value; });
}

std::string joined(const std::vector<std::string>& list) {
    std::string out;
    for (const auto& v : list) out += (out.empty() ? "" : ", ") + v;
    return out;
}

// Adds the CORS answer for an allowed origin (nothing for others: the browser refuses).
void add_cors(const CorsSettings& cors, const http::Request& req, http::Response& r) {
    const std::string_view origin = req.header("origin");
    if (!cors.enabled() || origin.empty() || !listed(cors.allow_origins, origin)) return;
    const bool any = std::find(cors.allow_origins.begin(), cors.allow_origins.end(), "*") != cors.allow_origins.end();
    // With credentials a browser refuses the wildcard: the origin itself is named.
    const bool named = !any || cors.allow_credentials;
    r.headers.emplace_back("Access-Control-Allow-Origin", named ? std::string(origin) : std::string("*"));
    if (named) r.headers.emplace_back("Vary", "Origin");
    if (cors.allow_credentials) r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
    if (!cors.expose_headers.empty()) r.headers.emplace_back("Access-Control-Expose-Headers", joined(cors.expose_headers));
}

// The answer to a stream that ended before its head could be sent: as API Gateway answers a
// failed or timed-out function.
http::Response failed_stream_answer(const ResponseStream& s) {
    return s.error_type() == "Sandbox.Timedout" ? gateway_error(504, "Endpoint request timed out")
                                                : gateway_error(502, "Internal Server Error");
}

// Answers an HTTP caller from a streamed response. With Lambda's HTTP integration content
// type the prelude is read first (at most kMaxPreludeBytes), and its status, headers and
// cookies make the answer's head; otherwise the answer is 200 with the runtime's content
// type. Either way the body follows as the function writes it.
class StreamedHttpAnswer : public std::enable_shared_from_this<StreamedHttpAnswer> {
public:
    StreamedHttpAnswer(std::shared_ptr<ResponseStream> stream, http::Responder respond,
                       std::function<void(http::Response&)> finish_head, std::string function, std::string request_id)
        : stream_(std::move(stream)),
          respond_(std::move(respond)),
          finish_head_(std::move(finish_head)),
          function_(std::move(function)),
          request_id_(std::move(request_id)) {}

    void start() {
        if (!is_http_integration_content_type(stream_->content_type())) {
            http::Response r;
            r.status = 200;
            r.content_type = stream_->content_type().empty() ? "application/octet-stream" : stream_->content_type();
            return send(std::move(r));
        }
        read_prelude();
    }

private:
    void read_prelude() {
        ResponseStream& s = *stream_;
        const std::string_view data = s.readable();
        if (!data.empty()) {
            const auto status = splitter_.feed(data);
            s.consume(data.size());
            if (status == HttpPreludeSplitter::Status::done) {
                std::string why;
                http::Response r = map_http_prelude(splitter_.metadata(), &why);
                if (!why.empty()) return refuse(std::move(r), why);
                r.body = std::string(splitter_.body());
                return send(std::move(r));
            }
            if (status == HttpPreludeSplitter::Status::too_long)
                return refuse(gateway_error(502, "Internal Server Error"),
                              "no end of the HTTP integration prelude (8 NUL bytes) within its first " +
                                  std::to_string(kMaxPreludeBytes) + " bytes");
        }
        if (s.state() == ResponseStream::State::failed) return answer(failed_stream_answer(s));
        if (s.state() == ResponseStream::State::complete)
            return answer_and_warn(gateway_error(502, "Internal Server Error"),
                                   "the stream ended within its HTTP integration prelude (" +
                                       std::to_string(splitter_.held()) + " bytes, no 8 NUL bytes)");
        s.when_readable([self = shared_from_this()] { self->read_prelude(); });
    }

    void refuse(http::Response r, const std::string& why) {
        // The function is not listened to any more: its invocation ends.
        stream_->cancel();
        answer_and_warn(std::move(r), why);
    }

    void answer_and_warn(http::Response r, const std::string& why) {
        spdlog::warn("http: function={} request_id={} streamed a malformed response: {}", function_, request_id_, why);
        answer(std::move(r));
    }

    void answer(http::Response r) {
        finish_head_(r);
        respond_(std::move(r));
    }

    void send(http::Response r) {
        r.stream = stream_;
        answer(std::move(r));
    }

    std::shared_ptr<ResponseStream> stream_;
    http::Responder respond_;
    std::function<void(http::Response&)> finish_head_;
    std::string function_;
    std::string request_id_;
    HttpPreludeSplitter splitter_;
};

bool is_preflight(const CorsSettings& cors, const http::Request& req) {
    return req.method == "OPTIONS" && cors.enabled() && !req.header("origin").empty() &&
           !req.header("access-control-request-method").empty();
}

}  // namespace

HttpTrigger::HttpTrigger(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                         Dispatcher& dispatcher, TriggerStore& store, std::string api_token,
                         const sigv4::Verifier& verifier, observe::FunctionMetricsTable* metrics)
    : io_(io),
      blocking_(blocking),
      registry_(registry),
      dispatcher_(dispatcher),
      store_(store),
      api_token_(std::move(api_token)),
      verifier_(verifier),
      metrics_(metrics) {}

void HttpTrigger::start() {
    try {
        routes_ = std::make_shared<RouteTable>(RouteTable::from_json(store_.routes()));
        spdlog::info("triggers: {} routes loaded", routes_->routes().size());
    } catch (const std::exception& e) {
        spdlog::error("triggers: the stored route table is unusable, no routes: {}", e.what());
    }
}

void HttpTrigger::reload() {
    const auto mark = local_changes_.quiet();
    if (!mark) return;
    json stored = store_.routes();
    boost::asio::post(io_, [this, mark = *mark, stored = std::move(stored)] {
        if (!local_changes_.none_since(mark) || stored == routes_->to_json()) return;
        try {
            routes_ = std::make_shared<RouteTable>(RouteTable::from_json(stored));
            spdlog::info("triggers: the route table changed through another node ({} routes)", routes_->routes().size());
        } catch (const std::exception& e) {
            spdlog::error("triggers: the stored route table is unusable, kept the one before: {}", e.what());
        }
    });
}

bool HttpTrigger::handle_api(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    if (s.size() != 2 || s[1] != "routes") return false;
    if (req.method == "GET") respond(json_response(200, {{"routes", routes_->to_json()}}));
    else if (req.method == "PUT") put_routes(req, respond);
    else respond(method_not_allowed(req.method, "GET, PUT"));
    return true;
}

void HttpTrigger::put_routes(http::Request& req, http::Responder& respond) {
    require_json(req);
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) throw ApiError::bad_content("the request body is not valid JSON");
    auto table = std::make_shared<RouteTable>(RouteTable::from_json(body));
    for (const auto& r : table->routes())
        if (!registry_.find(r.function))
            throw ApiError::bad_parameter("route '" + r.method + " " + r.path + "': function '" + r.function +
                                          "' does not exist");
    local_changes_.begin();
    commit_then_apply(
        io_, blocking_, std::move(respond),
        [this, doc = table->to_json()] {
            const LocalChanges::StoreCall call(local_changes_);
            store_.put_routes(doc);
        },
        [this, table] {
            routes_ = table;
            return json_response(200, {{"routes", table->to_json()}});
        });
}

std::optional<HttpTrigger::Target> HttpTrigger::find_target(const ParsedTarget& t, const http::Request& req) const {
    const auto& s = t.segments;
    if (s.empty() || (s[0] != "fn" && s[0] != "api")) return std::nullopt;
    const std::string_view path = path_of(req.target);
    Target target;
    if (s[0] == "fn") {
        if (s.size() < 2) return target;
        // /fn/NAME or /fn/NAME:ALIAS, the second only with a URL config from Lambda's API.
        const std::string& label = s[1];
        const auto colon = label.find(':');
        const std::string name = label.substr(0, colon);
        const std::string alias = colon == std::string::npos ? std::string() : label.substr(colon + 1);
        if (auto record = registry_.find(name)) {
            auto url = record->urls.find(alias);
            if (url != record->urls.end()) {
                // A function URL created through Lambda's API invokes $LATEST or the alias.
                target.url = url->second;
                target.fn = alias.empty() ? record->latest
                                          : resolve(*record, Qualifier{Qualifier::Kind::alias, 0, alias}, uniform_draw());
            } else if (alias.empty()) {
                target.fn = record->default_target();
            }
        }
        // A function URL's event looks as if the function had its own host (Lambda's
        // routeKey for function URLs is $default).
        target.route_key = "$default";
        target.raw_path = path_after(path, 1);
    } else {
        const std::string below = path_after(path, 0);
        auto routes = routes_;
        auto m = routes->match(req.method, below);
        if (!m && req.method == "OPTIONS" && !req.header("access-control-request-method").empty())
            m = routes->match(std::string(req.header("access-control-request-method")), below);
        if (!m) return target;
        if (auto record = registry_.find(m->route->function)) target.fn = record->default_target();
        target.route_key = m->route->method + " " + m->route->path;
        target.raw_path = below;
        target.path_parameters = std::move(m->path_parameters);
    }
    return target;
}

std::optional<http::Response> HttpTrigger::refusal(const Target& target, const http::Request& req,
                                                   bool body_read) const {
    if (!target.fn) return gateway_error(404, "Not Found");
    const FunctionConfig& c = target.fn->config;
    // A Lambda URL config's CORS and auth, else the function's own (/v1) settings.
    const CorsSettings& cors = target.url ? target.url->cors : c.cors;
    // A CORS preflight carries no credentials; it is answered from the settings alone.
    if (is_preflight(cors, req)) return std::nullopt;
    if (target.url) {
        // AWS_IAM: the request must carry a valid SigV4 signature by one of funcd's keys. Before
        // the body has arrived, everything but the signature over it is checked.
        if (target.url->auth == UrlAuthType::aws_iam) {
            const sigv4::RequestView view{req.method, req.target, req.headers, req.body};
            if (!(body_read ? verifier_.verify(view) : verifier_.verify_head(view)).ok()) {
                http::Response r = json_response(403, json{{"Message", "Forbidden"}});
                add_cors(cors, req, r);
                return r;
            }
        }
    } else if (c.url_auth == UrlAuth::token && !bearer_token_matches(req, api_token_)) {
        http::Response r = gateway_error(401, "Unauthorized");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        add_cors(cors, req, r);
        return r;
    }
    return std::nullopt;
}

std::optional<http::HeadDecision> HttpTrigger::check_head(const ParsedTarget& t, const http::Request& head) const {
    auto target = find_target(t, head);
    if (!target) return std::nullopt;
    if (auto r = refusal(*target, head, /*body_read=*/false)) return http::HeadDecision::refuse(std::move(*r));
    return http::HeadDecision::read_body(limits::kMaxPayloadBytes);
}

bool HttpTrigger::handle_endpoint(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    auto target = find_target(t, req);
    if (!target) return false;
    if (metrics_ && target->fn)
        if (auto m = metrics_->find(target->fn->config.name))
            // Every answer, the refusals and errors the caller's handler writes included.
            respond = [inner = std::move(respond), m = std::move(m)](http::Response r) {
                m->http_answered(r.status);
                inner(std::move(r));
            };
    serve(std::move(*target), req, respond);
    return true;
}

void HttpTrigger::serve(Target target, http::Request& req, http::Responder& respond) {
    if (auto r = refusal(target, req, /*body_read=*/true)) return respond(std::move(*r));
    const FunctionConfig& c = target.fn->config;
    // A Lambda URL config's CORS and auth, else the function's own (/v1) settings.
    const CorsSettings& cors = target.url ? target.url->cors : c.cors;
    if (is_preflight(cors, req)) {
        http::Response r{204, {}, {}, ""};
        add_cors(cors, req, r);
        if (r.headers.empty()) return respond(std::move(r));  // origin not allowed
        if (!cors.allow_methods.empty()) r.headers.emplace_back("Access-Control-Allow-Methods", joined(cors.allow_methods));
        if (!cors.allow_headers.empty()) r.headers.emplace_back("Access-Control-Allow-Headers", joined(cors.allow_headers));
        if (cors.max_age_s > 0) r.headers.emplace_back("Access-Control-Max-Age", std::to_string(cors.max_age_s));
        return respond(std::move(r));
    }
    dispatcher_.check_accepting();
    FunctionPtr fn = target.fn;
    HttpEventContext ctx;
    ctx.route_key = std::move(target.route_key);
    ctx.raw_path = std::move(target.raw_path);
    ctx.path_parameters = std::move(target.path_parameters);
    ctx.domain_name = std::string(req.header("host"));
    ctx.api_id = c.name;
    ctx.time = std::chrono::system_clock::now();
    // The request id the event names must be the invocation's.
    ctx.request_id = new_uuid();
    // The caller's trace or a new one, also in the event's headers as Lambda's URLs put it
    // there (a malformed or absent header replaced by the id the function runs under).
    std::string trace = trace_id_for(req.header("x-amzn-trace-id"), req.header("traceparent"));
    set_header(req, "x-amzn-trace-id", trace);
    std::string event = make_http_event(req, ctx).dump();
    if (event.size() > limits::kMaxPayloadBytes)
        return respond(gateway_error(413, "Request Entity Too Large"));
    // Headers every answer gets, streamed or not.
    auto finish_head = [cors = cors, origin = std::string(req.header("origin")), trace](http::Response& out,
                                                                                         const std::string& request_id) {
        out.headers.emplace_back("X-Funcd-Request-Id", request_id);
        out.headers.emplace_back("X-Amzn-Trace-Id", trace);
        http::Request origin_only;
        origin_only.headers.emplace_back("origin", origin);
        add_cors(cors, origin_only, out);
    };
    const bool streams = target.url ? target.url->invoke_mode == to_string(InvokeMode::response_stream)
                                    : c.invoke_mode == InvokeMode::response_stream;
    // Whichever answers first: the stream, once the function starts one, or the result.
    auto responder = std::make_shared<http::Responder>(std::move(respond));
    auto streamed = std::make_shared<bool>(false);
    InvokeOptions options;
    options.request_id = ctx.request_id;
    options.trace_id = std::move(trace);
    options.trigger = ctx.route_key == "$default" ? "url" : "route";  // a function URL's, else a route's
    if (streams)
        options.on_stream = [responder, streamed, finish_head, name = c.name](const Invocation& inv,
                                                                              std::shared_ptr<ResponseStream> stream) {
            *streamed = true;
            std::make_shared<StreamedHttpAnswer>(
                std::move(stream), std::move(*responder),
                [finish_head, id = inv.request_id](http::Response& r) { finish_head(r, id); }, name, inv.request_id)
                ->start();
        };
    dispatcher_.invoke(
        fn, std::move(event),
        [responder, streamed, finish_head, name = c.name](const Invocation& inv, InvocationResult r) {
            if (*streamed) return;  // answered by the stream
            http::Response out;
            if (r.throttled) {
                out = gateway_error(429, "Too Many Requests");
                out.headers.emplace_back("Retry-After", "1");
            } else if (r.outcome == Outcome::success) {
                std::string why;
                // A streamed response the caller took whole (BUFFERED): its prelude is its head.
                if (is_http_integration_content_type(r.content_type)) {
                    HttpPreludeSplitter splitter;
                    if (splitter.feed(r.body) == HttpPreludeSplitter::Status::done) {
                        out = map_http_prelude(splitter.metadata(), &why);
                        if (why.empty()) out.body = std::string(splitter.body());
                    } else {
                        out = gateway_error(502, "Internal Server Error");
                        why = "no end of the HTTP integration prelude (8 NUL bytes) in the response";
                    }
                } else {
                    out = map_http_result(r.body, &why);
                }
                if (!why.empty())
                    spdlog::warn("http: function={} request_id={} returned a malformed response: {}", name,
                                 inv.request_id, why);
            } else if (r.outcome == Outcome::timeout) {
                out = gateway_error(504, "Endpoint request timed out");
            } else {
                out = gateway_error(502, "Internal Server Error");
            }
            finish_head(out, inv.request_id);
            (*responder)(std::move(out));
        },
        std::move(options));
}

}  // namespace funcd
