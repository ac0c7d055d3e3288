#pragma once
// What one HTTP listener allows its clients: the caps every listener of funcd shares
// (part of DaemonLimits, shrunk by tests).
#include <chrono>
#include <cstddef>

namespace funcd::http {

struct ConnectionLimits {
    // Open connections at once; a connection beyond it is answered 503 and closed. Each costs
    // a descriptor and a few KiB; the daemon raises its descriptor limit to the hard limit
    // (typically 524288), so this, not the kernel, is what stops a connection flood.
    std::size_t max_connections = 16'384;
    // Most bytes of a request head (Beast's default is 8 KiB; SigV4 heads with a session token
    // and long function URLs need more). Larger heads get 431.
    std::size_t header_limit = 16 * 1024;
    // How long a client may take to send a whole request head, idle keep-alive time included.
    std::chrono::milliseconds head_timeout{30'000};
    // How long a client may take to send a whole body, however it trickles in (a 50 MiB zip
    // over a slow link fits; a client sending a byte a second does not hold a slot forever).
    std::chrono::milliseconds body_timeout{120'000};
};

}  // namespace funcd::http
