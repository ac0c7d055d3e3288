#pragma once
// Bounds of the metering pipeline (part of DaemonLimits).
#include <chrono>
#include <cstdint>

namespace funcd {

struct MeteringLimits {
    // How long a flush or a usage query may wait on the database before it gives up (503),
    // and how long the final commit at shutdown may take before what is left stays in the
    // journal for the next start.
    std::chrono::milliseconds storage_timeout{5'000};
    // Records committed, replayed or deleted (retention) in one transaction. 10,000 rows of
    // the usage table are a few MB of WAL and commit in tens of ms, so a backlog after a
    // long database outage moves in steps that keep each write-lock hold short.
    std::int64_t batch_records = 10'000;
    // While the journal cannot be written, how often a write is tried again (a probe of
    // journal_probe_bytes of free space, then the records waiting for it).
    std::chrono::milliseconds journal_probe_interval{1'000};
    // Free space the probe must find before new invocations are admitted again: a little
    // more than one record, so a disk that frees a few bytes does not flap between states.
    std::int64_t journal_probe_bytes = 64 * 1024;
    // Records waiting in memory for the database (a few hundred bytes each). Beyond it new
    // invocations are refused (503) until the database takes them: an outage must not
    // grow the daemon's memory without bound.
    std::int64_t max_pending_records = 1'000'000;
};

}  // namespace funcd
