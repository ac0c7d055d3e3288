// `funcd rm NAME...`: deletes functions.
#include "funcd/cli/cli_command.hpp"

namespace funcd::cli {

namespace {

int run_remove(CliContext& ctx) {
    ctx.positional(0, "NAME (the function to delete)");
    nlohmann::json deleted = nlohmann::json::array();
    for (const auto& name : ctx.args().positionals()) {
        ctx.call_function(name, "DELETE", "/v1/functions/" + url_encode(name));
        deleted.push_back(name);
        if (!ctx.out().json()) ctx.out().line("deleted " + name);
    }
    if (ctx.out().json()) ctx.out().print_json({{"deleted", deleted}});
    return 0;
}

}  // namespace

CliCommand remove_command() {
    return {"rm",
            "delete functions",
            "NAME...",
            "Idle workers end at once; invocations in flight finish. The function's log and usage records stay.",
            {},
            run_remove};
}

}  // namespace funcd::cli
