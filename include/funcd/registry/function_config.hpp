#pragma once
// A function's settings as a user deploys them, and their validation.
// Limits and defaults follow AWS Lambda's so a Lambda user's settings carry over.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/logs/log_levels.hpp"
#include "funcd/registry/arn.hpp"
#include "funcd/registry/runtime_ids.hpp"

namespace funcd {

// A worker's network: its own namespace with only loopback (default), or the host's.
enum class NetworkMode { none, host };

std::string_view to_string(NetworkMode n);
std::optional<NetworkMode> parse_network(std::string_view text);

namespace limits {
// Lambda's quotas (docs: "Lambda quotas").
inline constexpr int kMinMemoryMb = 128;
inline constexpr int kMaxMemoryMb = 10240;
inline constexpr int kDefaultMemoryMb = 128;
inline constexpr int kMinTimeoutS = 1;
inline constexpr int kMaxTimeoutS = 900;
inline constexpr int kDefaultTimeoutS = 3;
inline constexpr std::size_t kMaxEnvBytes = 4 * 1024;
inline constexpr std::size_t kMaxZipBytes = 50 * 1024 * 1024;
inline constexpr std::uint64_t kMaxUnpackedBytes = 250ull * 1024 * 1024;
inline constexpr std::size_t kMaxArchiveEntries = 10000;
inline constexpr std::size_t kMaxPayloadBytes = 6 * 1024 * 1024;  // sync invoke request and response
inline constexpr std::size_t kMaxDescriptionBytes = 256;
// Modules a Python function may preload into its own runtime template.
inline constexpr std::size_t kMaxPreloadModules = 16;
// funcd's own: how long an idle worker is kept warm.
inline constexpr int kMinKeepAliveS = 1;
inline constexpr int kMaxKeepAliveS = 86400;
inline constexpr int kDefaultKeepAliveS = 600;
// Lambda's /tmp: 512 MB to 10,240 MB.
inline constexpr int kMinEphemeralStorageMb = 512;
inline constexpr int kMaxEphemeralStorageMb = 10240;
inline constexpr int kDefaultEphemeralStorageMb = 512;
// Concurrency settings are bounded by the daemon's --max-concurrency, checked by the registry.
inline constexpr int kMaxConcurrencySetting = 100'000;
}  // namespace limits

// How idle workers are kept: for keep_alive_s after their last invocation, or by the
// function's own arrival pattern (see docs/keep-alive.md).
enum class KeepAliveMode { fixed, adaptive };

std::string_view to_string(KeepAliveMode m);
std::optional<KeepAliveMode> parse_keep_alive_mode(std::string_view text);

// Lambda's reserved and provisioned concurrency. Function-level: a redeploy that does
// not mention them keeps them, as Lambda's UpdateFunctionConfiguration does.
struct ConcurrencySettings {
    // Most invocations of this function running at once, and guaranteed to it; 0 disables
    // the function. Unset: it shares the unreserved part of --max-concurrency.
    std::optional<int> reserved;
    // Workers started at deploy and at daemon start, initialised and never reaped.
    int provisioned = 0;

    bool operator==(const ConcurrencySettings&) const = default;
};

// Who may call the function's URL and routes: anyone, or holders of the API token.
enum class UrlAuth { none, token };

std::string_view to_string(UrlAuth a);
std::optional<UrlAuth> parse_url_auth(std::string_view text);

// How the function's URL and routes answer: the whole response at once, or its bytes as the
// function streams them (Lambda's InvokeMode; "BUFFERED" and "RESPONSE_STREAM" as text).
enum class InvokeMode { buffered, response_stream };

std::string_view to_string(InvokeMode m);
std::optional<InvokeMode> parse_invoke_mode(std::string_view text);

// CORS for the function's URL and routes, answered on preflight and added to responses
// (the settings of Lambda function URLs).
struct CorsSettings {
    std::vector<std::string> allow_origins;  // "*" or "https://example.com"
    std::vector<std::string> allow_methods;  // "GET", ..., or "*"
    std::vector<std::string> allow_headers;  // header names, or "*"
    std::vector<std::string> expose_headers;  // response headers the browser may read
    bool allow_credentials = false;
    int max_age_s = 0;

    bool enabled() const { return !allow_origins.empty(); }
    bool operator==(const CorsSettings&) const = default;
};

nlohmann::json to_json(const CorsSettings& c);

// A layer a function uses: one published layer version, by its ARN and its code.
struct LayerRef {
    std::string name;
    std::int64_t version = 0;
    std::string code_sha256;
    std::int64_t code_size = 0;

    bool operator==(const LayerRef&) const = default;
};

// Lambda's LoggingConfig as funcd acts on it: the form of the function's log and the
// levels kept. Text is today's lines; JSON makes funcd's runtimes write JSON records and
// funcd write its own as Lambda's platform.* records. The levels apply only with JSON, as on
// Lambda (which refuses them with Text); with Text they stay at INFO and mean nothing.
struct LoggingConfig {
    LogFormat format = LogFormat::text;
    // Records of the function's own below it are not written (AWS_LAMBDA_LOG_LEVEL).
    LogLevel application_level = LogLevel::info;
    // funcd's platform records below it are not written: DEBUG, INFO or WARN.
    LogLevel system_level = LogLevel::info;

    bool json() const { return format == LogFormat::json; }
    bool operator==(const LoggingConfig&) const = default;
};

// The system levels Lambda accepts: DEBUG, INFO, WARN.
bool is_system_log_level(LogLevel l);

// Lambda settings funcd keeps and reports but does not act on (an execution role, X-Ray
// tracing, a dead-letter queue's ARN, CloudWatch's log group), so that tools which set
// them read them back unchanged and see no drift.
struct RecordedSettings {
    std::string role;
    std::string tracing_mode = "PassThrough";
    std::string dead_letter_target_arn;
    std::string log_group;  // empty: /aws/lambda/<name>

    bool operator==(const RecordedSettings&) const = default;
};

struct FunctionConfig {
    std::string name;
    Runtime runtime = Runtime::provided;
    // The identifier as the user gave it ("python3.12", "provided.al2023"), reported back
    // as given; `runtime` is the family that runs it. Empty: the family's own name.
    std::string runtime_id;
    std::string handler;
    int memory_mb = limits::kDefaultMemoryMb;
    int timeout_s = limits::kDefaultTimeoutS;
    std::map<std::string, std::string> env;
    int keep_alive_s = limits::kDefaultKeepAliveS;
    std::string description;
    // Size of the worker's /tmp. It is a tmpfs, so what the function writes there is
    // memory and counts against memory_mb (unlike Lambda, where it is disk).
    int ephemeral_storage_mb = limits::kDefaultEphemeralStorageMb;
    NetworkMode network = NetworkMode::none;
    KeepAliveMode keep_alive_mode = KeepAliveMode::fixed;
    ConcurrencySettings concurrency;
    UrlAuth url_auth = UrlAuth::token;
    InvokeMode invoke_mode = InvokeMode::buffered;
    CorsSettings cors;
    std::string architecture = "x86_64";
    // Merged in this order at /opt, later layers over earlier ones.
    std::vector<LayerRef> layers;
    // python3: modules imported, in this order, into the runtime template its workers are
    // forked from (sandbox/runtime_template.hpp), so its cold starts find them loaded. Only
    // modules the daemon allows (--preload-modules): the template imports them outside any
    // sandbox.
    std::vector<std::string> preload;
    LoggingConfig logging;
    RecordedSettings recorded;

    std::string runtime_name() const { return runtime_id.empty() ? std::string(to_string(runtime)) : runtime_id; }

    bool operator==(const FunctionConfig&) const = default;
    // Same settings, the function-level concurrency aside (it is not part of a version).
    bool same_version_settings(const FunctionConfig& other) const;
};

// `FunctionVersion::version` of $LATEST; published versions count from 1.
inline constexpr std::int64_t kLatestVersion = 0;
inline constexpr std::string_view kLatestLabel = "$LATEST";

// One runnable version of a function, immutable: $LATEST as it is now, or a published
// version. Its settings plus its code, and the function-level settings that apply to it
// (reserved concurrency; the provisioned workers its pool keeps).
struct FunctionVersion {
    FunctionConfig config;
    std::int64_t version = kLatestVersion;
    // What a pool serves: a published version's number; for $LATEST, a count that grows
    // with every change of its code or settings, so a new $LATEST gets a new pool while a
    // change of function-level settings alone keeps the workers.
    std::int64_t generation = 0;
    std::string code_sha256;
    std::int64_t code_size = 0;  // bytes of the uploaded zip
    SystemTime last_modified;
    std::filesystem::path code_dir;
    std::filesystem::path opt_dir;  // the function's layers merged; empty without layers
    std::string revision_id;        // Lambda's RevisionId: new with every change of this version

    bool is_latest() const { return version == kLatestVersion; }
    // "$LATEST" or the number, as Lambda names versions.
    std::string label() const { return is_latest() ? std::string(kLatestLabel) : std::to_string(version); }
};

// Throws ApiError(400) naming the bad name.
void validate_function_name(std::string_view name);

// The deploy request's settings. `code_zip` is set when the request carried code.
struct DeployRequest {
    FunctionConfig config;
    std::optional<std::string> code_zip;
    // The request set reserved_concurrency or provisioned_concurrency; otherwise the
    // function keeps the values it had.
    bool concurrency_given = false;
    // Layer versions, in merge order (JSON form: "layers": [<layer version ARN>, ...]).
    std::vector<LayerVersionRef> layers;
};

// Body form (a): {"runtime": ..., "handler": ..., "code": {"zip_base64": ...}, ...}.
// Throws ApiError(400) naming the field on any bad or unknown field.
DeployRequest parse_deploy_json(std::string_view name, std::string_view body);

// Body form (b): raw zip body with the settings as query parameters
// (runtime, handler, memory_mb, timeout_s, keep_alive_s, keep_alive, description,
// ephemeral_storage_mb, network, reserved_concurrency, provisioned_concurrency, url_auth, invoke_mode,
// env.KEY=VALUE). CORS settings need the JSON form.
// A dotted Python module name of ASCII identifiers ("numpy", "PIL.Image"), as "preload"
// and --preload-modules name them.
bool is_python_module_name(std::string_view name);

DeployRequest parse_deploy_query(std::string_view name,
                                 const std::vector<std::pair<std::string, std::string>>& params,
                                 std::string zip);

// {"allow_origins": [...], "allow_methods": [...], "allow_headers": [...], "max_age_s": N}.
// Throws ApiError(400) naming the field.
CorsSettings parse_cors(const nlohmann::json& j);

// {"reserved_concurrency": N | null, "provisioned_concurrency": M}, each optional: what
// is omitted keeps its value in `current`. Throws ApiError(400) naming the field.
ConcurrencySettings parse_concurrency_json(std::string_view body, const ConcurrencySettings& current);

// provisioned <= reserved and both within [0, max_concurrency]. Throws ApiError(400).
void validate_concurrency(const ConcurrencySettings& c, int max_concurrency);

nlohmann::json describe(const ConcurrencySettings& c);

// Names the runtime or Lambda itself sets (AWS_REGION, _HANDLER, ...): a function may not set them.
bool is_reserved_env_key(std::string_view key);

// The handler a function gets when it names none: Lambda's defaults (lambda_function.lambda_handler,
// index.handler) and `bootstrap` for a custom runtime.
std::string_view default_handler(Runtime r);

// Checks ranges, the handler's shape and the environment (keys, reserved names, 4 KB total).
// Throws ApiError(400) naming the field.
void validate_config(const FunctionConfig& config);

// What a deploy checks of the code. The /v1 API refuses code whose entry point is missing;
// Lambda's API, like Lambda, accepts it and reports Runtime.* errors when it is invoked.
enum class CodeCheck { entry_point, architecture_only };

// Checks that an unpacked code tree (and its merged layers, `opt_dir`, may be empty) can
// run `config`: `provided` needs an executable `bootstrap` at the root of the code or of
// the layers, `python3` the handler's module file (a Node.js handler's module is resolved
// by the runtime, from the code, its packages or the layers); a `bootstrap` that is an ELF executable
// must be built for the function's architecture, which must be the host's. Throws
// ApiError(400).
void validate_code_for_runtime(const FunctionConfig& config, const std::filesystem::path& code_dir,
                               const std::filesystem::path& opt_dir = {}, CodeCheck check = CodeCheck::entry_point);

// The description the API returns for a version.
nlohmann::json describe(const FunctionVersion& v);

}  // namespace funcd
