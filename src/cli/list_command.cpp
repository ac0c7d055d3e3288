// `funcd ls`: the deployed functions.
#include "funcd/cli/cli_command.hpp"

namespace funcd::cli {

namespace {

int run_list(CliContext& ctx) {
    if (!ctx.args().positionals().empty()) throw ctx.usage_error("ls takes no arguments");
    const nlohmann::json doc = ctx.client().call("GET", "/v1/functions").json();
    const auto& o = ctx.out();
    if (ctx.args().has("--quiet")) {
        for (const auto& f : doc.value("functions", nlohmann::json::array())) o.line(f.value("name", ""));
        return 0;
    }
    if (o.json()) {
        o.print_json(doc);
        return 0;
    }
    const auto& functions = doc.value("functions", nlohmann::json::array());
    if (functions.empty()) {
        o.note("no functions at " + ctx.client().endpoint().url + "; deploy one with funcd deploy NAME DIR --runtime R");
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : functions)
        rows.push_back({f.value("name", ""), cell(f.value("version", nlohmann::json())), f.value("runtime", ""),
                        cell(f.value("memory_mb", nlohmann::json())) + " MB",
                        cell(f.value("timeout_s", nlohmann::json())) + " s", f.value("last_modified", "")});
    o.table({"NAME", "VERSION", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED"}, rows);
    return 0;
}

}  // namespace

CliCommand list_command() {
    return {"ls",
            "list the functions",
            "[--quiet]",
            "",
            {{"--quiet", 'q', false, false, "", "only the names, one per line"}},
            run_list};
}

}  // namespace funcd::cli
