// `funcd url NAME [--auth token|none]`: the function's URL and who may call it.
#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/function_settings.hpp"

namespace funcd::cli {

namespace {

int run_url(CliContext& ctx) {
    const std::string name = ctx.positional(0, "NAME (the function whose URL to show)");
    if (ctx.args().positionals().size() > 1) throw ctx.usage_error("too many arguments");
    const std::string path = "/v1/functions/" + url_encode(name);
    nlohmann::json d = ctx.call_function(name, "GET", path).json();

    if (auto auth = ctx.args().value("--auth")) {
        if (*auth != "token" && *auth != "none") throw ctx.usage_error("--auth takes token or none (got '" + *auth + "')");
        // A deploy without code keeps the code; every other setting is sent as it is.
        nlohmann::json settings = settings_of(d);
        settings["url_auth"] = *auth;
        d = ctx.call_function(name, "PUT", path, settings.dump()).json();
    }

    const std::string url = ctx.client().endpoint().url + "/fn/" + url_encode(name);
    const std::string auth = d.value("url_auth", "token");
    const auto& o = ctx.out();
    if (o.json()) {
        o.print_json({{"function", name},
                      {"url", url},
                      {"auth", auth},
                      {"invoke_mode", d.value("invoke_mode", "BUFFERED")},
                      {"cors", d.value("cors", nlohmann::json::object())},
                      {"version", d.value("version", nlohmann::json())}});
        return 0;
    }
    o.line(url);
    if (!ctx.args().has("--quiet")) {
        std::string how = auth == "none" ? "anyone who can reach the daemon may call it"
                                         : "callers send Authorization: Bearer <the API token>";
        o.note(o.dim("auth: " + auth + " (" + how + "); invoke mode " + d.value("invoke_mode", "BUFFERED") +
                     (ctx.args().has("--auth") ? "; now version " + cell(d.value("version", nlohmann::json())) : "")));
    }
    return 0;
}

}  // namespace

CliCommand url_command() {
    return {
        "url",
        "print a function's URL; --auth changes who may call it",
        "NAME [--auth token|none]",
        "Every function answers HTTP requests at ENDPOINT/fn/NAME/... (docs/triggers.md). --auth\n"
        "deploys a new version with the same code and settings but the URL's auth.",
        {
            {"--auth", 0, true, false, "MODE", "token (callers send the API token) or none (anyone)"},
            {"--quiet", 0, false, false, "", "only the URL"},
        },
        run_url,
    };
}

}  // namespace funcd::cli
