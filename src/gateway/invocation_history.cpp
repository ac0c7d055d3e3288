#include "funcd/gateway/invocation_history.hpp"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/gateway/control_api.hpp"
#include "funcd/metering/usage_record_json.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

void check_range(const std::optional<SystemTime>& since, const std::optional<SystemTime>& until) {
    if (since && until && !(*since < *until))
        throw ApiError::bad_parameter(fmt::format("since ({}) must be before until ({})", format_rfc3339(*since),
                                                  format_rfc3339(*until)));
}

}  // namespace

std::chrono::seconds parse_stats_step(std::string_view text) {
    auto bad = [&] {
        return ApiError::bad_parameter(fmt::format(
            "step must be a duration such as 60s, 5m, 1h or 1d, from {} s to {} s (got '{}')", kMinStatsStep.count(),
            kMaxStatsStep.count(), text));
    };
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || p == text.data()) throw bad();
    const std::string_view unit(p, static_cast<std::size_t>(text.data() + text.size() - p));
    std::int64_t scale = 0;
    if (unit.empty() || unit == "s") scale = 1;
    else if (unit == "m") scale = 60;
    else if (unit == "h") scale = 3600;
    else if (unit == "d") scale = 86400;
    else throw bad();
    // Compared before multiplying, so no count overflows.
    if (n < kMinStatsStep.count() || n > kMaxStatsStep.count() / scale) throw bad();
    const std::chrono::seconds step(n * scale);
    if (step < kMinStatsStep) throw bad();
    return step;
}

InvocationQuery parse_invocation_query(const std::string& function, const ParsedTarget& t) {
    reject_unknown_params(t, {"since", "until", "outcome", "limit"});
    InvocationQuery q;
    q.function = function;
    q.since = time_param(t, "since");
    q.until = time_param(t, "until");
    check_range(q.since, q.until);
    if (auto o = param(t, "outcome")) {
        q.outcome = parse_outcome(*o);
        if (!q.outcome)
            throw ApiError::bad_parameter("outcome must be one of success, function_error, timeout, exit_error, "
                                          "init_error, throttled (got '" + *o + "')");
    }
    q.limit = int_param(t, "limit", 1, kMaxHistoryLimit, kDefaultHistoryLimit);
    return q;
}

StatsQuery parse_stats_query(const std::string& function, const ParsedTarget& t, SystemTime now) {
    reject_unknown_params(t, {"since", "until", "step"});
    StatsQuery q;
    q.function = function;
    const auto until = time_param(t, "until");
    const auto since = time_param(t, "since");
    check_range(since, until);
    q.until = until.value_or(now);
    q.since = since.value_or(q.until - kDefaultStatsWindow);
    if (!(q.since < q.until))
        throw ApiError::bad_parameter("since (" + format_rfc3339(q.since) + ") must be before until (" +
                                      format_rfc3339(q.until) + ")");
    if (auto step = param(t, "step")) q.step = parse_stats_step(*step);
    else q.step = kDefaultStatsStep;
    const std::int64_t buckets = StatsBuckets::bucket_count(q.since, q.until, q.step);
    if (buckets > kMaxStatsBuckets)
        throw ApiError::bad_parameter(fmt::format(
            "since to until in steps of {} s is {} steps; at most {} are answered: use a larger step or a shorter "
            "range",
            q.step.count(), buckets, kMaxStatsBuckets));
    return q;
}

void ControlApi::invocations(const std::string& name, const http::Request& req, http::Responder& respond) {
    InvocationQuery q = parse_invocation_query(name, parse_target(req.target));
    if (!registry_.find(name)) throw ApiError::not_found("function '" + name + "' does not exist");
    offload(std::move(respond), [this, q = std::move(q)] {
        json list = json::array();
        for (const auto& r : usage_.invocations(q)) list.push_back(to_json(r));
        return json_response(200, {{"function", q.function}, {"invocations", std::move(list)}});
    });
}

void ControlApi::stats(const std::string& name, const http::Request& req, http::Responder& respond) {
    StatsQuery q = parse_stats_query(name, parse_target(req.target), std::chrono::system_clock::now());
    if (!registry_.find(name)) throw ApiError::not_found("function '" + name + "' does not exist");
    offload(std::move(respond), [this, q = std::move(q)] {
        json steps = json::array();
        for (const auto& b : usage_.stats(q)) steps.push_back(to_json(b, prices_));
        return json_response(200, {{"function", q.function},
                                   {"since", format_rfc3339(q.since)},
                                   {"until", format_rfc3339(q.until)},
                                   {"step_s", q.step.count()},
                                   {"steps", std::move(steps)}});
    });
}

}  // namespace funcd
