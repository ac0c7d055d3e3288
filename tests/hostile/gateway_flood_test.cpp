// Hostile clients against the real daemon's HTTP listener: anonymous requests that declare
// large bodies, and floods of idle connections. Credentials are decided from the head, so an
// anonymous body is never buffered; a cap on connections, with the longest idle one closed to
// make room, keeps a flood from exhausting the daemon or locking real clients out.
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon_harness.hpp"

namespace {

using namespace funcd::testing;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::size_t open_descriptors(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
    return n;
}

// Sends what it can of `data` without blocking for long (the server may stop reading).
void send_some(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 200) <= 0) return;
        const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
    }
}

// The status line's code of the first answer on `fd`, waiting up to `wait`; 0 if none.
int answer_status(int fd, std::chrono::milliseconds wait) {
    std::string got;
    const auto deadline = Clock::now() + wait;
    while (got.find("\r\n") == std::string::npos && Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    if (got.rfind("HTTP/1.1 ", 0) != 0 || got.size() < 12) return 0;
    return std::stoi(got.substr(9, 3));
}

void raise_descriptor_limit() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
}

// 40 anonymous clients each declare a 60 MB deploy and send 1 MiB of it. Each is refused at
// once, and the daemon does not hold their bytes (it grew by about 41 MB when the token was
// checked after the body).
TEST(GatewayFlood, AnonymousLargeBodiesAreRefusedFromTheirHead) {
    constexpr int kClients = 40;
    constexpr std::size_t kSent = 1 << 20;
    Daemon d;
    ASSERT_EQ(d.deploy("private", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("def handler(event, context):\n    return 'ok'\n"))
                  .status,
              201);
    const long before = rss_kib(d.pid());
    ASSERT_GT(before, 0);

    // Three doors: the /v1 API (token), Lambda's API (SigV4) and a function URL with token auth.
    const std::vector<std::string> heads = {
        "PUT /v1/functions/evil HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\nContent-Length: 62914560\r\n\r\n",
        "POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 62914560\r\n\r\n",
        "POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 "
        "Credential=AKIANOTAKEY/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=0000000000000000000000000000000000000000000000000000000000000000\r\nX-Amz-Date: 20260101T000000Z\r\n"
        "Content-Length: 62914560\r\n\r\n",
        "POST /fn/private HTTP/1.1\r\nHost: x\r\nContent-Length: 6000000\r\n\r\n",
    };
    const std::vector<int> expected = {401, 403, 403, 401};
    const std::string filler(kSent, 'z');
    std::vector<int> fds;
    const auto began = Clock::now();
    for (int i = 0; i < kClients; ++i) {
        const int fd = connect_loopback(d.port());
        fds.push_back(fd);
        send_some(fd, heads[i % heads.size()]);
        send_some(fd, filler);
    }
    for (int i = 0; i < kClients; ++i)
        EXPECT_EQ(answer_status(fds[i], std::chrono::seconds(5)), expected[i % heads.size()]) << "client " << i;
    EXPECT_LT(Clock::now() - began, std::chrono::seconds(20));
    const long after = rss_kib(d.pid());
    // 40 MiB were sent; what the daemon may keep is its read buffers, not the bodies.
    EXPECT_LT(after - before, 12 * 1024) << "RSS grew from " << before << " kB to " << after << " kB";
    for (int fd : fds) ::close(fd);

    // The same door with the token still takes a body.
    EXPECT_EQ(d.invoke("private").status, 200);
}

// Thousands of connections opened and left idle: the daemon holds at most its cap of them,
// and a real client still gets its answer while the flood goes on.
TEST(GatewayFlood, IdleConnectionFloodNeitherExhaustsNorLocksOut) {
    constexpr int kFlood = 3000;
    constexpr int kCap = 200;
    raise_descriptor_limit();
    Daemon d({"--limit", "gateway.max_connections=" + std::to_string(kCap)});
    ASSERT_EQ(d.deploy("hello", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("def handler(event, context):\n    return 'hi'\n"))
                  .status,
              201);
    const std::size_t fds_before = open_descriptors(d.pid());
    std::vector<int> flood;
    for (int i = 0; i < kFlood; ++i) flood.push_back(connect_loopback(d.port()));
    // Let the daemon accept them all (and close what is over its cap).
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const std::size_t fds_during = open_descriptors(d.pid());
    EXPECT_LT(fds_during, fds_before + kCap + 20) << "descriptors: " << fds_before << " -> " << fds_during;

    for (int i = 0; i < 5; ++i) {
        const auto r = d.invoke("hello");
        EXPECT_EQ(r.status, 200) << r.body;
    }
    for (int fd : flood) ::close(fd);
}

}  // namespace
