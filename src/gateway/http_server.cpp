#include "funcd/gateway/http_server.hpp"

#include <array>
#include <charconv>
#include <list>
#include <optional>
#include <string_view>
#include <system_error>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/lazy_deadline.hpp"
#include "funcd/gateway/request_parser.hpp"

namespace funcd::http {
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
using Socket = net::basic_stream_socket<tcp, Executor>;
using Acceptor = net::basic_socket_acceptor<tcp, Executor>;
using Timer = net::basic_waitable_timer<Clock, net::wait_traits<Clock>, Executor>;

// Sent when a client waits for permission to send its body (curl does for bodies over 1 KiB
// and would otherwise stall for a second before sending anyway).
constexpr std::string_view kContinueLine = "HTTP/1.1 100 Continue\r\n\r\n";
// The end of a chunked body (no trailers).
constexpr std::string_view kLastChunk = "0\r\n\r\n";

// After answering and before closing, the rest of what the client already sent is read and
// dropped for at most this long: closing a socket with unread data sends a reset, which can
// destroy the answer before the client reads it. Two seconds covers a loopback or LAN peer;
// nginx uses 5 s (lingering_timeout) for peers on the open internet.
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// Read size while a request head is awaited: API request heads are a few hundred bytes, and
// the buffer only grows past this when a head does not fit (up to the header limit).
constexpr std::size_t kHeadReadBytes = 4 * 1024;
// Read size for bodies and while draining for a lingering close (Beast's own read size).
constexpr std::size_t kBodyReadBytes = 64 * 1024;
// After a failed accept (typically EMFILE), wait before retrying so the loop does not spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

std::string error_body(std::string_view type, std::string_view message) {
    return nlohmann::json{{"error", {{"type", type}, {"message", message}}}}.dump();
}

void append_number(std::string& out, std::uint64_t v) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    out.append(digits, end);
}

class Session;

// What sessions share with the server; outlives the Server while answers are in flight.
struct Core : std::enable_shared_from_this<Core> {
    Core(net::io_context& io, ServerOptions opts, HeadFn head_fn, HandlerFn fn, TooLargeFn large)
        : options(std::move(opts)),
          head(std::move(head_fn)),
          handler(std::move(fn)),
          too_large(std::move(large)),
          acceptor(io.get_executor()),
          accept_retry(io.get_executor()) {}

    void accept();
    // At max_connections: closes the connection idle the longest (one that has sent nothing of
    // its next request), so connections opened and left idle cannot lock clients out until
    // their head timeout. False when every connection is busy.
    bool evict_idle();
    // A connection over max_connections: told so in one write that does not wait, and closed.
    void refuse_over_capacity(Socket& socket);

    ServerOptions options;
    HeadFn head;
    HandlerFn handler;
    TooLargeFn too_large;
    Acceptor acceptor;
    Timer accept_retry;
    unsigned short bound_port = 0;
    bool stopped = false;
    bool over_capacity_logged = false;  // once per stretch at the limit, not once per connection
    std::list<std::weak_ptr<Session>> sessions;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<Core> core, Socket socket, std::string remote)
        : core_(std::move(core)),
          socket_(std::move(socket)),
          deadline_(socket_.get_executor()),
          remote_(std::move(remote)) {}

    ~Session() {
        if (!registered_) return;
        core_->sessions.erase(self_);
        if (core_->sessions.size() + 1 < core_->options.limits.max_connections) core_->over_capacity_logged = false;
    }

    void start() {
        core_->sessions.push_front(weak_from_this());
        self_ = core_->sessions.begin();
        registered_ = true;
        head_.reserve(512);
        read_request();
    }

    // Server shutdown: a connection between requests is closed now, a busy one after its answer
    // (a streamed one after its stream).
    void on_server_stop() {
        if (state_ == State::reading_header) close();
    }

    // Nothing of a request received yet: a fresh or kept-alive connection waiting for one.
    bool idle() const { return state_ == State::reading_header && parser_ && !parser_->got_some() && buffer_.size() == 0; }
    // Closed to make room for a new connection (see Core::evict_idle).
    void evict() { close(); }

private:
    enum class State { reading_header, reading_body, handling, writing, streaming, closed };
    using WriteDone = void (Session::*)(const error_code&);

    // A fresh parser per request; the read timeout covers the wait for the head, as it did
    // for an idle keep-alive connection.
    void read_request() {
        state_ = State::reading_header;
        parser_.emplace(core_->options.limits.header_limit, core_->head);
        continue_sent_ = false;
        set_deadline(core_->options.limits.head_timeout);
        if (buffer_.size() == 0) return read_some();
        // A request the client sent ahead. Parsed on a later turn: this may run inside the
        // previous request's responder, and the handler must not be re-entered from there.
        net::post(socket_.get_executor(), [self = shared_from_this()] {
            if (self->state_ == State::reading_header) self->parse();
        });
    }

    void read_some() {
        // One read at a time: a streamed answer watches the client with a read of its own.
        if (reading_) return;
        reading_ = true;
        const std::size_t want = lingering_ || (parser_ && parser_->is_header_done()) ? kBodyReadBytes : kHeadReadBytes;
        socket_.async_read_some(buffer_.prepare(want), [self = shared_from_this()](error_code ec, std::size_t n) {
            self->reading_ = false;
            self->on_read(ec, n);
        });
    }

    void on_read(const error_code& ec, std::size_t n) {
        if (state_ == State::streaming) return on_read_while_streaming(ec, n);
        if (state_ == State::writing || state_ == State::handling) {
            // The watch of a streamed answer's client, ending as the answer does: what it
            // read is the next request, parsed after the answer; an error shows again then.
            if (!ec) buffer_.commit(n);
            return;
        }
        if (lingering_) {
            if (ec) return close();
            buffer_.clear();  // dropped
            return read_some();
        }
        if (state_ == State::closed) return;
        if (ec) {
            // A peer that leaves, times out or is cut off by stop() is no error worth an answer.
            const bool between_requests = ec == net::error::eof && parser_ && !parser_->got_some();
            if (!between_requests && ec != net::error::operation_aborted)
                spdlog::debug("http: connection from {} closed while reading: {}", remote_,
                              ec == net::error::eof ? std::string("partial message") : ec.message());
            return close();
        }
        buffer_.commit(n);
        parse();
    }

    void parse() {
        for (;;) {
            if (buffer_.size() == 0) break;
            error_code ec;
            const std::size_t used = parser_->put(buffer_.data(), ec);
            buffer_.consume(used);
            if (ec == bhttp::error::need_more) break;
            if (ec) return on_parse_error(ec);
            if (parser_->is_done()) return dispatch();
        }
        if (parser_->is_header_done()) {
            if (state_ == State::reading_header) {
                state_ = State::reading_body;
                set_deadline(core_->options.limits.body_timeout);  // the body gets its own allowance
            }
            if (parser_->expect_continue && !continue_sent_) {
                continue_sent_ = true;
                return write(net::buffer(kContinueLine.data(), kContinueLine.size()), {}, &Session::after_continue);
            }
        }
        read_some();
    }

    void after_continue(const error_code& ec) {
        if (state_ == State::closed) return;
        if (ec) {
            spdlog::debug("http: connection from {} closed while reading: {}", remote_, ec.message());
            return close();
        }
        state_ = State::reading_body;
        if (buffer_.size() > 0) return parse();
        read_some();
    }

    void on_parse_error(const error_code& ec) {
        if (parser_->refusal) return answer_and_close(std::move(*parser_->refusal));
        if (ec == bhttp::error::header_limit)
            return answer_and_close(431, error_body("RequestHeaderFieldsTooLargeException",
                                                    "the request head is larger than " +
                                                        std::to_string(core_->options.limits.header_limit) +
                                                        " bytes, the limit of this server"));
        if (ec == bhttp::error::body_limit) {
            if (core_->too_large)
                return answer_and_close(core_->too_large(parser_->request.method, parser_->request.target,
                                                         parser_->declared_too_large, parser_->limit));
            if (const auto length = parser_->declared_too_large)
                return answer_and_close(413, error_body("RequestTooLargeException",
                                                        "request body is " + std::to_string(*length) +
                                                            " bytes; the limit for this endpoint is " +
                                                            std::to_string(parser_->limit) + " bytes"));
            return answer_and_close(413, error_body("RequestTooLargeException",
                                                    "request body exceeds " + std::to_string(parser_->limit) +
                                                        " bytes, the limit for this endpoint"));
        }
        answer_and_close(400, error_body("InvalidRequestContentException", "malformed HTTP request: " + ec.message()));
    }

    void dispatch() {
        clear_deadline();
        state_ = State::handling;
        version_ = parser_->version;
        keep_alive_ = parser_->keep_alive();
        head_request_ = parser_->request.method == "HEAD";
        Request request = std::move(parser_->request);
        request.remote_address = remote_;
        parser_.reset();

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
            // Nobody will read it: the invocation behind it ends.
            if (r.stream) r.stream->cancel();
            return;
        }
        if (r.stream) return respond_streamed(std::move(r));
        const int status = r.status >= 100 && r.status <= 999 ? r.status : 500;
        // RFC 9110 section 6.4.1: these never have content, not even a length.
        const bool no_content = status < 200 || status == 204 || status == 304;
        keep_alive_ = keep_alive_ && !core_->stopped;

        start_head(status, r);
        if (!no_content) {
            head_ += "Content-Length: ";
            append_number(head_, r.body.size());
            head_ += "\r\n";
        }
        // HTTP/1.1 keeps the connection unless told; HTTP/1.0 closes it unless told.
        if (version_ == 10 && keep_alive_) head_ += "Connection: keep-alive\r\n";
        if (version_ != 10 && !keep_alive_) head_ += "Connection: close\r\n";
        head_ += "\r\n";
        // A HEAD answer tells the length of what GET would send, without sending it.
        if (!no_content && !head_request_) body_ = std::move(r.body);

        state_ = State::writing;
        write(net::buffer(head_), net::buffer(body_), &Session::after_write);
    }

    // The status line, Server, Content-Type and `r`'s own headers, into head_.
    void start_head(int status, const Response& r) {
        head_.clear();
        head_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
        append_number(head_, static_cast<unsigned>(status));
        head_ += ' ';
        const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
        head_.append(reason.data(), reason.size());
        head_ += "\r\nServer: funcd\r\n";
        if (!r.content_type.empty()) {
            head_ += "Content-Type: ";
            head_ += r.content_type;
            head_ += "\r\n";
        }
        for (const auto& [name, value] : r.headers) {
            head_ += name;
            head_ += ": ";
            head_ += value;
            head_ += "\r\n";
        }
    }

    // The head of a streamed answer, with `r.body` as its first chunk.
    void respond_streamed(Response r) {
        stream_ = std::move(r.stream);
        const int status = r.status >= 200 && r.status <= 999 && r.status != 204 && r.status != 304 ? r.status : 200;
        keep_alive_ = keep_alive_ && !core_->stopped;
        // HTTP/1.0 has no chunked coding: the body ends when the connection does.
        chunked_ = version_ != 10;
        if (!chunked_) keep_alive_ = false;
        start_head(status, r);
        if (chunked_) head_ += "Transfer-Encoding: chunked\r\n";
        if (!keep_alive_) head_ += "Connection: close\r\n";
        head_ += "\r\n";
        if (head_request_) {
            // A HEAD answer has no body: the stream is not wanted.
            stream_->cancel();
            stream_.reset();
            if (chunked_) head_ += "0\r\n\r\n";
            state_ = State::writing;
            return write(net::buffer(head_), {}, &Session::after_write);
        }
        out_.clear();
        if (!r.body.empty()) append_chunk(r.body);
        state_ = State::streaming;
        // The client is watched while the function runs: one that hangs up ends the stream.
        read_some();
        write(net::buffer(head_), net::buffer(out_), &Session::after_chunk);
    }

    void append_chunk(std::string_view data) {
        if (chunked_) {
            char digits[20];
            const auto end = std::to_chars(digits, digits + sizeof digits, data.size(), 16).ptr;
            out_.append(digits, end);
            out_ += "\r\n";
        }
        out_.append(data);
        if (chunked_) out_ += "\r\n";
    }

    void after_chunk(const error_code& ec) {
        if (state_ != State::streaming) return;
        if (ec) {
            spdlog::debug("http: writing a streamed answer to {} failed: {}", remote_, ec.message());
            return close();
        }
        clear_deadline();
        pump_stream();
    }

    // Sends what the stream holds, one write at a time; the stream's bytes are taken only
    // as the socket takes the previous write, so a client that reads slowly holds the
    // stream full, and the stream holds the runtime back.
    void pump_stream() {
        if (state_ != State::streaming) return;
        ResponseStream& s = *stream_;
        if (s.cancelled()) return close();
        const std::string_view data = s.readable();
        if (!data.empty()) {
            out_.clear();
            append_chunk(data);
            s.consume(data.size());
            return write(net::buffer(out_), {}, &Session::after_chunk);
        }
        switch (s.state()) {
            case ResponseStream::State::open:
                s.when_readable([weak = weak_from_this()] {
                    if (auto self = weak.lock()) self->pump_stream();
                });
                return;
            case ResponseStream::State::complete:
                stream_.reset();
                state_ = State::writing;
                if (!chunked_) return after_write({});
                return write(net::buffer(kLastChunk.data(), kLastChunk.size()), {}, &Session::after_write);
            case ResponseStream::State::failed:
                // Cut off without the terminating chunk: the client sees an incomplete answer
                // (curl: "transfer closed with outstanding read data remaining").
                spdlog::debug("http: streamed answer to {} ends with {}", remote_, s.error_type());
                stream_.reset();
                return close();
        }
    }

    void on_read_while_streaming(const error_code& ec, std::size_t n) {
        if (ec) {
            if (ec != net::error::operation_aborted)
                spdlog::debug("http: {} went away during a streamed answer: {}", remote_, ec.message());
            return close();
        }
        // The client's next request, sent ahead: kept for after the stream. Reading stops once
        // a head's worth is kept; the connection is still watched by the writes.
        buffer_.commit(n);
        if (buffer_.size() < core_->options.limits.header_limit) read_some();
    }

    void answer_and_close(int status, std::string body) {
        answer_and_close(Response{status, {}, std::move(body), "application/json"});
    }

    void answer_and_close(Response r) {
        version_ = parser_ ? parser_->version : 11;
        if (version_ != 10 && version_ != 11) version_ = 11;
        keep_alive_ = false;
        head_request_ = false;
        clear_deadline();
        state_ = State::handling;
        respond(std::move(r));
    }

    // Writes at once when the socket takes it all (the usual case), which saves a
    // completion's trip through the loop; what is left is written asynchronously under the
    // read timeout, since a client that stops reading holds memory like one that stops
    // sending. `done` runs here or on a later turn of the loop.
    void write(net::const_buffer first, net::const_buffer second, WriteDone done) {
        const std::array<net::const_buffer, 2> buffers{first, second};
        error_code ec;
        const std::size_t written = socket_.write_some(buffers, ec);
        if (!ec && written == first.size() + second.size()) return (this->*done)(ec);
        if (ec && ec != net::error::would_block && ec != net::error::try_again) return (this->*done)(ec);
        set_deadline(core_->options.limits.head_timeout);
        beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(buffers);
        rest.consume(written);
        net::async_write(socket_, rest, [self = shared_from_this(), done](error_code ec, std::size_t) {
            (self.get()->*done)(ec);
        });
    }

    void after_write(const error_code& ec) {
        if (state_ == State::closed) return;
        if (ec) {
            spdlog::debug("http: writing the answer to {} failed: {}", remote_, ec.message());
            return close();
        }
        body_ = {};  // frees the body now rather than at the next answer
        if (!keep_alive_) return linger_close();
        read_request();
    }

    void linger_close() {
        state_ = State::closed;
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
        if (ec) return close();
        lingering_ = true;
        buffer_.clear();
        set_deadline(kLingerTimeout);
        read_some();
    }

    void close() {
        state_ = State::closed;
        lingering_ = false;
        // A stream still running: its caller is gone, which ends the invocation.
        if (auto stream = std::move(stream_); stream && stream->state() == ResponseStream::State::open)
            stream->cancel();
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        deadline_.cancel();
    }

    void set_deadline(Clock::duration after) {
        deadline_.set(after, [this] { return shared_from_this(); });
    }
    void clear_deadline() { deadline_.clear(); }

    // Called by deadline_ once a deadline set and not cleared has passed.
    friend class LazyDeadline<Timer>;
    void on_deadline() {
        if (state_ == State::closed && !lingering_) return;
        if (!lingering_) spdlog::debug("http: connection from {} timed out", remote_);
        close();
    }

    std::shared_ptr<Core> core_;
    Socket socket_;
    LazyDeadline<Timer> deadline_;
    beast::flat_buffer buffer_;
    std::optional<RequestParser> parser_;
    std::string head_;  // the answer's head, reused
    std::string body_;
    std::shared_ptr<ResponseStream> stream_;  // a streamed answer being sent
    std::string out_;                         // the chunk being written
    bool chunked_ = true;
    bool reading_ = false;
    std::string remote_;
    std::list<std::weak_ptr<Session>>::iterator self_;
    bool registered_ = false;
    State state_ = State::reading_header;
    bool lingering_ = false;
    bool continue_sent_ = false;
    bool head_request_ = false;
    unsigned version_ = 11;
    bool keep_alive_ = false;
};

void Core::accept() {
    acceptor.async_accept([self = shared_from_this()](error_code ec, Socket socket) {
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
        // Answers are first written without waiting (see Session::write).
        if (!opt_ec) socket.non_blocking(true, opt_ec);
        auto remote = socket.remote_endpoint(opt_ec);
        if (!opt_ec && self->sessions.size() >= self->options.limits.max_connections && !self->evict_idle()) {
            self->refuse_over_capacity(socket);
        } else if (opt_ec) {
            // The peer is already gone; nothing to serve.
            spdlog::debug("http: dropping a connection that closed on accept: {}", opt_ec.message());
        } else {
            std::make_shared<Session>(self, std::move(socket), remote.address().to_string())->start();
        }
        self->accept();
    });
}

bool Core::evict_idle() {
    // Sessions are added at the front, so the back holds the oldest.
    for (auto it = sessions.rbegin(); it != sessions.rend(); ++it) {
        auto s = it->lock();
        if (!s || !s->idle()) continue;
        spdlog::debug("http: {} connections open on port {}; closing the one idle longest", sessions.size(),
                      bound_port);
        s->evict();
        return true;
    }
    return false;
}

void Core::refuse_over_capacity(Socket& socket) {
    // Built once: a flood of connections must cost as little as possible each.
    static const std::string answer = [] {
        const std::string body =
            error_body("ServiceUnavailableException", "too many open connections to funcd; retry later");
        return "HTTP/1.1 503 Service Unavailable\r\nServer: funcd\r\nContent-Type: application/json\r\n"
               "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    if (!over_capacity_logged) {
        spdlog::warn("http: {} connections open on port {}, the limit (gateway.max_connections); refusing more",
                     sessions.size(), bound_port);
        over_capacity_logged = true;
    }
    error_code ec;
    socket.write_some(net::buffer(answer), ec);  // non-blocking; a peer that cannot take it loses it
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
}

}  // namespace

struct Server::Impl : Core {
    using Core::Core;
};

Server::Server(boost::asio::io_context& io, ServerOptions options, HeadFn head, HandlerFn handler,
               TooLargeFn too_large)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(head), std::move(handler),
                                   std::move(too_large))) {}

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
