#pragma once
// Bounds of the metrics listener (--metrics-listen; part of DaemonLimits): the same
// connection discipline as the API's listener, sized for a few scrapers.
#include <chrono>

#include "funcd/gateway/connection_limits.hpp"

namespace funcd::observe {

inline http::ConnectionLimits default_metrics_listener_limits() {
    http::ConnectionLimits l;
    // A scraper holds one keep-alive connection; a few Prometheus servers and a curl or two
    // fit many times over, and a connection flood costs at most this many descriptors.
    l.max_connections = 64;
    // A scrape is a GET with a handful of headers.
    l.header_limit = 8 * 1024;
    // Prometheus scrapes every 15 to 60 s over one keep-alive connection: an idle connection
    // is kept a little longer than the slowest usual interval.
    l.head_timeout = std::chrono::milliseconds(90'000);
    // A scrape has no body; one that sends one gets this long.
    l.body_timeout = std::chrono::milliseconds(10'000);
    return l;
}

}  // namespace funcd::observe
