#include "funcd/daemon/service_watchdog.hpp"

#include <spdlog/spdlog.h>

namespace funcd {

ServiceWatchdog::ServiceWatchdog(boost::asio::io_context& io, const ServiceNotifier& notifier)
    : notifier_(notifier), timer_(io) {}

void ServiceWatchdog::start() {
    const auto period = notifier_.watchdog_period();
    if (!period || !notifier_.enabled()) return;
    spdlog::info("service: watchdog ping every {} ms", period->count());
    running_ = true;
    tick();
}

void ServiceWatchdog::stop() {
    running_ = false;
    timer_.cancel();
}

void ServiceWatchdog::tick() {
    if (!running_) return;
    if (notifier_.watchdog()) ++pings_;
    timer_.expires_after(*notifier_.watchdog_period());
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) tick();
    });
}

}  // namespace funcd
