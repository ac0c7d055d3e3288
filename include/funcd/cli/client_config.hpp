#pragma once
// Where the CLI finds the daemon and its token (docs/cli.md#finding-the-daemon).
//
// Endpoint: --endpoint, else FUNCD_ENDPOINT, else the config file's, else
// http://127.0.0.1:8080. Token: --token, else FUNCD_API_TOKEN, else ./data/api-token (the
// token `funcd serve` made in its default data directory), else the config file's (written
// by `funcd login`).
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace funcd::cli {

inline constexpr const char* kDefaultEndpoint = "http://127.0.0.1:8080";

struct ClientConfig {
    std::string endpoint;
    std::string endpoint_source;  // "--endpoint", "FUNCD_ENDPOINT", the config file's path, "default"
    std::string token;            // empty when none was found
    std::string token_source;     // as above, or "./data/api-token"; empty when none was found
};

// What `funcd login` stores: `endpoint=...` and `token=...` lines.
struct StoredConfig {
    std::optional<std::string> endpoint;
    std::optional<std::string> token;
};

using GetEnv = std::function<std::optional<std::string>(const std::string&)>;

// The process's environment; unset and empty variables are nullopt.
GetEnv process_env();

// $XDG_CONFIG_HOME/funcd/config, else $HOME/.config/funcd/config; nullopt with neither set.
std::optional<std::filesystem::path> config_file_path(const GetEnv& env);

// Reads the config file; an absent file is empty. Throws CliError (usage) for a file that
// cannot be read or has a line that is not `key=value` with a known key.
StoredConfig read_config_file(const std::filesystem::path& path);

// Writes the config file with mode 0600 (created so, never readable by others even for a
// moment), replacing it whole. Throws CliError (usage) naming the path on failure.
void write_config_file(const std::filesystem::path& path, const StoredConfig& config);

struct ConfigInputs {
    std::optional<std::string> endpoint_flag;
    std::optional<std::string> token_flag;
    GetEnv env;
    std::filesystem::path working_dir;
};

ClientConfig discover_config(const ConfigInputs& in);

}  // namespace funcd::cli
