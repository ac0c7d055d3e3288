#pragma once
// How much of what functions print funcd keeps (part of DaemonLimits).
#include <cstdint>

namespace funcd {

struct OutputLimits {
    // Each rollover renames every kept file: more than this is a mistake, not a policy
    // (larger values are taken as this).
    static constexpr int kMaxLogFiles = 1000;

    // A function's log file rolls over at this size (`--log-max-bytes`): no file of a
    // function's log grows past it.
    std::uint64_t log_max_bytes = 64ull << 20;
    // Files kept per function, the live one included (`--log-files`): <fn>.log, <fn>.log.1,
    // ... A function's log takes at most log_max_bytes * log_files of the disk.
    int log_files = 4;
    // Output one invocation may log; further lines are dropped and counted, and one
    // LOGS_DROPPED line at the invocation's end says how many bytes went. A sixteenth of a
    // log file: one runaway invocation cannot roll the function's recent history out of
    // the files kept (and it is still far above what a Lambda function usefully prints).
    std::uint64_t invocation_bytes = 4ull << 20;
    // Output a worker may log between two invocations (while it starts, or while idle with
    // something still running in it); the same size for the same reason. Beyond it an idle
    // worker's output is no longer read until its next invocation is assigned: whatever
    // keeps printing blocks on its full pipe, as on Lambda, where an environment is frozen
    // between invocations. (A starting worker's is read and dropped: init is never held.)
    std::uint64_t idle_bytes = 4ull << 20;
    // A record a runtime writes to its telemetry descriptor is held whole up to this size
    // (the parser's buffer, per worker); a longer one is logged in pieces of this size, as a
    // long output line is cut. 256 KiB: CloudWatch Logs' largest event, so a record Lambda
    // would keep whole stays whole here too.
    std::uint64_t telemetry_record_bytes = 256ull << 10;
};

}  // namespace funcd
