#include "funcd/sandbox/user_namespace.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace funcd {
namespace {

void write_proc_file(pid_t pid, const char* name, const std::string& text) {
    const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    int err = 0;
    if (fd < 0) {
        err = errno;
    } else {
        // The kernel takes a map in one write(); a second write fails with EPERM, so a
        // short write cannot be completed and is an error.
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) err = errno;
        else if (static_cast<std::size_t>(n) != text.size()) err = EIO;
        ::close(fd);
    }
    if (err != 0) {
        spdlog::error("sandbox: writing {} ('{}') failed: {} (errno {})", path, text.substr(0, text.size() - 1),
                      std::strerror(err), err);
        throw std::system_error(err, std::generic_category(), std::string("sandbox step '") + name + "'");
    }
}

}  // namespace

void write_id_maps(pid_t pid, const IdMapping& ids) {
    // Unprivileged writers must deny setgroups() in the namespace before the kernel
    // accepts a gid_map (otherwise the child could drop a group that denies it access).
    // A privileged writer leaves it allowed, so the child can drop the supplementary
    // groups it inherited from the daemon: they keep their host meaning (root's group 0)
    // even though the namespace shows them as the overflow gid.
    if (!ids.privileged) write_proc_file(pid, "setgroups", "deny\n");
    write_proc_file(pid, "uid_map", std::to_string(ids.inside_uid) + " " + std::to_string(ids.host_uid) + " 1\n");
    write_proc_file(pid, "gid_map", std::to_string(ids.inside_gid) + " " + std::to_string(ids.host_gid) + " 1\n");
}

// Raw syscalls, not glibc's setgroups/setresgid/setresuid: in a process glibc believes
// multi-threaded (the child is a copy of the daemon), those wrappers broadcast the change
// to every thread under a lock that another daemon thread may have held at clone time --
// a deadlock in the child. The child has exactly one thread, so the raw call is complete.
int child_switch_ids(const IdMapping& ids, const char** what) noexcept {
    if (ids.privileged && ::syscall(SYS_setgroups, 0, nullptr) != 0) {
        *what = "setgroups";
        return errno;
    }
    // Groups before the uid, the order that also works where a uid switch drops CAP_SETGID.
    if (::syscall(SYS_setresgid, ids.inside_gid, ids.inside_gid, ids.inside_gid) != 0) {
        *what = "setresgid";
        return errno;
    }
    if (::syscall(SYS_setresuid, ids.inside_uid, ids.inside_uid, ids.inside_uid) != 0) {
        *what = "setresuid";
        return errno;
    }
    return 0;
}

}  // namespace funcd
