#pragma once
// Tells the service manager how the daemon is doing, in systemd's notification protocol:
// one datagram per message, "KEY=VALUE" lines, sent to the AF_UNIX socket named by
// $NOTIFY_SOCKET ("/path" for a socket in the file system, "@name" for one in the
// abstract namespace). funcd's unit (Type=notify) waits for READY=1 before it calls the
// service started, expects WATCHDOG=1 at least every $WATCHDOG_USEC and restarts a daemon
// that stays silent, and shows STATUS= in `systemctl status`.
//
// Without $NOTIFY_SOCKET (started by hand, by a test, by another supervisor) every call is
// a no-op. A message that cannot be sent is logged and otherwise ignored: the manager
// then acts on its own timeouts, which is the right outcome for a daemon it cannot hear.
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "funcd/common/unique_fd.hpp"

namespace funcd {

class ServiceNotifier {
public:
    // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, then removes them from the
    // environment so that no child (a worker with --sandbox off, the bytecode compiler)
    // speaks for the daemon. Call before any thread starts (unsetenv is not thread-safe).
    static ServiceNotifier from_environment();

    // `address` as $NOTIFY_SOCKET spells it; empty: notifications off. `watchdog`: the
    // interval the manager enforces ($WATCHDOG_USEC), unset when it enforces none.
    explicit ServiceNotifier(std::string address = {},
                             std::optional<std::chrono::microseconds> watchdog = std::nullopt);

    bool enabled() const { return fd_ && addr_len_ > 0; }
    const std::string& address() const { return address_; }
    // How often to send WATCHDOG=1: half the manager's interval, so one late tick of a
    // busy loop does not get a healthy daemon killed. Unset without a watchdog.
    std::optional<std::chrono::milliseconds> watchdog_period() const;

    // The daemon listens and serves: the manager may now start what depends on it.
    bool ready(std::string_view status) const;
    // Shutdown began (in-flight invocations may take a while to finish).
    bool stopping(std::string_view status) const;
    // The event loop is alive.
    bool watchdog() const;
    // Any message (newline-separated KEY=VALUE lines). True when it was sent.
    bool notify(std::string_view message) const;

private:
    std::string address_;
    std::optional<std::chrono::microseconds> watchdog_;
    UniqueFd fd_;
    sockaddr_un addr_{};
    unsigned addr_len_ = 0;  // 0: no usable address
};

}  // namespace funcd
