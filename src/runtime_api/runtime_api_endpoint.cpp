#include "funcd/runtime_api/runtime_api_endpoint.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <optional>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace funcd {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Lambda's limit for a synchronous invocation's response payload (6 MB, counted in MiB).
constexpr std::size_t kMaxPayloadBytes = 6'291'456;
// A runtime that has started sending a request finishes it in milliseconds over loopback;
// this only reclaims the socket of a runtime that hangs mid-request. Between requests there is
// no timeout: an idle worker's runtime legitimately waits on `next` for as long as it lives.
constexpr auto kPartialRequestTimeout = std::chrono::seconds(60);
// Before closing, what the runtime already sent is read and dropped for at most this long, so
// the reset caused by closing with unread data does not destroy the answer (loopback peer).
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::size_t kDrainChunk = 64 * 1024;
// After a failed accept (typically EMFILE), wait before retrying so the loop does not spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

constexpr std::string_view kContinueLine = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kPathPrefix = "/2018-06-01/runtime/";
constexpr std::string_view kResponseTooLargeMessage =
    "Response payload size exceeded maximum allowed payload size (6291456 bytes).";

std::string error_body(std::string_view type, std::string_view message) {
    return nlohmann::json{{"errorMessage", message}, {"errorType", type}}.dump();
}

enum class RouteKind { next, response, error, init_error, not_found, bad_method };

struct Route {
    RouteKind kind;
    std::string_view request_id;  // points into the request target
};

Route route_of(bhttp::verb method, std::string_view target) {
    auto path = target.substr(0, target.find('?'));
    if (!path.starts_with(kPathPrefix)) return {RouteKind::not_found, {}};
    path.remove_prefix(kPathPrefix.size());

    auto expect = [method](bhttp::verb wanted, RouteKind kind, std::string_view id = {}) {
        return Route{method == wanted ? kind : RouteKind::bad_method, id};
    };
    if (path == "invocation/next") return expect(bhttp::verb::get, RouteKind::next);
    if (path == "init/error") return expect(bhttp::verb::post, RouteKind::init_error);
    if (path.starts_with("invocation/")) {
        path.remove_prefix(std::string_view("invocation/").size());
        const auto slash = path.find('/');
        if (slash == 0 || slash == std::string_view::npos) return {RouteKind::not_found, {}};
        const auto id = path.substr(0, slash);
        const auto action = path.substr(slash + 1);
        if (action == "response") return expect(bhttp::verb::post, RouteKind::response, id);
        if (action == "error") return expect(bhttp::verb::post, RouteKind::error, id);
    }
    return {RouteKind::not_found, {}};
}

class Session;

struct Core : std::enable_shared_from_this<Core> {
    Core(net::io_context& io, int listener_fd, std::weak_ptr<RuntimeApiHandler> h)
        : acceptor(io, tcp::v4(), listener_fd), accept_retry(io), handler(std::move(h)) {}

    void accept();
    void close();

    tcp::acceptor acceptor;
    net::steady_timer accept_retry;
    std::weak_ptr<RuntimeApiHandler> handler;
    bool closed = false;
    std::list<std::weak_ptr<Session>> sessions;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<Core> core, tcp::socket socket)
        : core_(std::move(core)), stream_(std::move(socket)) {}

    ~Session() {
        if (registered_) core_->sessions.erase(self_);
    }

    void start() {
        core_->sessions.push_front(weak_from_this());
        self_ = core_->sessions.begin();
        registered_ = true;
        wait_for_request();
    }

    bool deliver(const EventDelivery& event);

    void close() {
        state_ = State::closed;
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

private:
    enum class State { waiting, reading, handling, parked, writing, closed };

    void wait_for_request() {
        state_ = State::waiting;
        if (buffer_.size() > 0) return read_request();
        stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
            if (self->state_ != State::waiting) return;
            if (ec) return self->close();
            self->read_request();
        });
    }

    void read_request() {
        state_ = State::reading;
        parser_.emplace();
        // Oversized bodies are judged by route once the head is known.
        parser_->body_limit(boost::none);
        stream_.expires_after(kPartialRequestTimeout);
        bhttp::async_read_header(stream_, buffer_, *parser_,
                                 [self = shared_from_this()](error_code ec, std::size_t) {
                                     self->on_header(ec);
                                 });
    }

    void on_header(error_code ec) {
        if (state_ == State::closed) return;
        if (ec) return on_read_error(ec);
        const auto& req = parser_->get();
        if (const auto length = parser_->content_length(); length && *length > kMaxPayloadBytes)
            return too_large();
        parser_->body_limit(kMaxPayloadBytes);
        if (parser_->is_done()) return dispatch();
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
        bhttp::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (self->state_ == State::closed) return;
            if (ec) return self->on_read_error(ec);
            self->dispatch();
        });
    }

    void on_read_error(const error_code& ec) {
        if (ec == bhttp::error::body_limit) return too_large();
        if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
            ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) {
            if (ec != bhttp::error::end_of_stream && ec != net::error::operation_aborted)
                spdlog::debug("runtime api: connection closed while reading a request: {}", ec.message());
            return close();
        }
        reply(400, error_body("InvalidRequest", "malformed HTTP request: " + ec.message()), false);
    }

    // The body is over the payload limit. A runtime's oversized answer still ends its
    // invocation, with the error Lambda reports for it.
    void too_large() {
        const auto& req = parser_->get();
        const auto route = route_of(req.method(), req.target());
        if (route.kind == RouteKind::response) {
            if (auto handler = core_->handler.lock()) {
                state_ = State::handling;
                try {
                    handler->on_error(route.request_id, "Function.ResponseSizeTooLarge",
                                      error_body("Function.ResponseSizeTooLarge", kResponseTooLargeMessage));
                } catch (const std::exception& e) {
                    spdlog::error("runtime api: handler failed on an oversized response: {}", e.what());
                }
                if (state_ == State::closed) return;
            }
            return reply(413, error_body("RequestEntityTooLarge", kResponseTooLargeMessage), false);
        }
        reply(413,
              error_body("RequestEntityTooLarge", "request body exceeds the maximum allowed payload size (" +
                                                      std::to_string(kMaxPayloadBytes) + " bytes)"),
              false);
    }

    void dispatch() {
        stream_.expires_never();
        state_ = State::handling;
        auto msg = parser_->release();
        const bool keep_alive = msg.keep_alive();
        const auto route = route_of(msg.method(), msg.target());

        if (route.kind == RouteKind::not_found)
            return reply(404, error_body("InvalidRequest", "unknown Runtime API path " + std::string(msg.target())),
                         keep_alive);
        if (route.kind == RouteKind::bad_method)
            return reply(405,
                         error_body("InvalidRequest", "method " + std::string(msg.method_string()) +
                                                          " is not allowed on " + std::string(msg.target())),
                         keep_alive);

        auto handler = core_->handler.lock();
        if (!handler) return reply(500, error_body("ServiceException", "worker is shutting down"), false);

        try {
            RuntimeReply answer;
            switch (route.kind) {
                case RouteKind::next:
                    return park(*handler, keep_alive);
                case RouteKind::response:
                    answer = handler->on_response(route.request_id, std::move(msg.body()));
                    break;
                case RouteKind::error:
                    answer = handler->on_error(route.request_id, msg["Lambda-Runtime-Function-Error-Type"],
                                               std::move(msg.body()));
                    break;
                case RouteKind::init_error:
                    answer = handler->on_init_error(msg["Lambda-Runtime-Function-Error-Type"], std::move(msg.body()));
                    break;
                default:
                    break;
            }
            // The handler may have closed the endpoint (the worker is gone).
            if (state_ == State::closed) return;
            reply(answer.status, std::move(answer.body), keep_alive);
        } catch (const std::exception& e) {
            spdlog::error("runtime api: handler failed on {} {}: {}", std::string(msg.method_string()),
                          std::string(msg.target()), e.what());
            if (state_ != State::closed)
                reply(500, error_body("ServiceException", "internal error"), false);
        }
    }

    void park(RuntimeApiHandler& handler, bool keep_alive);
    void watch_peer();
    bool peer_gone();

    void reply(int status, std::string body, bool keep_alive) {
        reply_ = {};
        reply_.result(static_cast<unsigned>(status >= 100 && status <= 999 ? status : 500));
        reply_.set(bhttp::field::content_type, "application/json");
        reply_.body() = std::move(body);
        reply_.keep_alive(keep_alive && !core_->closed);
        reply_.prepare_payload();
        state_ = State::writing;
        bhttp::async_write(stream_, reply_, [self = shared_from_this()](error_code ec, std::size_t) {
            self->after_write(ec, self->reply_.keep_alive());
        });
    }

    void after_write(const error_code& ec, bool keep_alive) {
        if (state_ == State::closed) return;
        if (ec) {
            spdlog::debug("runtime api: writing an answer failed: {}", ec.message());
            return close();
        }
        if (!keep_alive) return linger_close();
        wait_for_request();
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
        stream_.async_read_some(buffer_.prepare(kDrainChunk), [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return self->close();
            self->buffer_.clear();
            self->drain();
        });
    }

    std::shared_ptr<Core> core_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    bhttp::response<bhttp::string_body> reply_;
    bhttp::response<bhttp::buffer_body> event_;
    std::shared_ptr<const std::string> payload_;  // keeps the event body alive while it is written
    std::list<std::weak_ptr<Session>>::iterator self_;
    bool registered_ = false;
    State state_ = State::waiting;
    bool parked_keep_alive_ = true;
    unsigned watch_generation_ = 0;
    bool watching_ = false;
};

class Waiter final : public NextWaiter {
public:
    explicit Waiter(std::weak_ptr<Session> session) : session_(std::move(session)) {}
    bool deliver(const EventDelivery& event) override {
        const auto session = session_.lock();
        return session && session->deliver(event);
    }

private:
    std::weak_ptr<Session> session_;
};

void Session::park(RuntimeApiHandler& handler, bool keep_alive) {
    state_ = State::parked;
    parked_keep_alive_ = keep_alive;
    handler.on_next(std::make_shared<Waiter>(weak_from_this()));
    // on_next may already have delivered (or closed the endpoint).
    if (state_ == State::parked) watch_peer();
}

// While parked nothing is read, but a runtime that disconnects must not be handed an event:
// readability with nothing to read means the peer closed.
void Session::watch_peer() {
    watching_ = true;
    const unsigned generation = ++watch_generation_;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), generation](error_code ec) {
        if (generation != self->watch_generation_ || self->state_ != State::parked) return;
        self->watching_ = false;
        if (ec || self->peer_gone()) return self->close();
        // The runtime sent more before its event: leave it buffered in the kernel and read it
        // after the event; watching again would only spin on the pending bytes.
    });
}

bool Session::peer_gone() {
    char byte;
    const auto n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return false;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
    if (n < 0) spdlog::debug("runtime api: parked connection failed: {}", std::strerror(errno));
    return true;
}

bool Session::deliver(const EventDelivery& event) {
    if (state_ != State::parked) return false;
    // The watch's completion may still be queued; one peek settles whether the runtime is there.
    if (peer_gone()) {
        close();
        return false;
    }
    if (watching_) {
        ++watch_generation_;
        watching_ = false;
        error_code ignored;
        stream_.socket().cancel(ignored);
    }
    state_ = State::writing;

    payload_ = event.payload;
    event_ = {};
    event_.result(bhttp::status::ok);
    event_.set("Lambda-Runtime-Aws-Request-Id", event.request_id);
    event_.set("Lambda-Runtime-Deadline-Ms", std::to_string(event.deadline_ms));
    event_.set("Lambda-Runtime-Invoked-Function-Arn", event.function_arn);
    if (!event.trace_id.empty()) event_.set("Lambda-Runtime-Trace-Id", event.trace_id);
    event_.set(bhttp::field::content_type, "application/json");
    event_.body().data = payload_ ? const_cast<char*>(payload_->data()) : nullptr;
    event_.body().size = payload_ ? payload_->size() : 0;
    event_.body().more = false;
    event_.content_length(event_.body().size);
    event_.keep_alive(parked_keep_alive_ && !core_->closed);

    bhttp::async_write(stream_, event_, [self = shared_from_this()](error_code ec, std::size_t) {
        self->payload_.reset();
        self->after_write(ec, self->event_.keep_alive());
    });
    return true;
}

void Core::accept() {
    acceptor.async_accept([self = shared_from_this()](error_code ec, tcp::socket socket) {
        if (self->closed) return;
        if (ec) {
            spdlog::error("runtime api: accept failed: {}", ec.message());
            self->accept_retry.expires_after(kAcceptRetryDelay);
            self->accept_retry.async_wait([self](error_code wait_ec) {
                if (!wait_ec && !self->closed) self->accept();
            });
            return;
        }
        error_code opt_ec;
        socket.set_option(tcp::no_delay(true), opt_ec);
        if (opt_ec)
            spdlog::debug("runtime api: dropping a connection that closed on accept: {}", opt_ec.message());
        else
            std::make_shared<Session>(self, std::move(socket))->start();
        self->accept();
    });
}

void Core::close() {
    if (closed) return;
    closed = true;
    error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
    // Closing can end a session and erase it from the list, so walk a snapshot.
    std::vector<std::shared_ptr<Session>> live;
    for (const auto& weak : sessions)
        if (auto s = weak.lock()) live.push_back(std::move(s));
    for (const auto& s : live) s->close();
}

}  // namespace

struct RuntimeApiEndpoint::Impl : Core {
    using Core::Core;
};

RuntimeApiEndpoint::RuntimeApiEndpoint(boost::asio::io_context& io, UniqueFd listener,
                                       std::weak_ptr<RuntimeApiHandler> handler)
    : impl_(std::make_shared<Impl>(io, listener.get(), std::move(handler))) {
    listener.release();  // the acceptor owns it now
    impl_->accept();
}

RuntimeApiEndpoint::~RuntimeApiEndpoint() { close(); }

void RuntimeApiEndpoint::close() { impl_->close(); }

}  // namespace funcd
