// `funcd dlq NAME [redrive ID|--all] [rm ID]`: a function's dead letters (asynchronous
// events that ran out of retries or age) and sending them round again.
#include "funcd/cli/cli_command.hpp"

namespace funcd::cli {

namespace {

nlohmann::json dead_letters(CliContext& ctx, const std::string& name) {
    std::string target = "/v1/dead-letters?function=" + url_encode(name);
    if (auto limit = ctx.args().value("--limit")) target += "&limit=" + url_encode(*limit);
    return ctx.client().call("GET", target).json().value("dead_letters", nlohmann::json::array());
}

std::string last_error(const nlohmann::json& d) {
    const auto errors = d.value("errors", nlohmann::json::array());
    if (errors.empty()) return "-";
    const auto& e = errors.back();
    std::string text = e.value("error_type", "") + ": " + e.value("error_message", "");
    constexpr std::size_t kCellChars = 60;
    if (text.size() > kCellChars) text = text.substr(0, kCellChars - 3) + "...";
    return text;
}

int list(CliContext& ctx, const std::string& name) {
    const nlohmann::json letters = dead_letters(ctx, name);
    const auto& o = ctx.out();
    if (o.json()) {
        o.print_json({{"dead_letters", letters}});
        return 0;
    }
    if (letters.empty()) {
        o.note("no dead letters for '" + name + "'");
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : letters)
        rows.push_back({d.value("id", ""), d.value("failed", ""), d.value("reason", ""),
                        cell(d.value("attempts", nlohmann::json())), last_error(d)});
    o.table({"ID", "FAILED", "REASON", "ATTEMPTS", "LAST ERROR"}, rows);
    o.note(o.dim("funcd dlq " + name + " redrive ID (or --all) queues them again"));
    return 0;
}

int run_dlq(CliContext& ctx) {
    const std::string name = ctx.positional(0, "NAME (the function whose dead letters to show)");
    const auto action = ctx.optional_positional(1);
    if (!action) return list(ctx, name);
    const auto& o = ctx.out();
    std::vector<std::string> ids(ctx.args().positionals().begin() + 2, ctx.args().positionals().end());

    if (*action == "redrive") {
        if (ctx.args().has("--all")) {
            if (!ids.empty()) throw ctx.usage_error("redrive takes IDs or --all, not both");
            for (const auto& d : dead_letters(ctx, name)) ids.push_back(d.value("id", ""));
        }
        if (ids.empty() && !ctx.args().has("--all")) throw ctx.usage_error("missing ID (or --all)");
        nlohmann::json done = nlohmann::json::array();
        for (const auto& id : ids) {
            const nlohmann::json r = ctx.client().call("POST", "/v1/dead-letters/" + url_encode(id) + "/redrive").json();
            done.push_back(r);
            if (!o.json()) o.line("redriven " + id + " (queued as " + r.value("request_id", id) + ")");
        }
        if (o.json()) o.print_json({{"redriven", done}});
        else if (ids.empty()) o.note("no dead letters for '" + name + "'");
        return 0;
    }
    if (*action == "rm") {
        if (ids.empty()) throw ctx.usage_error("missing ID");
        for (const auto& id : ids) {
            ctx.client().call("DELETE", "/v1/dead-letters/" + url_encode(id));
            if (!o.json()) o.line("deleted dead letter " + id);
        }
        if (o.json()) o.print_json({{"deleted", ids}});
        return 0;
    }
    throw ctx.usage_error("unknown action '" + *action + "' (redrive or rm)");
}

}  // namespace

CliCommand dlq_command() {
    return {
        "dlq",
        "list a function's dead letters; redrive or delete them",
        "NAME [redrive ID...|--all] [rm ID...]",
        "Dead letters are asynchronous events that ran out of retries or of age (docs/triggers.md).\n"
        "redrive queues them again as fresh events; rm deletes them.",
        {
            {"--all", 0, false, false, "", "with redrive: every dead letter of the function"},
            {"--limit", 'n', true, false, "N", "list at most N, newest first (default 100)"},
        },
        run_dlq,
    };
}

}  // namespace funcd::cli
