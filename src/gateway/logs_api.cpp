#include "funcd/gateway/logs_api.hpp"

#include "funcd/gateway/log_event_stream.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_text.hpp"
#include "funcd/common/trace_id.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/registry/function_config.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/runtime_api/response_stream.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

// funcd's request ids are UUIDs and Lambda's event ids too; anything this long is no id.
constexpr std::size_t kMaxRequestIdBytes = 128;
// Milliseconds since the epoch up to the year 2286: more digits are no time.
constexpr std::size_t kMaxEpochMillisDigits = 13;

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The Root of `text`: the Root value itself or a whole X-Amzn-Trace-Id header.
std::string trace_root_param(const std::string& text) {
    std::string_view root = text;
    if (text.find('=') != std::string::npos) root = trace_root(text);
    // 1-<8 hex>-<24 hex>
    const bool ok = root.size() == 35 && root.substr(0, 2) == "1-" && root[10] == '-' && is_hex(root.substr(2, 8)) &&
                    is_hex(root.substr(11));
    if (!ok)
        throw ApiError::bad_parameter("trace_id must be a trace's Root (1-<8 hex digits>-<24 hex digits>) or an "
                                      "X-Amzn-Trace-Id value with one (got '" + text.substr(0, 200) + "')");
    return std::string(root);
}

std::string answer_lines(const LogResults& results) {
    std::string body;
    for (const auto& r : results.records()) {
        auto line = parse_log_line(r.line);
        if (!line) continue;
        body += json_text(log_record_json(r.function, *line));
        body += '\n';
    }
    return body;
}

}  // namespace

SystemTime parse_log_time(std::string_view key, std::string_view text) {
    if (!text.empty() && text.size() <= kMaxEpochMillisDigits &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::int64_t ms = 0;
        std::from_chars(text.data(), text.data() + text.size(), ms);
        return SystemTime(std::chrono::milliseconds(ms));
    }
    if (auto t = parse_rfc3339(text)) return *t;
    throw ApiError::bad_parameter(fmt::format(
        "{} must be an RFC 3339 time such as 2026-11-26T10:00:00Z or milliseconds since the Unix epoch (got '{}')",
        key, text.substr(0, 100)));
}

LogsRequest parse_logs_request(const ParsedTarget& t, bool function, const LogsApiLimits& limits) {
    if (function)
        reject_unknown_params(t, {"request_id", "trace_id", "since", "until", "limit", "level", "follow"});
    else
        reject_unknown_params(t, {"trace_id", "since", "until", "limit", "level"});
    LogsRequest q;
    if (auto f = param(t, "follow")) {
        if (*f == "true" || *f == "1") q.follow = true;
        else if (*f != "false" && *f != "0")
            throw ApiError::bad_parameter("follow must be true or false (got '" + f->substr(0, 100) + "')");
    }
    if (q.follow) {
        for (std::string_view p : {"trace_id", "since", "until", "limit"})
            if (param(t, p))
                throw ApiError::bad_parameter(fmt::format(
                    "{} cannot be used with follow=true: a follow sends the records written from now on (query "
                    "without follow for earlier ones); it takes request_id and level",
                    p));
    }
    if (auto id = param(t, "request_id")) {
        const bool ok = !id->empty() && id->size() <= kMaxRequestIdBytes &&
                        std::none_of(id->begin(), id->end(), [](char c) {
                            return static_cast<unsigned char>(c) <= ' ' || c == '\\' || c == 0x7f;
                        });
        if (!ok)
            throw ApiError::bad_parameter(fmt::format(
                "request_id must be a request id (at most {} visible characters; got '{}')", kMaxRequestIdBytes,
                id->substr(0, 200)));
        q.filter.request_ids.push_back(*id);
    }
    if (auto trace = param(t, "trace_id")) q.trace_root = trace_root_param(*trace);
    else if (!function) throw ApiError::bad_parameter("trace_id is required: the trace whose records to find");
    std::optional<SystemTime> since, until;
    if (auto v = param(t, "since")) since = parse_log_time("since", *v);
    if (auto v = param(t, "until")) until = parse_log_time("until", *v);
    if (since && until && !(*since < *until))
        throw ApiError::bad_parameter(fmt::format("since ({}) must be before until ({})", format_rfc3339(*since),
                                                  format_rfc3339(*until)));
    if (since) q.filter.since = format_rfc3339(*since);
    if (until) q.filter.until = format_rfc3339(*until);
    if (auto l = param(t, "level")) {
        auto level = parse_level(*l);
        if (!level)
            throw ApiError::bad_parameter("level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL (got '" +
                                          l->substr(0, 100) + "')");
        q.filter.min_level = *level;
    }
    const int max = std::max(1, limits.max_results);
    q.limit = int_param(t, "limit", 1, max, std::clamp(limits.default_results, 1, max));
    return q;
}

LogsApi::LogsApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                 UsageStore& usage, LogDirectory& logs)
    : io_(io), blocking_(blocking), registry_(registry), usage_(usage), logs_(logs) {}

LogsApi::~LogsApi() = default;

bool LogsApi::handle(const ParsedTarget& t, const http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    const bool function = s.size() == 4 && s[0] == "v1" && s[1] == "functions" && s[3] == "logs";
    const bool across = s.size() == 2 && s[0] == "v1" && s[1] == "logs";
    if (!function && !across) return false;
    if (req.method != "GET") {
        respond(method_not_allowed(req.method, "GET"));
        return true;
    }
    LogsRequest q = parse_logs_request(t, function, logs_.api_limits());
    if (!function) {
        query(std::nullopt, std::move(q), respond);
        return true;
    }
    const std::string& name = s[2];
    validate_function_name(name);
    if (!registry_.find(name)) throw ApiError::not_found("function '" + name + "' does not exist");
    if (q.follow) follow(name, std::move(q), respond);
    else query(name, std::move(q), respond);
    return true;
}

void LogsApi::query(const std::optional<std::string>& function, LogsRequest q, http::Responder& respond) {
    // What the logs hold in memory reaches the files first, so the answer has it.
    if (function) logs_.flush(*function);
    else logs_.flush_all();
    const auto& limits = logs_.api_limits();
    const int files = std::clamp(logs_.limits().log_files, 1, OutputLimits::kMaxLogFiles);
    offload(io_, blocking_, std::move(respond),
            [this, function, q = std::move(q), files, limits] {
                LogResults results(static_cast<std::size_t>(q.limit), limits.max_result_bytes);
                auto path_of = [&](const std::string& fn) { return logs_.path_for(fn); };
                if (!q.trace_root) {
                    query_function_log(path_of(*function), files, *function, q.filter, results);
                } else {
                    // The ledger knows each invocation's function, request id and trace.
                    std::map<std::string, std::vector<std::string>> requests;
                    for (const auto& r : usage_.trace_invocations(*q.trace_root, function,
                                                                  std::max(1, limits.max_trace_requests))) {
                        auto& ids = requests[r.function];
                        // An asynchronous event's retries keep its request id: read once.
                        if (std::find(ids.begin(), ids.end(), r.request_id) != ids.end()) continue;
                        if (!q.filter.request_ids.empty() &&
                            std::find(q.filter.request_ids.begin(), q.filter.request_ids.end(), r.request_id) ==
                                q.filter.request_ids.end())
                            continue;
                        ids.push_back(r.request_id);
                    }
                    for (auto& [fn, ids] : requests) {
                        if (ids.empty()) continue;
                        LogFilter filter = q.filter;
                        filter.request_ids = std::move(ids);
                        query_function_log(path_of(fn), files, function ? std::string() : fn, filter, results);
                    }
                    if (!function) results.sort_by_time();
                }
                http::Response out{200, {}, answer_lines(results), "application/x-ndjson"};
                if (results.left_out() > 0)
                    out.headers.emplace_back("X-Funcd-Records-Left-Out", std::to_string(results.left_out()));
                return out;
            });
}

void LogsApi::follow(const std::string& function, LogsRequest q, http::Responder& respond) {
    const auto& limits = logs_.api_limits();
    auto stream = std::make_shared<ResponseStream>(limits.follower_buffer_bytes, "text/event-stream");
    auto follower = std::make_shared<LogEventStream>(stream, std::move(q.filter), limits.follower_buffer_bytes);
    if (auto refused = logs_.follow(function, follower)) {
        http::Response r = error_response(429, "TooManyRequestsException", *refused);
        r.headers.emplace_back("Retry-After", "1");
        return respond(std::move(r));
    }
    // A client that goes away stops being fed.
    stream->on_cancel([alive = std::weak_ptr<int>(alive_), this, function, raw = follower.get()] {
        if (alive.lock()) logs_.unfollow(function, raw);
    });
    std::erase_if(streams_, [](const auto& w) { return w.expired(); });
    streams_.push_back(stream);
    http::Response out;
    out.status = 200;
    out.content_type = "text/event-stream";
    out.headers.emplace_back("Cache-Control", "no-cache");
    // The stream starts with a comment: the client knows it is following from here on.
    out.body = ": following the log of " + function + "\n\n";
    out.stream = std::move(stream);
    respond(std::move(out));
}

std::size_t LogsApi::streams_open() const {
    return static_cast<std::size_t>(
        std::count_if(streams_.begin(), streams_.end(), [](const auto& w) { return !w.expired(); }));
}

}  // namespace funcd
