#include "funcd/daemon/options.hpp"

#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

namespace funcd {
namespace {

void parse_listen(std::string_view value, DaemonOptions& o) {
    auto colon = value.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        throw std::invalid_argument(fmt::format("--listen wants HOST:PORT, got '{}'", value));
    std::string_view host = value.substr(0, colon), port = value.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p > 65535)
        throw std::invalid_argument(fmt::format("--listen: '{}' is not a port number", port));
    o.listen_host = std::string(host);
    o.listen_port = static_cast<unsigned short>(p);
}

double parse_price(std::string_view flag, const std::string& value) {
    char* end = nullptr;
    double d = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || d < 0)
        throw std::invalid_argument(fmt::format("{} wants a non-negative number, got '{}'", flag, value));
    return d;
}

long parse_positive(std::string_view flag, const std::string& value) {
    long n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n <= 0)
        throw std::invalid_argument(fmt::format("{} wants a positive integer, got '{}'", flag, value));
    return n;
}

}  // namespace

std::string serve_usage() {
    return R"(usage: funcd serve [options]
  --listen HOST:PORT                 address of the HTTP API (env FUNCD_LISTEN; default 127.0.0.1:8080)
  --data-dir DIR                     database, code, logs (env FUNCD_DATA_DIR; default ./data)
  --api-token-file FILE              file holding the API token (else env FUNCD_API_TOKEN,
                                     else DATA_DIR/api-token, created at first start)
  --runtime-dir DIR                  funcd's runtimes (default: the checkout's runtime/)
  --python PATH                      interpreter for the python3 runtime (default /usr/bin/python3)
  --init-timeout-ms N                how long a runtime may take to ask for its first event (default 10000)
  --price-per-gb-second X            (default 0.0000166667, Lambda x86)
  --price-per-million-requests X     (default 0.20, Lambda)
  --log-level LEVEL                  trace, debug, info, warn, error (default info)
  --sandbox on|off                   isolate workers (default on); off runs untrusted code
                                     as plain processes and is meant for development only
)";
}

DaemonOptions parse_serve_options(const std::vector<std::string>& args) {
    DaemonOptions o;
    if (const char* v = std::getenv("FUNCD_LISTEN"); v && *v) parse_listen(v, o);
    if (const char* v = std::getenv("FUNCD_DATA_DIR"); v && *v) o.data_dir = v;
    if (const char* v = std::getenv("FUNCD_API_TOKEN"); v && *v) o.api_token = v;

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
        else if (flag == "--init-timeout-ms") o.init_timeout = std::chrono::milliseconds(parse_positive(flag, next()));
        else if (flag == "--price-per-gb-second") o.prices.per_gb_second = parse_price(flag, next());
        else if (flag == "--price-per-million-requests") o.prices.per_request = parse_price(flag, next()) / 1e6;
        else if (flag == "--log-level") o.log_level = next();
        else if (flag == "--sandbox") {
            std::string v = next();
            if (v != "on" && v != "off") throw std::invalid_argument("--sandbox wants on or off, got '" + v + "'");
            o.sandbox = v == "on";
        }
        else throw std::invalid_argument("unknown option '" + args[i] + "'");
    }
    return o;
}

}  // namespace funcd
