// Function logs: rollover within log_max_bytes * log_files, LOGS_DROPPED lines, the
// per-function count of dropped bytes, failed writes, and a deleted function's files.
#include "funcd/logs/function_log.hpp"

#include "funcd/daemon/daemon_limits.hpp"
#include "funcd/daemon/options.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <algorithm>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

namespace funcd {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

std::size_t count_of(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

class FunctionLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-log-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    // The log files, not their indexes (<file>.idx).
    std::uintmax_t total_size() const {
        std::uintmax_t total = 0;
        for (const auto& e : fs::directory_iterator(dir_))
            if (e.path().extension() != ".idx") total += e.file_size();
        return total;
    }
    std::size_t file_count() const {
        return static_cast<std::size_t>(std::count_if(fs::directory_iterator(dir_), fs::directory_iterator(),
                                                      [](const auto& e) { return e.path().extension() != ".idx"; }));
    }

    fs::path dir_;
};

// The directory is destroyed on the loop by a handler that runs after its flush timer has
// fired but before the flush has run (as a daemon or a test tears down while logs are
// written): the flush, already queued with no error, must not touch it.
TEST_F(FunctionLogTest, AFlushAlreadyDueWhenTheDirectoryGoesDoesNothing) {
    boost::asio::io_context io;
    auto logs = std::make_unique<LogDirectory>(io, dir_);
    // Runs first and keeps the loop busy past the flush interval (200 ms), so the timer's
    // completion is queued behind the handler it posts, which destroys the directory.
    boost::asio::post(io, [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        boost::asio::post(io, [&] { logs.reset(); });
    });
    io.run_for(std::chrono::milliseconds(1000));
    EXPECT_EQ(logs, nullptr);
}

TEST_F(FunctionLogTest, RollsOverWithinMaxBytesTimesFiles) {
    OutputLimits limits;
    limits.log_max_bytes = 4096;
    limits.log_files = 3;
    const fs::path live = dir_ / "fn.log";
    {
        FunctionLog log(live, limits);
        // ~100 KiB of numbered lines, flushed now and then as the periodic flush would.
        for (int i = 0; i < 1500; ++i) {
            log.output("req-1", "line " + std::to_string(i) + " " + std::string(50, 'x'));
            if (i % 7 == 0) log.flush();
        }
        log.flush();
    }
    EXPECT_EQ(file_count(), 3u);
    for (const auto& p : {live, FunctionLog::rotated(live, 1), FunctionLog::rotated(live, 2)}) {
        ASSERT_TRUE(fs::exists(p)) << p;
        EXPECT_LE(fs::file_size(p), 4096u) << p;
        EXPECT_GT(fs::file_size(p), 0u) << p;
        EXPECT_EQ(mode_of(p), 0600u) << p;
        // Whole lines only: a file starts with a timestamp and ends with a line's end.
        const std::string text = read_file(p);
        EXPECT_EQ(text.back(), '\n') << p;
        EXPECT_TRUE(text.starts_with("20")) << p;
    }
    EXPECT_FALSE(fs::exists(FunctionLog::rotated(live, 3)));
    EXPECT_LE(total_size(), 3u * 4096u);
    // The newest lines are in the live file, the ones before them in .1, then .2.
    const std::string newest = read_file(live), middle = read_file(FunctionLog::rotated(live, 1)),
                      oldest = read_file(FunctionLog::rotated(live, 2));
    EXPECT_NE(newest.find("\treq-1\tline 1499 "), std::string::npos);
    EXPECT_EQ(oldest.find("line 1499 "), std::string::npos);
    auto first_number = [](const std::string& text) { return std::stoi(text.substr(text.find("line ") + 5)); };
    EXPECT_LT(first_number(oldest), first_number(middle));
    EXPECT_LT(first_number(middle), first_number(newest));
    // Consecutive: the end of .1 is followed by the start of the live file.
    const auto last_of_middle = std::stoi(middle.substr(middle.rfind("line ") + 5));
    EXPECT_EQ(last_of_middle + 1, first_number(newest));
    EXPECT_EQ(FunctionLog(live, limits).dropped_bytes(), 0u);
}

TEST_F(FunctionLogTest, OneFileStartsAgainWhenFull) {
    OutputLimits limits;
    limits.log_max_bytes = 1000;
    limits.log_files = 1;
    const fs::path live = dir_ / "fn.log";
    FunctionLog log(live, limits);
    for (int i = 0; i < 200; ++i) {
        log.platform("platform line " + std::to_string(i));
        log.flush();
    }
    EXPECT_EQ(file_count(), 1u);
    EXPECT_LE(fs::file_size(live), 1000u);
    EXPECT_NE(read_file(live).find("platform line 199\n"), std::string::npos);
}

TEST_F(FunctionLogTest, ALineLongerThanAFileIsCutAcrossFiles) {
    OutputLimits limits;
    limits.log_max_bytes = 1000;
    limits.log_files = 4;
    const fs::path live = dir_ / "fn.log";
    FunctionLog log(live, limits);
    log.output("", std::string(2500, 'y'));
    log.flush();
    EXPECT_LE(total_size(), 4u * 1000u);
    for (const auto& e : fs::directory_iterator(dir_)) EXPECT_LE(e.file_size(), 1000u) << e.path();
    EXPECT_EQ(count_of(read_file(live) + read_file(FunctionLog::rotated(live, 1)) +
                           read_file(FunctionLog::rotated(live, 2)),
                       "y"),
              2500u);
}

TEST_F(FunctionLogTest, AnExistingLogKeepsGrowingUpToItsLimitAndFilesBeyondTheNumberKeptGo) {
    const fs::path live = dir_ / "fn.log";
    std::ofstream(live) << std::string(989, 'a') << "\n";
    // Left by an earlier start with more files kept.
    for (int n = 1; n <= 5; ++n) std::ofstream(FunctionLog::rotated(live, n)) << "old " << n << "\n";
    OutputLimits limits;
    limits.log_max_bytes = 1000;
    limits.log_files = 2;
    FunctionLog log(live, limits);
    EXPECT_TRUE(fs::exists(FunctionLog::rotated(live, 1)));
    for (int n = 2; n <= 5; ++n) EXPECT_FALSE(fs::exists(FunctionLog::rotated(live, n))) << n;
    log.platform("next");
    log.flush();
    // The 990 bytes there plus this line would pass 1000: the file rolled over.
    EXPECT_EQ(read_file(FunctionLog::rotated(live, 1)), std::string(989, 'a') + "\n");
    EXPECT_NE(read_file(live).find("\tnext\n"), std::string::npos);
    EXPECT_EQ(mode_of(live), 0600u);
}

TEST_F(FunctionLogTest, DroppedOutputIsOneLineAndCounted) {
    FunctionLog log(dir_ / "fn.log");
    OutputBudget budget(250);
    int admitted = 0;
    for (int i = 0; i < 10; ++i)
        if (budget.admit(100)) ++admitted;
    EXPECT_EQ(admitted, 2);
    EXPECT_TRUE(budget.exhausted());
    EXPECT_FALSE(budget.admit(1)) << "once a line is dropped, the rest of the stretch is too";
    budget.drop(1000, 3);
    EXPECT_EQ(budget.dropped_bytes(), 800u + 1 + 1000);
    EXPECT_EQ(budget.dropped_lines(), 9u + 3);

    const std::string line = log.dropped_output("req-7", budget);
    EXPECT_EQ(line,
              "LOGS_DROPPED RequestId: req-7\tDropped: 1801 bytes, 12 lines\tReason: the invocation printed more "
              "than 250 bytes (output.invocation_bytes)");
    EXPECT_EQ(log.dropped_bytes(), 1801u);
    OutputBudget between(10);
    between.admit(11);
    EXPECT_NE(log.dropped_output("", between).find("LOGS_DROPPED Dropped: 11 bytes, 1 lines\tReason: output between "
                                                    "invocations went over 10 bytes (output.idle_bytes)"),
              std::string::npos);
    EXPECT_EQ(log.dropped_output("req-8", OutputBudget(10)), "") << "nothing dropped, nothing said";
    EXPECT_EQ(log.dropped_bytes(), 1812u);
    log.flush();
    const std::string text = read_file(dir_ / "fn.log");
    EXPECT_EQ(count_of(text, "LOGS_DROPPED"), 2u);
    EXPECT_NE(text.find("\t" + line + "\n"), std::string::npos);
}

// A file that cannot grow (RLIMIT_FSIZE: the write fails with EFBIG, as a full disk fails
// with ENOSPC): the lines are dropped and counted, nothing spins or throws, and one
// LOGS_DROPPED line says so once the file takes writes again.
TEST_F(FunctionLogTest, AFailedWriteDropsCountsAndSaysSoOnceWritesWork) {
    const fs::path live = dir_ / "fn.log";
    FunctionLog log(live);
    log.platform("before");
    log.flush();
    const auto before = fs::file_size(live);

    auto* const old_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    rlimit small = old;
    small.rlim_cur = before + 40;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
    std::uint64_t sent = 0;
    for (int i = 0; i < 50; ++i) {
        const std::string text = "lost line " + std::to_string(i);
        log.output("req-1", text);
        log.flush();
        sent += 24 + 1 + 5 + 1 + text.size() + 1;  // stamp, tab, id, tab, text, newline
    }
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
    ::signal(SIGXFSZ, old_handler);

    // Forty bytes of the first line made it, to "lost line"; the rest of everything is counted.
    EXPECT_EQ(log.dropped_bytes(), sent - 40);
    EXPECT_EQ(fs::file_size(live), before + 40);
    log.platform("after");
    log.flush();
    const std::string text = read_file(live);
    const auto marker = text.find(fmt::format("\tLOGS_DROPPED Dropped: {} bytes\tReason: write failed: File too large\n",
                                              sent - 40));
    ASSERT_NE(marker, std::string::npos) << text;
    // It starts a line of its own after the cut one, and comes before what follows.
    EXPECT_EQ(text[text.rfind('\n', marker) + 1], '2');
    EXPECT_LT(marker, text.find("\tafter\n"));
    EXPECT_EQ(count_of(text, "lost line"), 1u);
    EXPECT_EQ(log.dropped_bytes(), sent - 40) << "recovered: nothing more lost";
}

TEST_F(FunctionLogTest, RemovingAFunctionRemovesItsFilesAndItsCount) {
    boost::asio::io_context io;
    OutputLimits limits;
    limits.log_max_bytes = 500;
    limits.log_files = 3;
    LogDirectory logs(io, dir_, limits);
    auto log = logs.open("fn");
    auto other = logs.open("fn-2");
    for (int i = 0; i < 100; ++i) {
        log->platform("a line of fn " + std::to_string(i));
        other->platform("a line of fn-2");
        logs.flush_all();
    }
    OutputBudget budget(1);
    budget.admit(5);
    log->dropped_output("", budget);
    EXPECT_EQ(logs.dropped_bytes("fn"), 5u);
    ASSERT_TRUE(fs::exists(dir_ / "fn.log.2"));
    std::ofstream(dir_ / "fn.log.9") << "left by an earlier start\n";

    logs.remove("fn");
    EXPECT_FALSE(fs::exists(dir_ / "fn.log"));
    EXPECT_FALSE(fs::exists(dir_ / "fn.log.1"));
    EXPECT_FALSE(fs::exists(dir_ / "fn.log.2"));
    EXPECT_FALSE(fs::exists(dir_ / "fn.log.9"));
    EXPECT_TRUE(fs::exists(dir_ / "fn-2.log")) << "another function's log stays";
    EXPECT_TRUE(fs::exists(dir_ / "fn-2.log.1"));
    EXPECT_EQ(logs.dropped_bytes("fn"), 0u);

    // A worker of the deleted function still finishing writes nowhere.
    log->platform("END RequestId: late");
    log->flush();
    logs.flush_all();
    EXPECT_FALSE(fs::exists(dir_ / "fn.log"));

    // The name used again: a fresh log.
    auto again = logs.open("fn");
    EXPECT_NE(again, log);
    again->platform("new function");
    again->flush();
    EXPECT_NE(read_file(dir_ / "fn.log").find("\tnew function\n"), std::string::npos);
}

TEST_F(FunctionLogTest, TheDroppedCountOutlivesTheLogObject) {
    boost::asio::io_context io;
    LogDirectory logs(io, dir_);
    {
        auto log = logs.open("fn");
        OutputBudget budget(0);
        budget.admit(42);
        log->dropped_output("req", budget);
    }
    logs.flush_all();
    EXPECT_EQ(logs.dropped_bytes("fn"), 42u) << "no worker left: the count stays";
    EXPECT_EQ(logs.open("fn")->dropped_bytes(), 42u);
    EXPECT_EQ(logs.dropped_bytes("other"), 0u);
}

TEST(OutputOptions, FlagsAndLimitsSetTheOutputBounds) {
    const auto o = parse_serve_options({"--log-max-bytes", "1048576", "--log-files=3", "--limit",
                                        "output.invocation_bytes=5000", "--limit", "output.idle_bytes=6000"});
    EXPECT_EQ(o.limits.output.log_max_bytes, 1048576u);
    EXPECT_EQ(o.limits.output.log_files, 3);
    EXPECT_EQ(o.limits.output.invocation_bytes, 5000u);
    EXPECT_EQ(o.limits.output.idle_bytes, 6000u);
    const auto defaults = parse_serve_options({});
    EXPECT_EQ(defaults.limits.output.log_max_bytes, 64ull << 20);
    EXPECT_EQ(defaults.limits.output.log_files, 4);
    EXPECT_EQ(defaults.limits.output.invocation_bytes, 4ull << 20);
    EXPECT_EQ(defaults.limits.output.idle_bytes, 4ull << 20);

    for (const std::vector<std::string>& bad : {std::vector<std::string>{"--log-max-bytes", "0"},
                                                {"--log-max-bytes", "12MB"},
                                                {"--log-files", "-1"},
                                                {"--log-files", "1001"},
                                                {"--limit", "output.invocation_bytes=0"}}) {
        EXPECT_THROW(parse_serve_options(bad), std::invalid_argument) << bad[0] << " " << bad[1];
    }
    try {
        parse_serve_options({"--log-files", "1001"});
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "--log-files is at most 1000");
    }

    const std::string usage = serve_usage();
    for (const char* flag : {"--log-max-bytes N", "--log-files N", "output.invocation_bytes", "output.idle_bytes"})
        EXPECT_NE(usage.find(flag), std::string::npos) << flag;
}

TEST_F(FunctionLogTest, AFileCountOverTheMaximumIsTakenAsTheMaximum) {
    OutputLimits limits;
    limits.log_files = 1 << 30;  // --limit output.log_files=... takes any positive number
    limits.log_max_bytes = 100;
    FunctionLog log(dir_ / "fn.log", limits);
    EXPECT_EQ(log.limits().log_files, OutputLimits::kMaxLogFiles);
    for (int i = 0; i < 20; ++i) {
        log.platform("a line of about forty bytes");
        log.flush();
    }
    EXPECT_TRUE(fs::exists(dir_ / "fn.log.1"));
}

}  // namespace
}  // namespace funcd
