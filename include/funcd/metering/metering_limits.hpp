#pragma once
// Bounds of the metering pipeline (part of DaemonLimits).
#include <chrono>

namespace funcd {

struct MeteringLimits {
    // How long a flush or a usage query may wait on the database before it gives up (503).
    std::chrono::milliseconds storage_timeout{5'000};
};

}  // namespace funcd
