// Asynchronous invocations through the real daemon and real workers: the 202 contract,
// retries, dead letters and redrive, destinations, durability across a crash.
#include <signal.h>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kOkPy = R"(def handler(event, context):
    print("got", event.get("n"))
    return {"n": event.get("n")}
)";

const char* kFailPy = R"(def handler(event, context):
    raise ValueError("cannot handle %s" % event.get("n"))
)";

// Prints what it receives, so the test can read destination records from its log.
const char* kSinkPy = R"(import json
def handler(event, context):
    print("RECORD " + json.dumps(event, sort_keys=True))
    return None
)";

HttpResult invoke_event(Daemon& d, const std::string& name, const std::string& body) {
    return http_request(d.port(), "POST", "/v1/functions/" + name + "/invoke", body,
                        {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Event"}});
}

json usage_records(Daemon& d, const std::string& name) {
    return d.api("GET", "/v1/usage/records?function=" + name).json()["records"];
}

TEST(Async, EventIsAcceptedWith202AndRuns) {
    Daemon d;
    ASSERT_EQ(d.deploy("ok", python_settings(), python_zip(kOkPy)).status, 201);
    auto r = invoke_event(d, "ok", R"({"n": 7})");
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string id = r.json()["request_id"];
    EXPECT_EQ(r.header("x-funcd-request-id"), id);
    ASSERT_TRUE(eventually([&] { return usage_records(d, "ok").size() == 1; }, 10s));
    auto rec = usage_records(d, "ok")[0];
    EXPECT_EQ(rec["request_id"], id) << "the runtime saw the request id the caller got";
    EXPECT_EQ(rec["outcome"], "success");
    ASSERT_TRUE(eventually([&] { return function_log(d, "ok").find(id + "\tgot 7") != std::string::npos; }))
        << function_log(d, "ok");
    EXPECT_TRUE(eventually([&] { return d.api("GET", "/v1/functions/ok").json()["async"]["queue_depth"] == 0; }));
}

TEST(Async, BadRequestsAreRefusedAtOnce) {
    Daemon d;
    ASSERT_EQ(d.deploy("ok", python_settings(), python_zip(kOkPy)).status, 201);
    EXPECT_EQ(invoke_event(d, "missing", "{}").status, 404) << "never a 202 for a function that does not exist";
    EXPECT_EQ(invoke_event(d, "ok", "not json").status, 400);
    EXPECT_EQ(invoke_event(d, "ok", "\"" + std::string(300 * 1024, 'x') + "\"").status, 413);
    auto bad_type = http_request(d.port(), "POST", "/v1/functions/ok/invoke", "{}",
                                 {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Later"}});
    EXPECT_EQ(bad_type.status, 400);
    auto dry = http_request(d.port(), "POST", "/v1/functions/ok/invoke", "{}",
                            {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "DryRun"}});
    EXPECT_EQ(dry.status, 204);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(usage_records(d, "ok").size(), 0u) << "nothing ran";
}

TEST(Async, RetriesThenDeadLetterThenRedrive) {
    Daemon d;
    ASSERT_EQ(d.deploy("flaky", python_settings(), python_zip(kFailPy)).status, 201);
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSinkPy)).status, 201);
    auto cfg = d.api("PUT", "/v1/functions/flaky/event-config",
                     R"({"maximum_retry_attempts": 2, "retry_delays_s": [0, 1], "on_failure": "sink"})");
    ASSERT_EQ(cfg.status, 200) << cfg.body;
    EXPECT_EQ(cfg.json()["maximum_event_age_s"], 21600);

    auto r = invoke_event(d, "flaky", R"({"n": 3})");
    ASSERT_EQ(r.status, 202);
    const std::string id = r.json()["request_id"];

    json letters;
    ASSERT_TRUE(eventually(
        [&] {
            letters = d.api("GET", "/v1/dead-letters?function=flaky").json()["dead_letters"];
            return letters.size() == 1;
        },
        15s));
    const json& dl = letters[0];
    EXPECT_EQ(dl["id"], id);
    EXPECT_EQ(dl["reason"], "RetriesExhausted");
    EXPECT_EQ(dl["attempts"], 3) << "the first attempt and two retries";
    EXPECT_EQ(dl["payload"], json({{"n", 3}}));
    ASSERT_EQ(dl["errors"].size(), 3u);
    EXPECT_EQ(dl["errors"][0]["error_type"], "ValueError");
    EXPECT_EQ(dl["errors"][2]["error_message"], "cannot handle 3");
    auto records = usage_records(d, "flaky");
    ASSERT_EQ(records.size(), 3u);
    for (const auto& rec : records) EXPECT_EQ(rec["request_id"], id);

    // The failure destination got Lambda's record.
    ASSERT_TRUE(eventually([&] { return function_log(d, "sink").find("RECORD ") != std::string::npos; }, 10s));
    const std::string log = function_log(d, "sink");
    auto line = log.substr(log.find("RECORD ") + 7);
    json record = json::parse(line.substr(0, line.find('\n')));
    EXPECT_EQ(record["requestContext"]["condition"], "RetriesExhausted");
    EXPECT_EQ(record["requestContext"]["requestId"], id);
    EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 3);
    EXPECT_EQ(record["requestPayload"], json({{"n", 3}}));
    EXPECT_EQ(record["responseContext"]["functionError"], "Unhandled");
    EXPECT_EQ(record["responsePayload"]["errorType"], "ValueError");

    // Fixed and redriven: it runs again and succeeds.
    ASSERT_EQ(d.deploy("flaky", python_settings(), python_zip(kOkPy)).status, 200);
    auto redrive = d.api("POST", "/v1/dead-letters/" + id + "/redrive");
    ASSERT_EQ(redrive.status, 202) << redrive.body;
    ASSERT_TRUE(eventually([&] { return usage_records(d, "flaky").size() == 4; }, 10s));
    EXPECT_EQ(usage_records(d, "flaky")[0]["outcome"], "success");
    EXPECT_TRUE(d.api("GET", "/v1/dead-letters?function=flaky").json()["dead_letters"].empty());
    EXPECT_EQ(d.api("POST", "/v1/dead-letters/" + id + "/redrive").status, 404);
}

TEST(Async, SuccessDestinationAndDeadLetterDeletion) {
    Daemon d;
    ASSERT_EQ(d.deploy("ok", python_settings(), python_zip(kOkPy)).status, 201);
    ASSERT_EQ(d.deploy("fails", python_settings(), python_zip(kFailPy)).status, 201);
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSinkPy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/ok/event-config", R"({"on_success": "sink"})").status, 200);
    ASSERT_EQ(d.api("PUT", "/v1/functions/fails/event-config", R"({"maximum_retry_attempts": 0})").status, 200);

    ASSERT_EQ(invoke_event(d, "ok", R"({"n": 5})").status, 202);
    ASSERT_TRUE(eventually([&] { return function_log(d, "sink").find("\"Success\"") != std::string::npos; }, 10s));
    EXPECT_NE(function_log(d, "sink").find("\"responsePayload\": {\"n\": 5}"), std::string::npos)
        << function_log(d, "sink");

    auto r = invoke_event(d, "fails", "{}");
    ASSERT_EQ(r.status, 202);
    const std::string id = r.json()["request_id"];
    ASSERT_TRUE(eventually([&] {
        return d.api("GET", "/v1/dead-letters?function=fails").json()["dead_letters"].size() == 1;
    }, 10s));
    EXPECT_EQ(usage_records(d, "fails").size(), 1u) << "maximum_retry_attempts 0: no retry";
    EXPECT_EQ(d.api("DELETE", "/v1/dead-letters/" + id).status, 204);
    EXPECT_TRUE(d.api("GET", "/v1/dead-letters").json()["dead_letters"].empty());
    EXPECT_EQ(d.api("DELETE", "/v1/dead-letters/" + id).status, 404);
    EXPECT_EQ(d.api("DELETE", "/v1/dead-letters/not-an-id!").status, 400);
}

TEST(Async, AcceptedEventSurvivesSigkill) {
    Daemon d;
    d.keep_data_dir();
    ASSERT_EQ(d.deploy("ok", python_settings(), python_zip(kOkPy)).status, 201);
    // Disabled, so the event stays queued (throttled and retried) until the crash.
    ASSERT_EQ(d.api("PUT", "/v1/functions/ok/concurrency", R"({"reserved_concurrency": 0})").status, 200);
    auto r = invoke_event(d, "ok", R"({"n": 42})");
    ASSERT_EQ(r.status, 202);
    const std::string id = r.json()["request_id"];
    d.stop(SIGKILL);

    const auto dir = d.data_dir();
    {
        Daemon again({}, dir);
        auto f = again.api("GET", "/v1/functions/ok").json();
        EXPECT_EQ(f["async"]["queue_depth"], 1) << f.dump();
        EXPECT_GE(f["async"]["oldest_event_age_s"].get<double>(), 0.0);
        ASSERT_EQ(again.api("DELETE", "/v1/functions/ok/concurrency").status, 200);
        ASSERT_TRUE(eventually([&] { return usage_records(again, "ok").size() == 1; }, 15s));
        EXPECT_EQ(usage_records(again, "ok")[0]["request_id"], id);
        EXPECT_EQ(usage_records(again, "ok")[0]["outcome"], "success");
    }
    std::filesystem::remove_all(dir);
}

TEST(Async, EventConfigValidates) {
    Daemon d;
    ASSERT_EQ(d.deploy("f", python_settings(), python_zip(kOkPy)).status, 201);
    auto get = d.api("GET", "/v1/functions/f/event-config");
    ASSERT_EQ(get.status, 200);
    EXPECT_EQ(get.json()["maximum_retry_attempts"], 2);
    EXPECT_EQ(get.json()["retry_delays_s"], json({60, 120}));
    EXPECT_TRUE(get.json()["on_failure"].is_null());

    for (const char* bad : {R"({"maximum_retry_attempts": 3})", R"({"maximum_event_age_s": 59})",
                            R"({"maximum_event_age_s": 21601})", R"({"retry_delays_s": []})",
                            R"({"retry_delays_s": [1, 2, 3]})", R"({"retry_delays_s": [-1]})",
                            R"({"on_failure": "no-such-function"})", R"({"on_success": "bad name!"})",
                            R"({"retries": 1})", "[]"}) {
        auto r = d.api("PUT", "/v1/functions/f/event-config", bad);
        EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    }
    EXPECT_EQ(d.api("PUT", "/v1/functions/missing/event-config", "{}").status, 404);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/event-config", "{}", "text/plain").status, 415);
    // Nothing changed by the refused requests.
    EXPECT_EQ(d.api("GET", "/v1/functions/f/event-config").body, get.body);

    auto put = d.api("PUT", "/v1/functions/f/event-config", R"({"maximum_event_age_s": 60})");
    ASSERT_EQ(put.status, 200);
    EXPECT_EQ(put.json()["maximum_event_age_s"], 60);
    EXPECT_EQ(put.json()["maximum_retry_attempts"], 2) << "omitted fields keep their values";
    ASSERT_EQ(d.api("DELETE", "/v1/functions/f/event-config").status, 200);
    EXPECT_EQ(d.api("GET", "/v1/functions/f/event-config").json()["maximum_event_age_s"], 21600);
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

// A function deleted while one of its events runs, then created again under the same name,
// receives its new events: the running event's slot is released whatever became of it.
TEST(Async, ARecreatedFunctionGetsItsEventsAfterADeleteMidDelivery) {
    Daemon d;
    const char* kSlowPy = "import time\ndef handler(event, context):\n    print('STARTED', flush=True)\n"
                          "    time.sleep(2)\n    return 1\n";
    json s = python_settings();
    s["reserved_concurrency"] = 1;  // one event of it at a time
    ASSERT_EQ(d.deploy("again", s, python_zip(kSlowPy)).status, 201);
    ASSERT_EQ(invoke_event(d, "again", R"({"n": 1})").status, 202);
    ASSERT_TRUE(eventually([&] { return function_log(d, "again").find("STARTED") != std::string::npos; }, 10s));
    ASSERT_EQ(d.api("DELETE", "/v1/functions/again").status, 204);
    ASSERT_EQ(d.deploy("again", s, python_zip(kOkPy)).status, 201);
    ASSERT_EQ(invoke_event(d, "again", R"({"n": 2})").status, 202);
    EXPECT_TRUE(eventually([&] { return function_log(d, "again").find("got 2") != std::string::npos; }, 15s))
        << function_log(d, "again");
}

// A function's queue holds at most async.queue_depth_per_function undelivered events; more
// are refused as Lambda refuses a throttled call (429, TooManyRequestsException), and other
// functions' queues are not affected.
TEST(Async, AFullQueueAnswers429AndOnlyForItsFunction) {
    Daemon d({"--limit", "async.queue_depth_per_function=3"});
    const char* kSlowPy = "import time\ndef handler(event, context):\n    time.sleep(1)\n    return 1\n";
    json s = python_settings();
    s["reserved_concurrency"] = 1;
    ASSERT_EQ(d.deploy("slow", s, python_zip(kSlowPy)).status, 201);
    ASSERT_EQ(d.deploy("ok", python_settings(), python_zip(kOkPy)).status, 201);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(invoke_event(d, "slow", R"({"n": 1})").status, 202) << i;
    const auto refused = invoke_event(d, "slow", R"({"n": 4})");
    ASSERT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(refused.json()["error"]["type"], "TooManyRequestsException") << refused.body;
    EXPECT_EQ(refused.json()["Reason"], "AsyncQueueDepthExceeded") << refused.body;
    EXPECT_NE(refused.json()["error"]["message"].get<std::string>().find("async.queue_depth_per_function"),
              std::string::npos);
    EXPECT_EQ(refused.header("retry-after"), "1");
    EXPECT_EQ(invoke_event(d, "ok", R"({"n": 5})").status, 202) << "another function's queue is its own";

    // Once events are delivered, there is room again.
    EXPECT_TRUE(eventually([&] { return invoke_event(d, "slow", R"({"n": 6})").status == 202; }, 10s));
    EXPECT_TRUE(eventually([&] { return usage_records(d, "slow").size() == 4; }, 15s));
    EXPECT_EQ(usage_records(d, "ok").size(), 1u);
}

// Dead letters are kept for async.dead_letter_retention_s (14 days by default) and then removed.
TEST(Async, DeadLettersPastTheirRetentionAreRemoved) {
    auto dir = std::filesystem::temp_directory_path() / ("funcd-dlq-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    {
        Daemon d({}, dir);
        d.keep_data_dir();
        ASSERT_EQ(d.deploy("fails", python_settings(), python_zip(kFailPy)).status, 201);
        ASSERT_EQ(d.api("PUT", "/v1/functions/fails/event-config", R"({"maximum_retry_attempts": 0})").status, 200);
        ASSERT_EQ(invoke_event(d, "fails", "{}").status, 202);
        ASSERT_TRUE(eventually([&] {
            return d.api("GET", "/v1/dead-letters?function=fails").json()["dead_letters"].size() == 1;
        }, 10s));
    }
    std::this_thread::sleep_for(2s);
    Daemon d({"--limit", "async.dead_letter_retention_s=1"}, dir);
    EXPECT_TRUE(eventually([&] {
        return d.api("GET", "/v1/dead-letters?function=fails").json()["dead_letters"].empty();
    })) << "a dead letter older than the retention is removed at start";
    // A fresh one stays until it is older than the retention.
    const std::string fresh = invoke_event(d, "fails", "{}").json()["request_id"];
    ASSERT_TRUE(eventually([&] {
        return d.api("GET", "/v1/dead-letters?function=fails").json()["dead_letters"].size() == 1;
    }, 10s));
    EXPECT_EQ(d.api("GET", "/v1/dead-letters?function=fails").json()["dead_letters"][0]["id"], fresh);
    d.stop();
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace funcd::testing
