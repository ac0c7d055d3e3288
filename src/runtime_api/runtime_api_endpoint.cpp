#include "funcd/runtime_api/runtime_api_endpoint.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <list>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/base64.hpp"
#include "funcd/common/lazy_deadline.hpp"
#include "funcd/common/json_text.hpp"
#include "funcd/runtime_api/runtime_body_buffer.hpp"
#include "funcd/runtime_api/runtime_request_parser.hpp"
#include "funcd/runtime_api/runtime_route.hpp"
#include "funcd/runtime_api/tcp_peer.hpp"

namespace funcd {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
// The io_context's own executor type rather than the type-erased default: every socket
// operation copies its executor, and any_io_executor's copies showed up in profiles.
using Executor = net::io_context::executor_type;
// Generic: the same session serves TCP connections and the runtime's own AF_UNIX one.
using Protocol = net::generic::stream_protocol;
using Socket = net::basic_stream_socket<Protocol, Executor>;
using Acceptor = net::basic_socket_acceptor<Protocol, Executor>;
using Timer = net::basic_waitable_timer<Clock, net::wait_traits<Clock>, Executor>;

// Before closing, what the runtime already sent is read and dropped for at most this long, so
// the reset caused by closing with unread data does not destroy the answer (loopback peer).
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// First read size: a Runtime API request head is a few hundred bytes, so one small read
// usually holds a whole request. A read that fills the buffer means a large body is
// arriving, and the buffer grows up to Beast's own read size (64 KiB) for it.
constexpr std::size_t kInitialReadBytes = 4 * 1024;
constexpr std::size_t kMaxReadBytes = 64 * 1024;
// After a failed accept (typically EMFILE), wait before retrying so the loop does not spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

constexpr std::string_view kContinueLine = "HTTP/1.1 100 Continue\r\n\r\n";

std::string too_large_message(std::uint64_t limit) {
    return "Response payload size exceeded maximum allowed payload size (" + std::to_string(limit) + " bytes).";
}

std::string error_body(std::string_view type, std::string_view message) {
    return json_text({{"errorMessage", message}, {"errorType", type}});
}

void append_number(std::string& out, std::uint64_t v) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    out.append(digits, end);
}

class Session;

int socket_domain(int fd) {
    int domain = AF_INET;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
        spdlog::error("runtime api: getsockopt(SO_DOMAIN) fd={} failed: {} (errno {})", fd, std::strerror(errno),
                      errno);
    return domain;
}

struct Core : std::enable_shared_from_this<Core> {
    Core(net::io_context& io, const RuntimeApiLimits& l, int listener_fd, std::weak_ptr<RuntimeApiHandler> h,
         std::optional<uid_t> peer)
        : limits(l),
          acceptor(io.get_executor(), Protocol(socket_domain(listener_fd), IPPROTO_TCP), listener_fd),
          accept_retry(io.get_executor()),
          handler(std::move(h)),
          peer_uid(peer) {
        bodies.limit = limits.max_body_bytes_per_worker;
    }

    void accept();
    void adopt(int connected_fd);
    void close();
    // Whether a TCP connection just accepted may be served (see RuntimeApiEndpoint).
    bool admit(Socket& socket);

    const RuntimeApiLimits limits;
    Acceptor acceptor;
    Timer accept_retry;
    std::weak_ptr<RuntimeApiHandler> handler;
    const std::optional<uid_t> peer_uid;
    bool closed = false;
    // Every connection that has not ended yet (a lingering close included): what counts
    // against max_connections_per_worker.
    std::list<std::weak_ptr<Session>> sessions;
    BodyBudget bodies;
    std::uint64_t foreign_peers = 0;  // connections refused for their owner, for the log
};

// One runtime connection. Exactly one read is posted at a time and it reads into its own
// chunk, so the parse buffer is only touched on the loop's own turn. The read stays posted
// while a `next` is parked: that is how a runtime that hangs up is noticed (end of stream),
// without arming a readiness watch (an epoll_ctl) for every event.
class Session : public std::enable_shared_from_this<Session> {
public:
    // `local`: an AF_UNIX connection, where writing to a peer that has gone fails at once.
    Session(std::shared_ptr<Core> core, Socket socket, bool local = false)
        : core_(std::move(core)),
          socket_(std::move(socket)),
          deadline_(socket_.get_executor()),
          body_(core_->bodies),
          local_(local) {}

    ~Session() {
        if (registered_) core_->sessions.erase(self_);
    }

    void start() {
        core_->sessions.push_front(weak_from_this());
        self_ = core_->sessions.begin();
        registered_ = true;
        chunk_.resize(kInitialReadBytes);
        head_.reserve(512);
        begin_request();
    }

    bool deliver(const EventDelivery& event);

    void close() {
        if (stream_ && stream_->state() == ResponseStream::State::open) stream_broken();
        state_ = State::closed;
        lingering_ = false;
        parked_self_.reset();
        paused_self_.reset();
        error_code ignored;
        socket_.shutdown(net::socket_base::shutdown_both, ignored);
        socket_.close(ignored);
        deadline_.cancel();
    }

private:
    // waiting: between requests, nothing of the next one received; reading: a request has
    // begun; parked: a `next` waits for its event; closed also covers a lingering close.
    enum class State { waiting, reading, handling, parked, writing, closed };
    using WriteDone = void (Session::*)(const error_code&);

    void begin_request() {
        state_ = State::waiting;
        stream_.reset();
        stream_paused_ = false;
        body_decided_ = false;
        parser_.emplace(target_, body_);
        continue_sent_ = false;
        request_timed_ = false;
        read_some();
    }

    void read_some() {
        if (reading_) return;
        reading_ = true;
        socket_.async_read_some(net::buffer(chunk_), [self = shared_from_this()](error_code ec, std::size_t n) {
            self->reading_ = false;
            self->on_read(ec, n);
        });
    }

    void on_read(const error_code& ec, std::size_t n) {
        if (lingering_) {
            if (ec) return close();
            return read_some();  // dropped
        }
        if (state_ == State::closed) return;
        if (ec) {
            if (state_ == State::writing) {
                // The answer being written may still reach a runtime that only shut down its
                // sending side; the connection ends after it.
                peer_done_ = true;
                return;
            }
            if (state_ == State::reading && ec != net::error::operation_aborted)
                spdlog::debug("runtime api: connection closed while reading a request: {}",
                              ec == net::error::eof ? std::string("partial message") : ec.message());
            return close();
        }
        const auto prepared = buffer_.prepare(n);
        std::memcpy(prepared.data(), chunk_.data(), n);
        buffer_.commit(n);
        if (n == chunk_.size() && chunk_.size() < kMaxReadBytes) chunk_.resize(kMaxReadBytes);

        if (state_ == State::waiting || state_ == State::reading) return parse();
        // Parked or writing: the runtime sent more before its event was written. It is
        // parsed after that, and reading stops meanwhile, so a runtime that keeps sending is
        // held back by TCP rather than by our memory.
    }

    void parse() {
        for (;;) {
            // A streamed body's caller has not taken what it holds: the rest waits in the
            // socket (and the runtime's writes block) until it has.
            if (stream_ && stream_->full()) return pause_stream();
            if (buffer_.size() == 0) break;
            state_ = State::reading;
            error_code ec;
            const std::size_t used = parser_->put(buffer_.data(), ec);
            buffer_.consume(used);
            if (ec == bhttp::error::need_more) break;
            if (ec) return on_parse_error(ec);
            if (!body_decided_ && parser_->is_header_done()) {
                begin_body();
                if (state_ == State::closed) return;
            }
            if (parser_->is_done()) return dispatch();
        }
        if (parser_->is_header_done() && parser_->expect_continue && !continue_sent_) {
            continue_sent_ = true;
            return write({net::buffer(held_), net::buffer(kContinueLine.data(), kContinueLine.size()), {}},
                         &Session::after_continue);
        }
        if (state_ == State::reading) start_request_deadline();
        read_some();
    }

    // Once the head is in: a streamed response's body goes to the worker's stream as it
    // arrives (when the worker wants it streamed), any other body to the buffer.
    void begin_body() {
        body_decided_ = true;
        if (!parser_->streaming) return;
        const auto route = runtime_route_of(parser_->method_string, target_);
        if (route.kind != RuntimeRouteKind::response) return;
        auto handler = core_->handler.lock();
        if (!handler) return;
        std::shared_ptr<ResponseStream> stream;
        try {
            stream = handler->on_response_stream(route.request_id, parser_->content_type);
        } catch (const std::exception& e) {
            spdlog::error("runtime api: handler failed on a streamed response's head: {}", e.what());
        }
        if (!stream || state_ == State::closed) return;
        stream_ = std::move(stream);
        stream_request_id_.assign(route.request_id);
        parser_->stream_to(*stream_, core_->limits.max_stream_bytes);
        // A stream lasts as long as its function runs: the invocation's timeout bounds it,
        // not the deadline for sending one request.
        clear_deadline();
        request_timed_ = true;
    }

    void pause_stream() {
        stream_paused_ = true;
        // Nothing else holds the connection meanwhile (no read or write is posted).
        paused_self_ = shared_from_this();
        stream_->when_drained([weak = weak_from_this()] {
            auto self = weak.lock();
            if (!self || !self->stream_paused_ || self->state_ == State::closed) return;
            self->stream_paused_ = false;
            self->paused_self_.reset();
            // Not from inside the caller's consume(): on the next turn.
            net::post(self->socket_.get_executor(), [self] {
                if (self->state_ == State::reading || self->state_ == State::waiting) self->parse();
            });
        });
    }

    // The connection ended before the streamed body did; the worker hears it on the next
    // turn, not from inside whatever closed the connection.
    void stream_broken() {
        auto stream = std::move(stream_);
        net::post(socket_.get_executor(), [handler = core_->handler, id = stream_request_id_] {
            if (auto h = handler.lock()) h->on_stream_broken(id);
        });
    }

    // Once per request, at its first byte: the whole request must arrive within the
    // deadline, however its bytes are spread out. A per-read timeout would let a runtime
    // that sends a byte now and then hold the connection and its buffers for ever.
    void start_request_deadline() {
        if (request_timed_) return;
        request_timed_ = true;
        set_deadline(core_->limits.request_deadline);
    }

    void after_continue(const error_code& ec) {
        held_.clear();
        if (state_ == State::closed) return;
        if (ec) return close();
        state_ = State::reading;
        if (buffer_.size() > 0) return parse();
        start_request_deadline();
        read_some();
    }

    void on_parse_error(const error_code& ec) {
        if (ec == bhttp::error::body_limit) return too_large();
        if (parser_->over_budget) {
            clear_deadline();
            return reply(429,
                         error_body("TooManyRequestsException",
                                    "this worker's Runtime API connections already hold " +
                                        std::to_string(core_->bodies.used) + " bytes of unfinished request bodies"
                                        " (limit " + std::to_string(core_->bodies.limit) +
                                        "); send one large body at a time"),
                         false);
        }
        reply(400, error_body("InvalidRequest", "malformed HTTP request: " + ec.message()), false);
    }

    // The body is over the payload limit. A runtime's oversized answer still ends its
    // invocation, with the error Lambda reports for it.
    void too_large() {
        clear_deadline();
        const std::uint64_t limit = stream_ ? core_->limits.max_stream_bytes : kMaxRuntimePayloadBytes;
        const auto route = runtime_route_of(parser_->method_string, target_);
        if (route.kind == RuntimeRouteKind::response) {
            if (auto handler = core_->handler.lock()) {
                state_ = State::handling;
                stream_.reset();  // ended by the error, not broken
                try {
                    handler->on_error(route.request_id, "Function.ResponseSizeTooLarge",
                                      error_body("Function.ResponseSizeTooLarge", too_large_message(limit)));
                } catch (const std::exception& e) {
                    spdlog::error("runtime api: handler failed on an oversized response: {}", e.what());
                }
                if (state_ == State::closed) return;
            }
            return reply(413, error_body("RequestEntityTooLarge", too_large_message(limit)), false);
        }
        reply(413,
              error_body("RequestEntityTooLarge", "request body exceeds the maximum allowed payload size (" +
                                                      std::to_string(kMaxRuntimePayloadBytes) + " bytes)"),
              false);
    }

    void dispatch() {
        clear_deadline();
        state_ = State::handling;
        const bool keep_alive = parser_->keep_alive();
        const auto route = runtime_route_of(parser_->method_string, target_);

        if (route.kind == RuntimeRouteKind::not_found)
            return reply(404, error_body("InvalidRequest", "unknown Runtime API path " + target_), keep_alive);
        if (route.kind == RuntimeRouteKind::bad_method)
            return reply(405,
                         error_body("InvalidRequest",
                                    "method " + parser_->method_string + " is not allowed on " + target_),
                         keep_alive);

        auto handler = core_->handler.lock();
        if (!handler) return reply(500, error_body("ServiceException", "worker is shutting down"), false);

        try {
            RuntimeReply answer;
            switch (route.kind) {
                case RuntimeRouteKind::next:
                    return park(*handler, keep_alive);
                case RuntimeRouteKind::response:
                    if (stream_) {
                        stream_.reset();  // ended here, not broken
                        answer = handler->on_stream_end(route.request_id, parser_->trailer_error_type,
                                                        trailer_error_document());
                    } else if (!parser_->trailer_error_type.empty()) {
                        // A streamed response the caller wanted whole, which ended in an error.
                        answer = handler->on_error(route.request_id, parser_->trailer_error_type,
                                                   trailer_error_document());
                    } else {
                        answer = handler->on_response(route.request_id, body_.take(), parser_->content_type);
                    }
                    break;
                case RuntimeRouteKind::error:
                    answer = handler->on_error(route.request_id, parser_->error_type, body_.take());
                    break;
                case RuntimeRouteKind::init_error:
                    answer = handler->on_init_error(parser_->error_type, body_.take());
                    break;
                default:
                    break;
            }
            // The handler may have closed the endpoint (the worker is gone).
            if (state_ == State::closed) return;
            reply(answer.status, std::move(answer.body), keep_alive);
        } catch (const std::exception& e) {
            spdlog::error("runtime api: handler failed on {} {}: {}", parser_->method_string, target_, e.what());
            if (state_ != State::closed) reply(500, error_body("ServiceException", "internal error"), false);
        }
    }

    // The Lambda-Runtime-Function-Error-Body trailer decoded (it is base64); as sent when it
    // is not base64, so the error is not lost.
    std::string trailer_error_document() const {
        const std::string& sent = parser_->trailer_error_body;
        if (auto decoded = base64_decode(sent)) return std::move(*decoded);
        return sent;
    }

    void park(RuntimeApiHandler& handler, bool keep_alive) {
        state_ = State::parked;
        parked_keep_alive_ = keep_alive;
        handler.on_next(std::make_shared<Waiter>(weak_from_this()));
        // on_next may already have delivered (or closed the endpoint).
        if (state_ != State::parked) return;
        // The waiter only holds the connection weakly, and with bytes already buffered
        // beyond the `next` (they wait until after the event, see on_read) no read holds it.
        parked_self_ = shared_from_this();
        if (buffer_.size() == 0) read_some();
    }

    bool peer_gone() {
        char byte;
        const auto n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) return false;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
        if (n < 0) spdlog::debug("runtime api: parked connection failed: {}", std::strerror(errno));
        return true;
    }

    void reply(int status, std::string body, bool keep_alive) {
        if (status < 100 || status > 999) status = 500;
        if (status / 100 == 2 && keep_alive && held_.empty() && next_is_buffered() && !core_->closed)
            return hold(status, body);
        head_.clear();
        head_ += "HTTP/1.1 ";
        append_number(head_, static_cast<unsigned>(status));
        head_ += ' ';
        const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
        head_.append(reason.data(), reason.size());
        head_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
        append_number(head_, body.size());
        keep_alive_ = keep_alive && !core_->closed;
        head_ += keep_alive_ ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
        reply_body_ = std::move(body);
        state_ = State::writing;
        write({net::buffer(held_), net::buffer(head_), net::buffer(reply_body_)}, &Session::after_write);
    }

    // Whether the whole head of a `GET .../invocation/next` already follows the current
    // request: only then is the runtime known not to wait for the current answer. Anything
    // else sent ahead (a stray CRLF some clients add after a body, half a request) gets
    // its answer at once.
    bool next_is_buffered() const {
        static constexpr std::string_view kNextLine = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n";
        const std::string_view ahead(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        return ahead.starts_with(kNextLine) && ahead.find("\r\n\r\n") != std::string_view::npos;
    }

    // The runtime sent its next `next` before reading this answer (pipelining, as our own
    // runtimes do after posting a response), so it is not waiting for the answer by itself:
    // it goes out with the answer to that `next`, the next event. That saves a write and a
    // wake-up of the runtime per invocation. Order is kept, and only one answer is ever
    // held. Refusals are not held: a runtime that gives up on one hangs up before its
    // pipelined `next` is given an event (deliver() checks).
    void hold(int status, std::string_view body) {
        held_ = "HTTP/1.1 ";
        append_number(held_, static_cast<unsigned>(status));
        held_ += ' ';
        const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
        held_.append(reason.data(), reason.size());
        held_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
        append_number(held_, body.size());
        held_ += "\r\n\r\n";
        held_ += body;
        begin_request();
        parse_later();
    }

    // Writes at once when the socket takes it all (the usual case on loopback), which saves
    // a completion's trip through the loop; what is left is written asynchronously. Either
    // way `done` runs on this turn of the loop or a later one, never inside a caller of ours.
    using Buffers = std::array<net::const_buffer, 3>;
    void write(const Buffers& buffers, WriteDone done) {
        error_code ec;
        const std::size_t written = socket_.write_some(buffers, ec);
        write_rest(buffers, written, ec, done);
    }

    // Continues a write whose first write_some wrote `written` bytes and ended with `ec`.
    void write_rest(const Buffers& buffers, std::size_t written, error_code ec, WriteDone done) {
        if (!ec && written == net::buffer_size(buffers)) return (this->*done)(ec);
        if (ec && ec != net::error::would_block && ec != net::error::try_again) return (this->*done)(ec);
        beast::buffers_suffix<Buffers> rest(buffers);
        rest.consume(written);
        net::async_write(socket_, rest, [self = shared_from_this(), done](error_code ec, std::size_t) {
            (self.get()->*done)(ec);
        });
    }

    void after_write(const error_code& ec) {
        payload_.reset();
        reply_body_.clear();
        held_.clear();
        if (state_ == State::closed) return;
        if (ec) {
            spdlog::debug("runtime api: writing an answer failed: {}", ec.message());
            return close();
        }
        if (peer_done_) return close();
        if (!keep_alive_) return linger_close();
        begin_request();
        parse_later();
    }

    // A request the runtime sent ahead is parsed on the next turn: this may be running inside
    // deliver() or a handler, and the worker must not be re-entered from there.
    void parse_later() {
        if (buffer_.size() == 0) return;
        net::post(socket_.get_executor(), [self = shared_from_this()] {
            if (self->state_ == State::waiting) self->parse();
        });
    }

    void linger_close() {
        state_ = State::closed;
        error_code ec;
        socket_.shutdown(net::socket_base::shutdown_send, ec);
        if (ec) return close();
        lingering_ = true;
        buffer_.clear();
        set_deadline(kLingerTimeout);
        read_some();
    }

    void set_deadline(Clock::duration after) {
        deadline_.set(after, [this] { return shared_from_this(); });
    }
    void clear_deadline() { deadline_.clear(); }

    // Called by deadline_ once a deadline set and not cleared has passed.
    friend class LazyDeadline<Timer>;
    void on_deadline() {
        if (state_ == State::closed && !lingering_) return;
        if (!lingering_)
            spdlog::info("runtime api: closing a connection that did not finish a request within {} ms",
                         core_->limits.request_deadline.count());
        close();
    }

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

    std::shared_ptr<Core> core_;
    Socket socket_;
    LazyDeadline<Timer> deadline_;
    std::vector<char> chunk_;     // what the posted read reads into
    beast::flat_buffer buffer_;   // received and not yet parsed
    std::string target_;          // the current request's target, reused
    BodyBuffer body_;             // the current request's body
    std::optional<RuntimeRequestParser> parser_;
    std::string head_;            // the answer's head, reused
    std::string reply_body_;
    std::string held_;  // an answer that goes out with the next one, see hold()
    std::shared_ptr<const std::string> payload_;  // keeps the event body alive while it is written
    std::shared_ptr<Session> parked_self_;          // alive while parked; released by deliver() or close()
    std::shared_ptr<ResponseStream> stream_;        // the current request's body goes here (response streaming)
    std::string stream_request_id_;
    bool stream_paused_ = false;  // waiting for the stream's caller to take what it holds
    std::shared_ptr<Session> paused_self_;  // alive while paused; released on resuming or close()
    bool body_decided_ = false;   // begin_body() has run for the current request
    std::list<std::weak_ptr<Session>>::iterator self_;
    bool registered_ = false;
    State state_ = State::waiting;
    bool reading_ = false;
    bool lingering_ = false;
    bool peer_done_ = false;  // the runtime shut down its side
    bool continue_sent_ = false;
    bool request_timed_ = false;  // the current request's deadline runs
    bool keep_alive_ = true;
    bool parked_keep_alive_ = true;
    bool local_ = false;
};

bool Session::deliver(const EventDelivery& event) {
    if (state_ != State::parked) return false;
    // The posted read learns of a hang-up only on a later turn of the loop; one peek settles
    // whether the runtime is still there, so the event is not handed to a dead connection.
    // Over AF_UNIX the write itself tells (EPIPE), which saves that system call.
    if (!local_ && peer_gone()) {
        close();
        return false;
    }
    const auto self = std::move(parked_self_);
    payload_ = event.payload;
    const std::size_t length = payload_ ? payload_->size() : 0;
    head_.clear();
    head_ += "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: ";
    head_ += event.request_id;
    head_ += "\r\nLambda-Runtime-Deadline-Ms: ";
    append_number(head_, static_cast<std::uint64_t>(event.deadline_ms));
    head_ += "\r\nLambda-Runtime-Invoked-Function-Arn: ";
    head_ += event.function_arn;
    if (!event.trace_id.empty()) {
        head_ += "\r\nLambda-Runtime-Trace-Id: ";
        head_ += event.trace_id;
    }
    if (!event.client_context.empty()) {
        head_ += "\r\nLambda-Runtime-Client-Context: ";
        head_ += event.client_context;
    }
    head_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
    append_number(head_, length);
    keep_alive_ = parked_keep_alive_ && !core_->closed;
    head_ += keep_alive_ ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";

    state_ = State::writing;
    const Buffers buffers{net::buffer(held_), net::buffer(head_),
                          payload_ ? net::buffer(*payload_) : net::const_buffer()};
    error_code ec;
    const std::size_t written = socket_.write_some(buffers, ec);
    if (written == 0 && ec && ec != net::error::would_block && ec != net::error::try_again) {
        // Nothing of the event left: it is still the worker's, for a later `next`.
        spdlog::debug("runtime api: runtime gone before its event was written: {}", ec.message());
        payload_.reset();
        close();
        return false;
    }
    write_rest(buffers, written, ec, &Session::after_write);
    return true;
}

void Core::accept() {
    acceptor.async_accept([self = shared_from_this()](error_code ec, Socket socket) {
        if (self->closed) return;
        if (ec) {
            spdlog::error("runtime api: accept failed: {}", ec.message());
            self->accept_retry.expires_after(kAcceptRetryDelay);
            self->accept_retry.async_wait([self](error_code wait_ec) {
                if (!wait_ec && !self->closed) self->accept();
            });
            return;
        }
        if (self->admit(socket)) {
            error_code opt_ec;
            socket.set_option(tcp::no_delay(true), opt_ec);
            // Answers are first written without waiting (see Session::write).
            if (!opt_ec) socket.non_blocking(true, opt_ec);
            if (opt_ec)
                spdlog::debug("runtime api: dropping a connection that closed on accept: {}", opt_ec.message());
            else
                std::make_shared<Session>(self, std::move(socket))->start();
        }
        self->accept();
    });
}

bool Core::admit(Socket& socket) {
    error_code ignored;
    if (peer_uid) {
        // Checked before anything is read or written: a process that is not the worker's
        // learns nothing but that the connection closed.
        const auto owner = tcp_peer_uid(socket.native_handle());
        if (!owner || *owner != *peer_uid) {
            // Warned once per worker, then counted: a local process that keeps trying must
            // not flood the log.
            if (foreign_peers++ == 0)
                spdlog::warn("runtime api: refused a connection from a socket owned by {} (the worker's uid is {}); "
                             "only the worker's own processes may use its Runtime API",
                             owner ? std::to_string(*owner) : std::string("an unknown owner"), *peer_uid);
            else
                spdlog::debug("runtime api: refused connection {} from a foreign socket", foreign_peers);
            socket.close(ignored);
            return false;
        }
    }
    if (sessions.size() >= limits.max_connections_per_worker) {
        // Answered at once without reading the request, then closed: the runtime learns
        // why, and holds no more of the daemon than this moment.
        static const std::string refusal = [] {
            const std::string body =
                error_body("TooManyRequestsException", "this worker already holds the most Runtime API connections "
                                                       "one worker may (runtime_api.max_connections_per_worker)");
            return "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        }();
        spdlog::debug("runtime api: refused a connection beyond {} of one worker", limits.max_connections_per_worker);
        [[maybe_unused]] const auto n =
            ::send(socket.native_handle(), refusal.data(), refusal.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        socket.shutdown(net::socket_base::shutdown_send, ignored);
        socket.close(ignored);
        return false;
    }
    return true;
}

void Core::adopt(int connected_fd) {
    error_code ec;
    Socket socket(acceptor.get_executor());
    socket.assign(Protocol(AF_UNIX, 0), connected_fd, ec);
    if (ec) ::close(connected_fd);
    if (!ec) socket.non_blocking(true, ec);  // answers are first written without waiting
    if (ec) {
        spdlog::error("runtime api: cannot serve the runtime's own connection: {}", ec.message());
        return;
    }
    std::make_shared<Session>(shared_from_this(), std::move(socket), true)->start();
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

RuntimeApiEndpoint::RuntimeApiEndpoint(boost::asio::io_context& io, const RuntimeApiLimits& limits,
                                       UniqueFd listener, std::weak_ptr<RuntimeApiHandler> handler,
                                       UniqueFd connection, std::optional<uid_t> peer_uid)
    : impl_(std::make_shared<Impl>(io, limits, listener.get(), std::move(handler), peer_uid)) {
    listener.release();  // the acceptor owns it now
    impl_->accept();
    if (connection) impl_->adopt(connection.release());  // the session's socket owns it now
}

RuntimeApiEndpoint::~RuntimeApiEndpoint() { close(); }

void RuntimeApiEndpoint::close() { impl_->close(); }

RuntimeApiUsage RuntimeApiEndpoint::usage() const { return {impl_->sessions.size(), impl_->bodies.used}; }

}  // namespace funcd
