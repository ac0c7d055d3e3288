#include "funcd/sandbox/process_memory.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

namespace funcd {

ProcessPeakMemory::ProcessPeakMemory(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/status";
    status_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!status_) spdlog::warn("worker memory: open {} failed: {} (errno {})", path, std::strerror(errno), errno);
}

std::optional<std::uint64_t> ProcessPeakMemory::read() {
    if (!status_) return std::nullopt;
    char buf[4096];
    ssize_t n = ::pread(status_.get(), buf, sizeof buf - 1, 0);
    if (n <= 0) return peak_;  // the process is gone: keep the last reading
    buf[n] = '\0';
    const char* p = std::strstr(buf, "VmHWM:");
    if (!p) return peak_;
    p += 6;
    while (*p == ' ' || *p == '\t') ++p;
    std::uint64_t kb = 0;
    std::from_chars(p, buf + n, kb);
    peak_ = std::max(peak_.value_or(0), kb * 1024);
    return peak_;
}

}  // namespace funcd
