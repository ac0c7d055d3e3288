#pragma once
// Sends WATCHDOG=1 from the event loop at the period the service manager asked for
// (ServiceNotifier::watchdog_period). The pings ride on the loop that serves every request,
// so a loop that is stuck (a deadlock, a handler that never returns) stops pinging and
// the manager restarts the daemon (the unit's WatchdogSec= with Restart=on-failure).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>

#include "funcd/daemon/service_notifier.hpp"

namespace funcd {

class ServiceWatchdog {
public:
    ServiceWatchdog(boost::asio::io_context& io, const ServiceNotifier& notifier);
    // Pings now and then every period; does nothing when the manager set no watchdog.
    void start();
    void stop();
    std::uint64_t pings() const { return pings_; }

private:
    void tick();

    const ServiceNotifier& notifier_;
    boost::asio::steady_timer timer_;
    bool running_ = false;
    std::uint64_t pings_ = 0;
};

}  // namespace funcd
