// Followers of a function's log: fed as records are appended (before any write to the
// file), bounded in number, ended when the function is deleted or the daemon stops.
#include <filesystem>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "funcd/logs/function_log.hpp"

namespace funcd {
namespace {

namespace fs = std::filesystem;

struct Recorder : LogFollower {
    std::vector<std::string> lines;
    std::vector<std::string> ended;
    int heartbeats = 0;
    void on_line(std::string_view line) override { lines.emplace_back(line); }
    void on_heartbeat() override { ++heartbeats; }
    void on_end(std::string_view reason) override { ended.emplace_back(reason); }
};

class LogFollowTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-follow-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    fs::path dir_;
    boost::asio::io_context io_;
};

TEST_F(LogFollowTest, ARecordReachesFollowersWhenAppendedNotWhenFlushed) {
    LogDirectory logs(io_, dir_);
    auto log = logs.open("fn");
    auto follower = std::make_shared<Recorder>();
    ASSERT_FALSE(logs.follow("fn", follower));
    log->output("req-1", "hello\nworld");
    log->platform_for("req-1", "END RequestId: {}", "req-1");
    ASSERT_EQ(follower->lines.size(), 2u);
    EXPECT_EQ(fs::file_size(logs.path_for("fn")), 0u) << "not yet written to the file";
    auto first = parse_log_line(follower->lines[0]);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->request_id, "req-1");
    EXPECT_EQ(first->message(), "hello\nworld");
    auto second = parse_log_line(follower->lines[1]);
    EXPECT_EQ(second->stream, LogStream::platform);
    EXPECT_EQ(second->message(), "END RequestId: req-1");
    // A follower added before the function's log is opened is fed too.
    auto early = std::make_shared<Recorder>();
    ASSERT_FALSE(logs.follow("later", early));
    logs.open("later")->output("", "booting");
    EXPECT_EQ(early->lines.size(), 1u);
}

TEST_F(LogFollowTest, DeletingTheFunctionEndsItsFollowers) {
    LogDirectory logs(io_, dir_);
    auto log = logs.open("fn");
    auto follower = std::make_shared<Recorder>();
    auto other = std::make_shared<Recorder>();
    ASSERT_FALSE(logs.follow("fn", follower));
    ASSERT_FALSE(logs.follow("fn-2", other));
    EXPECT_EQ(logs.followers(), 2u);
    logs.remove("fn");
    EXPECT_EQ(follower->ended, std::vector<std::string>{"deleted"});
    EXPECT_TRUE(other->ended.empty());
    EXPECT_EQ(logs.followers(), 1u);
    log->output("req-1", "after the delete");
    EXPECT_TRUE(follower->lines.empty()) << "a deleted function's log feeds no one";
    logs.end_followers();
    EXPECT_EQ(other->ended, std::vector<std::string>{"shutdown"});
    EXPECT_TRUE(logs.follow("fn-2", std::make_shared<Recorder>())) << "none once the daemon stops";
}

TEST_F(LogFollowTest, FollowersAreBoundedPerFunctionAndInAll) {
    LogsApiLimits limits;
    limits.max_followers = 3;
    limits.max_followers_per_function = 2;
    LogDirectory logs(io_, dir_, {}, limits);
    auto a = std::make_shared<Recorder>(), b = std::make_shared<Recorder>();
    EXPECT_FALSE(logs.follow("fn", a));
    EXPECT_FALSE(logs.follow("fn", b));
    auto refused = logs.follow("fn", std::make_shared<Recorder>());
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->find("logs.max_followers_per_function"), std::string::npos) << *refused;
    EXPECT_FALSE(logs.follow("fn-2", std::make_shared<Recorder>()));
    refused = logs.follow("fn-3", std::make_shared<Recorder>());
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->find("logs.max_followers"), std::string::npos) << *refused;
    logs.unfollow("fn", a.get());
    EXPECT_EQ(logs.followers(), 2u);
    EXPECT_FALSE(logs.follow("fn-3", std::make_shared<Recorder>()));
}

TEST_F(LogFollowTest, HeartbeatsComeFromTheDirectorysTimer) {
    LogsApiLimits limits;
    limits.heartbeat_interval = std::chrono::milliseconds(20);
    LogDirectory logs(io_, dir_, {}, limits);
    auto follower = std::make_shared<Recorder>();
    ASSERT_FALSE(logs.follow("fn", follower));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (follower->heartbeats < 2 && std::chrono::steady_clock::now() < give_up)
        io_.run_for(std::chrono::milliseconds(10));
    EXPECT_GE(follower->heartbeats, 2);
}

}  // namespace
}  // namespace funcd
