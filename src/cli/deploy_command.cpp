// `funcd deploy NAME [DIR|ZIP]`: zips a directory (or takes a zip) and deploys it.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "funcd/cli/cli_command.hpp"
#include "funcd/cli/deploy_archive.hpp"
#include "funcd/cli/function_settings.hpp"
#include "funcd/common/base64.hpp"

namespace funcd::cli {

namespace {

namespace fs = std::filesystem;

// The daemon's limit on a zip (docs/api.md): checked here too, so a large tree is refused
// before it is sent rather than after.
constexpr std::size_t kMaxZipBytes = 52'428'800;

std::string read_zip(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw CliError::usage("cannot read " + file.string());
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!data.starts_with("PK")) throw CliError::usage(file.string() + " is not a zip; give a directory or a .zip file");
    return data;
}

long long integer_flag(const CliContext& ctx, const char* flag) {
    const std::string v = *ctx.args().value(flag);
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
        throw ctx.usage_error(std::string(flag) + " must be a whole number (got '" + v + "')");
    return std::stoll(v);
}

std::string human_size(std::size_t bytes) {
    char buf[32];
    if (bytes < 1024) std::snprintf(buf, sizeof buf, "%zu B", bytes);
    else if (bytes < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
    return buf;
}

// Uploads smaller than this are over before a progress line could be read.
constexpr std::size_t kProgressFromBytes = 1024 * 1024;

// "uploading 3.2 MiB of 4.4 MiB (72%)" on stderr, rewritten in place; the line is cleared
// once the whole request is sent (the answer's own lines follow).
std::function<void(std::size_t, std::size_t)> progress_line(std::FILE* err) {
    return [err, last = -1](std::size_t sent, std::size_t total) mutable {
        const int percent = total == 0 ? 100 : static_cast<int>(sent * 100 / total);
        if (percent == last) return;
        last = percent;
        if (sent >= total) {
            std::fputs("\r\x1b[2K", err);
        } else {
            std::fprintf(err, "\ruploading %s of %s (%d%%)\x1b[K", human_size(sent).c_str(), human_size(total).c_str(),
                         percent);
        }
        std::fflush(err);
    };
}

int run_deploy(CliContext& ctx) {
    const std::string name = ctx.positional(0, "NAME (the function's name)");
    const fs::path source = ctx.optional_positional(1).value_or(".");
    if (ctx.args().positionals().size() > 2) throw ctx.usage_error("too many arguments");

    std::error_code ec;
    std::string zip;
    if (fs::is_directory(source, ec)) zip = zip_directory(source);
    else if (fs::is_regular_file(source, ec)) zip = read_zip(source);
    else throw CliError::usage(source.string() + ": no such directory or zip file");
    if (zip.size() > kMaxZipBytes)
        throw CliError::usage("the zip of " + source.string() + " is " + human_size(zip.size()) +
                              ", over the 50 MiB limit; leave files out with .funcdignore or move them to a layer");

    // Settings of the current version, if there is one, under the flags given.
    nlohmann::json settings = nlohmann::json::object();
    const ApiResponse current = ctx.client().send("GET", "/v1/functions/" + url_encode(name));
    if (current.ok()) settings = settings_of(current.json());
    else if (current.status != 404) throw ctx.client().error_for(current);
    const bool exists = current.ok();

    const auto& a = ctx.args();
    if (auto v = a.value("--runtime")) settings["runtime"] = *v;
    if (!settings.contains("runtime"))
        throw ctx.usage_error("--runtime is needed to create function '" + name +
                              "' (python3, python3.12, nodejs, nodejs22.x, provided...)");
    if (a.has("--runtime") && !a.has("--handler") && exists) settings.erase("handler");  // the new runtime's default
    if (auto v = a.value("--handler")) settings["handler"] = *v;
    if (a.has("--memory")) settings["memory_mb"] = integer_flag(ctx, "--memory");
    if (a.has("--timeout")) settings["timeout_s"] = integer_flag(ctx, "--timeout");
    if (auto v = a.value("--description")) settings["description"] = *v;
    if (auto v = a.value("--url-auth")) settings["url_auth"] = *v;
    if (auto v = a.value("--network")) settings["network"] = *v;
    if (a.has("--env") || a.has("--clear-env")) {
        nlohmann::json env = nlohmann::json::object();
        for (const auto& kv : a.values("--env")) {
            const auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) throw ctx.usage_error("--env takes KEY=VALUE (got '" + kv + "')");
            env[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        settings["env"] = std::move(env);
    }
    if (a.has("--layer") || a.has("--clear-layers")) {
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& l : a.values("--layer")) {
            auto arn = layer_arn_for(l);
            if (!arn) throw ctx.usage_error("--layer takes a layer version ARN or NAME:VERSION (got '" + l + "')");
            layers.push_back(*arn);
        }
        settings["layers"] = std::move(layers);
    }
    settings["code"] = {{"zip_base64", base64_encode(zip)}};

    std::string body = settings.dump();
    RequestOptions options;
    const bool progress = ctx.args().has("--progress") ||
                          (!ctx.args().has("--no-progress") && ::isatty(fileno(ctx.out().err())) == 1);
    if (progress && body.size() >= kProgressFromBytes) options.on_sent = progress_line(ctx.out().err());
    const ApiResponse r = ctx.call_function(name, "PUT", "/v1/functions/" + url_encode(name), std::move(body), options);
    nlohmann::json d = r.json();
    const std::string base = ctx.client().endpoint().url;
    const std::string invoke_url = base + "/v1/functions/" + url_encode(name) + "/invoke";
    const std::string function_url = base + "/fn/" + url_encode(name);
    if (ctx.out().json()) {
        d["invoke_url"] = invoke_url;
        d["function_url"] = function_url;
        ctx.out().print_json(d);
        return 0;
    }
    const auto& o = ctx.out();
    o.line(o.green(r.status == 201 ? "created" : "deployed") + " " + o.bold(name) + " version " + cell(d["version"]) +
           " (" + cell(d["runtime"]) + ", " + human_size(zip.size()) + " zip, sha256 " +
           d.value("code_sha256", "").substr(0, 12) + ")");
    o.fields({{"invoke URL", invoke_url + "  (funcd invoke " + name + ")"},
              {"function URL", function_url + "  (auth: " + d.value("url_auth", "token") + ")"}});
    return 0;
}

}  // namespace

CliCommand deploy_command() {
    return {
        "deploy",
        "deploy a function from a directory (zipped here) or a zip file",
        "NAME [DIR|ZIP] [--runtime R] [--handler H] [--memory MB] [--timeout S] [--env K=V]... [--layer L]...",
        "DIR defaults to the current directory. It is zipped deterministically (entries sorted, fixed\n"
        "times and owners), so the same tree gives the same zip and the daemon stores it once. Lines of\n"
        "DIR/.funcdignore leave files out (globs as in .gitignore: *, ?, [a-z], **, a trailing / for\n"
        "directories, ! to take back); .git and .funcdignore are always left out.\n"
        "A new function needs --runtime. Redeploying keeps every setting not given on the command line\n"
        "(--env and --layer replace the whole environment and layer list).",
        {
            {"--runtime", 0, true, false, "R", "python3, python3.9..python3.14, nodejs, nodejs18.x..nodejs24.x, provided"},
            {"--handler", 0, true, false, "H", "e.g. app.handler (default: the runtime's)"},
            {"--memory", 0, true, false, "MB", "128 to 10240 (default 128)"},
            {"--timeout", 0, true, false, "S", "1 to 900 seconds (default 3)"},
            {"--env", 'e', true, true, "K=V", "an environment variable"},
            {"--clear-env", 0, false, false, "", "no environment variables"},
            {"--layer", 0, true, true, "L", "a layer version ARN or NAME:VERSION, merged at /opt in order"},
            {"--clear-layers", 0, false, false, "", "no layers"},
            {"--description", 0, true, false, "TEXT", "what the function is for"},
            {"--url-auth", 0, true, false, "MODE", "token (default) or none: who may call its URL"},
            {"--network", 0, true, false, "MODE", "none (default) or host"},
            {"--progress", 0, false, false, "", "show the upload's progress even when stderr is not a terminal"},
            {"--no-progress", 0, false, false, "", "never show it (by default it shows on a terminal, from 1 MiB)"},
        },
        run_deploy,
    };
}

}  // namespace funcd::cli
