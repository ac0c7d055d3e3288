#pragma once
// `funcd serve` settings: command-line flags, then FUNCD_* environment variables, then defaults.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "funcd/daemon/daemon_limits.hpp"
#include "funcd/daemon/daemon_log_format.hpp"
#include "funcd/metering/pricing.hpp"

namespace funcd {

struct DaemonOptions {
    std::string listen_host = "127.0.0.1";
    unsigned short listen_port = 8080;
    std::filesystem::path data_dir = "data";
    std::optional<std::filesystem::path> api_token_file;
    std::optional<std::string> api_token;  // FUNCD_API_TOKEN
    // Empty: the installed runtimes beside the binary, else the checkout's (install_layout.hpp).
    std::filesystem::path runtime_dir;
    std::string python = "/usr/bin/python3";
    // Runs every nodejs runtime identifier (Debian's nodejs package installs it here).
    std::string node = "/usr/bin/node";
    // Lambda allows 10 s for a runtime to initialise before the first event.
    std::chrono::milliseconds init_timeout{10'000};
    Prices prices;
    // Usage records older than this are deleted; unset: kept forever.
    std::optional<std::chrono::days> usage_retention;
    std::string log_level = "info";
    DaemonLogFormat log_format = DaemonLogFormat::text;
    // Workers run sandboxed unless a developer explicitly turns it off.
    bool sandbox = true;
    // Python workers forked from warm runtime templates (sandbox/runtime_template.hpp)
    // instead of started; off starts every worker's interpreter afresh.
    bool runtime_templates = true;
    // Modules a Python function may preload into a template of its own ("preload"): the
    // template imports them outside any sandbox, so the operator names them.
    std::set<std::string, std::less<>> preload_modules;
    // Lambda's default account concurrency quota.
    int max_concurrency = 1000;
    // Sum of memory_mb of live workers; unset = 80% of the host's RAM, leaving the rest
    // to the daemon, the page cache and the host's own services.
    std::optional<std::int64_t> memory_budget_mb;
    // How long an invocation over a limit waits for capacity before it is throttled.
    std::chrono::milliseconds queue_wait{100};
    // Usage records on the invoke path; off only to measure what metering costs.
    bool metering = true;
    // Counting for /metrics on the invoke path; off answers /metrics 404 (and measures what
    // metrics cost).
    bool metrics = true;
    // A second listener serving only /metrics, without the API token; unset: none.
    std::optional<std::string> metrics_listen_host;
    unsigned short metrics_listen_port = 0;
    // The key pair Lambda's API accepts (SigV4); unset: DATA_DIR/aws-credentials, created
    // at the first start.
    std::optional<std::string> aws_access_key_id;
    std::optional<std::string> aws_secret_access_key;
    // Workers' AWS_REGION and the region in ARNs of the /v1 API and of events; Lambda's API
    // answers in the region each request was signed for.
    std::string region = "us-east-1";
    // This node among those sharing its state (GET /v1/cluster): its id (empty: the host's
    // name) and the URL other nodes and the balancer reach it at (empty: http:// and the
    // listen address, with the host's name for a wildcard address).
    std::string node_id;
    std::string advertise_url;
    // Where functions, layers and code are kept: empty for this host's SQLite (funcd.db), or a
    // postgres:// URL of a database nodes share (docs/scaling.md). Holds a password more
    // often than not: never logged.
    std::string state_url;
    // Protective limits; `--limit NAME=VALUE` sets any of them.
    DaemonLimits limits;
};

// Parses `serve`'s arguments (argv after the subcommand) and the environment.
// Throws std::invalid_argument with a message for the user.
DaemonOptions parse_serve_options(const std::vector<std::string>& args);

std::string serve_usage();

}  // namespace funcd
