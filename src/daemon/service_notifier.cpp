#include "funcd/daemon/service_notifier.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace funcd {
namespace {

std::optional<std::string> take_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    std::string value = v;
    ::unsetenv(name);
    return value;
}

std::optional<long long> parse_number(const std::optional<std::string>& text) {
    if (!text || text->empty()) return std::nullopt;
    long long n = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
    if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
    return n;
}

}  // namespace

ServiceNotifier ServiceNotifier::from_environment() {
    std::string address = take_env("NOTIFY_SOCKET").value_or("");
    const auto usec_text = take_env("WATCHDOG_USEC");
    const auto pid_text = take_env("WATCHDOG_PID");
    std::optional<std::chrono::microseconds> watchdog;
    const auto usec = parse_number(usec_text);
    const auto pid = parse_number(pid_text);
    if (usec_text && (!usec || *usec <= 0)) {
        spdlog::warn("service: ignoring WATCHDOG_USEC='{}' (not a positive number of microseconds)", *usec_text);
    } else if (usec && pid && *pid != ::getpid()) {
        // The watchdog was meant for another process (the one the manager started, which
        // then exec'd or forked us): its pings are not ours to send.
        spdlog::info("service: WATCHDOG_PID={} is not this process ({}); no watchdog pings", *pid, ::getpid());
    } else if (usec) {
        watchdog = std::chrono::microseconds(*usec);
    }
    return ServiceNotifier(std::move(address), watchdog);
}

ServiceNotifier::ServiceNotifier(std::string address, std::optional<std::chrono::microseconds> watchdog)
    : address_(std::move(address)), watchdog_(watchdog) {
    if (address_.empty()) return;
    // "@name" is a socket in the abstract namespace: a leading NUL byte instead of '@',
    // and the name's exact length (no terminating NUL) in the address length.
    const bool abstract = address_.front() == '@';
    if (!abstract && address_.front() != '/') {
        spdlog::warn("service: NOTIFY_SOCKET='{}' is neither an absolute path nor an abstract name (@...); "
                     "no notifications will be sent",
                     address_);
        return;
    }
    if (address_.size() >= sizeof(addr_.sun_path)) {
        spdlog::warn("service: NOTIFY_SOCKET='{}' is longer than a socket address ({} bytes); no notifications",
                     address_, sizeof(addr_.sun_path) - 1);
        return;
    }
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, address_.data(), address_.size());
    if (abstract) addr_.sun_path[0] = '\0';
    addr_len_ = static_cast<unsigned>(offsetof(sockaddr_un, sun_path) + address_.size() + (abstract ? 0 : 1));
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd_) {
        const int e = errno;
        spdlog::warn("service: socket(AF_UNIX, SOCK_DGRAM) for NOTIFY_SOCKET failed: {} (errno {}); no notifications",
                     std::strerror(e), e);
        addr_len_ = 0;
    }
}

std::optional<std::chrono::milliseconds> ServiceNotifier::watchdog_period() const {
    if (!watchdog_) return std::nullopt;
    // At least a millisecond: a timer of zero would spin the loop.
    return std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog_ / 2));
}

bool ServiceNotifier::notify(std::string_view message) const {
    if (!enabled()) return false;
    // Non-blocking: a manager that does not read its socket must not stall the event loop.
    const ssize_t n = ::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                               reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
    if (n == static_cast<ssize_t>(message.size())) return true;
    const int e = n < 0 ? errno : EMSGSIZE;
    spdlog::warn("service: sending '{}' to NOTIFY_SOCKET {} failed: {} (errno {})", message.substr(0, message.find('\n')),
                 address_, std::strerror(e), e);
    return false;
}

bool ServiceNotifier::ready(std::string_view status) const {
    return notify("READY=1\nSTATUS=" + std::string(status) + "\nMAINPID=" + std::to_string(::getpid()));
}

bool ServiceNotifier::stopping(std::string_view status) const {
    return notify("STOPPING=1\nSTATUS=" + std::string(status));
}

bool ServiceNotifier::watchdog() const { return notify("WATCHDOG=1"); }

}  // namespace funcd
