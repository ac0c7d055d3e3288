// A minimal Lambda custom runtime: answers every event with `{}` (or, with NOOP_ECHO=1,
// with the event itself). Benchmarks deploy it to measure funcd's own warm-invoke cost,
// so the loop does no work of its own: one keep-alive connection, one receive buffer
// that only grows, and no allocation per invocation. Any surprise from the Runtime API
// ends the process with status 1; funcd treats that like any other worker exit.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kInitialBufferBytes = 64 * 1024;
// Response heads from the Runtime API are a few hundred bytes; anything near this is broken.
constexpr std::size_t kMaxHeadBytes = 64 * 1024;
// Far above Lambda's 6 MB payload limit, low enough to refuse a corrupt Content-Length.
constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;
// Lambda request ids are UUIDs; the room left is for other id schemes.
constexpr std::size_t kMaxRequestIdBytes = 128;
constexpr std::size_t kMaxHostBytes = 256;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "noop-bootstrap: %s\n", what);
    std::exit(1);
}

[[noreturn]] void fail_errno(const char* what) {
    std::fprintf(stderr, "noop-bootstrap: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

struct Response {
    int status = 0;
    std::string_view body;        // points into the connection's buffer
    std::string_view request_id;  // likewise; valid until the next read
    bool close = false;           // the server will close the connection after this
};

class Connection {
public:
    Connection(std::string host, std::string port, int inherited_fd)
        : host_(std::move(host)), port_(std::move(port)), fd_(inherited_fd) {
        buf_.resize(kInitialBufferBytes);
    }

    bool connected() const { return fd_ >= 0; }

    // Over TCP to AWS_LAMBDA_RUNTIME_API: at the start without an inherited connection, and
    // whenever the server closed the one in use.
    void connect() {
        if (fd_ >= 0) ::close(fd_);
        begin_ = end_ = 0;

        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        if (int rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found); rc != 0) {
            std::fprintf(stderr, "noop-bootstrap: resolving %s: %s\n", host_.c_str(), gai_strerror(rc));
            std::exit(1);
        }
        fd_ = -1;
        for (addrinfo* ai = found; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
            fd_ = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd_ >= 0 && ::connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) {
                ::close(fd_);
                fd_ = -1;
            }
        }
        ::freeaddrinfo(found);
        if (fd_ < 0) fail_errno("connecting to the Runtime API");

        // Requests are written whole and small; Nagle would only hold them back.
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    // Writes the pieces in order with as few system calls as the kernel allows.
    void send_all(iovec* iov, int count) {
        while (count > 0) {
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = static_cast<std::size_t>(count);
            ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                fail_errno("writing to the Runtime API");
            }
            auto left = static_cast<std::size_t>(n);
            while (count > 0 && left >= iov->iov_len) {
                left -= iov->iov_len;
                ++iov;
                --count;
            }
            if (count > 0) {
                iov->iov_base = static_cast<char*>(iov->iov_base) + left;
                iov->iov_len -= left;
            }
        }
    }

    // Reads one whole response. The views it returns stay valid until the next call.
    Response read_response() {
        compact();
        std::size_t head_end = 0;
        while ((head_end = find_head_end()) == 0) {
            if (end_ - begin_ >= kMaxHeadBytes) fail("response head too large");
            fill();
        }

        Response r;
        std::size_t body_len = parse_head(std::string_view(&buf_[begin_], head_end - begin_), r);
        if (body_len > kMaxBodyBytes) fail("response body too large");
        std::size_t need = head_end + body_len;
        if (need > buf_.size()) buf_.resize(need);  // the only growth, and it is kept
        while (end_ < need) fill();

        r.body = std::string_view(&buf_[head_end], body_len);
        begin_ = need;
        if (r.close) {
            // Nothing more will arrive on this connection; start afresh before the next request.
            connect_pending_ = true;
        }
        return r;
    }

    bool take_reconnect() {
        bool pending = connect_pending_;
        connect_pending_ = false;
        return pending;
    }

    const std::string& host() const { return host_; }

private:
    // Moves unread bytes to the front so a whole response fits without growing the buffer.
    void compact() {
        if (begin_ == end_) {
            begin_ = end_ = 0;
        } else if (begin_ > 0) {
            std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
    }

    // Returns the offset just past "\r\n\r\n", or 0 when the head is not complete yet.
    std::size_t find_head_end() const {
        std::string_view data(buf_.data() + begin_, end_ - begin_);
        std::size_t at = data.find("\r\n\r\n");
        return at == std::string_view::npos ? 0 : begin_ + at + 4;
    }

    void fill() {
        if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
        for (;;) {
            ssize_t n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
            if (n > 0) {
                end_ += static_cast<std::size_t>(n);
                return;
            }
            if (n == 0) fail("the Runtime API closed the connection");
            if (errno != EINTR) fail_errno("reading from the Runtime API");
        }
    }

    // Fills `r` from the status line and headers; returns the body length.
    static std::size_t parse_head(std::string_view head, Response& r) {
        std::size_t eol = head.find("\r\n");
        std::string_view status_line = head.substr(0, eol);
        // "HTTP/1.1 200 OK": the code is the three digits after the first space.
        if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[8] != ' ')
            fail("bad status line");
        auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, r.status);
        if (ec != std::errc{} || p != status_line.data() + 12) fail("bad status code");
        if (status_line[7] == '0') r.close = true;  // HTTP/1.0 closes unless told otherwise

        std::size_t body_len = 0;
        head.remove_prefix(eol + 2);
        while (!head.empty()) {
            eol = head.find("\r\n");
            std::string_view line = head.substr(0, eol);
            head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
            if (line.empty()) break;

            std::size_t colon = line.find(':');
            if (colon == std::string_view::npos) fail("bad header line");
            std::string_view name = line.substr(0, colon);
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);

            if (equals_nocase(name, "content-length")) {
                auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), body_len);
                if (e != std::errc{} || q != value.data() + value.size()) fail("bad Content-Length");
            } else if (equals_nocase(name, "lambda-runtime-aws-request-id")) {
                r.request_id = value;
            } else if (equals_nocase(name, "connection")) {
                r.close = equals_nocase(value, "close");
            } else if (equals_nocase(name, "transfer-encoding")) {
                // The Runtime API frames every body with Content-Length; not worth decoding.
                fail("chunked responses are not supported");
            }
        }
        return body_len;
    }

    static bool equals_nocase(std::string_view a, std::string_view b) {
        return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
    }

    std::string host_;
    std::string port_;
    int fd_ = -1;
    std::vector<char> buf_;
    std::size_t begin_ = 0;  // first unread byte
    std::size_t end_ = 0;    // one past the last received byte
    bool connect_pending_ = false;
};

// Splits "host:port" or "[v6addr]:port".
void split_address(std::string_view address, std::string& host, std::string& port) {
    std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == address.size()) fail("AWS_LAMBDA_RUNTIME_API must be host:port");
    std::string_view h = address.substr(0, colon);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (h.empty() || h.size() > kMaxHostBytes) fail("bad host in AWS_LAMBDA_RUNTIME_API");
    host.assign(h);
    port.assign(address.substr(colon + 1));
}

}  // namespace

// The connection to funcd's Runtime API the runtime was started with (FUNCD_RUNTIME_API_FD),
// or -1: none given, or NOOP_TCP=1 asks for TCP like any other Lambda runtime client.
int inherited_connection() {
    const char* tcp_env = std::getenv("NOOP_TCP");
    const char* fd_env = std::getenv("FUNCD_RUNTIME_API_FD");
    int fd = -1;
    if (fd_env != nullptr) {
        const std::string_view text(fd_env);
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
        if (ec != std::errc{} || end != text.data() + text.size() || fd < 3) fail("bad FUNCD_RUNTIME_API_FD");
        // Not inherited by anything this process might start.
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (fd >= 0 && tcp_env != nullptr && std::string_view(tcp_env) == "1") {
        ::close(fd);
        return -1;
    }
    return fd;
}

int main() {
    const char* address = std::getenv("AWS_LAMBDA_RUNTIME_API");
    if (address == nullptr) fail("AWS_LAMBDA_RUNTIME_API is not set");
    const char* echo_env = std::getenv("NOOP_ECHO");
    const bool echo = echo_env != nullptr && std::string_view(echo_env) == "1";

    std::string host, port;
    split_address(address, host, port);
    // Host as sent in requests, with the brackets an IPv6 literal needs there.
    const std::string_view address_view(address);
    const std::string host_header(address_view.substr(0, address_view.rfind(':')));

    Connection conn(host, port, inherited_connection());
    if (!conn.connected()) conn.connect();

    const std::string next_request =
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: " + host_header + "\r\n\r\n";

    static constexpr std::string_view kEmptyObject = "{}";
    // Sized for the longest head: fixed text, the host and the longest accepted request id.
    char post_head[512 + kMaxHostBytes + kMaxRequestIdBytes];

    iovec get_iov{const_cast<char*>(next_request.data()), next_request.size()};
    conn.send_all(&get_iov, 1);
    for (;;) {
        Response event = conn.read_response();
        if (event.status != 200) fail("invocation/next did not answer 200");
        if (event.request_id.empty() || event.request_id.size() > kMaxRequestIdBytes) fail("bad request id");

        std::string_view body = echo ? event.body : kEmptyObject;
        int head_len = std::snprintf(post_head, sizeof post_head,
                                     "POST /2018-06-01/runtime/invocation/%.*s/response HTTP/1.1\r\n"
                                     "Host: %s\r\n"
                                     "Content-Type: application/json\r\n"
                                     "Content-Length: %zu\r\n\r\n",
                                     static_cast<int>(event.request_id.size()), event.request_id.data(),
                                     host_header.c_str(), body.size());
        if (head_len < 0 || static_cast<std::size_t>(head_len) >= sizeof post_head) fail("request head too long");

        if (conn.take_reconnect()) conn.connect();  // reconnecting keeps the buffer, so `body` stays valid
        // The next `next` goes out with the response (HTTP pipelining): one write per event,
        // and funcd answers the response and the `next` together when the event comes.
        iovec iov[3] = {{post_head, static_cast<std::size_t>(head_len)},
                        {const_cast<char*>(body.data()), body.size()},
                        {const_cast<char*>(next_request.data()), next_request.size()}};
        if (body.empty()) iov[1] = iov[2];
        conn.send_all(iov, body.empty() ? 2 : 3);

        Response reply = conn.read_response();
        if (reply.status != 202) fail("invocation response was not accepted");
        if (conn.take_reconnect()) {
            // Closed after the answer: the pipelined `next` was never read.
            conn.connect();
            conn.send_all(&get_iov, 1);
        }
    }
}
