#pragma once
// What a worker's Runtime API allows the code running in it (part of DaemonLimits).
#include <chrono>
#include <cstddef>

namespace funcd {

struct RuntimeApiLimits {
    // Connections one worker may hold open at once. A runtime uses one (two while it reports
    // an error from another thread); AWS's runtime clients never open more than a few.
    std::size_t max_connections_per_worker = 8;
    // How long a runtime may take to send one whole request once it has started it.
    std::chrono::milliseconds request_deadline{60'000};
};

}  // namespace funcd
