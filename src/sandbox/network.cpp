#include "funcd/sandbox/network.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace funcd {

int child_bring_loopback_up() noexcept {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return errno;
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, "lo", 3);
    int err = 0;
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
        err = errno;
    } else {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
        if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = errno;
    }
    ::close(s);
    return err;
}

int child_listen_runtime_api(int* fd, const char** what) noexcept {
    // Non-blocking from the start: the flag lives on the open file, which the daemon
    // shares once it receives the descriptor, and its event loop must never block on it.
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        *what = "socket";
        return errno;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(kRuntimeApiPort);
    if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(s);
        *what = "bind";
        return err;
    }
    if (::listen(s, kRuntimeApiBacklog) != 0) {
        int err = errno;
        ::close(s);
        *what = "listen";
        return err;
    }
    *fd = s;
    return 0;
}

}  // namespace funcd
