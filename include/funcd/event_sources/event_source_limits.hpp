#pragma once
// Bounds of reading database change streams (part of DaemonLimits), per event source.
#include <cstddef>

namespace funcd {

struct EventSourceLimits {
    // Changes read from the database and not yet taken by the mapping. When either bound is
    // reached the source stops reading its connection, so a slow or throttled function
    // holds the database's stream back (PostgreSQL keeps the WAL) instead of the daemon's
    // memory. A transaction being received is always read to its end first: its changes
    // only get their position at its commit. 10,000 changes is ten of Lambda's largest
    // batches for a stream (BatchSize 1,000)...
    std::size_t max_buffered_changes = 10'000;
    // ...and 64 MiB bounds it when rows are wide (measured as the bytes they took on the wire).
    std::size_t max_buffered_bytes = 64 * 1024 * 1024;
};

}  // namespace funcd
