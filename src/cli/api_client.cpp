#include "funcd/cli/api_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <cctype>
#include <optional>

namespace funcd::cli {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// Connecting to a daemon on the same host takes microseconds; a remote one behind a
// congested link, well under a few seconds. Past this the endpoint is taken as unreachable.
constexpr std::chrono::milliseconds kConnectTimeout{10'000};
// A read buffer for streamed bodies: one SSE record is a few hundred bytes, a burst many.
constexpr std::size_t kStreamBufferBytes = 16 * 1024;
constexpr const char* kUserAgent = "funcd-cli/0.1.0";

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// One connection to the daemon; every step runs on a private io_context with a deadline.
class Connection {
public:
    Connection(const Endpoint& endpoint, const ClientConfig& config) : endpoint_(endpoint), config_(config) {
        tcp::resolver resolver(ioc_);
        beast::error_code ec;
        auto results = resolver.resolve(endpoint.host, endpoint.port, ec);
        if (ec)
            throw CliError::unreachable("cannot resolve the host of " + endpoint.url + " (" + ec.message() +
                                        "): check --endpoint or FUNCD_ENDPOINT");
        ec = run(kConnectTimeout, [&](auto done) {
            stream_.async_connect(results, [done](beast::error_code e, const tcp::endpoint&) { done(e); });
        });
        if (ec) throw unreachable(ec);
    }

    template <class Start>
    beast::error_code run(std::chrono::milliseconds timeout, Start start) {
        if (timeout.count() > 0) stream_.expires_after(timeout);
        else stream_.expires_never();
        beast::error_code result;
        start([&result](beast::error_code e) { result = e; });
        ioc_.restart();
        ioc_.run();
        return result;
    }

    CliError unreachable(const beast::error_code& ec) const {
        if (ec == net::error::connection_refused)
            return CliError::unreachable("no funcd at " + endpoint_.url + ": is it running? (funcd serve)" +
                                         hint_endpoint());
        if (ec == beast::error::timeout)
            return CliError::unreachable("no answer from " + endpoint_.url + " in time: is the daemon up and the address right?" +
                                         hint_endpoint());
        return CliError::unreachable("cannot talk to funcd at " + endpoint_.url + ": " + ec.message() + hint_endpoint());
    }

    http::request<http::string_body> request(std::string_view method, const std::string& target, std::string body,
                                             const RequestOptions& options) const {
        http::request<http::string_body> req;
        const http::verb verb = http::string_to_verb(method);
        req.method(verb);
        req.target(endpoint_.base_path + target);
        req.version(11);
        req.set(http::field::host, endpoint_.host + ":" + endpoint_.port);
        req.set(http::field::user_agent, kUserAgent);
        req.set(http::field::connection, "close");
        if (!config_.token.empty()) req.set(http::field::authorization, "Bearer " + config_.token);
        for (const auto& [k, v] : options.headers) req.set(k, v);
        if (!body.empty() || verb == http::verb::put || verb == http::verb::post) {
            req.set(http::field::content_type, options.content_type);
            req.body() = std::move(body);
            req.prepare_payload();
        }
        return req;
    }

    beast::tcp_stream& stream() { return stream_; }
    beast::flat_buffer& buffer() { return buffer_; }

private:
    std::string hint_endpoint() const {
        if (config_.endpoint_source == "default") return "";
        return " (endpoint from " + config_.endpoint_source + ")";
    }

    const Endpoint& endpoint_;
    const ClientConfig& config_;
    net::io_context ioc_;
    beast::tcp_stream stream_{ioc_};
    beast::flat_buffer buffer_;
};

// How much of a request body goes out between two progress reports: often enough for a
// smooth bar over a 50 MiB upload (200 steps), rarely enough to cost nothing.
constexpr std::size_t kProgressStepBytes = 256 * 1024;

template <class Fields>
void copy_headers(const Fields& from, ApiResponse& to) {
    for (const auto& f : from) to.headers[lower(std::string(f.name_string()))] = std::string(f.value());
}

}  // namespace

Endpoint Endpoint::parse(std::string_view text) {
    std::string given(text);
    // A bare host:port is taken as http, as curl takes it.
    if (given.find("://") == std::string::npos) given = "http://" + given;
    auto parsed = boost::urls::parse_uri(given);
    if (!parsed)
        throw CliError::usage("endpoint '" + std::string(text) + "' is not a URL; expected http://HOST[:PORT]");
    const auto& u = *parsed;
    if (lower(std::string(u.scheme())) != "http")
        throw CliError::usage("endpoint '" + std::string(text) + "': only http:// is spoken; reach a TLS endpoint "
                              "through a local proxy or tunnel");
    if (u.host().empty()) throw CliError::usage("endpoint '" + std::string(text) + "' has no host");
    if (u.has_query() || u.has_fragment() || u.has_userinfo())
        throw CliError::usage("endpoint '" + std::string(text) + "' must be only http://HOST[:PORT][/PATH]");
    Endpoint e;
    e.host = u.host_type() == boost::urls::host_type::ipv6 ? std::string(u.encoded_host_address())
                                                          : std::string(u.encoded_host());
    if (e.host.size() > 1 && e.host.front() == '[') e.host = e.host.substr(1, e.host.size() - 2);
    e.port = u.has_port() ? std::string(u.port()) : "80";
    e.base_path = std::string(u.encoded_path());
    while (!e.base_path.empty() && e.base_path.back() == '/') e.base_path.pop_back();
    e.url = "http://" + std::string(u.encoded_authority()) + e.base_path;
    return e;
}

std::string ApiResponse::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

nlohmann::json ApiResponse::json() const {
    auto parsed = nlohmann::json::parse(body, nullptr, false);
    if (parsed.is_discarded())
        throw CliError::daemon_error("the daemon answered " + std::to_string(status) + " with a body that is not JSON: " +
                                     body.substr(0, 200));
    return parsed;
}

ApiClient::ApiClient(ClientConfig config) : config_(std::move(config)), endpoint_(Endpoint::parse(config_.endpoint)) {}

ApiResponse ApiClient::send(std::string_view method, const std::string& target, std::string body,
                            const RequestOptions& options) {
    Connection c(endpoint_, config_);
    auto req = c.request(method, target, std::move(body), options);
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);  // a log query can be large; the daemon bounds it
    // The daemon may answer (401, 413) before reading a whole body and close: its answer is
    // read even when the write failed, and only a missing answer counts.
    auto read_answer = [&c, &parser](auto done) {
        http::async_read(c.stream(), c.buffer(), parser, [done](beast::error_code r, std::size_t) { done(r); });
    };
    beast::error_code ec;
    if (!options.on_sent) {
        ec = c.run(options.timeout, [&](auto done) {
            http::async_write(c.stream(), req, [read_answer, done](beast::error_code, std::size_t) { read_answer(done); });
        });
    } else {
        // Written a piece at a time so that progress can be told between pieces.
        http::request_serializer<http::string_body> serializer{req};
        serializer.limit(kProgressStepBytes);
        const std::size_t body_bytes = req.body().size();
        std::size_t written = 0;  // the head's bytes too: progress is clamped to the body's size
        // Lives until run() returns, as every handler that refers to it does.
        std::function<void(std::function<void(beast::error_code)>)> write_more;
        write_more = [&](std::function<void(beast::error_code)> done) {
            http::async_write_some(c.stream(), serializer, [&, done](beast::error_code e, std::size_t n) {
                written += n;
                const bool finished = !e && serializer.is_done();
                options.on_sent(finished ? body_bytes : std::min(written, body_bytes), body_bytes);
                if (!e && !finished) return write_more(done);
                read_answer(done);
            });
        };
        ec = c.run(options.timeout, [&](auto done) { write_more(done); });
    }
    if (ec) throw c.unreachable(ec);
    ApiResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    copy_headers(parser.get(), out);
    out.body = std::move(parser.get().body());
    return out;
}

ApiResponse ApiClient::call(std::string_view method, const std::string& target, std::string body,
                            const RequestOptions& options) {
    ApiResponse r = send(method, target, std::move(body), options);
    if (!r.ok()) throw error_for(r);
    return r;
}

void ApiClient::stream(const std::string& target, const std::function<bool(std::string_view)>& on_data,
                       std::chrono::milliseconds idle_timeout) {
    Connection c(endpoint_, config_);
    auto req = c.request("GET", target, {}, {});
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    auto ec = c.run(RequestOptions::kDefaultTimeout, [&](auto done) {
        http::async_write(c.stream(), req, [&c, &parser, done](beast::error_code e, std::size_t) {
            if (e) return done(e);
            http::async_read_header(c.stream(), c.buffer(), parser, [done](beast::error_code r, std::size_t) { done(r); });
        });
    });
    if (ec) throw c.unreachable(ec);
    ApiResponse head;
    head.status = static_cast<int>(parser.get().result_int());
    copy_headers(parser.get(), head);

    char buf[kStreamBufferBytes];
    while (!parser.is_done()) {
        parser.get().body().data = buf;
        parser.get().body().size = sizeof buf;
        // read_some: whatever has arrived, not a full buffer, so each record is passed on
        // as soon as it comes.
        ec = c.run(idle_timeout, [&](auto done) {
            http::async_read_some(c.stream(), c.buffer(), parser, [done](beast::error_code r, std::size_t) { done(r); });
        });
        if (ec == http::error::need_buffer) ec = {};
        if (ec == http::error::end_of_stream || ec == net::error::eof) break;
        if (ec) throw c.unreachable(ec);
        const std::string_view piece(buf, sizeof buf - parser.get().body().size);
        if (!head.ok()) {
            head.body.append(piece);
            continue;
        }
        if (!piece.empty() && !on_data(piece)) return;
    }
    if (!head.ok()) throw error_for(head);
}

CliError ApiClient::error_for(const ApiResponse& r) const {
    std::string type;
    std::string message;
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
        type = doc["error"].value("type", "");
        message = doc["error"].value("message", "");
    }
    if (message.empty()) message = r.body.empty() ? "(no body)" : r.body.substr(0, 500);
    const std::string answered = "the daemon answered " + std::to_string(r.status) + (type.empty() ? "" : " " + type);
    switch (r.status) {
        case 401:
            if (config_.token.empty())
                return CliError::auth("no API token: pass --token, set FUNCD_API_TOKEN, run in the directory holding "
                                      "data/api-token, or run funcd login " + endpoint_.url);
            return CliError::auth("token rejected by " + endpoint_.url + " (token from " + config_.token_source +
                                  "): use the daemon's token (its data/api-token, or the FUNCD_API_TOKEN it was "
                                  "started with)");
        case 404: return CliError::not_found(message);
        case 429:
        case 503: return CliError(ExitCode::busy, message + " (" + answered + "; try again later)");
        default:
            if (r.status >= 400 && r.status < 500) return CliError(ExitCode::rejected, message + " (" + answered + ")");
            return CliError::daemon_error(message + " (" + answered + ")");
    }
}

std::string url_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

}  // namespace funcd::cli
