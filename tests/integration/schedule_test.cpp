// Schedules through the real daemon: firing, the scheduled event, disabling, deletion,
// restart, and parse errors that name the bad field.
#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Prints the event it receives, so the test can read it from the function's log.
const char* kRecordPy = R"(import json
def handler(event, context):
    print("EVENT " + json.dumps(event, sort_keys=True))
    return None
)";

std::vector<json> events_seen(Daemon& d, const std::string& name) { return logged_json(d, name, "EVENT "); }

TEST(Schedule, FiresWithItsInputAndStopsWhenDisabledOrDeleted) {
    Daemon d;
    ASSERT_EQ(d.deploy("tick", python_settings(), python_zip(kRecordPy)).status, 201);
    auto put = d.api("PUT", "/v1/functions/tick/schedules/every2s",
                     R"j({"expression": "rate(2 seconds)", "input": {"job": "cleanup"}})j");
    ASSERT_EQ(put.status, 201) << put.body;
    EXPECT_EQ(put.json()["expression"], "rate(2 seconds)");
    EXPECT_EQ(put.json()["enabled"], true);
    EXPECT_TRUE(put.json()["next_fire"].is_string());

    ASSERT_TRUE(eventually([&] { return events_seen(d, "tick").size() >= 2; }, 10s));
    EXPECT_EQ(events_seen(d, "tick")[0], json({{"job", "cleanup"}}));
    auto got = d.api("GET", "/v1/functions/tick/schedules/every2s").json();
    EXPECT_TRUE(got["last_fire"].is_string());
    auto list = d.api("GET", "/v1/functions/tick/schedules").json()["schedules"];
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["name"], "every2s");

    auto disabled = d.api("PUT", "/v1/functions/tick/schedules/every2s",
                          R"j({"expression": "rate(2 seconds)", "enabled": false})j");
    ASSERT_EQ(disabled.status, 200) << disabled.body;
    EXPECT_TRUE(disabled.json()["next_fire"].is_null());
    std::this_thread::sleep_for(500ms);  // an event queued just before may still run
    const auto seen = events_seen(d, "tick").size();
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(events_seen(d, "tick").size(), seen) << "a disabled schedule does not fire";

    EXPECT_EQ(d.api("DELETE", "/v1/functions/tick/schedules/every2s").status, 204);
    EXPECT_EQ(d.api("GET", "/v1/functions/tick/schedules/every2s").status, 404);
    EXPECT_EQ(d.api("DELETE", "/v1/functions/tick/schedules/every2s").status, 404);
}

TEST(Schedule, WithoutInputSendsAScheduledEventAndSurvivesRestart) {
    Daemon d;
    d.keep_data_dir();
    ASSERT_EQ(d.deploy("tick", python_settings(), python_zip(kRecordPy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/tick/schedules/beat", R"j({"expression": "rate(1 second)"})j").status, 201);
    ASSERT_TRUE(eventually([&] { return !events_seen(d, "tick").empty(); }, 10s));
    json e = events_seen(d, "tick")[0];
    EXPECT_EQ(e["detail-type"], "Scheduled Event");
    EXPECT_EQ(e["source"], "aws.events");
    EXPECT_EQ(e["detail"], json::object());
    EXPECT_EQ(e["resources"][0], "arn:aws:events:us-east-1:000000000000:rule/tick-beat");
    EXPECT_EQ(e["time"].get<std::string>().size(), 20u) << e["time"];

    const auto dir = d.data_dir();
    d.stop();
    {
        Daemon again({}, dir);
        auto list = again.api("GET", "/v1/functions/tick/schedules").json()["schedules"];
        ASSERT_EQ(list.size(), 1u);
        EXPECT_EQ(list[0]["expression"], "rate(1 second)");
        const auto before = events_seen(again, "tick").size();
        EXPECT_TRUE(eventually([&] { return events_seen(again, "tick").size() > before; }, 10s));

        // Deleting the function deletes its schedules.
        ASSERT_EQ(again.api("DELETE", "/v1/functions/tick").status, 204);
        ASSERT_EQ(again.deploy("tick", python_settings(), python_zip(kRecordPy)).status, 201);
        EXPECT_TRUE(again.api("GET", "/v1/functions/tick/schedules").json()["schedules"].empty());
    }
    std::filesystem::remove_all(dir);
}

TEST(Schedule, BadDefinitionsNameTheProblem) {
    Daemon d;
    ASSERT_EQ(d.deploy("f", python_settings(), python_zip(kRecordPy)).status, 201);
    struct Case {
        const char* body;
        const char* needle;
    } cases[] = {
        {R"j({"expression": "cron(0 12 * * 9 *)"})j", "day-of-week"},
        {R"j({"expression": "cron(0 12 * * * *)"})j", "?"},
        {R"j({"expression": "cron(0 25 * * ? *)"})j", "hours"},
        {R"j({"expression": "rate(5 minute)"})j", "minutes"},
        {R"j({"expression": "every 5 minutes"})j", "rate("},
        {R"j({"expression": 5})j", "expression"},
        {R"j({})j", "expression is required"},
        {R"j({"expression": "rate(1 minute)", "enabled": "yes"})j", "enabled"},
        {R"j({"expression": "rate(1 minute)", "when": 1})j", "when"},
    };
    for (const auto& c : cases) {
        auto r = d.api("PUT", "/v1/functions/f/schedules/s", c.body);
        EXPECT_EQ(r.status, 400) << c.body;
        EXPECT_NE(r.body.find(c.needle), std::string::npos) << c.body << " -> " << r.body;
    }
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/schedules/bad!name", R"j({"expression": "rate(1 minute)"})j").status, 400);
    EXPECT_EQ(d.api("PUT", "/v1/functions/nope/schedules/s", R"j({"expression": "rate(1 minute)"})j").status, 404);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/schedules/s", "{}", "text/plain").status, 415);
    EXPECT_TRUE(d.api("GET", "/v1/functions/f/schedules").json()["schedules"].empty()) << "nothing was stored";
}

}  // namespace
}  // namespace funcd::testing
