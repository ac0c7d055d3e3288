// funcd: a self-hosted, Lambda-style Functions-as-a-Service daemon.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "funcd/cli/cli_args.hpp"
#include "funcd/cli/cli_command.hpp"
#include "funcd/daemon/daemon.hpp"
#include "funcd/daemon/daemon_log_format.hpp"
#include "funcd/registry/env_cipher.hpp"

namespace {

constexpr const char* kDaemonUsage = R"(usage: funcd <command> [options]
daemon:
  serve             run the daemon (funcd serve --help for its options)
  rotate-env-key    add a new key for function environments at rest
                    (--data-dir DIR, or env FUNCD_DATA_DIR; default ./data); the
                    next start of funcd re-seals every function with it
  version           print the version
)";

// The daemon's commands, then the client's (docs/cli.md), each with its summary.
std::string usage_text() {
    std::string text = kDaemonUsage;
    text += "client (talks to a running daemon; funcd COMMAND --help for each):\n";
    for (const auto& c : funcd::cli::cli_commands()) {
        std::string name = "  " + c.name;
        name.resize(20, ' ');
        text += name + c.summary + "\n";
    }
    return text;
}

// `funcd rotate-env-key [--data-dir DIR]`.
int rotate_env_key(const std::vector<std::string>& args) {
    std::filesystem::path dir = "data";
    if (const char* v = std::getenv("FUNCD_DATA_DIR"); v && *v) dir = v;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--data-dir" && i + 1 < args.size()) dir = args[++i];
        else if (args[i].rfind("--data-dir=", 0) == 0) dir = args[i].substr(11);
        else {
            std::fprintf(stderr, "funcd rotate-env-key: unknown option '%s'\n%s", args[i].c_str(), usage_text().c_str());
            return 2;
        }
    }
    try {
        const std::string id = funcd::EnvCipher::rotate(dir / "env.keys");
        std::printf("new environment key %s in %s; restart funcd to re-seal every function with it\n", id.c_str(),
                    (dir / "env.keys").c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "funcd rotate-env-key: %s\n", e.what());
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(usage_text().c_str(), args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "version" || args[0] == "--version") {
        std::puts("funcd 0.1.0");
        return 0;
    }
    if (args[0] == "rotate-env-key") return rotate_env_key({args.begin() + 1, args.end()});
    if (funcd::cli::find_cli_command(args[0])) return funcd::cli::run_cli(args);
    if (args[0] != "serve") {
        std::vector<std::string> names = {"serve", "rotate-env-key", "version"};
        for (const auto& c : funcd::cli::cli_commands()) names.push_back(c.name);
        std::string hint;
        if (auto near = funcd::cli::closest_match(args[0], names)) hint = "; did you mean '" + *near + "'?";
        std::fprintf(stderr, "funcd: unknown command '%s'%s\n%s", args[0].c_str(), hint.c_str(), usage_text().c_str());
        return 2;
    }
    args.erase(args.begin());
    for (const auto& a : args) {
        if (a == "--help" || a == "-h") {
            std::fputs(funcd::serve_usage().c_str(), stdout);
            return 0;
        }
    }
    funcd::DaemonOptions options;
    try {
        options = funcd::parse_serve_options(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "funcd serve: %s\n%s", e.what(), funcd::serve_usage().c_str());
        return 2;
    }
    spdlog::set_level(spdlog::level::from_str(options.log_level));
    funcd::use_daemon_log_format(options.log_format);
    try {
        return funcd::run_daemon(options);
    } catch (const std::exception& e) {
        spdlog::critical("funcd: {}", e.what());
        return 1;
    }
}
