#include "funcd/cli/cli_command.hpp"

#include <unistd.h>

#include <cstdio>

namespace funcd::cli {

CliContext::CliContext(const CliCommand& command, ParsedArgs args, Output out, ConfigInputs inputs)
    : command_(command), args_(std::move(args)), out_(out), inputs_(std::move(inputs)) {}

const ClientConfig& CliContext::config() {
    if (!config_) config_ = discover_config(inputs_);
    return *config_;
}

ApiClient& CliContext::client() {
    if (!client_) client_ = std::make_unique<ApiClient>(config());
    return *client_;
}

std::string CliContext::positional(std::size_t index, std::string_view what) const {
    if (index >= args_.positionals().size()) throw usage_error("missing " + std::string(what));
    return args_.positionals()[index];
}

std::optional<std::string> CliContext::optional_positional(std::size_t index) const {
    if (index >= args_.positionals().size()) return std::nullopt;
    return args_.positionals()[index];
}

CliError CliContext::usage_error(const std::string& message) const {
    return CliError::usage(message + "\nusage: funcd " + command_.name + " " + command_.synopsis +
                           "\n(funcd " + command_.name + " --help for more)");
}

CliError CliContext::function_not_found(const std::string& name) {
    std::string message = "function '" + name + "' not found at " + client().endpoint().url;
    try {
        const auto list = client().call("GET", "/v1/functions").json();
        std::vector<std::string> names;
        for (const auto& f : list.value("functions", nlohmann::json::array())) names.push_back(f.value("name", ""));
        if (auto near = closest_match(name, names)) return CliError::not_found(message + "; did you mean '" + *near + "'?");
    } catch (const CliError&) {
        // The suggestion is a courtesy: without it the error still names the problem.
    }
    return CliError::not_found(message + "; funcd ls lists the functions");
}

ApiResponse CliContext::call_function(const std::string& name, std::string_view method, const std::string& target,
                                      std::string body, const RequestOptions& options) {
    ApiResponse r = client().send(method, target, std::move(body), options);
    if (r.ok()) return r;
    if (r.status == 404) {
        auto doc = nlohmann::json::parse(r.body, nullptr, false);
        if (doc.is_object() && doc.contains("error") && doc["error"].value("type", "") == "ResourceNotFoundException")
            throw function_not_found(name);
    }
    throw client().error_for(r);
}

const std::vector<CliCommand>& cli_commands() {
    static const std::vector<CliCommand> commands = {
        deploy_command(), invoke_command(), list_command(), get_command(), remove_command(),
        logs_command(), usage_command(), url_command(), dlq_command(), login_command(), top_command(),
        completion_command(),
    };
    return commands;
}

const CliCommand* find_cli_command(std::string_view name) {
    for (const auto& c : cli_commands())
        if (c.name == name) return &c;
    return nullptr;
}

std::string command_help(const CliCommand& command) {
    std::string text = "usage: funcd " + command.name + " " + command.synopsis + "\n\n" + command.summary + "\n";
    if (!command.details.empty()) text += "\n" + command.details + "\n";
    if (!command.options.empty()) text += "\noptions:\n" + describe_options(command.options);
    text += "\nglobal options:\n" + describe_options(global_options());
    text += "\nexit codes: 0 ok, 1 function error, 2 usage, 3 daemon unreachable, 4 auth, 5 not found,\n"
            "6 request refused, 7 throttled or unavailable, 8 daemon error (docs/cli.md)\n";
    return text;
}

int run_cli(const std::vector<std::string>& args) {
    const CliCommand* command = args.empty() ? nullptr : find_cli_command(args[0]);
    if (!command) {
        std::fprintf(stderr, "error: unknown command '%s'\n", args.empty() ? "" : args[0].c_str());
        return static_cast<int>(ExitCode::usage);
    }
    ParsedArgs parsed;
    try {
        parsed = parse_args({args.begin() + 1, args.end()}, command->options);
    } catch (const CliError& e) {
        std::fprintf(stderr, "error: %s\nusage: funcd %s %s\n(funcd %s --help for more)\n", e.what(),
                     command->name.c_str(), command->synopsis.c_str(), command->name.c_str());
        return e.exit_status();
    }
    if (parsed.has("--help")) {
        std::fputs(command_help(*command).c_str(), stdout);
        return 0;
    }
    std::optional<Output> out;
    try {
        out = Output::from_flags(parsed.value("--output").value_or("human"), parsed.has("--no-color"));
        ConfigInputs inputs{parsed.value("--endpoint"), parsed.value("--token"), process_env(),
                            std::filesystem::current_path()};
        CliContext ctx(*command, parsed, *out, std::move(inputs));
        const int status = command->run(ctx);
        std::fflush(stdout);
        return status;
    } catch (const CliError& e) {
        std::fflush(stdout);
        Output fallback = out.value_or(Output(OutputFormat::human, false));
        fallback.error(e.what());
        return e.exit_status();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: %s\n", e.what());
        return static_cast<int>(ExitCode::daemon_error);
    }
}

}  // namespace funcd::cli
