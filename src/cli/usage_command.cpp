// `funcd usage`: invocations, compute and cost, per function or per day.
#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/time_range.hpp"

namespace funcd::cli {

namespace {

using std::chrono::system_clock;

// A bound on --by day so that a typo (--since 100000d) is not thousands of queries.
constexpr long long kMaxDays = 400;
constexpr auto kDay = std::chrono::hours(24);
// --by day without --since: the last week, as a usage page of a console shows by default.
constexpr const char* kDefaultDaysBack = "7d";

SystemTime time_flag(const CliContext& ctx, const char* flag, const std::string& text) {
    auto t = parse_time_arg(text, system_clock::now());
    if (!t) throw ctx.usage_error(std::string(flag) + " takes a look-back (10m, 24h, 7d) or an RFC 3339 time (got '" +
                                  text + "')");
    return *t;
}

std::vector<std::string> totals_row(const std::string& label, const nlohmann::json& t) {
    auto v = [&](const char* k) { return cell(t.value(k, nlohmann::json())); };
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.1f ms", t.value("duration_ms", 0.0));
    return {label, v("invocations"), v("errors"), v("cold_starts"), duration, v("billed_ms") + " ms", v("gb_seconds"),
            "$" + v("cost_usd")};
}

const std::vector<std::string> kHeader = {"", "INVOCATIONS", "ERRORS", "COLD STARTS", "DURATION", "BILLED", "GB-S",
                                          "COST (USD)"};

std::string usage_query(const std::optional<std::string>& function, std::optional<SystemTime> since,
                        std::optional<SystemTime> until) {
    std::string q;
    if (function) q += "&function=" + url_encode(*function);
    if (since) q += "&since=" + url_encode(format_rfc3339(*since));
    if (until) q += "&until=" + url_encode(format_rfc3339(*until));
    if (!q.empty()) q[0] = '?';
    return "/v1/usage" + q;
}

int run_usage(CliContext& ctx) {
    if (!ctx.args().positionals().empty()) throw ctx.usage_error("usage takes no arguments (--function NAME for one)");
    const auto& a = ctx.args();
    const std::string by = a.value("--by").value_or("function");
    if (by != "function" && by != "day") throw ctx.usage_error("--by takes function or day (got '" + by + "')");
    const auto function = a.value("--function");

    std::optional<SystemTime> since;
    std::optional<SystemTime> until;
    if (auto s = a.value("--since")) since = time_flag(ctx, "--since", *s);
    else if (by == "day") since = time_flag(ctx, "--since", kDefaultDaysBack);
    if (auto u = a.value("--until")) until = time_flag(ctx, "--until", *u);

    auto get = [&](std::optional<SystemTime> from, std::optional<SystemTime> to) {
        if (function) return ctx.call_function(*function, "GET", usage_query(function, from, to)).json();
        return ctx.client().call("GET", usage_query(function, from, to)).json();
    };
    const auto& o = ctx.out();

    if (by == "function") {
        const nlohmann::json doc = get(since, until);
        if (o.json()) {
            o.print_json(doc);
            return 0;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& f : doc.value("functions", nlohmann::json::array())) rows.push_back(totals_row(f.value("name", ""), f));
        rows.push_back(totals_row(o.bold("total"), doc.value("total", nlohmann::json::object())));
        auto header = kHeader;
        header[0] = "FUNCTION";
        o.table(header, rows);
        return 0;
    }

    // Per day (UTC): one query per day of the range.
    const SystemTime end = until.value_or(system_clock::now());
    const SystemTime first_day = std::chrono::floor<std::chrono::days>(*since);
    if ((end - first_day) / kDay > kMaxDays)
        throw ctx.usage_error("--by day covers at most " + std::to_string(kMaxDays) + " days; narrow --since");
    nlohmann::json days = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows;
    for (SystemTime day = first_day; day < end; day += kDay) {
        const SystemTime from = std::max(day, *since);
        const SystemTime to = std::min(day + kDay, end);
        nlohmann::json total = get(from, to).value("total", nlohmann::json::object());
        const std::string label = format_rfc3339(day).substr(0, 10);
        rows.push_back(totals_row(label, total));
        total["day"] = label;
        days.push_back(std::move(total));
    }
    const nlohmann::json whole = get(since, until);
    if (o.json()) {
        o.print_json({{"days", days}, {"total", whole.value("total", nlohmann::json::object())},
                      {"prices", whole.value("prices", nlohmann::json::object())}});
        return 0;
    }
    rows.push_back(totals_row(o.bold("total"), whole.value("total", nlohmann::json::object())));
    auto header = kHeader;
    header[0] = "DAY (UTC)";
    o.table(header, rows);
    return 0;
}

}  // namespace

CliCommand usage_command() {
    return {
        "usage",
        "invocations, billed time and cost, per function or per day",
        "[--since 24h] [--until T] [--by function|day] [--function NAME]",
        "Totals of the usage ledger (GET /v1/usage). Costs are exact decimal strings at the daemon's\n"
        "prices. --by day shows one row per UTC day (the last 7 days unless --since says otherwise).",
        {
            {"--since", 's', true, false, "T", "from T on: 10m, 24h, 7d, or an RFC 3339 time (default: all)"},
            {"--until", 0, true, false, "T", "before T (default: now)"},
            {"--by", 0, true, false, "KEY", "function (default) or day"},
            {"--function", 0, true, false, "NAME", "only this function"},
        },
        run_usage,
    };
}

}  // namespace funcd::cli
