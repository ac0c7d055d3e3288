// `funcd get NAME`: one function's settings and state.
#include "funcd/cli/cli_command.hpp"

namespace funcd::cli {

namespace {

int run_get(CliContext& ctx) {
    const std::string name = ctx.positional(0, "NAME (the function to describe)");
    if (ctx.args().positionals().size() > 1) throw ctx.usage_error("too many arguments");
    const nlohmann::json d = ctx.call_function(name, "GET", "/v1/functions/" + url_encode(name)).json();
    const auto& o = ctx.out();
    if (o.json()) {
        o.print_json(d);
        return 0;
    }
    auto v = [&](const char* key) { return cell(d.value(key, nlohmann::json())); };
    std::vector<std::pair<std::string, std::string>> rows = {
        {"name", v("name")},
        {"version", v("version")},
        {"runtime", v("runtime") + " (" + v("runtime_version") + ")"},
        {"handler", v("handler")},
        {"memory", v("memory_mb") + " MB"},
        {"timeout", v("timeout_s") + " s"},
    };
    if (!d.value("description", "").empty()) rows.emplace_back("description", v("description"));
    std::string env;
    const nlohmann::json env_vars = d.value("env", nlohmann::json::object());
    for (const auto& [k, val] : env_vars.items())
        env += (env.empty() ? "" : " ") + k + "=" + cell(val);
    rows.emplace_back("env", env.empty() ? "-" : env);
    std::string layers;
    for (const auto& l : d.value("layers", nlohmann::json::array()))
        layers += (layers.empty() ? "" : " ") + l.value("name", "") + ":" + cell(l.value("version", nlohmann::json()));
    if (!layers.empty()) rows.emplace_back("layers", layers);
    rows.emplace_back("url", ctx.client().endpoint().url + "/fn/" + url_encode(name) + " (auth: " + v("url_auth") + ")");
    rows.emplace_back("code", v("code_sha256").substr(0, 12) + " (" + v("code_size") + " bytes)");
    rows.emplace_back("last modified", v("last_modified"));
    if (d.contains("instances"))
        rows.emplace_back("workers", cell(d["instances"].value("idle", nlohmann::json())) + " idle, " +
                                         cell(d["instances"].value("busy", nlohmann::json())) + " busy");
    rows.emplace_back("running", v("running"));
    std::string concurrency = "reserved " + v("reserved_concurrency");
    if (d.contains("provisioned"))
        concurrency += ", provisioned " + cell(d["provisioned"].value("ready", nlohmann::json())) + "/" +
                       cell(d["provisioned"].value("requested", nlohmann::json())) + " ready";
    rows.emplace_back("concurrency", concurrency);
    if (d.contains("async") && d["async"].is_object())
        rows.emplace_back("async queue", cell(d["async"].value("queue_depth", nlohmann::json())) + " events");
    o.fields(rows);
    return 0;
}

}  // namespace

CliCommand get_command() {
    return {"get", "show a function's settings and workers", "NAME", "", {}, run_get};
}

}  // namespace funcd::cli
