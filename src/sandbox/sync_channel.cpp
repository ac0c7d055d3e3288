#include "funcd/sandbox/sync_channel.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string_view>

namespace funcd {
namespace {

// A failure report is a step name, a path and a number; anything longer is cut.
constexpr std::size_t kReportBytes = 512;
constexpr std::string_view kErrnoMarker = ": errno ";

// Appends `s` to buf[*len..cap), truncating. No allocation: runs in the child.
void append(char* buf, std::size_t cap, std::size_t* len, const char* s) noexcept {
    while (*s && *len < cap) buf[(*len)++] = *s++;
}

}  // namespace

bool child_wait_for_go(int sock) noexcept {
    char byte = 0;
    for (;;) {
        ssize_t n = ::recv(sock, &byte, 1, 0);
        if (n == 1) return byte == kGoByte;
        if (n < 0 && errno == EINTR) continue;
        return false;  // 0: the parent closed its end (it died, or gave up on us)
    }
}

bool child_parent_alive(int sock) noexcept {
    pollfd p{sock, POLLRDHUP, 0};
    int n = ::poll(&p, 1, 0);
    return n == 0 || (n > 0 && !(p.revents & (POLLHUP | POLLRDHUP | POLLERR)));
}

int child_send_fd(int sock, int fd) noexcept {
    char tag = 'F';
    iovec iov{&tag, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    while (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

void child_report_failure(int sock, const char* step, const char* what, int err) noexcept {
    char buf[kReportBytes];
    std::size_t len = 0;
    append(buf, sizeof buf, &len, step);
    if (what && *what) {
        append(buf, sizeof buf, &len, " ");
        append(buf, sizeof buf, &len, what);
    }
    append(buf, sizeof buf, &len, ": errno ");
    char digits[16];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits - 1, err);
    *end = '\0';
    append(buf, sizeof buf, &len, ec == std::errc{} ? digits : "?");
    // MSG_NOSIGNAL: a parent that already hung up must not turn our report into SIGPIPE.
    [[maybe_unused]] ssize_t n = ::send(sock, buf, len, MSG_NOSIGNAL);
}

int parent_send_go(int sock) noexcept {
    const char byte = kGoByte;
    while (::send(sock, &byte, 1, MSG_NOSIGNAL) != 1) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

ChildReport parent_receive(int sock, int timeout_ms) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    ChildReport report;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left < 0) left = 0;
        pollfd p{sock, POLLIN, 0};
        int ready = ::poll(&p, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) {
            report.kind = ChildReport::Kind::io_error;
            report.error = errno;
            return report;
        }
        if (ready == 0) {
            report.kind = ChildReport::Kind::timeout;
            report.error = ETIMEDOUT;
            return report;
        }
        break;
    }

    char buf[kReportBytes];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    // MSG_CMSG_CLOEXEC: a received descriptor must not leak into the next worker the
    // daemon forks before the pool takes it over.
    do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        report.kind = ChildReport::Kind::io_error;
        report.error = errno;
        return report;
    }
    if (n == 0) {
        report.kind = ChildReport::Kind::exec;
        return report;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            report.kind = ChildReport::Kind::fd;
            report.fd.reset(fd);
            return report;
        }
    }
    std::string_view text(buf, static_cast<std::size_t>(n));
    report.kind = ChildReport::Kind::failure;
    auto marker = text.rfind(kErrnoMarker);
    if (marker == std::string_view::npos) {
        report.step = std::string(text);
        report.error = EPROTO;
        return report;
    }
    report.step = std::string(text.substr(0, marker));
    auto digits = text.substr(marker + kErrnoMarker.size());
    int err = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), err);
    report.error = err != 0 ? err : EPROTO;
    return report;
}

}  // namespace funcd
