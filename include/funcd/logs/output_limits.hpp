#pragma once
// How much of what functions print funcd keeps (part of DaemonLimits).
#include <cstdint>

namespace funcd {

struct OutputLimits {
    // A function's log file rolls over at this size (`--log-max-bytes`).
    std::uint64_t log_max_bytes = 64ull << 20;
    // Files kept per function, the live one included (`--log-files`).
    int log_files = 4;
};

}  // namespace funcd
