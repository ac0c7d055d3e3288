#include "funcd/daemon/reactor_slots.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <spdlog/spdlog.h>

namespace funcd {

std::size_t reserve_reactor_slots(boost::asio::io_context& io, std::size_t slots) {
    // epoll refuses /dev/null (EPERM), which Asio accepts as a descriptor it never watches:
    // the state object is allocated all the same, and no event can ever arrive for it.
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        spdlog::warn("reactor: cannot open /dev/null to reserve descriptor slots: {} (errno {})",
                     std::strerror(errno), errno);
        return 0;
    }
    std::vector<boost::asio::posix::stream_descriptor> held;
    held.reserve(slots);
    while (held.size() < slots) {
        const int fd = ::fcntl(null_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            spdlog::warn("reactor: reserved {} of {} descriptor slots: dup failed: {} (errno {})", held.size(),
                         slots, std::strerror(errno), errno);
            break;
        }
        boost::system::error_code ec;
        held.emplace_back(io);
        held.back().assign(fd, ec);
        if (ec) {
            ::close(fd);
            held.pop_back();
            spdlog::warn("reactor: reserved {} of {} descriptor slots: {}", held.size(), slots, ec.message());
            break;
        }
    }
    const std::size_t reserved = held.size();
    held.clear();  // closes them all; their state objects stay in the reactor's free list
    ::close(null_fd);
    spdlog::debug("reactor: reserved {} descriptor slots", reserved);
    return reserved;
}

}  // namespace funcd
