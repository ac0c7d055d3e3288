// Functions that print without end, run by the real daemon with real workers: the disk a
// function's log takes stays within its bound, other functions keep being served, and a
// process left printing after its function answered neither holds the daemon nor keeps
// the next invocations from completing.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The bounds the daemon runs with here, small so a few seconds of printing pass them many
// times over.
constexpr std::uint64_t kLogMaxBytes = 256 * 1024;
constexpr int kLogFiles = 2;
constexpr std::uint64_t kIdleBytes = 64 * 1024;
// The longest one invocation may take here before it counts as held (the functions'
// timeout is 10 s; a daemon held by a flood never answers at all).
constexpr auto kPatience = 20s;

std::vector<std::string> bounded_output_args(std::uint64_t invocation_bytes) {
    return {"--log-max-bytes", std::to_string(kLogMaxBytes),
            "--log-files",     std::to_string(kLogFiles),
            "--limit",         "output.invocation_bytes=" + std::to_string(invocation_bytes),
            "--limit",         "output.idle_bytes=" + std::to_string(kIdleBytes)};
}

// The end of the daemon's own log, for a failure's message.
std::string daemon_log_tail(const Daemon& d) {
    const std::string log = d.log();
    return log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
}

// Prints 100-byte lines as fast as it can for event["seconds"] seconds.
const char* kFloodPy = R"(import sys, time
LINE = "flood " + "x" * 93 + "\n"
def handler(event, context):
    end = time.time() + event["seconds"]
    printed = 0
    while time.time() < end:
        for _ in range(200):
            sys.stdout.write(LINE)
        printed += 200 * len(LINE)
    return {"printed": printed}
)";

// The first invocation leaves a process behind that writes to the function's stdout as fast
// as the pipe takes it, for as long as the worker lives.
const char* kBackgroundPy = R"(import os
started = False
def handler(event, context):
    global started
    if not started:
        started = True
        if os.fork() == 0:
            block = (b"background " + b"y" * 88 + b"\n") * 40
            while True:
                os.write(1, block)
    print("handler ran", event.get("n"))
    return {"n": event.get("n")}
)";

const char* kQuietEchoPy = R"(def handler(event, context):
    return {"n": event.get("n")}
)";

std::uint64_t size_of_files(const fs::path& dir, const std::string& prefix) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (prefix.empty() || e.path().filename().string().starts_with(prefix)) total += e.file_size(ec);
    return total;
}

std::string all_logs_of(const Daemon& d, const std::string& function) {
    std::string text;
    for (int n = kLogFiles - 1; n >= 1; --n)
        text += read_file(d.data_dir() / "logs" / (function + ".log." + std::to_string(n)));
    return text + read_file(d.data_dir() / "logs" / (function + ".log"));
}

// CPU time the process has used, user and system.
std::chrono::milliseconds cpu_time_of(pid_t pid) {
    const std::string stat = read_proc_file(pid, "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return std::chrono::milliseconds(0);
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    std::uint64_t utime = 0, stime = 0;
    // Fields 3 to 13, then utime (14) and stime (15).
    for (int i = 3; i <= 13; ++i) rest >> field;
    rest >> utime >> stime;
    return std::chrono::milliseconds((utime + stime) * 1000 / static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)));
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// Invokes and measures; a call that takes longer than kPatience fails the test (and ends
// the daemon, so the call returns at all).
double timed_invoke_ms(Daemon& d, const std::string& name, const std::string& event, HttpResult* out = nullptr) {
    const auto start = Clock::now();
    auto call = std::async(std::launch::async, [&] { return d.invoke(name, event); });
    if (call.wait_for(kPatience) != std::future_status::ready) {
        ADD_FAILURE() << name << " did not answer within " << kPatience.count() << " s: the daemon is held";
        d.stop(SIGKILL);
    }
    HttpResult r;
    try {
        r = call.get();
    } catch (const std::exception& e) {
        ADD_FAILURE() << name << ": " << e.what() << "\n" << daemon_log_tail(d);
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    EXPECT_EQ(r.status, 200) << name << ": " << r.body;
    if (out) *out = std::move(r);
    return ms;
}

// (a) A function printing as fast as it can for a few seconds: its log stays within
// log_max_bytes * log_files, and another function's synchronous invocations meanwhile keep
// a p99 within 10x their p99 measured just before (or 250 ms, whichever is more: the host
// is shared and one core is busy printing).
TEST(HostileOutput, AStdoutFloodStaysWithinTheLogBoundAndOthersKeepBeingServed) {
    // An invocation may log twice what the function's files hold: they roll over, too.
    Daemon d(bounded_output_args(2 * kLogMaxBytes * kLogFiles));
    ASSERT_EQ(d.deploy("flood", {{"runtime", "python3"}, {"handler", "app.handler"}, {"timeout_s", 10}},
                       python_zip(kFloodPy))
                  .status,
              201);
    ASSERT_EQ(d.deploy("noop", {{"runtime", "provided"}},
                       make_zip({{"bootstrap", {read_file(FUNCD_NOOP_BOOTSTRAP), 0755}}}))
                  .status,
              201);
    const fs::path logs = d.data_dir() / "logs";

    // Warm both, then the baseline.
    HttpResult warm;
    timed_invoke_ms(d, "flood", R"({"seconds": 0})", &warm);
    for (int i = 0; i < 20; ++i) timed_invoke_ms(d, "noop", "{}");
    std::vector<double> baseline;
    for (int i = 0; i < 200; ++i) baseline.push_back(timed_invoke_ms(d, "noop", "{}"));
    if (HasFailure()) return;

    auto flood = std::async(std::launch::async, [&] { return d.invoke("flood", R"({"seconds": 3})"); });
    std::vector<double> during;
    const auto give_up = Clock::now() + kPatience;
    while (flood.wait_for(0s) != std::future_status::ready && Clock::now() < give_up && !HasFailure())
        during.push_back(timed_invoke_ms(d, "noop", "{}"));
    ASSERT_EQ(flood.wait_for(kPatience), std::future_status::ready) << "the flood's invocation never completed";
    HttpResult flooded;
    try {
        flooded = flood.get();
    } catch (const std::exception& e) {
        FAIL() << "flood: " << e.what() << "\n" << daemon_log_tail(d);
    }
    ASSERT_EQ(flooded.status, 200) << flooded.body;
    const auto printed = flooded.json()["printed"].get<std::uint64_t>();
    const std::string request_id = flooded.header("x-funcd-request-id");
    ASSERT_GE(during.size(), 20u) << "too few invocations ran during the flood";

    // Lines reach the files within 200 ms.
    std::this_thread::sleep_for(500ms);
    const std::uint64_t bound = kLogMaxBytes * kLogFiles;
    const std::uint64_t flood_bytes = size_of_files(logs, "flood.log");
    EXPECT_GT(printed, 10 * bound) << "the flood must print far more than the bound for the test to mean anything";
    EXPECT_LE(size_of_files(logs, ""), 2 * bound) << "two functions, each within its bound";
    for (const auto& e : fs::directory_iterator(logs)) EXPECT_LE(e.file_size(), kLogMaxBytes) << e.path();
    ASSERT_LE(flood_bytes, bound) << "printed " << printed;
    ASSERT_TRUE(eventually([&] {
        return all_logs_of(d, "flood").find("END RequestId: " + request_id) != std::string::npos;
    })) << "no END line for the flood";
    EXPECT_TRUE(fs::exists(logs / "flood.log.1")) << "the flood's log rolled over";
    EXPECT_FALSE(fs::exists(logs / ("flood.log." + std::to_string(kLogFiles))));

    // What was dropped of the flood is said once, before its END line.
    const std::string text = all_logs_of(d, "flood");
    const auto marker = text.find("\tLOGS_DROPPED RequestId: " + request_id + "\tDropped: ");
    ASSERT_NE(marker, std::string::npos);
    EXPECT_LT(marker, text.find("\tEND RequestId: " + request_id + "\n"));

    const double p99_before = percentile(baseline, 0.99), p99_during = percentile(during, 0.99);
    std::printf("noop p50/p99 before: %.2f/%.2f ms; during the flood (%zu calls): %.2f/%.2f ms; flood printed %llu "
                "bytes, its log holds %llu\n",
                percentile(baseline, 0.5), p99_before, during.size(), percentile(during, 0.5), p99_during,
                static_cast<unsigned long long>(printed), static_cast<unsigned long long>(flood_bytes));
    EXPECT_LE(p99_during, std::max(10 * p99_before, 250.0));

    // Deleting the function takes its log files with it, the rolled-over ones included;
    // its worker, ending afterwards, writes nothing back.
    ASSERT_EQ(d.api("DELETE", "/v1/functions/flood").status, 204);
    EXPECT_TRUE(eventually([&] { return size_of_files(logs, "flood.log") == 0; }));
    std::this_thread::sleep_for(500ms);
    EXPECT_FALSE(fs::exists(logs / "flood.log"));
    EXPECT_FALSE(fs::exists(logs / "flood.log.1"));
    EXPECT_TRUE(fs::exists(logs / "noop.log")) << "another function's log stays";
}

// (b) A process left behind by a function keeps its stdout full after the function
// answered. The next invocations of that function and of another one complete, what it
// prints is bounded on disk, and while its worker is idle the daemon does not spend its
// time reading it (the process is left blocked on its full pipe).
TEST(HostileOutput, ABackgroundProcessKeepingStdoutFullHoldsNothing) {
    Daemon d(bounded_output_args(64 * 1024));
    ASSERT_EQ(d.deploy("bg", {{"runtime", "python3"}, {"handler", "app.handler"}, {"timeout_s", 10}},
                       python_zip(kBackgroundPy))
                  .status,
              201);
    ASSERT_EQ(d.deploy("other", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kQuietEchoPy)).status,
              201);
    timed_invoke_ms(d, "other", R"({"n": -1})");

    HttpResult r;
    timed_invoke_ms(d, "bg", R"({"n": 0})", &r);
    ASSERT_FALSE(HasFailure()) << "the invocation that started the background process did not complete";
    for (int i = 1; i <= 10 && !HasFailure(); ++i) {
        timed_invoke_ms(d, "bg", "{\"n\": " + std::to_string(i) + "}", &r);
        EXPECT_EQ(r.json()["n"], i);
        timed_invoke_ms(d, "other", "{\"n\": " + std::to_string(i) + "}", &r);
        EXPECT_EQ(r.json()["n"], i);
    }
    ASSERT_FALSE(HasFailure());

    // Idle with its process still printing: the daemon's CPU stays near idle (a daemon
    // reading the flood spends about a core on it).
    std::this_thread::sleep_for(500ms);
    const auto cpu_before = cpu_time_of(d.pid());
    std::this_thread::sleep_for(2s);
    const auto cpu_used = cpu_time_of(d.pid()) - cpu_before;
    std::printf("daemon CPU over 2 s with an idle worker's process printing: %lld ms\n",
                static_cast<long long>(cpu_used.count()));
    EXPECT_LT(cpu_used, 500ms);

    const fs::path logs = d.data_dir() / "logs";
    ASSERT_LE(size_of_files(logs, "bg.log"), kLogMaxBytes * kLogFiles);
    // Flushed within 200 ms.
    EXPECT_TRUE(eventually([&] {
        return all_logs_of(d, "bg").find("\tLOGS_DROPPED Dropped: ") != std::string::npos;
    })) << "output between invocations over its budget is said to be dropped";

    // Still served after all that.
    timed_invoke_ms(d, "bg", R"({"n": 99})", &r);
    EXPECT_EQ(r.json()["n"], 99);
}

}  // namespace
}  // namespace funcd::testing
