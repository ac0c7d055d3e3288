#pragma once
// A raw HTTP/1.1 client for streamed answers: it reads the head, then each chunk of a
// chunked body with the time it arrived, and tells a body that ended with its terminating
// chunk from one that was cut short.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon_harness.hpp"

namespace funcd::testing {

// A client that reads a streamed answer as it arrives: the head, then each chunk of the
// chunked body with the time it arrived.
class StreamClient {
public:
    using Clock = std::chrono::steady_clock;

    StreamClient(unsigned short port, const std::string& method, const std::string& target,
                 const std::vector<std::string>& headers = {}, const std::string& body = {}, int rcvbuf = 0)
        : fd_(connect_loopback(port)) {
        if (rcvbuf) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        for (const auto& h : headers) req += h + "\r\n";
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
        sent_ = Clock::now();
        read_head();
    }
    ~StreamClient() { close(); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::vector<std::string> set_cookies;
    bool chunked = false;

    struct Chunk {
        std::string data;
        Clock::time_point at;
    };
    // The next chunk; nullopt at the body's end (`complete` true) or when the connection
    // closes before it (`complete` false: the client sees an incomplete answer).
    std::optional<Chunk> next() {
        for (;;) {
            const auto eol = buf_.find("\r\n");
            if (eol != std::string::npos) {
                const std::size_t size = std::stoul(buf_.substr(0, eol), nullptr, 16);
                if (buf_.size() >= eol + 2 + size + 2) {
                    Chunk c{buf_.substr(eol + 2, size), last_read_};
                    buf_.erase(0, eol + 2 + size + 2);
                    if (size == 0) {
                        complete = true;
                        return std::nullopt;
                    }
                    return c;
                }
            }
            if (!fill()) return std::nullopt;
        }
    }
    // Reads the rest of the body; its bytes, or what arrived before the connection closed.
    std::string rest() {
        std::string all;
        while (auto c = next()) all += c->data;
        return all;
    }
    // Reads raw bytes (whatever they are) and throws them away; returns the count, 0 at the end.
    // Counts the bytes that came in with the head first: they are the body's start.
    std::size_t drain_some(std::size_t max) {
        if (!buf_.empty()) {
            const std::size_t n = std::min(max, buf_.size());
            buf_.erase(0, n);
            return n;
        }
        std::string tmp(max, '\0');
        const auto n = ::recv(fd_, tmp.data(), max, 0);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    bool complete = false;
    Clock::time_point sent_;

private:
    bool fill() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20000) <= 0) return false;
        char tmp[65536];
        const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        last_read_ = Clock::now();
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }
    void read_head() {
        while (buf_.find("\r\n\r\n") == std::string::npos)
            if (!fill()) throw std::runtime_error("no answer head");
        const auto end = buf_.find("\r\n\r\n");
        std::istringstream head(buf_.substr(0, end));
        buf_.erase(0, end + 4);
        std::string line;
        std::getline(head, line);
        status = std::stoi(line.substr(9, 3));
        while (std::getline(head, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const auto colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::string value = line.substr(colon + 2);
            if (name == "set-cookie") set_cookies.push_back(value);
            headers[name] = value;
        }
        chunked = headers["transfer-encoding"] == "chunked";
    }

    int fd_ = -1;
    std::string buf_;
    Clock::time_point last_read_;
};

}  // namespace funcd::testing
