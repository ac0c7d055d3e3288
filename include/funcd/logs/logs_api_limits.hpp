#pragma once
// What the logs API may hold for its clients (part of DaemonLimits): results of a query,
// followers and what a slow follower may have waiting. Every figure bounds memory a client
// can make the daemon hold.
#include <chrono>
#include <cstdint>

namespace funcd {

struct LogsApiLimits {
    // Records a query answers without `limit` (`logs.default_results`), and at most
    // (`logs.max_results`): the newest are kept.
    int default_results = 1000;
    int max_results = 10000;
    // Bytes of records one answer holds (`logs.max_result_bytes`): beyond it the oldest are
    // left out, as with `limit`. A record is at most a worker's longest line (256 KiB,
    // escaped), so max_results alone would allow gigabytes.
    std::uint64_t max_result_bytes = 16ull << 20;
    // Requests of one trace whose records a cross-function query reads
    // (`logs.max_trace_requests`); the newest are kept.
    int max_trace_requests = 1000;
    // Open `follow=true` streams, in all (`logs.max_followers`) and per function
    // (`logs.max_followers_per_function`); more are answered 429.
    int max_followers = 256;
    int max_followers_per_function = 16;
    // Bytes waiting for one follower that reads slowly (`logs.follower_buffer_bytes`):
    // records that do not fit are skipped and counted, and an `event: dropped` says how
    // many once the client has caught up. 256 followers hold at most 256 MiB.
    std::uint64_t follower_buffer_bytes = 1ull << 20;
    // A `: heartbeat` comment to every follower this often (`logs.heartbeat_ms`): keeps
    // proxies from closing a quiet stream and finds clients that went away.
    std::chrono::milliseconds heartbeat_interval{15000};
};

}  // namespace funcd
