// The daemon's own log with `--log-format json`: every line it writes, from the start to the
// stop, is one JSON object a log shipper can take as it is.
#include <gtest/gtest.h>

#include <sstream>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

TEST(DaemonLog, JsonFormatWritesEveryLineAsOneObject) {
    Daemon d({"--log-format", "json"});
    const char* kPy = "def handler(event, context):\n    return event\n";
    ASSERT_EQ(d.deploy("jsonlog", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kPy)).status, 201);
    ASSERT_EQ(d.invoke("jsonlog", R"({"k": 1})").status, 200);
    ASSERT_EQ(d.invoke("missing").status, 404);
    ASSERT_EQ(d.stop(), 0);

    std::istringstream lines(d.log());
    std::string line;
    int parsed = 0;
    bool listening = false, levels_seen = false;
    while (std::getline(lines, line)) {
        nlohmann::json j;
        ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << "not JSON: " << line;
        ASSERT_TRUE(j.is_object()) << line;
        for (const char* key : {"time", "level", "message"}) EXPECT_TRUE(j.contains(key)) << key << " in " << line;
        ++parsed;
        if (j.value("component", "") == "funcd" &&
            j.value("message", "").rfind("listening on 127.0.0.1:" + std::to_string(d.port()), 0) == 0)
            listening = true;
        if (j["level"] == "debug") levels_seen = true;
    }
    EXPECT_GT(parsed, 5);
    EXPECT_TRUE(listening) << "the start line, with its component, is in the log:\n" << d.log();
    EXPECT_TRUE(levels_seen) << "--log-level debug's lines are JSON too";
}

}  // namespace
}  // namespace funcd::testing
