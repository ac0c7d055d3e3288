// `funcd login ENDPOINT`: checks a token against a daemon and keeps both in the config file.
#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "funcd/cli/cli_command.hpp"
#include "funcd/common/text.hpp"

namespace funcd::cli {

namespace {

// A line from stdin; without echo when it is a terminal.
std::string read_token(const Output& o) {
    const bool tty = ::isatty(STDIN_FILENO) == 1;
    termios saved{};
    if (tty) {
        std::fputs("API token: ", o.err());
        std::fflush(o.err());
        ::tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (tty) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        std::fputc('\n', o.err());
    }
    return trim(line);
}

int run_login(CliContext& ctx) {
    const std::string given = ctx.positional(0, "ENDPOINT (the daemon's URL, e.g. http://127.0.0.1:8080)");
    if (ctx.args().positionals().size() > 1) throw ctx.usage_error("too many arguments");
    const Endpoint endpoint = Endpoint::parse(given);
    std::string token = ctx.args().value("--token").value_or("");
    if (token.empty()) token = read_token(ctx.out());
    if (token.empty()) throw ctx.usage_error("no token given: pass --token or type it when asked");

    // Try it before keeping it.
    ApiClient client({endpoint.url, "funcd login", token, "funcd login"});
    client.call("GET", "/v1/functions");

    auto env = process_env();
    const auto path = config_file_path(env);
    if (!path) throw CliError::usage("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login");
    write_config_file(*path, {endpoint.url, token});
    const auto& o = ctx.out();
    if (o.json()) o.print_json({{"endpoint", endpoint.url}, {"config", path->string()}});
    else o.line("logged in to " + endpoint.url + "; saved to " + path->string() + " (mode 0600)");
    return 0;
}

}  // namespace

CliCommand login_command() {
    return {
        "login",
        "check a token against a daemon and remember both",
        "ENDPOINT [--token TOKEN]",
        "Without --token, the token is read from stdin (typed without echo on a terminal). The endpoint\n"
        "and token go to $XDG_CONFIG_HOME/funcd/config (else ~/.config/funcd/config), mode 0600, where\n"
        "later commands find them when neither flags nor environment name others.",
        {},
        run_login,
    };
}

}  // namespace funcd::cli
