// The index of a function's log files and the queries that read them: one request's records
// found through the sidecars, across rollovers, and still when a sidecar is missing, cut
// short or not its file's; time, level and count filters.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "funcd/logs/function_log.hpp"
#include "funcd/logs/log_index.hpp"
#include "funcd/logs/log_query.hpp"

namespace funcd {
namespace {

namespace fs = std::filesystem;

class LogIndexTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-index-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        live_ = dir_ / "fn.log";
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    // Records of requests r0..r9 interleaved: each request's START, two lines, END.
    void write_requests(FunctionLog& log, int rounds) {
        for (int i = 0; i < rounds; ++i) {
            const std::string id = "r" + std::to_string(i % 10);
            log.platform_for(id, "START RequestId: {} Version: $LATEST", id);
            log.output(id, "line a of round " + std::to_string(i));
            log.output("", "between invocations " + std::to_string(i));
            log.output(id, "line b of round " + std::to_string(i));
            log.platform_for(id, "END RequestId: {}", id);
            if (i % 3 == 0) log.flush();
        }
        log.flush();
    }

    std::vector<std::string> messages(const LogFilter& filter, int limit = 100000, int files = 4) {
        LogResults results(static_cast<std::size_t>(limit), 1ull << 30);
        query_function_log(live_, files, "fn", filter, results);
        std::vector<std::string> out;
        for (const auto& r : results.records()) out.push_back(parse_log_line(r.line)->message());
        return out;
    }
    std::vector<std::string> of_request(const std::string& id, int files = 4) {
        LogFilter f;
        f.request_ids = {id};
        return messages(f, 100000, files);
    }

    // Every record of `id` by reading every line (what the index must agree with).
    std::vector<std::string> by_scan(const std::string& id, int files = 4) {
        std::vector<std::string> out;
        for (int n = files - 1; n >= 0; --n) {
            const fs::path p = n == 0 ? live_ : FunctionLog::rotated(live_, n);
            std::ifstream in(p);
            for (std::string line; std::getline(in, line);)
                if (auto l = parse_log_line(line); l && l->request_id == id) out.push_back(l->message());
        }
        return out;
    }

    fs::path dir_;
    fs::path live_;
};

TEST_F(LogIndexTest, FindsOneRequestsRecordsAcrossRollovers) {
    OutputLimits limits;
    limits.log_max_bytes = 8192;
    limits.log_files = 4;
    {
        FunctionLog log(live_, limits);
        write_requests(log, 300);
    }
    ASSERT_TRUE(fs::exists(FunctionLog::rotated(live_, 3)));
    ASSERT_TRUE(fs::exists(log_index_path(FunctionLog::rotated(live_, 3))));
    ASSERT_TRUE(fs::exists(log_index_path(live_)));
    const auto found = of_request("r3");
    ASSERT_FALSE(found.empty());
    EXPECT_EQ(found, by_scan("r3"));
    EXPECT_EQ(found.back(), "END RequestId: r3");
    for (const auto& m : found) EXPECT_EQ(m.find("between"), std::string::npos) << m;
}

TEST_F(LogIndexTest, AMissingSidecarIsRebuiltAndTheLookupStaysComplete) {
    OutputLimits limits;
    limits.log_max_bytes = 8192;
    {
        FunctionLog log(live_, limits);
        write_requests(log, 200);
    }
    const auto expected = by_scan("r7");
    const fs::path rolled = FunctionLog::rotated(live_, 2);
    ASSERT_TRUE(fs::remove(log_index_path(rolled)));
    EXPECT_EQ(of_request("r7"), expected);
    EXPECT_TRUE(fs::exists(log_index_path(rolled))) << "a rolled-over file's index is rebuilt by the lookup";
    EXPECT_EQ(of_request("r7"), expected);

    // The live file's is rebuilt when its log is opened again.
    ASSERT_TRUE(fs::remove(log_index_path(live_)));
    EXPECT_EQ(of_request("r7"), expected) << "without a sidecar the lookup reads the file";
    { FunctionLog again(live_, limits); }
    EXPECT_TRUE(fs::exists(log_index_path(live_)));
    EXPECT_EQ(of_request("r7"), expected);
}

TEST_F(LogIndexTest, ARolledOverFilesIndexIsSortedOnceAndADamagedOneIsNotBelieved) {
    OutputLimits limits;
    limits.log_max_bytes = 16384;
    {
        FunctionLog log(live_, limits);
        write_requests(log, 300);
    }
    const fs::path idx = log_index_path(FunctionLog::rotated(live_, 1));
    const auto as_written = fs::file_size(idx);
    for (const char* id : {"r0", "r4", "r9", "absent"}) EXPECT_EQ(of_request(id), by_scan(id)) << id;
    // Rewritten sorted: the same entries without the marks.
    EXPECT_LT(fs::file_size(idx), as_written);
    for (const char* id : {"r0", "r4", "r9", "absent"}) EXPECT_EQ(of_request(id), by_scan(id)) << id;
    // Entries overwritten in the middle: their checks fail, the file is read instead.
    {
        std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(fs::file_size(idx) / 2));
        f << std::string(200, '\x5a');
    }
    for (const char* id : {"r0", "r4", "r9"}) EXPECT_EQ(of_request(id), by_scan(id)) << id;
}

TEST_F(LogIndexTest, ATruncatedOrForeignSidecarIsNotBelieved) {
    OutputLimits limits;
    limits.log_max_bytes = 1 << 20;
    {
        FunctionLog log(live_, limits);
        write_requests(log, 100);
    }
    const auto expected = by_scan("r1");
    ASSERT_EQ(expected.size(), 40u);
    // Cut in the middle of an entry: what is left before the cut is used, the rest read.
    const auto size = fs::file_size(log_index_path(live_));
    fs::resize_file(log_index_path(live_), size / 2 + 5);
    EXPECT_EQ(of_request("r1"), expected);
    // Rebuilt on open.
    {
        FunctionLog log(live_, limits);
        log.output("r1", "after reopening");
        log.flush();
    }
    auto more = expected;
    more.push_back("after reopening");
    EXPECT_EQ(of_request("r1"), more);
    // Another file's sidecar (another inode) next to this log.
    fs::copy_file(live_, dir_ / "copy.log");
    fs::rename(dir_ / "copy.log", live_);
    EXPECT_EQ(of_request("r1"), more);
    // Garbage.
    std::ofstream(log_index_path(live_), std::ios::trunc) << std::string(1000, 'x');
    EXPECT_EQ(of_request("r1"), more);
}

TEST_F(LogIndexTest, RecordsWrittenAfterTheLastMarkAreFound) {
    {
        FunctionLog log(live_);
        write_requests(log, 20);
    }
    // Appended behind the index's back (a crash between the log's write and the index's).
    std::ofstream(live_, std::ios::app) << "2026-11-26T23:40:18.123Z\tr5\tunindexed\n";
    const auto found = of_request("r5");
    ASSERT_FALSE(found.empty());
    EXPECT_EQ(found.back(), "unindexed");
}

TEST_F(LogIndexTest, MultiLineMessagesAreOneRecord) {
    {
        FunctionLog log(live_);
        log.record({"r1", LogStream::function, LogLevel::error, "Traceback:\n  line 1\nError: x", std::nullopt});
        log.flush();
    }
    LogFilter f;
    f.request_ids = {"r1"};
    EXPECT_EQ(messages(f), std::vector<std::string>{"Traceback:\n  line 1\nError: x"});
}

// Writes records at given times (the runtime's stamps) for the time filters.
class LogFilterTest : public LogIndexTest {
protected:
    void SetUp() override {
        LogIndexTest::SetUp();
        FunctionLog log(live_);
        using namespace std::chrono;
        const SystemTime t0 = SystemTime(milliseconds(1'800'000'000'000));
        const LogLevel levels[] = {LogLevel::none, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error};
        for (int i = 0; i < 50; ++i) {
            const std::string msg = "m" + std::to_string(i);
            log.record({"r", i % 7 == 0 ? LogStream::platform : LogStream::function, levels[i % 5], msg,
                        t0 + seconds(i)});
        }
        log.flush();
        t0_ = t0;
    }
    SystemTime t0_;
};

TEST_F(LogFilterTest, SinceIsInclusiveUntilExclusive) {
    LogFilter f;
    f.since = format_rfc3339(t0_ + std::chrono::seconds(10));
    f.until = format_rfc3339(t0_ + std::chrono::seconds(13));
    EXPECT_EQ(messages(f), (std::vector<std::string>{"m10", "m11", "m12"}));
}

TEST_F(LogFilterTest, LevelIsAMinimumAndNoLevelCountsAsInfo) {
    LogFilter f;
    f.min_level = LogLevel::warn;
    auto found = messages(f);
    ASSERT_EQ(found.size(), 20u);
    EXPECT_EQ(found[0], "m3");
    EXPECT_EQ(found[1], "m4");
    f.min_level = LogLevel::info;
    EXPECT_EQ(messages(f).size(), 40u) << "INFO, WARN, ERROR and the records without a level";
    f.min_level = LogLevel::trace;
    EXPECT_EQ(messages(f).size(), 50u);
}

TEST_F(LogFilterTest, LimitKeepsTheNewest) {
    EXPECT_EQ(messages({}, 3), (std::vector<std::string>{"m47", "m48", "m49"}));
    LogResults bytes(100, 3 * 40);  // room for about three lines
    query_function_log(live_, 4, "fn", {}, bytes);
    ASSERT_LE(bytes.records().size(), 3u);
    EXPECT_EQ(parse_log_line(bytes.records().back().line)->message(), "m49");
    EXPECT_EQ(bytes.left_out(), 50u - bytes.records().size());
}

TEST(LogRecordJson, GivesTheFieldsAndAJsonMessageParsed) {
    std::string buffer;
    append_log_line(buffer, "2026-11-26T23:40:18.123Z", "r1", LogStream::function, LogLevel::info,
                    R"({"level":"INFO","message":"hi"})");
    auto j = log_record_json("", *parse_log_line(buffer));
    EXPECT_EQ(j["timestamp"], "2026-11-26T23:40:18.123Z");
    EXPECT_EQ(j["request_id"], "r1");
    EXPECT_EQ(j["level"], "INFO");
    EXPECT_EQ(j["stream"], "function");
    EXPECT_EQ(j["message"], R"({"level":"INFO","message":"hi"})");
    EXPECT_EQ(j["record"]["message"], "hi");
    EXPECT_FALSE(j.contains("function"));
    buffer.clear();
    append_log_line(buffer, "2026-11-26T23:40:18.123Z", "", LogStream::platform, LogLevel::none, "INIT_START x");
    j = log_record_json("fn", *parse_log_line(buffer));
    EXPECT_TRUE(j["request_id"].is_null());
    EXPECT_TRUE(j["level"].is_null());
    EXPECT_EQ(j["stream"], "platform");
    EXPECT_EQ(j["function"], "fn");
    EXPECT_FALSE(j.contains("record"));
}

}  // namespace
}  // namespace funcd
