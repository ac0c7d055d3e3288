#include "funcd/sandbox/capabilities.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace funcd {

int last_capability() {
    int fd = ::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        spdlog::warn("sandbox: open /proc/sys/kernel/cap_last_cap failed: {} (errno {}); assuming {}",
                     std::strerror(errno), errno, CAP_LAST_CAP);
        return CAP_LAST_CAP;
    }
    char buf[16] = {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    int last = CAP_LAST_CAP;
    // A kernel newer than our headers knows more capabilities: the file is what counts.
    if (n > 0) std::from_chars(buf, buf + n, last);
    return last;
}

int child_drop_bounding_and_ambient(int last_cap, const char** what) noexcept {
    // Before the capability sets: PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set.
    for (int cap = 0; cap <= last_cap; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            *what = "bounding set";
            return errno;
        }
    }
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        *what = "ambient set";
        return errno;
    }
    return 0;
}

int child_clear_capability_sets() noexcept {
    // The uid switch kept them (see the step order), and execve would keep a permitted
    // set too, as the inheritable one: all three are cleared explicitly.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capset, &header, data) != 0) return errno;
    return 0;
}

}  // namespace funcd
