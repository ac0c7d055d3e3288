// The daemon's side of the service manager's notification protocol: datagrams to the
// socket $NOTIFY_SOCKET names, in the file system or the abstract namespace, and the
// watchdog pings sent from the event loop.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "funcd/common/ids.hpp"
#include "funcd/common/unique_fd.hpp"
#include "funcd/daemon/service_notifier.hpp"
#include "funcd/daemon/service_watchdog.hpp"

using namespace funcd;
using namespace std::chrono_literals;

namespace {

// The manager's end: a datagram socket bound to a path or to an abstract name ("@...").
class ManagerSocket {
public:
    explicit ManagerSocket(const std::string& address) : address_(address) {
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        EXPECT_TRUE(fd_) << std::strerror(errno);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, address.data(), address.size());
        const bool abstract = address.front() == '@';
        if (abstract) addr.sun_path[0] = '\0';
        const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));
        EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
    }
    ~ManagerSocket() {
        if (address_.front() == '/') ::unlink(address_.c_str());
    }

    // The next datagram, or nothing within `wait`.
    std::optional<std::string> receive(std::chrono::milliseconds wait = 5s) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n < 0) return std::nullopt;
        return std::string(buf, static_cast<std::size_t>(n));
    }

private:
    std::string address_;
    UniqueFd fd_;
};

std::string abstract_name() { return "@funcd-notify-test-" + random_hex(8); }

class ServiceNotifierTest : public ::testing::Test {
protected:
    void TearDown() override {
        for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) ::unsetenv(name);
    }
};

TEST_F(ServiceNotifierTest, SendsReadyStoppingAndWatchdogToAPathSocket) {
    const std::string path = (std::filesystem::temp_directory_path() / ("funcd-notify-" + random_hex(8))).string();
    ManagerSocket manager(path);
    ServiceNotifier notifier(path);
    ASSERT_TRUE(notifier.enabled());

    ASSERT_TRUE(notifier.ready("listening on 127.0.0.1:8080"));
    auto ready = manager.receive();
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->rfind("READY=1\n", 0), 0u) << *ready;
    EXPECT_NE(ready->find("\nSTATUS=listening on 127.0.0.1:8080"), std::string::npos) << *ready;
    EXPECT_NE(ready->find("\nMAINPID=" + std::to_string(::getpid())), std::string::npos) << *ready;

    ASSERT_TRUE(notifier.watchdog());
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");

    ASSERT_TRUE(notifier.stopping("stopping: 0 invocations in flight"));
    auto stopping = manager.receive();
    ASSERT_TRUE(stopping);
    EXPECT_EQ(stopping->rfind("STOPPING=1\n", 0), 0u) << *stopping;
}

TEST_F(ServiceNotifierTest, AnAtSignNamesAnAbstractSocket) {
    const std::string name = abstract_name();
    ManagerSocket manager(name);
    ServiceNotifier notifier(name);
    ASSERT_TRUE(notifier.ready("up"));
    auto got = manager.receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->rfind("READY=1\n", 0), 0u);
    // No file of that name appeared: the '@' became the abstract namespace's NUL.
    EXPECT_FALSE(std::filesystem::exists(name));
}

TEST_F(ServiceNotifierTest, WithoutNotifySocketNothingIsSentAndNothingFails) {
    ::unsetenv("NOTIFY_SOCKET");
    const ServiceNotifier notifier = ServiceNotifier::from_environment();
    EXPECT_FALSE(notifier.enabled());
    EXPECT_FALSE(notifier.ready("up"));
    EXPECT_FALSE(notifier.watchdog());
    EXPECT_FALSE(notifier.stopping("down"));
    EXPECT_FALSE(notifier.watchdog_period());
}

TEST_F(ServiceNotifierTest, AnAddressThatIsNeitherAPathNorAbstractIsIgnored) {
    ServiceNotifier notifier("relative/socket");
    EXPECT_FALSE(notifier.enabled());
    EXPECT_FALSE(notifier.ready("up"));
}

TEST_F(ServiceNotifierTest, TheEnvironmentIsReadOnceAndTakenAwayFromChildren) {
    const std::string name = abstract_name();
    ManagerSocket manager(name);
    ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
    ::setenv("WATCHDOG_USEC", "3000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    const ServiceNotifier notifier = ServiceNotifier::from_environment();
    EXPECT_EQ(notifier.address(), name);
    EXPECT_EQ(notifier.watchdog_period(), std::chrono::milliseconds(1500)) << "half of WATCHDOG_USEC";
    for (const char* var : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
        EXPECT_EQ(std::getenv(var), nullptr) << var << " must not reach workers or other children";
    ASSERT_TRUE(notifier.watchdog());
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");
}

TEST_F(ServiceNotifierTest, AWatchdogMeantForAnotherProcessIsNotPinged) {
    ::setenv("NOTIFY_SOCKET", abstract_name().c_str(), 1);
    ::setenv("WATCHDOG_USEC", "3000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
    EXPECT_FALSE(ServiceNotifier::from_environment().watchdog_period());
    ::setenv("WATCHDOG_USEC", "soon", 1);
    ::unsetenv("WATCHDOG_PID");
    EXPECT_FALSE(ServiceNotifier::from_environment().watchdog_period());
}

// The pings come from the event loop: while the loop is stuck none are sent (so the
// manager restarts a daemon whose loop hangs), and they resume when it runs again.
TEST_F(ServiceNotifierTest, TheWatchdogPingsFromTheEventLoopOnly) {
    const std::string name = abstract_name();
    ManagerSocket manager(name);
    const ServiceNotifier notifier(name, std::chrono::microseconds(100'000));  // pings every 50 ms
    boost::asio::io_context io(1);
    auto work = boost::asio::make_work_guard(io);
    ServiceWatchdog watchdog(io, notifier);
    std::thread loop([&io] { io.run(); });
    boost::asio::post(io, [&watchdog] { watchdog.start(); });
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");

    std::promise<void> release;
    std::promise<void> blocked;
    boost::asio::post(io, [&] {
        blocked.set_value();
        release.get_future().wait();
    });
    blocked.get_future().wait();
    while (manager.receive(0ms)) {
    }  // what was sent before the loop got stuck
    EXPECT_EQ(manager.receive(300ms), std::nullopt) << "a stuck loop must not ping";
    release.set_value();
    EXPECT_EQ(manager.receive(), "WATCHDOG=1");

    boost::asio::post(io, [&watchdog] { watchdog.stop(); });
    work.reset();
    loop.join();
}

}  // namespace
