#include "funcd/observe/process_stats.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace funcd::observe {
namespace {

// A small /proc file, read whole with plain calls.
std::optional<std::string> read_small(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        spdlog::debug("metrics: cannot open {}: {} (errno {})", path, std::strerror(errno), errno);
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            spdlog::debug("metrics: cannot read {}: {} (errno {})", path, std::strerror(errno), errno);
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc()) return std::nullopt;
    return v;
}

// Seconds since the epoch at which the host booted (btime in /proc/stat).
std::optional<double> boot_time() {
    auto stat = read_small("/proc/stat");
    if (!stat) return std::nullopt;
    const auto at = stat->find("\nbtime ");
    if (at == std::string::npos) return std::nullopt;
    if (auto v = number(std::string_view(*stat).substr(at + 7))) return static_cast<double>(*v);
    return std::nullopt;
}

}  // namespace

ProcessStats read_process_stats() {
    ProcessStats s;
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (auto stat = read_small("/proc/self/stat")) {
        // Fields after the command name, which is in parentheses and may hold spaces.
        const auto close = stat->rfind(')');
        if (close != std::string::npos) {
            std::vector<std::string_view> f;  // f[0] is field 3 (state)
            std::string_view rest = std::string_view(*stat).substr(close + 2);
            while (!rest.empty()) {
                const auto sp = rest.find(' ');
                f.push_back(rest.substr(0, sp));
                rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
            }
            // proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24.
            auto field = [&](std::size_t n) { return n - 3 < f.size() ? number(f[n - 3]) : std::nullopt; };
            if (auto u = field(14), st = field(15); u && st && ticks > 0)
                s.cpu_seconds = static_cast<double>(*u + *st) / static_cast<double>(ticks);
            s.threads = field(20);
            if (auto start = field(22); start && ticks > 0)
                if (auto boot = boot_time()) s.start_time_seconds = *boot + static_cast<double>(*start) / ticks;
            s.virtual_bytes = field(23);
            if (auto rss = field(24); rss && page > 0) s.resident_bytes = *rss * static_cast<std::uint64_t>(page);
        }
    }
    if (DIR* d = ::opendir("/proc/self/fd")) {
        std::uint64_t n = 0;
        while (const dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        s.open_fds = n > 0 ? n - 1 : 0;  // less the directory's own descriptor
    } else {
        spdlog::debug("metrics: cannot list /proc/self/fd: {} (errno {})", std::strerror(errno), errno);
    }
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0) s.max_fds = rl.rlim_cur;
    return s;
}

}  // namespace funcd::observe
