#include "funcd/daemon/data_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace funcd {

DataDirLock::DataDirLock(const std::filesystem::path& data_dir) {
    const auto path = data_dir / "funcd.lock";
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        std::string holder;
        char buf[32] = {};
        if (::pread(fd_.get(), buf, sizeof buf - 1, 0) > 0) holder = std::string(buf);
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
        if (err == EWOULDBLOCK)
            throw std::runtime_error("the data directory " + data_dir.string() + " is in use by another funcd" +
                                     (holder.empty() ? std::string() : " (pid " + holder + ")") +
                                     "; stop it or give this one another --data-dir");
        throw std::runtime_error("cannot lock " + path.string() + ": " + std::strerror(err));
    }
    // The holder's pid, for the message above; best effort.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_.get(), 0) != 0 || ::pwrite(fd_.get(), pid.data(), pid.size(), 0) < 0) {
        // Only the message of a second daemon loses the pid.
    }
}

}  // namespace funcd
