#pragma once
// Bounds of event source mappings (part of DaemonLimits).
#include <cstddef>

namespace funcd {

struct EventSourceLimits {
    // Mappings one function may have. Each holds a database connection and a replication
    // slot, which the database itself limits (PostgreSQL's max_replication_slots is 10 by
    // default), so a handful is already a lot.
    std::size_t max_mappings_per_function = 10;
    // Bytes of one batch's event. Lambda caps a synchronous invocation's payload at 6 MB
    // (limits::kMaxPayloadBytes); a batch is cut before its event would pass this, whatever
    // batch_size says.
    std::size_t max_batch_bytes = 6 * 1024 * 1024;
};

}  // namespace funcd
