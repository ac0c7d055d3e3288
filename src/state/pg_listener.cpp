#include "funcd/state/pg_listener.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "funcd/event_sources/pg_connection.hpp"

namespace funcd {
namespace {

// Reconnection backoff after a lost connection: from 200 ms, doubling, up to 5 s, so a
// restarted database is listened to again within seconds without a node hammering it.
constexpr std::chrono::milliseconds kFirstRetry{200};
constexpr std::chrono::milliseconds kLastRetry{5000};

}  // namespace

PgListener::PgListener(std::string conninfo, std::string channel, std::chrono::milliseconds poll_interval,
                       std::function<void()> on_change)
    : conninfo_(std::move(conninfo)),
      channel_(std::move(channel)),
      poll_interval_(poll_interval),
      on_change_(std::move(on_change)) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0)
        throw std::runtime_error(std::string("state listener: eventfd failed: ") + std::strerror(errno));
}

PgListener::~PgListener() {
    stop();
    ::close(stop_fd_);
}

void PgListener::start() { thread_ = std::thread([this] { run(); }); }

void PgListener::stop() {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof one) != sizeof one)
        spdlog::error("state listener: cannot wake the listener: {} (errno {})", std::strerror(errno), errno);
    thread_.join();
}

bool PgListener::wait_for_stop(std::chrono::milliseconds timeout) const {
    pollfd p{stop_fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

void PgListener::run() {
    std::chrono::milliseconds retry = kFirstRetry;
    bool outage_logged = false;
    while (true) {
        PgConnection conn;
        try {
            conn = PgConnection::connect(conninfo_);
            conn.query("LISTEN " + conn.quote_identifier(channel_));
        } catch (const std::exception& e) {
            if (!outage_logged)
                spdlog::warn("state listener: cannot listen for changes of the shared state (trying again): {}",
                             e.what());
            outage_logged = true;
            if (wait_for_stop(retry)) return;
            retry = std::min(retry * 2, kLastRetry);
            continue;
        }
        if (outage_logged) spdlog::info("state listener: listening for changes of the shared state again");
        outage_logged = false;
        retry = kFirstRetry;
        // Whatever happened while nobody listened.
        on_change_();
        auto next_poll = std::chrono::steady_clock::now() + poll_interval_;
        while (true) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= next_poll) {
                on_change_();
                next_poll = now + poll_interval_;
            }
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - now);
            pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {PQsocket(conn.get()), POLLIN, 0}};
            const int ready = ::poll(fds, 2, static_cast<int>(wait.count()) + 1);
            if (ready < 0 && errno != EINTR) {
                spdlog::error("state listener: poll failed: {} (errno {})", std::strerror(errno), errno);
                if (wait_for_stop(kLastRetry)) return;
                continue;
            }
            if (fds[0].revents) return;
            if (ready <= 0 || !fds[1].revents) continue;
            if (PQconsumeInput(conn.get()) == 0) {
                spdlog::warn("state listener: lost the connection to the shared state: {}",
                             pg_error_message(conn.get()));
                outage_logged = true;
                break;
            }
            bool notified = false;
            while (PGnotify* n = PQnotifies(conn.get())) {
                notified = true;
                PQfreemem(n);
            }
            if (notified) {
                notifications_.fetch_add(1);
                on_change_();
            }
        }
    }
}

}  // namespace funcd
