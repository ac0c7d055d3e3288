#pragma once
// Tells its owner when shared state may have changed: a thread of its own LISTENs on one
// PostgreSQL channel and calls `on_change` for every notification, and also every
// `poll_interval` and after each (re)connection, because PostgreSQL drops notifications
// sent while a listener is disconnected. `on_change` only says "read the changes": the
// reader (Registry::refresh, through RegistrySync) finds what they are from revisions.
//
// The thread blocks on its own connection, never on the loop; a lost connection is made
// again with backoff, and logged once per outage.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace funcd {

class PgListener {
public:
    // `on_change` runs on the listener's thread: it should hand the work on and return.
    PgListener(std::string conninfo, std::string channel, std::chrono::milliseconds poll_interval,
               std::function<void()> on_change);
    ~PgListener();
    PgListener(const PgListener&) = delete;
    PgListener& operator=(const PgListener&) = delete;

    void start();
    // Ends the thread (at once: it waits on a descriptor this wakes).
    void stop();
    // Notifications received so far (for tests and the log).
    std::uint64_t notifications() const { return notifications_.load(); }

private:
    void run();
    // Waits up to `timeout` for the stop descriptor; true when stopping.
    bool wait_for_stop(std::chrono::milliseconds timeout) const;

    const std::string conninfo_;
    const std::string channel_;
    const std::chrono::milliseconds poll_interval_;
    const std::function<void()> on_change_;
    int stop_fd_ = -1;  // an eventfd, readable once stop() is called
    std::atomic<std::uint64_t> notifications_{0};
    std::thread thread_;
};

}  // namespace funcd
