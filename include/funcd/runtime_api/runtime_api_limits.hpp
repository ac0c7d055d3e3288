#pragma once
// What a worker's Runtime API allows the code running in it (part of DaemonLimits).
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace funcd {

struct RuntimeApiLimits {
    // Connections one worker may hold open at once. A runtime uses one (two while it reports
    // an error from another thread); AWS's runtime clients never open more than a few.
    std::size_t max_connections_per_worker = 8;
    // How long a runtime may take to send one whole request, from its first byte to its
    // last: a total, not a per-read timeout, so a runtime that trickles a byte at a time
    // cannot hold a connection and its buffers for longer. Over loopback a 6 MiB body takes
    // milliseconds; the minute is for a runtime that computes its answer while streaming it.
    std::chrono::milliseconds request_deadline{60'000};
    // Bytes of request bodies one worker's connections may buffer at once (allocated as the
    // bytes arrive, never from a declared Content-Length). One response at Lambda's payload
    // limit (6 MiB) fits, with 1 MiB beside it for an error a second connection reports
    // meanwhile, as AWS's runtime clients may. A body that would go past it is refused 429.
    std::size_t max_body_bytes_per_worker = 7 * 1024 * 1024;
    // Most bytes one streamed response may carry (Lambda-Runtime-Function-Response-Mode:
    // streaming): Lambda's documented maximum for a streamed response, 200 MiB. Past it the
    // stream ends with Function.ResponseSizeTooLarge.
    std::uint64_t max_stream_bytes = 200ull * 1024 * 1024;
    // Bytes of a streamed response held in the daemon while its caller has not taken them:
    // past this the runtime's socket is not read until the caller has taken half, so a slow
    // client slows the function down instead of filling the daemon's memory. 1 MiB keeps a
    // loopback or LAN client busy between two refills; a stream holds at most this plus one
    // socket read (64 KiB).
    std::size_t stream_buffer_bytes = 1024 * 1024;
};

}  // namespace funcd
