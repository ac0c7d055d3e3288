// The logs API through the real daemon and real workers: one request's records found among
// a hundred thousand, a followed log that gets a line the function prints while it runs
// within 100 ms and ends when the function is deleted, a trace's records across two
// functions, and the 400s of bad parameters.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <set>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kLoggingEchoPy = R"(def handler(event, context):
    print("handling", event.get("n"))
    print("second line\nof one print")
    return {"ok": True}
)";

std::vector<json> ndjson(const std::string& body) {
    std::vector<json> out;
    std::size_t at = 0;
    while (at < body.size()) {
        const auto nl = body.find('\n', at);
        out.push_back(json::parse(body.substr(at, nl - at)));
        if (nl == std::string::npos) break;
        at = nl + 1;
    }
    return out;
}

std::vector<json> logs_of(Daemon& d, const std::string& target) {
    auto r = d.api("GET", target);
    EXPECT_EQ(r.status, 200) << target << " " << r.body;
    EXPECT_EQ(r.header("content-type"), "application/x-ndjson");
    return ndjson(r.body);
}

TEST(LogsApi, FindsOneRequestsRecordsAmongAHundredThousand) {
    std::filesystem::path data;
    std::string real_id;
    {
        Daemon first;
        ASSERT_EQ(first.deploy("big", python_settings(), python_zip(kLoggingEchoPy)).status, 201);
        auto r = first.invoke("big", R"({"n": 1})");
        ASSERT_EQ(r.status, 200) << r.body;
        real_id = r.header("x-funcd-request-id");
        log_after(first, "big", real_id);
        data = first.data_dir();
        first.keep_data_dir();
    }
    // 120,000 records of 12,000 other requests in a rolled-over file, and the needle's
    // three spread among them; written before the daemon starts, with no index beside them.
    const auto logs = data / "logs";
    {
        std::ofstream out(logs / "big.log.1");
        for (int i = 0; i < 120000; ++i) {
            const std::string id = i % 40000 == 20000 ? "needle-1" : fmt::format("req-{}", i % 12000);
            out << fmt::format("2026-11-26T10:{:02}:{:02}.{:03}Z\t{}\tline {} of a busy function\n", i / 60000 % 60,
                               i / 1000 % 60, i % 1000, id, i);
        }
    }
    Daemon d({}, data);
    auto needle = logs_of(d, "/v1/functions/big/logs?request_id=needle-1");
    ASSERT_EQ(needle.size(), 3u);
    for (const auto& rec : needle) {
        EXPECT_EQ(rec["request_id"], "needle-1");
        EXPECT_EQ(rec["stream"], "function");
        EXPECT_TRUE(rec["level"].is_null());
    }
    EXPECT_EQ(needle[0]["message"], "line 20000 of a busy function");
    EXPECT_EQ(needle[2]["message"], "line 100000 of a busy function");
    EXPECT_TRUE(std::filesystem::exists(logs / "big.log.1.idx")) << "indexed by the first lookup";
    EXPECT_EQ(logs_of(d, "/v1/functions/big/logs?request_id=needle-1").size(), 3u);

    // The invocation's own records, in the live file: funcd's and the function's.
    auto mine = logs_of(d, "/v1/functions/big/logs?request_id=" + real_id);
    std::vector<std::string> messages;
    for (const auto& rec : mine) {
        EXPECT_EQ(rec["request_id"], real_id);
        messages.push_back(rec["message"]);
    }
    ASSERT_GE(messages.size(), 5u) << json(mine).dump();
    EXPECT_TRUE(messages.front().starts_with("START RequestId: " + real_id)) << messages.front();
    EXPECT_EQ(mine.front()["stream"], "platform");
    EXPECT_NE(std::find(messages.begin(), messages.end(), "handling 1"), messages.end());
    EXPECT_TRUE(messages.back().starts_with("REPORT RequestId: " + real_id)) << messages.back();

    // limit keeps the newest; the whole log is there without request_id.
    auto newest = logs_of(d, "/v1/functions/big/logs?limit=2&level=INFO");
    ASSERT_EQ(newest.size(), 2u);
    EXPECT_TRUE(newest[1]["message"].get<std::string>().starts_with("REPORT RequestId: " + real_id));
    EXPECT_EQ(logs_of(d, "/v1/functions/big/logs?level=ERROR").size(), 0u);
    auto window = logs_of(d, "/v1/functions/big/logs?since=2026-11-26T10:00:05Z&until=1795687206000&limit=5000");
    ASSERT_EQ(window.size(), 1000u) << "10:00:05.000 to 10:00:06.000 (1795687206000 ms), once per ms";
    EXPECT_EQ(window.front()["timestamp"], "2026-11-26T10:00:05.000Z");
}

// Reads what a socket sends until `done(received)` or the deadline; returns all of it.
template <class Done>
std::string read_until(int fd, Done done, std::chrono::milliseconds timeout = 10s) {
    std::string got;
    const auto end = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (!done(got) && std::chrono::steady_clock::now() < end) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

int open_follow(Daemon& d, const std::string& target) {
    const int fd = connect_loopback(d.port());
    timeval wait{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    const std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                                Daemon::kToken + "\r\n\r\n";
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    return fd;
}

// Sleeps, prints the wall-clock time it prints at (ns since the epoch), sleeps again: the
// line must reach a follower while the invocation still runs.
const char* kLatePrintPy = R"(import time
def handler(event, context):
    time.sleep(0.3)
    print("MARK %d" % time.time_ns(), flush=True)
    time.sleep(0.7)
    return {}
)";

TEST(LogsApi, FollowGetsALinePrintedWithin100msAndEndsOnDelete) {
    Daemon d({"--limit", "logs.heartbeat_ms=100"});
    ASSERT_EQ(d.deploy("late", python_settings(), python_zip(kLatePrintPy)).status, 201);
    const int fd = open_follow(d, "/v1/functions/late/logs?follow=true");
    std::string got = read_until(fd, [](const std::string& s) { return s.find(": following") != std::string::npos; });
    ASSERT_NE(got.find("200 OK"), std::string::npos) << got;
    ASSERT_NE(got.find("text/event-stream"), std::string::npos) << got;

    std::thread caller([&] { EXPECT_EQ(d.invoke("late").status, 200); });
    std::chrono::system_clock::time_point received;
    got += read_until(fd, [&](const std::string& s) {
        if (s.find("MARK ") == std::string::npos || s.find("\n\n", s.find("MARK ")) == std::string::npos) return false;
        received = std::chrono::system_clock::now();
        return true;
    });
    caller.join();
    const auto at = got.find("MARK ");
    ASSERT_NE(at, std::string::npos) << got;
    const long long printed_ns = std::stoll(got.substr(at + 5));
    const auto latency = received - std::chrono::system_clock::time_point(std::chrono::nanoseconds(printed_ns));
    std::printf("follow: print to receipt %lld us\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
    EXPECT_LT(latency, 100ms) << "print to receipt: "
                              << std::chrono::duration_cast<std::chrono::microseconds>(latency).count() << " us";
    // The event is one JSON record.
    const auto data = got.rfind("data: ", at);
    ASSERT_NE(data, std::string::npos);
    const json rec = json::parse(got.substr(data + 6, got.find('\n', data) - data - 6));
    EXPECT_EQ(rec["stream"], "function");
    EXPECT_FALSE(rec["request_id"].get<std::string>().empty());
    EXPECT_TRUE(rec["message"].get<std::string>().starts_with("MARK "));

    got += read_until(fd, [](const std::string& s) { return s.find(": heartbeat") != std::string::npos; });
    EXPECT_NE(got.find(": heartbeat"), std::string::npos) << "heartbeats every logs.heartbeat_ms";

    ASSERT_EQ(d.api("DELETE", "/v1/functions/late").status, 204);
    got += read_until(fd, [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; });
    EXPECT_NE(got.find("event: end\ndata: {\"reason\":\"deleted\"}"), std::string::npos) << got;
    EXPECT_NE(got.find("0\r\n\r\n"), std::string::npos) << "the stream ends: " << got;
    ::close(fd);
}

TEST(LogsApi, FollowersAreBoundedAndEndAtShutdown) {
    Daemon d({"--limit", "logs.max_followers_per_function=1"});
    ASSERT_EQ(d.deploy("f", python_settings(), python_zip(kLoggingEchoPy)).status, 201);
    const int fd = open_follow(d, "/v1/functions/f/logs?follow=true&level=INFO");
    std::string got = read_until(fd, [](const std::string& s) { return s.find(": following") != std::string::npos; });
    ASSERT_NE(got.find(": following"), std::string::npos) << got;
    auto second = d.api("GET", "/v1/functions/f/logs?follow=true");
    EXPECT_EQ(second.status, 429) << second.body;
    EXPECT_NE(second.body.find("logs.max_followers_per_function"), std::string::npos) << second.body;
    ::kill(d.pid(), SIGTERM);
    got += read_until(fd, [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; });
    EXPECT_NE(got.find("event: end\ndata: {\"reason\":\"shutdown\"}"), std::string::npos) << got;
    ::close(fd);
}

TEST(LogsApi, ATracesRecordsAcrossTwoFunctions) {
    Daemon d;
    ASSERT_EQ(d.deploy("a", python_settings(), python_zip(kLoggingEchoPy)).status, 201);
    ASSERT_EQ(d.deploy("b", python_settings(), python_zip(kLoggingEchoPy)).status, 201);
    const std::string root = "1-5759e988-bd862e3fe1be46a994272793";
    const std::string trace = "Root=" + root + ";Parent=53995c3f42cd8ad8;Sampled=1";
    const std::vector<std::pair<std::string, std::string>> headers{{"Authorization", "Bearer " + Daemon::kToken},
                                                                   {"X-Amzn-Trace-Id", trace}};
    auto ra = http_request(d.port(), "POST", "/v1/functions/a/invoke", R"({"n": 1})", headers);
    auto rb = http_request(d.port(), "POST", "/v1/functions/b/invoke", R"({"n": 2})", headers);
    auto other = d.invoke("a", R"({"n": 3})");  // another trace
    ASSERT_EQ(ra.status, 200);
    ASSERT_EQ(rb.status, 200);
    const std::string ida = ra.header("x-funcd-request-id"), idb = rb.header("x-funcd-request-id");
    log_after(d, "a", other.header("x-funcd-request-id"));
    log_after(d, "b", idb);
    std::vector<json> recs;
    ASSERT_TRUE(eventually([&] {
        recs = logs_of(d, "/v1/logs?trace_id=" + root);
        return !recs.empty() && recs.back()["message"].get<std::string>().starts_with("REPORT");
    }));
    std::set<std::string> functions, ids;
    for (const auto& r : recs) {
        functions.insert(r["function"]);
        ids.insert(r["request_id"]);
        EXPECT_NE(r["message"], "handling 3");
    }
    EXPECT_EQ(functions, (std::set<std::string>{"a", "b"}));
    EXPECT_EQ(ids, (std::set<std::string>{ida, idb}));
    EXPECT_EQ(recs.front()["message"], "START RequestId: " + ida + " Version: 1") << json(recs).dump();
    // The whole header works too, and the function's endpoint narrows to its own.
    EXPECT_EQ(logs_of(d, "/v1/logs?trace_id=" + trace).size(), recs.size());
    auto of_b = logs_of(d, "/v1/functions/b/logs?trace_id=" + root);
    ASSERT_FALSE(of_b.empty());
    for (const auto& r : of_b) EXPECT_EQ(r["request_id"], idb);
    EXPECT_TRUE(logs_of(d, "/v1/logs?trace_id=1-00000000-000000000000000000000000").empty());
}

TEST(LogsApi, BadParametersAre400sNamingThem) {
    Daemon d;
    ASSERT_EQ(d.deploy("f", python_settings(), python_zip(kLoggingEchoPy)).status, 201);
    const std::pair<std::string, std::string> cases[] = {
        {"/v1/functions/f/logs?level=LOUD", "level"},
        {"/v1/functions/f/logs?since=yesterday", "since"},
        {"/v1/functions/f/logs?until=12:00", "until"},
        {"/v1/functions/f/logs?since=2026-11-26T10:00:00Z&until=2026-11-26T09:00:00Z", "since"},
        {"/v1/functions/f/logs?limit=0", "limit"},
        {"/v1/functions/f/logs?limit=100001", "limit"},
        {"/v1/functions/f/logs?follow=maybe", "follow"},
        {"/v1/functions/f/logs?follow=true&since=2026-11-26T10:00:00Z", "since"},
        {"/v1/functions/f/logs?trace_id=nope", "trace_id"},
        {"/v1/functions/f/logs?request_id=", "request_id"},
        {"/v1/functions/f/logs?colour=red", "colour"},
        {"/v1/logs", "trace_id"},
        {"/v1/logs?request_id=x&trace_id=1-5759e988-bd862e3fe1be46a994272793", "request_id"},
    };
    for (const auto& [target, name] : cases) {
        auto r = d.api("GET", target);
        EXPECT_EQ(r.status, 400) << target << " " << r.body;
        const std::string message = r.json()["error"]["message"];
        EXPECT_NE(message.find(name), std::string::npos) << target << ": " << message;
    }
    auto missing = d.api("GET", "/v1/functions/nope/logs");
    EXPECT_EQ(missing.status, 404) << missing.body;
    EXPECT_EQ(missing.json()["error"]["type"], "ResourceNotFoundException");
    EXPECT_EQ(d.api("POST", "/v1/functions/f/logs").status, 405);
}

}  // namespace
}  // namespace funcd::testing
