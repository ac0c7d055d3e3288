#pragma once
// Peak resident memory of one process, from /proc/<pid>/status (VmHWM). The file is
// opened once at launch and re-read with pread, which regenerates it; after the process
// is gone the last reading stays. Used where no cgroup can say it for the whole worker.
#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "funcd/common/unique_fd.hpp"

namespace funcd {

class ProcessPeakMemory {
public:
    explicit ProcessPeakMemory(pid_t pid);
    std::optional<std::uint64_t> read();

private:
    UniqueFd status_;
    std::optional<std::uint64_t> peak_;
};

}  // namespace funcd
