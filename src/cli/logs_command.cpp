// `funcd logs NAME [-f]`: a function's log records; with -f, new ones as they are written.
#include <cstdio>
#include <set>

#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/log_records.hpp"
#include "funcd/cli/time_range.hpp"

namespace funcd::cli {

namespace {

void print_record(const CliContext& ctx, const nlohmann::json& record) {
    const auto& o = ctx.out();
    if (o.json()) o.line(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    else o.line(format_log_record(record, o));
}

std::string time_param(const CliContext& ctx, const char* flag) {
    const std::string text = *ctx.args().value(flag);
    auto t = parse_time_arg(text, std::chrono::system_clock::now());
    if (!t) throw ctx.usage_error(std::string(flag) + " takes a look-back (10m, 24h, 7d) or an RFC 3339 time (got '" +
                                  text + "')");
    return format_rfc3339(*t);
}

// The history the query gives; its records, as JSON text, go into `shown`.
void print_history(CliContext& ctx, const std::string& name, const std::string& query, std::set<std::string>& shown) {
    const ApiResponse r = ctx.call_function(name, "GET", "/v1/functions/" + url_encode(name) + "/logs" + query);
    if (auto left = r.header("x-funcd-records-left-out"); !left.empty() && left != "0" && !ctx.out().json())
        ctx.out().note(ctx.out().dim("(" + left + " earlier records left out: narrow with --since or raise --limit)"));
    for (const auto& record : parse_log_lines(r.body)) {
        print_record(ctx, record);
        shown.insert(record.dump());
    }
    std::fflush(ctx.out().out());
}

int run_logs(CliContext& ctx) {
    const std::string name = ctx.positional(0, "NAME (the function whose log to read)");
    if (ctx.args().positionals().size() > 1) throw ctx.usage_error("too many arguments");
    const auto& a = ctx.args();
    const bool follow = a.has("--follow");
    if (follow && a.has("--until")) throw ctx.usage_error("--until and --follow do not go together");

    std::string filter;  // what both the history and the follow take
    if (auto id = a.value("--request-id")) filter += "&request_id=" + url_encode(*id);
    if (auto level = a.value("--level")) filter += "&level=" + url_encode(*level);
    std::string query = filter;
    if (a.has("--since")) query += "&since=" + url_encode(time_param(ctx, "--since"));
    if (a.has("--until")) query += "&until=" + url_encode(time_param(ctx, "--until"));
    if (auto limit = a.value("--limit")) query += "&limit=" + url_encode(*limit);
    if (!query.empty()) query[0] = '?';

    std::set<std::string> shown;
    if (!follow) {
        print_history(ctx, name, query, shown);
        return 0;
    }

    // Follow first, then read the history: a record written between the two is in both and
    // shown once; none falls between them.
    std::string target = "/v1/functions/" + url_encode(name) + "/logs?follow=true" + filter;
    bool subscribed = false;
    std::string end_reason;
    SseParser parser;
    try {
        ctx.client().stream(
            target,
            [&](std::string_view piece) {
                if (!subscribed) {
                    subscribed = true;
                    print_history(ctx, name, query, shown);
                }
                parser.feed(piece, [&](const SseEvent& e) {
                    if (e.event == "end") {
                        auto doc = nlohmann::json::parse(e.data, nullptr, false);
                        end_reason = doc.is_object() ? doc.value("reason", "ended") : "ended";
                        return;
                    }
                    auto doc = nlohmann::json::parse(e.data, nullptr, false);
                    if (e.event == "dropped") {
                        if (!ctx.out().json())
                            ctx.out().note("(" + cell(doc.is_object() ? doc.value("records", nlohmann::json()) : doc) +
                                           " records dropped: they came faster than they were read)");
                        return;
                    }
                    if (!doc.is_object()) return;
                    if (auto seen = shown.find(doc.dump()); seen != shown.end()) {
                        shown.erase(seen);
                        return;
                    }
                    print_record(ctx, doc);
                    std::fflush(ctx.out().out());
                });
                return end_reason.empty();
            },
            std::chrono::milliseconds(0));  // the daemon's heartbeats keep it alive; wait as long as it lasts
    } catch (const CliError& e) {
        if (e.code() == ExitCode::not_found) throw ctx.function_not_found(name);
        throw;
    }
    if (end_reason == "deleted") ctx.out().note("function '" + name + "' was deleted; its log ends here");
    else if (end_reason == "shutdown") {
        ctx.out().note("the daemon is shutting down; the log stream ended");
        return static_cast<int>(ExitCode::unreachable);
    } else {
        ctx.out().note("the log stream ended");
        return static_cast<int>(ExitCode::unreachable);
    }
    return 0;
}

}  // namespace

CliCommand logs_command() {
    return {
        "logs",
        "print a function's log; -f follows it as it is written",
        "NAME [-f] [--request-id ID] [--since 10m] [--until T] [--level L] [--limit N]",
        "Records come oldest first: time, request id (its first 8 characters), level and message.\n"
        "With -o json, one JSON record per line. -f prints the recent records, then new ones as\n"
        "they are written, until interrupted or the function is deleted.",
        {
            {"--follow", 'f', false, false, "", "keep printing records as they are written"},
            {"--request-id", 'r', true, false, "ID", "only this invocation's records"},
            {"--since", 's', true, false, "T", "records from T on: 10m, 24h, 7d, or an RFC 3339 time"},
            {"--until", 0, true, false, "T", "records before T"},
            {"--level", 'l', true, false, "L", "the least level: TRACE, DEBUG, INFO, WARN, ERROR, FATAL"},
            {"--limit", 'n', true, false, "N", "at most N records, the newest (default 1000)"},
        },
        run_logs,
    };
}

}  // namespace funcd::cli
