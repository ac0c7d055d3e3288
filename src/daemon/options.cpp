#include "funcd/daemon/options.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <stdexcept>
#include <tuple>
#include <utility>

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "funcd/common/text.hpp"
#include "funcd/registry/function_config.hpp"

namespace funcd {
namespace {

// Each worker holds a handful of descriptors in the daemon; beyond this the host's
// process and descriptor limits, not ours, would be the real cap.
constexpr long kMaxConcurrencyLimit = 100'000;
constexpr long kMaxLogFiles = OutputLimits::kMaxLogFiles;
// A node id's length: a DNS label's, 63, rounded up (it is most often the host's name).
constexpr std::size_t kMaxNodeIdLength = 64;

// HOST:PORT ([HOST]:PORT for IPv6) of `flag`.
std::pair<std::string, unsigned short> parse_host_port(std::string_view flag, std::string_view value) {
    auto colon = value.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        throw std::invalid_argument(fmt::format("{} wants HOST:PORT, got '{}'", flag, value));
    std::string_view host = value.substr(0, colon), port = value.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p > 65535)
        throw std::invalid_argument(fmt::format("{}: '{}' is not a port number", flag, port));
    return {std::string(host), static_cast<unsigned short>(p)};
}

void parse_listen(std::string_view value, DaemonOptions& o) {
    std::tie(o.listen_host, o.listen_port) = parse_host_port("--listen", value);
}

// Exact: the decimal text becomes an integer of the price unit without a double between.
std::int64_t parse_price(std::string_view flag, const std::string& value, int decimals) {
    try {
        return parse_decimal(value, decimals);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(fmt::format("{} wants a non-negative decimal number: {}", flag, e.what()));
    }
}

// Keeping records longer than a century is keeping them forever: leave the flag out.
constexpr long kMaxRetentionDays = 36'500;

long parse_positive(std::string_view flag, const std::string& value) {
    long n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n <= 0)
        throw std::invalid_argument(fmt::format("{} wants a positive integer, got '{}'", flag, value));
    return n;
}

long parse_non_negative(std::string_view flag, const std::string& value) {
    long n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 0)
        throw std::invalid_argument(fmt::format("{} wants a non-negative integer, got '{}'", flag, value));
    return n;
}

bool parse_on_off(std::string_view flag, const std::string& value) {
    if (value != "on" && value != "off")
        throw std::invalid_argument(fmt::format("{} wants on or off, got '{}'", flag, value));
    return value == "on";
}

// "numpy,PIL.Image": module names as a function's "preload" names them (checked there too).
std::set<std::string, std::less<>> parse_module_list(std::string_view flag, const std::string& value) {
    std::set<std::string, std::less<>> out;
    for (std::string& name : split_commas(value)) {
        if (!is_python_module_name(name))
            throw std::invalid_argument(fmt::format("{} wants Python module names separated by commas, got '{}'", flag,
                                                    value));
        out.insert(std::move(name));
    }
    return out;
}

// spdlog reads an unknown level name as "off", which would silence the daemon without a word.
std::string parse_log_level(std::string_view flag, const std::string& value) {
    for (const char* known : {"trace", "debug", "info", "warn", "error"})
        if (value == known) return value;
    throw std::invalid_argument(
        fmt::format("{} wants one of trace, debug, info, warn, error, got '{}'", flag, value));
}

// A region as Lambda's ARNs carry it: lower-case letters, digits and dashes.
std::string parse_region(const std::string& value) {
    const bool ok = !value.empty() && value.size() <= 32 && std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (!ok) throw std::invalid_argument(fmt::format("--region wants a region such as us-east-1, got '{}'", value));
    return value;
}

std::string limit_usage() {
    std::string out;
    for (const auto& l : describe_limits(DaemonLimits{}))
        out += fmt::format("      {:<38} {} (default {})\n", l.name, l.meaning, l.value);
    return out;
}

// A node's id: what a host's name may be, so the default always passes. Names it when not.
std::string parse_node_id(std::string_view what, std::string_view value) {
    const bool ok = !value.empty() && value.size() <= kMaxNodeIdLength &&
                    std::all_of(value.begin(), value.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
                    });
    if (!ok)
        throw std::invalid_argument(fmt::format("{} must be 1 to {} letters, digits, '-', '.' or '_'; got '{}'", what,
                                                kMaxNodeIdLength, value));
    return std::string(value);
}

// An absolute http:// or https:// URL with a host, as a balancer or another node would use it.
std::string parse_advertise_url(std::string_view what, std::string_view value) {
    const auto url = boost::urls::parse_absolute_uri(value);
    const bool ok = url && (url->scheme() == "http" || url->scheme() == "https") && !url->encoded_host().empty();
    if (!ok) throw std::invalid_argument(fmt::format("{} must be an http:// or https:// URL with a host; got '{}'", what, value));
    return std::string(value);
}

// "sqlite" (the default: empty) or a PostgreSQL URL. The value is not repeated in the error:
// it may hold a password.
std::string parse_state_url(std::string_view what, std::string_view value) {
    if (value == "sqlite") return {};
    if (value.starts_with("postgres://") || value.starts_with("postgresql://")) return std::string(value);
    const auto colon = value.find(':');
    throw std::invalid_argument(fmt::format(
        "{} must be 'sqlite' or a postgres:// (or postgresql://) URL; got {}", what,
        colon == std::string_view::npos ? std::string("a value without a scheme")
                                        : fmt::format("the scheme '{}'", value.substr(0, colon))));
}

}  // namespace

std::string serve_usage() {
    return R"(usage: funcd serve [options]
  --listen HOST:PORT                 address of the HTTP API (env FUNCD_LISTEN; default 127.0.0.1:8080)
  --data-dir DIR                     database, code, logs (env FUNCD_DATA_DIR; default ./data)
  --api-token-file FILE              file holding the API token (else env FUNCD_API_TOKEN,
                                     else DATA_DIR/api-token, created at first start)
  --runtime-dir DIR                  funcd's runtimes (default: share/funcd/runtime of the installation,
                                     else the checkout's runtime/)
  --python PATH                      interpreter for the python3 runtime (default /usr/bin/python3)
  --node PATH                        Node.js for the nodejs runtimes (default /usr/bin/node)
  --init-timeout-ms N                how long a runtime may take to ask for its first event (default 10000)
  --price-per-gb-second X            (default 0.0000166667, Lambda x86)
  --price-per-million-requests X     (default 0.20, Lambda)
  --usage-retention-days N           delete usage records older than N days (default: keep forever)
  --log-level LEVEL                  trace, debug, info, warn, error (default info)
  --log-format text|json             the daemon's own log: text lines, or one JSON object per line
                                     for journald or a log shipper (env FUNCD_LOG_FORMAT; default text)
  --sandbox on|off                   isolate workers (default on); off runs untrusted code
                                     as plain processes and is meant for development only
  --runtime-templates on|off         fork Python and Node.js workers from warm runtime templates
                                     (default on; off starts each worker's interpreter afresh)
  --preload-modules M1,M2,...        Python modules a function may preload into a template of its
                                     own (its "preload" setting; default none)
  --max-concurrency N                invocations running at once, all functions (default 1000)
  --memory-budget-mb N               memory admitted workers may take (default 80% of RAM): each is
                                     charged what it really uses (peak + 8 MB, at most memory_mb)
                                     and their common cgroup is limited to N MB; without cgroups
                                     (--sandbox off, not root) each is charged its full memory_mb
  --queue-wait-ms N                  how long an invocation over a limit waits before 429 (default 100; 0 = none)
  --metering on|off                  usage records (default on; off is for measuring its cost)
  --metrics on|off                   counts for GET /metrics (default on; off is for measuring their cost)
  --metrics-listen HOST:PORT         also serve /metrics there, without the API token (default: only
                                     on the API's listener, with the token; see docs/observability.md)
  --aws-access-key-id ID             key pair of Lambda's API (env FUNCD_AWS_ACCESS_KEY_ID; default:
  --aws-secret-access-key SECRET       DATA_DIR/aws-credentials, created at first start; env
                                       FUNCD_AWS_SECRET_ACCESS_KEY)
  --log-max-bytes N                  size at which a function's log file rolls over (default 64 MiB)
  --log-files N                      log files kept per function, the live one included (default 4)
  --region REGION                    workers' AWS_REGION and the region of ARNs (env FUNCD_REGION;
                                     default us-east-1)
  --node-id ID                       this node's name in GET /v1/cluster (env FUNCD_NODE_ID;
                                     default: the host's name)
  --advertise-url URL                where other nodes and a balancer reach this node (env
                                     FUNCD_ADVERTISE_URL; default http:// and the listen address)
  --state sqlite|postgres://...      where functions, layers and code are kept: this host's SQLite
                                     (default) or a PostgreSQL database nodes share (env
                                     FUNCD_STATE_URL, which keeps a password out of ps; docs/scaling.md)
  --limit NAME=VALUE                 a protective limit (repeatable; see docs/reliability.md):
)" + limit_usage();
}

DaemonOptions parse_serve_options(const std::vector<std::string>& args) {
    DaemonOptions o;
    if (const char* v = std::getenv("FUNCD_LISTEN"); v && *v) parse_listen(v, o);
    if (const char* v = std::getenv("FUNCD_DATA_DIR"); v && *v) o.data_dir = v;
    if (const char* v = std::getenv("FUNCD_API_TOKEN"); v && *v) o.api_token = v;
    if (const char* v = std::getenv("FUNCD_AWS_ACCESS_KEY_ID"); v && *v) o.aws_access_key_id = v;
    if (const char* v = std::getenv("FUNCD_AWS_SECRET_ACCESS_KEY"); v && *v) o.aws_secret_access_key = v;
    if (const char* v = std::getenv("FUNCD_REGION"); v && *v) o.region = parse_region(v);
    if (const char* v = std::getenv("FUNCD_LOG_FORMAT"); v && *v) o.log_format = parse_daemon_log_format(v);
    if (const char* v = std::getenv("FUNCD_NODE_ID"); v && *v) o.node_id = parse_node_id("FUNCD_NODE_ID", v);
    if (const char* v = std::getenv("FUNCD_ADVERTISE_URL"); v && *v)
        o.advertise_url = parse_advertise_url("FUNCD_ADVERTISE_URL", v);
    if (const char* v = std::getenv("FUNCD_STATE_URL"); v && *v) o.state_url = parse_state_url("FUNCD_STATE_URL", v);

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string flag = args[i], value;
        bool inline_value = false;
        if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
            value = flag.substr(eq + 1);
            flag = flag.substr(0, eq);
            inline_value = true;
        }
        auto next = [&]() -> std::string {
            if (inline_value) return value;
            if (i + 1 >= args.size()) throw std::invalid_argument(flag + " needs a value");
            return args[++i];
        };
        if (flag == "--listen") parse_listen(next(), o);
        else if (flag == "--data-dir") o.data_dir = next();
        else if (flag == "--api-token-file") o.api_token_file = std::filesystem::path(next());
        else if (flag == "--runtime-dir") o.runtime_dir = next();
        else if (flag == "--python") o.python = next();
        else if (flag == "--node") o.node = next();
        else if (flag == "--init-timeout-ms") o.init_timeout = std::chrono::milliseconds(parse_positive(flag, next()));
        else if (flag == "--price-per-gb-second") o.prices.per_gb_second = parse_price(flag, next(), kPriceDecimals);
        else if (flag == "--price-per-million-requests")
            o.prices.per_request = parse_price(flag, next(), kPerMillionDecimals);
        else if (flag == "--usage-retention-days") {
            long n = parse_positive(flag, next());
            if (n > kMaxRetentionDays)
                throw std::invalid_argument(fmt::format("--usage-retention-days is at most {}; leave it out to keep "
                                                        "records forever", kMaxRetentionDays));
            o.usage_retention = std::chrono::days(n);
        }
        else if (flag == "--log-level") o.log_level = parse_log_level(flag, next());
        else if (flag == "--log-format") o.log_format = parse_daemon_log_format(next());
        else if (flag == "--sandbox") o.sandbox = parse_on_off(flag, next());
        else if (flag == "--runtime-templates") o.runtime_templates = parse_on_off(flag, next());
        else if (flag == "--preload-modules") o.preload_modules = parse_module_list(flag, next());
        else if (flag == "--metering") o.metering = parse_on_off(flag, next());
        else if (flag == "--metrics") o.metrics = parse_on_off(flag, next());
        else if (flag == "--metrics-listen") {
            auto [host, port] = parse_host_port(flag, next());
            o.metrics_listen_host = std::move(host);
            o.metrics_listen_port = port;
        }
        else if (flag == "--max-concurrency") {
            long n = parse_positive(flag, next());
            if (n > kMaxConcurrencyLimit)
                throw std::invalid_argument(fmt::format("--max-concurrency is at most {}", kMaxConcurrencyLimit));
            o.max_concurrency = static_cast<int>(n);
        }
        else if (flag == "--memory-budget-mb") o.memory_budget_mb = parse_positive(flag, next());
        else if (flag == "--queue-wait-ms") o.queue_wait = std::chrono::milliseconds(parse_non_negative(flag, next()));
        else if (flag == "--aws-access-key-id") o.aws_access_key_id = next();
        else if (flag == "--aws-secret-access-key") o.aws_secret_access_key = next();
        else if (flag == "--region") o.region = parse_region(next());
        else if (flag == "--node-id") o.node_id = parse_node_id(flag, next());
        else if (flag == "--advertise-url") o.advertise_url = parse_advertise_url(flag, next());
        else if (flag == "--state") o.state_url = parse_state_url(flag, next());
        else if (flag == "--limit") set_limit(o.limits, next());
        else if (flag == "--log-max-bytes") o.limits.output.log_max_bytes = parse_positive(flag, next());
        else if (flag == "--log-files") {
            long n = parse_positive(flag, next());
            if (n > kMaxLogFiles) throw std::invalid_argument(fmt::format("--log-files is at most {}", kMaxLogFiles));
            o.limits.output.log_files = static_cast<int>(n);
        }
        else throw std::invalid_argument("unknown option '" + args[i] + "'");
    }
    if (!o.metrics && o.metrics_listen_host)
        throw std::invalid_argument("--metrics-listen serves /metrics, which --metrics off turns off; drop one");
    return o;
}

}  // namespace funcd
