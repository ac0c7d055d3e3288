#include "funcd/gateway/http_server.hpp"

#include <algorithm>
#include <cctype>
#include <list>
#include <optional>
#include <string_view>
#include <system_error>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace funcd::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Sent when a client waits for permission to send its body (curl does for bodies over 1 KiB
// and would otherwise stall for a second before sending anyway).
constexpr std::string_view kContinueLine = "HTTP/1.1 100 Continue\r\n\r\n";

// After answering and before closing, the rest of what the client already sent is read and
// dropped for at most this long: closing a socket with unread data sends a reset, which can
// destroy the answer before the client reads it. Two seconds covers a loopback or LAN peer;
// nginx uses 5 s (lingering_timeout) for peers on the open internet.
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// Read size while draining for a lingering close (Beast's own read size for message reads).
constexpr std::size_t kDrainChunk = 64 * 1024;

// After a failed accept (typically EMFILE), wait before retrying so the loop does not spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

std::string error_body(std::string_view type, std::string_view message) {
    return nlohmann::json{{"error", {{"type", type}, {"message", message}}}}.dump();
}

class Session;

// What sessions share with the server; outlives the Server while answers are in flight.
struct Core : std::enable_shared_from_this<Core> {
    Core(net::io_context& io, ServerOptions opts, BodyLimitFn limit, HandlerFn fn)
        : options(std::move(opts)),
          body_limit(std::move(limit)),
          handler(std::move(fn)),
          acceptor(io),
          accept_retry(io) {}

    void accept();

    ServerOptions options;
    BodyLimitFn body_limit;
    HandlerFn handler;
    tcp::acceptor acceptor;
    net::steady_timer accept_retry;
    unsigned short bound_port = 0;
    bool stopped = false;
    std::list<std::weak_ptr<Session>> sessions;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<Core> core, tcp::socket socket, std::string remote)
        : core_(std::move(core)), stream_(std::move(socket)), remote_(std::move(remote)) {}

    ~Session() {
        if (registered_) core_->sessions.erase(self_);
    }

    void start() {
        core_->sessions.push_front(weak_from_this());
        self_ = core_->sessions.begin();
        registered_ = true;
        read_header();
    }

    // Server shutdown: a connection between requests is closed now, a busy one after its answer.
    void on_server_stop() {
        if (state_ == State::reading_header) close();
    }

private:
    enum class State { reading_header, reading_body, handling, writing, closed };

    void read_header() {
        state_ = State::reading_header;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(
            std::min<std::size_t>(core_->options.header_limit, UINT32_MAX)));
        // The limit depends on the endpoint, so it is applied once the head is known.
        parser_->body_limit(boost::none);
        stream_.expires_after(core_->options.read_timeout);
        bhttp::async_read_header(stream_, buffer_, *parser_,
                                 [self = shared_from_this()](error_code ec, std::size_t) {
                                     self->on_header(ec);
                                 });
    }

    void on_header(error_code ec) {
        if (state_ == State::closed) return;
        if (ec) return on_read_error(ec);

        auto& req = parser_->get();
        const std::size_t limit = core_->body_limit(req.method_string(), req.target());
        if (const auto length = parser_->content_length(); length && *length > limit) {
            return answer_and_close(413, error_body("RequestTooLargeException",
                                                    "request body is " + std::to_string(*length) +
                                                        " bytes; the limit for this endpoint is " +
                                                        std::to_string(limit) + " bytes"));
        }
        limit_ = limit;
        parser_->body_limit(limit);
        if (parser_->is_done()) return dispatch();

        state_ = State::reading_body;
        if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
            net::async_write(stream_, net::buffer(kContinueLine.data(), kContinueLine.size()),
                             [self = shared_from_this()](error_code ec, std::size_t) {
                                 if (self->state_ == State::closed) return;
                                 if (ec) return self->on_read_error(ec);
                                 self->read_body();
                             });
            return;
        }
        read_body();
    }

    void read_body() {
        stream_.expires_after(core_->options.read_timeout);
        bhttp::async_read(stream_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, std::size_t) {
                              if (self->state_ == State::closed) return;
                              if (ec) return self->on_read_error(ec);
                              self->dispatch();
                          });
    }

    void on_read_error(const error_code& ec) {
        if (ec == bhttp::error::body_limit) {
            return answer_and_close(413, error_body("RequestTooLargeException",
                                                    "request body exceeds " + std::to_string(limit_) +
                                                        " bytes, the limit for this endpoint"));
        }
        // A peer that leaves, times out or is cut off by stop() is no error worth an answer.
        if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
            ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
            if (ec != bhttp::error::end_of_stream && ec != net::error::operation_aborted)
                spdlog::debug("http: connection from {} closed while reading: {}", remote_, ec.message());
            return close();
        }
        answer_and_close(400, error_body("InvalidRequestContentException",
                                         "malformed HTTP request: " + ec.message()));
    }

    void dispatch() {
        stream_.expires_never();
        state_ = State::handling;
        auto msg = parser_->release();
        version_ = msg.version();
        keep_alive_ = msg.keep_alive();

        Request request;
        request.method = std::string(msg.method_string());
        request.target = std::string(msg.target());
        request.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
        for (const auto& field : msg) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            request.headers.emplace_back(std::move(name), std::string(field.value()));
        }
        request.body = std::move(msg.body());
        request.remote_address = remote_;

        try {
            core_->handler(std::move(request),
                           [self = shared_from_this()](Response r) { self->respond(std::move(r)); });
        } catch (const std::exception& e) {
            spdlog::error("http: handler failed for a request from {}: {}", remote_, e.what());
            if (state_ == State::handling) {
                keep_alive_ = false;
                respond(Response{500, {}, error_body("ServiceException", "internal error"), "application/json"});
            }
        }
    }

    void respond(Response r) {
        if (state_ != State::handling) {
            if (state_ != State::closed)
                spdlog::warn("http: second answer to one request from {} dropped", remote_);
            return;
        }
        res_ = {};
        res_.version(version_);
        res_.result(static_cast<unsigned>(r.status >= 100 && r.status <= 999 ? r.status : 500));
        res_.set(bhttp::field::server, "funcd");
        if (!r.content_type.empty()) res_.set(bhttp::field::content_type, r.content_type);
        for (const auto& [name, value] : r.headers) res_.insert(name, value);
        res_.body() = std::move(r.body);
        res_.keep_alive(keep_alive_ && !core_->stopped);
        res_.prepare_payload();
        write();
    }

    void answer_and_close(int status, std::string body) {
        version_ = parser_ ? parser_->get().version() : 11;
        if (version_ != 10 && version_ != 11) version_ = 11;
        keep_alive_ = false;
        state_ = State::handling;
        respond(Response{status, {}, std::move(body), "application/json"});
    }

    void write() {
        state_ = State::writing;
        // A client that stops reading its answer holds memory like one that stops sending.
        stream_.expires_after(core_->options.read_timeout);
        bhttp::async_write(stream_, res_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (self->state_ == State::closed) return;
            if (ec) {
                spdlog::debug("http: writing the answer to {} failed: {}", self->remote_, ec.message());
                return self->close();
            }
            if (!self->res_.keep_alive()) return self->linger_close();
            self->res_ = {};  // frees the body now rather than at the next answer
            self->read_header();
        });
    }

    void linger_close() {
        state_ = State::closed;
        error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) return close();
        buffer_.clear();
        stream_.expires_after(kLingerTimeout);
        drain();
    }

    void drain() {
        stream_.async_read_some(buffer_.prepare(kDrainChunk),
                                [self = shared_from_this()](error_code ec, std::size_t) {
                                    if (ec) return self->close();
                                    self->buffer_.clear();
                                    self->drain();
                                });
    }

    void close() {
        state_ = State::closed;
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

    std::shared_ptr<Core> core_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    bhttp::response<bhttp::string_body> res_;
    std::string remote_;
    std::list<std::weak_ptr<Session>>::iterator self_;
    bool registered_ = false;
    State state_ = State::reading_header;
    std::size_t limit_ = 0;
    unsigned version_ = 11;
    bool keep_alive_ = false;
};

void Core::accept() {
    acceptor.async_accept([self = shared_from_this()](error_code ec, tcp::socket socket) {
        if (self->stopped) return;
        if (ec) {
            spdlog::error("http: accept on port {} failed: {}", self->bound_port, ec.message());
            self->accept_retry.expires_after(kAcceptRetryDelay);
            self->accept_retry.async_wait([self](error_code wait_ec) {
                if (!wait_ec && !self->stopped) self->accept();
            });
            return;
        }
        error_code opt_ec;
        socket.set_option(tcp::no_delay(true), opt_ec);
        auto remote = socket.remote_endpoint(opt_ec);
        if (opt_ec) {
            // The peer is already gone; nothing to serve.
            spdlog::debug("http: dropping a connection that closed on accept: {}", opt_ec.message());
        } else {
            std::make_shared<Session>(self, std::move(socket), remote.address().to_string())->start();
        }
        self->accept();
    });
}

}  // namespace

struct Server::Impl : Core {
    using Core::Core;
};

Server::Server(boost::asio::io_context& io, ServerOptions options, BodyLimitFn body_limit, HandlerFn handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(body_limit), std::move(handler))) {}

Server::~Server() { stop(); }

void Server::listen() {
    auto& core = *impl_;
    const std::string where = core.options.host + ":" + std::to_string(core.options.port);
    try {
        tcp::resolver resolver(core.acceptor.get_executor());
        const auto results = resolver.resolve(core.options.host, std::to_string(core.options.port),
                                              tcp::resolver::passive | tcp::resolver::numeric_service);
        const tcp::endpoint endpoint = *results.begin();
        core.acceptor.open(endpoint.protocol());
        core.acceptor.set_option(net::socket_base::reuse_address(true));
        core.acceptor.bind(endpoint);
        core.acceptor.listen(net::socket_base::max_listen_connections);
        core.bound_port = core.acceptor.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
        spdlog::error("http: cannot listen on {}: {}", where, e.code().message());
        error_code ignored;
        core.acceptor.close(ignored);
        throw std::system_error(e.code(), "cannot listen on " + where);
    }
    spdlog::info("http: listening on {}:{}", core.options.host, core.bound_port);
    core.accept();
}

unsigned short Server::port() const { return impl_->bound_port; }

void Server::stop() {
    auto& core = *impl_;
    if (core.stopped) return;
    core.stopped = true;
    error_code ignored;
    core.acceptor.close(ignored);
    core.accept_retry.cancel();
    // Closing can end a session and erase it from the list, so walk a snapshot.
    std::vector<std::shared_ptr<Session>> live;
    for (const auto& weak : core.sessions)
        if (auto s = weak.lock()) live.push_back(std::move(s));
    for (const auto& s : live) s->on_server_stop();
}

}  // namespace funcd::http
