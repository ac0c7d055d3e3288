#include "funcd/runtime_api/tcp_peer.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "funcd/common/unique_fd.hpp"

namespace funcd {
namespace {

// One answer: a netlink header and an inet_diag_msg with its attributes (none asked for;
// the kernel adds a few it always sends). Generously above what one socket's answer takes.
constexpr std::size_t kAnswerBytes = 8192;

struct Endpoint {
    int family = AF_UNSPEC;
    std::uint16_t port = 0;   // network order
    std::uint32_t addr[4]{};  // network order, as inet_diag_sockid has it
};

bool endpoint_of(const sockaddr_storage& ss, Endpoint& out) {
    if (ss.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        out.family = AF_INET;
        out.port = in.sin_port;
        out.addr[0] = in.sin_addr.s_addr;
        return true;
    }
    if (ss.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
        out.family = AF_INET6;
        out.port = in6.sin6_port;
        std::memcpy(out.addr, &in6.sin6_addr, sizeof out.addr);
        return true;
    }
    return false;
}

}  // namespace

std::optional<uid_t> tcp_peer_uid(int fd) {
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
        // ENOTCONN: the peer has already gone, which is no error of ours.
        if (errno != ENOTCONN)
            spdlog::error("runtime api: getsockname/getpeername fd={} failed: {} (errno {})", fd,
                          std::strerror(errno), errno);
        return std::nullopt;
    }
    Endpoint ours, theirs;
    if (!endpoint_of(local, ours) || !endpoint_of(peer, theirs) || ours.family != theirs.family) return std::nullopt;

    UniqueFd diag(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!diag) {
        spdlog::error("runtime api: socket(NETLINK_SOCK_DIAG) failed: {} (errno {})", std::strerror(errno), errno);
        return std::nullopt;
    }
    // An exact lookup (no NLM_F_DUMP): the socket that receives what is sent from our end
    // to theirs, which is the peer's own socket, whose local address is theirs.
    struct {
        nlmsghdr header;
        inet_diag_req_v2 request;
    } ask{};
    ask.header.nlmsg_len = sizeof ask;
    ask.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    ask.header.nlmsg_flags = NLM_F_REQUEST;
    ask.header.nlmsg_seq = 1;
    ask.request.sdiag_family = static_cast<std::uint8_t>(ours.family);
    ask.request.sdiag_protocol = IPPROTO_TCP;
    ask.request.idiag_states = ~0U;
    ask.request.id.idiag_sport = theirs.port;
    ask.request.id.idiag_dport = ours.port;
    std::memcpy(ask.request.id.idiag_src, theirs.addr, sizeof theirs.addr);
    std::memcpy(ask.request.id.idiag_dst, ours.addr, sizeof ours.addr);
    ask.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    ask.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(diag.get(), &ask, sizeof ask, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
        spdlog::error("runtime api: inet_diag request failed: {} (errno {})", std::strerror(errno), errno);
        return std::nullopt;
    }
    // The kernel answers within the send; the receive does not wait.
    alignas(nlmsghdr) char answer[kAnswerBytes];
    const ssize_t n = ::recv(diag.get(), answer, sizeof answer, MSG_DONTWAIT);
    if (n < 0) {
        spdlog::error("runtime api: inet_diag answer failed: {} (errno {})", std::strerror(errno), errno);
        return std::nullopt;
    }
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(answer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
            // ENOENT: no such socket any more (the peer closed).
            if (err->error != -ENOENT)
                spdlog::error("runtime api: inet_diag lookup failed: {} (errno {})", std::strerror(-err->error),
                              -err->error);
            return std::nullopt;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
        const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        // The socket found must be exactly the peer's, and still connected: a socket in
        // TIME_WAIT (its owner closed it) reports uid 0, which says nothing of an owner.
        if (msg->id.idiag_sport != theirs.port || msg->id.idiag_dport != ours.port ||
            std::memcmp(msg->id.idiag_src, theirs.addr, sizeof theirs.addr) != 0)
            return std::nullopt;
        if (msg->idiag_state == TCP_TIME_WAIT || msg->idiag_inode == 0) return std::nullopt;
        return static_cast<uid_t>(msg->idiag_uid);
    }
    return std::nullopt;
}

}  // namespace funcd
