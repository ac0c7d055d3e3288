#pragma once
// The CLI's HTTP client for the daemon's /v1 API: one blocking request per connection over
// Boost.Beast, with a deadline on every step, and the daemon's error documents turned into
// CliErrors that name the problem and the fix.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/cli/cli_error.hpp"
#include "funcd/cli/client_config.hpp"

namespace funcd::cli {

// http://host[:port][/base]; https is not spoken (put a TLS-terminating proxy in front and
// reach it over plain HTTP on its host, or tunnel).
struct Endpoint {
    std::string url;        // normalised: no trailing slash
    std::string host;
    std::string port;
    std::string base_path;  // "" or "/prefix"

    // Throws CliError (usage) for anything but an http URL with a host.
    static Endpoint parse(std::string_view text);
};

struct ApiResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;

    std::string header(const std::string& lower) const;
    // The body as JSON; throws CliError (daemon_error) when it is not.
    nlohmann::json json() const;
    bool ok() const { return status >= 200 && status < 300; }
};

struct RequestOptions {
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    // From sending the request to the whole answer; zero waits as long as it takes (an
    // invocation is bounded by the function's own timeout instead).
    std::chrono::milliseconds timeout{kDefaultTimeout};
    // Called as the body goes out (bytes sent so far, of all), for the progress of a large
    // upload; last with both equal once the whole request is sent.
    std::function<void(std::size_t sent, std::size_t total)> on_sent;

    // Long enough for a busy daemon's slowest control call (a deploy unpacking 250 MiB),
    // short enough that a wedged one is reported rather than waited on forever.
    static constexpr std::chrono::milliseconds kDefaultTimeout{60'000};
};

class ApiClient {
public:
    explicit ApiClient(ClientConfig config);

    // One request; any answer is returned, whatever its status. Throws CliError
    // (unreachable) when no daemon answers.
    ApiResponse send(std::string_view method, const std::string& target, std::string body = {},
                     const RequestOptions& options = {});
    // send(), then CliError (see error_for) for anything but 2xx.
    ApiResponse call(std::string_view method, const std::string& target, std::string body = {},
                     const RequestOptions& options = {});

    // A GET whose body arrives over time (Server-Sent Events): `on_data` gets each piece as
    // it is read until the body ends or it returns false. A non-2xx answer is thrown as
    // error_for. `idle_timeout` bounds each wait for more (the daemon sends heartbeats).
    void stream(const std::string& target, const std::function<bool(std::string_view)>& on_data,
                std::chrono::milliseconds idle_timeout);

    // The error for a non-2xx answer: 401 -> auth, 404 -> not_found, 429/503 -> busy, other
    // 4xx -> rejected, 5xx and the rest -> daemon_error; the message is the daemon's own.
    CliError error_for(const ApiResponse& r) const;

    const Endpoint& endpoint() const { return endpoint_; }
    const ClientConfig& config() const { return config_; }

private:
    ClientConfig config_;
    Endpoint endpoint_;
};

// "/v1/functions/" + name, with anything outside unreserved characters percent-encoded.
std::string url_encode(std::string_view text);

}  // namespace funcd::cli
