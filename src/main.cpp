// funcd: a self-hosted, Lambda-style Functions-as-a-Service daemon.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>
#include <vector>

#include "funcd/daemon/daemon.hpp"

namespace {

constexpr const char* kUsage = R"(usage: funcd <command> [options]
commands:
  serve      run the daemon (funcd serve --help for its options)
  version    print the version
)";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::fputs(kUsage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "version" || args[0] == "--version") {
        std::puts("funcd 0.1.0");
        return 0;
    }
    if (args[0] != "serve") {
        std::fprintf(stderr, "funcd: unknown command '%s'\n%s", args[0].c_str(), kUsage);
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
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    try {
        return funcd::run_daemon(options);
    } catch (const std::exception& e) {
        spdlog::critical("funcd: {}", e.what());
        return 1;
    }
}
