#pragma once
// Bounds of event source mappings and of the database change streams they read (part of
// DaemonLimits).
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
    // One transaction is held whole until its commit arrives (pgoutput gives positions only
    // then), whatever the bounds above say. A larger one is not read: the mapping fails with
    // this limit named in its last_error and tries again with backoff, the slot keeping the
    // transaction, until the limit is raised. Counted as its changes' bytes on the wire; held
    // as decoded rows it takes several times that. 256 MiB is a bulk change of a million
    // rows of a couple of hundred bytes.
    std::size_t max_transaction_bytes = 256 * 1024 * 1024;
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
