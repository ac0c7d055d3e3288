#include "funcd/sandbox/fd_placement.hpp"

#include <fcntl.h>

#include <cerrno>
#include <string>

#include "funcd/common/syscall_error.hpp"

namespace funcd {

UniqueFd above_stdio(UniqueFd fd, const char* what) {
    if (fd.get() > STDERR_FILENO) return fd;
    UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (!moved) throw_syscall_error("launcher", errno, std::string("fcntl(F_DUPFD_CLOEXEC) for ") + what);
    return moved;
}

}  // namespace funcd
