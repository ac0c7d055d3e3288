// `funcd invoke NAME`: runs a function; its result to stdout, errors and REPORT to stderr.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/log_records.hpp"

namespace funcd::cli {

namespace {

// The daemon writes a function's log in batches at least every 200 ms (docs/api.md#logs);
// --tail waits this long for the invocation's REPORT line to be readable.
constexpr std::chrono::milliseconds kTailWait{3000};
constexpr std::chrono::milliseconds kTailPoll{100};

std::string read_event(const CliContext& ctx) {
    const auto data = ctx.args().value("--data");
    if (!data) return "";
    std::string text;
    if (*data == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else if (data->starts_with("@")) {
        const std::string path = data->substr(1);
        std::ifstream in(path, std::ios::binary);
        if (!in) throw CliError::usage("--data " + *data + ": cannot read " + path);
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
        text = *data;
    }
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_discarded())
        throw CliError::usage("the event (--data " + (data->size() > 40 ? data->substr(0, 40) + "..." : *data) +
                              ") is not JSON; quote it for the shell, e.g. --data '{\"name\": \"x\"}'");
    return text;
}

// The REPORT line of the invocation, from the answer's headers.
std::string report_line(const ApiResponse& r) {
    std::string line = "REPORT RequestId: " + r.header("x-funcd-request-id") + "\tVersion: " +
                       r.header("x-funcd-executed-version");
    if (auto d = r.header("x-funcd-duration-ms"); !d.empty()) line += "\tDuration: " + d + " ms";
    if (auto b = r.header("x-funcd-billed-duration-ms"); !b.empty()) line += "\tBilled Duration: " + b + " ms";
    if (auto i = r.header("x-funcd-init-duration-ms"); !i.empty()) line += "\tInit Duration: " + i + " ms";
    return line;
}

// The invocation's log records, once its REPORT line is there (or what there is after a wait).
nlohmann::json tail_records(CliContext& ctx, const std::string& name, const std::string& request_id) {
    const std::string target = "/v1/functions/" + url_encode(name) + "/logs?request_id=" + url_encode(request_id);
    const auto until = std::chrono::steady_clock::now() + kTailWait;
    nlohmann::json records = nlohmann::json::array();
    for (;;) {
        records = parse_log_lines(ctx.client().call("GET", target).body);
        for (const auto& r : records)
            if (r.value("stream", "") == "platform" && r.value("message", "").starts_with("REPORT ")) return records;
        if (std::chrono::steady_clock::now() >= until) return records;
        std::this_thread::sleep_for(kTailPoll);
    }
}

int run_invoke(CliContext& ctx) {
    const std::string name = ctx.positional(0, "NAME (the function to invoke)");
    if (ctx.args().positionals().size() > 1) throw ctx.usage_error("too many arguments");
    const std::string event = read_event(ctx);
    const bool async = ctx.args().has("--async");
    if (async && ctx.args().has("--tail")) throw ctx.usage_error("--tail shows a synchronous invocation's log; not with --async");

    std::string target = "/v1/functions/" + url_encode(name) + "/invoke";
    if (auto q = ctx.args().value("--qualifier")) target += "?qualifier=" + url_encode(*q);
    RequestOptions options;
    options.timeout = std::chrono::milliseconds(0);  // the function's own timeout bounds it
    if (async) options.headers.emplace_back("X-Funcd-Invocation-Type", "Event");

    const ApiResponse r = ctx.call_function(name, "POST", target, event, options);
    const auto& o = ctx.out();
    const std::string request_id = r.header("x-funcd-request-id");

    if (async) {
        const std::string id = r.json().value("request_id", request_id);
        if (o.json()) o.print_json({{"request_id", id}, {"status", "queued"}});
        else o.line("queued " + id + " (funcd logs " + name + " --request-id " + id + ")");
        return 0;
    }

    const bool failed = !r.header("x-funcd-function-error").empty();
    nlohmann::json logs;
    if (ctx.args().has("--tail")) logs = tail_records(ctx, name, request_id);

    if (o.json()) {
        nlohmann::json doc = {{"request_id", request_id},
                              {"status", failed ? "function_error" : "success"},
                              {"executed_version", r.header("x-funcd-executed-version")}};
        auto number = [&](const char* header) -> nlohmann::json {
            const std::string v = r.header(header);
            if (v.empty()) return nullptr;
            if (v.find('.') == std::string::npos) return std::stoll(v);
            return std::stod(v);
        };
        doc["duration_ms"] = number("x-funcd-duration-ms");
        doc["billed_ms"] = number("x-funcd-billed-duration-ms");
        doc["init_duration_ms"] = number("x-funcd-init-duration-ms");
        auto payload = nlohmann::json::parse(r.body, nullptr, false);
        doc["payload"] = payload.is_discarded() ? nlohmann::json(r.body) : payload;
        if (failed) doc["function_error"] = payload.is_object() ? payload.value("errorType", "Unhandled") : "Unhandled";
        if (!logs.is_null()) doc["logs"] = logs;
        o.print_json(doc);
        return failed ? static_cast<int>(ExitCode::function_error) : 0;
    }

    if (!logs.is_null()) {
        for (const auto& rec : logs) o.note(format_log_record(rec, o));
    } else {
        o.note(o.dim(report_line(r)));
    }
    if (failed) {
        auto doc = nlohmann::json::parse(r.body, nullptr, false);
        std::string type = "Unhandled";
        std::string message = r.body;
        if (doc.is_object()) {
            type = doc.value("errorType", type);
            message = doc.value("errorMessage", message);
        }
        o.error("function '" + name + "' failed: " + type + ": " + message);
        if (doc.is_object() && doc.contains("stackTrace") && doc["stackTrace"].is_array())
            for (const auto& frame : doc["stackTrace"]) o.note(cell(frame));
        return static_cast<int>(ExitCode::function_error);
    }
    std::fwrite(r.body.data(), 1, r.body.size(), o.out());
    if (!r.body.empty() && r.body.back() != '\n') std::fputc('\n', o.out());
    return 0;
}

}  // namespace

CliCommand invoke_command() {
    return {
        "invoke",
        "invoke a function and print its result",
        "NAME [--data JSON|@FILE|-] [--async] [--tail] [--qualifier Q]",
        "The result goes to stdout; the REPORT line (or with --tail the invocation's log) and errors to\n"
        "stderr. A function error exits 1. Without --data the event is {}.",
        {
            {"--data", 'd', true, false, "EVENT", "the event: JSON, @FILE to read it from a file, - for stdin"},
            {"--async", 0, false, false, "", "queue the event (an Event invocation) and print its request id"},
            {"--tail", 0, false, false, "", "print the invocation's log records to stderr"},
            {"--qualifier", 'q', true, false, "Q", "$LATEST, a version number or an alias"},
        },
        run_invoke,
    };
}

}  // namespace funcd::cli
