#pragma once
// The daemon's own process, as Prometheus' process_* metrics describe one: read from
// /proc/self at scrape time.
#include <cstdint>
#include <optional>

namespace funcd::observe {

struct ProcessStats {
    std::optional<double> cpu_seconds;          // user + system
    std::optional<std::uint64_t> resident_bytes;
    std::optional<std::uint64_t> virtual_bytes;
    std::optional<std::uint64_t> open_fds;
    std::optional<std::uint64_t> max_fds;       // RLIMIT_NOFILE's soft limit
    std::optional<std::uint64_t> threads;
    std::optional<double> start_time_seconds;   // since the Unix epoch
};

// What can be read; a field that cannot is left empty (and logged once at debug level).
ProcessStats read_process_stats();

}  // namespace funcd::observe
