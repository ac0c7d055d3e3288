#pragma once
// A blocking HTTP client on a plain socket for the unit tests, so a test controls exactly
// which bytes are sent and sees exactly what comes back (Beast parses the answers).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace funcd::testing {

class RawHttpClient {
public:
    using Response = boost::beast::http::response<boost::beast::http::string_body>;

    explicit RawHttpClient(unsigned short port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect failed");
        }
        timeval tv{5, 0};  // no test waits this long for an answer it expects
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    // Takes over a connected stream socket of any family.
    struct Adopt {};
    RawHttpClient(Adopt, int fd) : fd_(fd) {
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~RawHttpClient() { close(); }
    RawHttpClient(const RawHttpClient&) = delete;
    RawHttpClient& operator=(const RawHttpClient&) = delete;

    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    void send(std::string_view data) {
        while (!data.empty()) {
            const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) throw std::runtime_error("send failed");
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // Sends a POST with a Content-Length body; `extra_headers` are complete "Name: value\r\n" lines.
    void send_post(std::string_view path, std::string_view body, std::string_view extra_headers = {}) {
        send("POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra_headers) +
             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body));
    }

    Response read_response() {
        namespace bhttp = boost::beast::http;
        bhttp::response_parser<bhttp::string_body> parser;
        parser.eager(true);
        parser.body_limit(boost::none);
        for (;;) {
            if (!pending_.empty()) {
                boost::system::error_code ec;
                const auto used = parser.put(boost::asio::buffer(pending_), ec);
                pending_.erase(0, used);
                if (ec && ec != bhttp::error::need_more) throw std::runtime_error("bad response: " + ec.message());
                if (parser.is_done()) return parser.release();
                if (used > 0 && !pending_.empty()) continue;
            }
            char chunk[65536];
            const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n == 0) {
                boost::system::error_code ec;
                parser.put_eof(ec);
                if (!ec && parser.is_done()) return parser.release();
                throw std::runtime_error("connection closed before a full response");
            }
            if (n < 0) throw std::runtime_error("no response");
            pending_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    // True when the server closes the connection within the receive timeout (extra bytes fail it).
    bool closed_by_server() {
        if (!pending_.empty()) return false;
        char byte;
        const auto n = ::recv(fd_, &byte, 1, 0);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    }

    // True when nothing arrives within `wait`.
    bool silent_for(std::chrono::milliseconds wait) {
        pollfd p{fd_, POLLIN, 0};
        return pending_.empty() && ::poll(&p, 1, static_cast<int>(wait.count())) == 0;
    }

private:
    int fd_ = -1;
    std::string pending_;
};

}  // namespace funcd::testing
