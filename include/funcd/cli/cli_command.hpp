#pragma once
// The CLI's commands (docs/cli.md): each is a CliCommand made in its own file under
// src/cli/, run by run_cli with a CliContext that holds its arguments, its output and
// (made when first needed) the client for the daemon.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/cli/api_client.hpp"
#include "funcd/cli/cli_args.hpp"
#include "funcd/cli/client_config.hpp"
#include "funcd/cli/output.hpp"

namespace funcd::cli {

struct CliCommand;

class CliContext {
public:
    CliContext(const CliCommand& command, ParsedArgs args, Output out, ConfigInputs inputs);

    const ParsedArgs& args() const { return args_; }
    const Output& out() const { return out_; }
    // The daemon's address and token, found as client_config.hpp describes.
    const ClientConfig& config();
    ApiClient& client();

    // Positional argument `index`; a missing one is a usage error naming `what`.
    std::string positional(std::size_t index, std::string_view what) const;
    std::optional<std::string> optional_positional(std::size_t index) const;
    // A usage error for this command (with its usage line).
    CliError usage_error(const std::string& message) const;

    // The client's call() for a request about one function: a 404 for the function becomes
    // "function 'x' not found at ...; did you mean 'y'?".
    ApiResponse call_function(const std::string& name, std::string_view method, const std::string& target,
                              std::string body = {}, const RequestOptions& options = {});
    // The error for a function that does not exist, with the closest existing name.
    CliError function_not_found(const std::string& name);

private:
    const CliCommand& command_;
    ParsedArgs args_;
    Output out_;
    ConfigInputs inputs_;
    std::optional<ClientConfig> config_;
    std::unique_ptr<ApiClient> client_;
};

struct CliCommand {
    std::string name;
    std::string summary;   // one line for `funcd --help`
    std::string synopsis;  // "NAME [DIR|ZIP] --runtime R [options]"
    std::string details;   // paragraphs for `funcd NAME --help`
    std::vector<OptionSpec> options;
    int (*run)(CliContext&) = nullptr;
};

// Every command, in the order `funcd --help` lists them.
const std::vector<CliCommand>& cli_commands();
const CliCommand* find_cli_command(std::string_view name);

// `funcd COMMAND ARGS...` for the CLI's commands: args[0] is the command. Returns the exit
// code (cli_error.hpp); never throws.
int run_cli(const std::vector<std::string>& args);

// The help text of one command.
std::string command_help(const CliCommand& command);

// Each command's definition, made in its own file.
CliCommand deploy_command();
CliCommand invoke_command();
CliCommand list_command();
CliCommand get_command();
CliCommand remove_command();
CliCommand logs_command();
CliCommand usage_command();
CliCommand url_command();
CliCommand dlq_command();
CliCommand login_command();
CliCommand top_command();
CliCommand completion_command();

}  // namespace funcd::cli
