// Trace ids through the real daemon and real workers: the caller's X-Amzn-Trace-Id (or
// W3C traceparent) reaches the runtime (_X_AMZN_TRACE_ID), the REPORT line, the usage
// ledger and the answer; a new one is made when none or a malformed one came; asynchronous
// retries, destinations, schedule fires and function URLs keep theirs. Then a function's
// invocation history and per-step statistics after a known sequence of invocations.
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::string kTrace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const std::regex kAwsTrace("Root=1-[0-9a-f]{8}-[0-9a-f]{24}(;[A-Za-z]+=[^;]+)*");

// Prints and returns the trace id its runtime gave it; fails when the event says so.
const char* kTracePy = R"(import json, os
def handler(event, context):
    seen = {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "id": context.aws_request_id}
    print("TRACE " + json.dumps(seen))
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail")
    return seen
)";

// A function URL's answer: the trace its runtime gave it and the one in the event's headers.
const char* kUrlPy = R"(import json, os
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"trace": os.environ.get("_X_AMZN_TRACE_ID"),
                                                   "header": event["headers"].get("x-amzn-trace-id")})}
)";

HttpResult invoke(Daemon& d, const std::string& name, const std::string& body,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Authorization", "Bearer " + Daemon::kToken);
    return http_request(d.port(), "POST", "/v1/functions/" + name + "/invoke", body, headers);
}

json history(Daemon& d, const std::string& name, const std::string& query = "") {
    auto r = d.api("GET", "/v1/functions/" + name + "/invocations" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json()["invocations"];
}

// The ledger's entry of `request_id` (null after 5 s if it is not there).
json ledger_entry(Daemon& d, const std::string& name, const std::string& request_id) {
    json found;
    eventually([&] {
        for (const auto& e : history(d, name))
            if (e["request_id"] == request_id) found = e;
        return !found.is_null();
    });
    return found;
}

std::string root_of(const std::string& trace) {
    const auto at = trace.find("Root=");
    return at == std::string::npos ? "" : trace.substr(at + 5, 35);
}

TEST(Trace, SyncInvokeCarriesTheCallersTraceEverywhere) {
    Daemon d;
    ASSERT_EQ(d.deploy("t", python_settings(), python_zip(kTracePy)).status, 201);
    auto r = invoke(d, "t", "{}", {{"X-Amzn-Trace-Id", kTrace}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["trace"], kTrace) << "the runtime's _X_AMZN_TRACE_ID";
    EXPECT_EQ(r.header("x-amzn-trace-id"), kTrace);
    const std::string id = r.header("x-funcd-request-id");
    const json entry = ledger_entry(d, "t", id);
    EXPECT_EQ(entry["trace_id"], kTrace) << entry.dump();
    EXPECT_EQ(entry["trigger"], "api");
    const std::string log = log_after(d, "t", id);
    EXPECT_TRUE(std::regex_search(log, std::regex("REPORT RequestId: " + id + "\t[^\n]*\tTraceId: " + root_of(kTrace))))
        << log;

    // W3C's traceparent, in AWS's form.
    auto w3c = invoke(d, "t", "{}", {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
    ASSERT_EQ(w3c.status, 200) << w3c.body;
    EXPECT_EQ(w3c.json()["trace"], "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1");
    EXPECT_EQ(w3c.header("x-amzn-trace-id"), w3c.json()["trace"]);

    // None, or a malformed one: a new id, never an error, and different every time.
    std::set<std::string> fresh;
    for (const std::string& bad : std::vector<std::string>{
             "", "Root=nonsense", "Root=1-5759e988-bd862e3fe1be46a994272793;x=\"",
             "Root=1-5759e988-bd862e3fe1be46a994272793;Self=" + std::string(4000, 'a')}) {
        auto n = bad.empty() ? invoke(d, "t", "{}") : invoke(d, "t", "{}", {{"X-Amzn-Trace-Id", bad}});
        ASSERT_EQ(n.status, 200) << n.body;
        const std::string trace = n.json()["trace"];
        EXPECT_TRUE(std::regex_match(trace, kAwsTrace)) << trace;
        EXPECT_EQ(n.header("x-amzn-trace-id"), trace);
        EXPECT_NE(trace.find(";Parent="), std::string::npos) << trace;
        EXPECT_EQ(ledger_entry(d, "t", n.header("x-funcd-request-id"))["trace_id"], trace);
        fresh.insert(trace);
    }
    EXPECT_EQ(fresh.size(), 4u);
    EXPECT_EQ(fresh.count(kTrace), 0u);
}

TEST(Trace, NodeHandlersSeeItToo) {
    Daemon d;
    const std::string js = "exports.handler = async () => ({trace: process.env._X_AMZN_TRACE_ID});\n";
    ASSERT_EQ(d.deploy("n", {{"runtime", "nodejs18.x"}, {"handler", "index.handler"}},
                       make_zip({{"index.js", {js, 0644}}}))
                  .status,
              201);
    auto r = invoke(d, "n", "{}", {{"X-Amzn-Trace-Id", kTrace}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["trace"], kTrace);
    auto fresh = invoke(d, "n", "{}");
    ASSERT_EQ(fresh.status, 200) << fresh.body;
    EXPECT_EQ(fresh.json()["trace"], fresh.header("x-amzn-trace-id")) << "not the previous invocation's";
    EXPECT_NE(fresh.json()["trace"], kTrace);
}

TEST(Trace, AsyncRetriesAndTheDestinationKeepTheEventsTrace) {
    Daemon d;
    ASSERT_EQ(d.deploy("flaky", python_settings(), python_zip(kTracePy)).status, 201);
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kTracePy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/flaky/event-config",
                    R"({"maximum_retry_attempts": 1, "retry_delays_s": [0], "on_failure": "sink"})")
                  .status,
              200);
    auto r = invoke(d, "flaky", R"({"fail": true})", {{"X-Amzn-Trace-Id", kTrace}, {"X-Funcd-Invocation-Type", "Event"}});
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.header("x-amzn-trace-id"), kTrace);
    const std::string id = r.json()["request_id"];

    // The first attempt and its retry: the same request id and trace.
    ASSERT_TRUE(eventually([&] { return history(d, "flaky").size() == 2; }, 15s)) << history(d, "flaky").dump();
    for (const auto& e : history(d, "flaky")) {
        EXPECT_EQ(e["request_id"], id);
        EXPECT_EQ(e["trace_id"], kTrace);
        EXPECT_EQ(e["trigger"], "async");
        EXPECT_EQ(e["outcome"], "function_error");
    }
    ASSERT_TRUE(eventually([&] { return logged_json(d, "flaky", "TRACE ").size() == 2; }, 5s));
    for (const auto& seen : logged_json(d, "flaky", "TRACE ")) EXPECT_EQ(seen["trace"], kTrace);

    // The failure destination's invocation continues the same trace.
    ASSERT_TRUE(eventually([&] { return history(d, "sink").size() == 1; }, 15s));
    const json sink = history(d, "sink")[0];
    EXPECT_EQ(sink["trace_id"], kTrace);
    EXPECT_EQ(sink["trigger"], "destination");
    ASSERT_TRUE(eventually([&] { return logged_json(d, "sink", "TRACE ").size() == 1; }, 5s));
    EXPECT_EQ(logged_json(d, "sink", "TRACE ")[0]["trace"], kTrace);
    // Its dead letter names the trace, and keeps it for a redrive.
    const json letters = d.api("GET", "/v1/dead-letters?function=flaky").json()["dead_letters"];
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(letters[0]["trace_id"], kTrace);
}

TEST(Trace, AScheduleFireHasOneTraceForAllItsAttempts) {
    Daemon d;
    ASSERT_EQ(d.deploy("tick", python_settings(), python_zip(kTracePy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/tick/event-config", R"({"maximum_retry_attempts": 1, "retry_delays_s": [0]})")
                  .status,
              200);
    ASSERT_EQ(d.api("PUT", "/v1/functions/tick/schedules/beat",
                    R"j({"expression": "rate(1 second)", "input": {"fail": true}})j")
                  .status,
              201);
    ASSERT_TRUE(eventually([&] { return history(d, "tick").size() >= 4; }, 15s));
    ASSERT_EQ(d.api("DELETE", "/v1/functions/tick/schedules/beat").status, 204);
    std::this_thread::sleep_for(1500ms);  // the last fire's retry
    // Group the attempts by request id: each fire's attempts share its trace, and fires differ.
    std::map<std::string, std::set<std::string>> traces;
    std::map<std::string, int> attempts;
    for (const auto& e : history(d, "tick", "?limit=1000")) {
        traces[e["request_id"]].insert(e["trace_id"].get<std::string>());
        ++attempts[e["request_id"]];
        EXPECT_EQ(e["trigger"], "schedule");
        EXPECT_TRUE(std::regex_match(e["trace_id"].get<std::string>(), kAwsTrace)) << e.dump();
    }
    std::set<std::string> all;
    bool retried = false;
    for (const auto& [id, t] : traces) {
        EXPECT_EQ(t.size(), 1u) << "request " << id << " ran under several traces";
        all.insert(t.begin(), t.end());
        retried = retried || attempts[id] == 2;
    }
    EXPECT_TRUE(retried) << "no fire was retried";
    EXPECT_EQ(all.size(), traces.size()) << "each fire is a trace of its own";
    // The function ran under the ledger's trace.
    std::set<std::string> seen;
    for (const auto& s : logged_json(d, "tick", "TRACE ")) seen.insert(s["trace"].get<std::string>());
    for (const auto& t : all) EXPECT_EQ(seen.count(t), 1u) << t;
}

// A file trigger's event is a trace of its own: the function runs under it, the ledger names
// it with trigger "file", and a retry of the same event keeps it.
TEST(Trace, AFileEventHasOneTraceForAllItsAttempts) {
    Daemon d;
    char tmpl[] = "/tmp/funcd-trace-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::filesystem::path dir = tmpl;
    ASSERT_EQ(d.deploy("onfile", python_settings(), python_zip(kTracePy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/onfile/event-config", R"({"maximum_retry_attempts": 1, "retry_delays_s": [0]})")
                  .status,
              200);
    const json def{{"directory", dir.string()}, {"patterns", {"*.csv"}}, {"events", {"created"}}};
    ASSERT_EQ(d.api("PUT", "/v1/functions/onfile/file-triggers/drop", def.dump()).status, 201);
    { std::ofstream(dir / "a.csv") << "x,y\n"; }
    { std::ofstream(dir / "b.csv") << "x,y\n"; }
    ASSERT_TRUE(eventually([&] { return history(d, "onfile").size() >= 2; }, 10s));
    std::map<std::string, std::set<std::string>> traces;
    for (const auto& e : history(d, "onfile")) {
        EXPECT_EQ(e["trigger"], "file") << e.dump();
        EXPECT_TRUE(std::regex_match(e["trace_id"].get<std::string>(), kAwsTrace)) << e.dump();
        traces[e["request_id"]].insert(e["trace_id"].get<std::string>());
    }
    EXPECT_EQ(traces.size(), 2u) << "one event per file";
    std::set<std::string> all;
    for (const auto& [id, t] : traces) {
        EXPECT_EQ(t.size(), 1u) << "request " << id << " ran under several traces";
        all.insert(t.begin(), t.end());
    }
    EXPECT_EQ(all.size(), 2u) << "each file's event is a trace of its own";
    // The log reaches its file a moment after the ledger.
    ASSERT_TRUE(eventually([&] { return logged_json(d, "onfile", "TRACE ").size() >= 2; }));
    std::set<std::string> seen;
    for (const auto& s : logged_json(d, "onfile", "TRACE ")) seen.insert(s["trace"].get<std::string>());
    for (const auto& t : all) EXPECT_EQ(seen.count(t), 1u) << t << " never reached the function";
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

TEST(Trace, FunctionUrlTakesAndAnswersTheTrace) {
    Daemon d;
    ASSERT_EQ(d.deploy("web", python_settings({{"url_auth", "none"}}), python_zip(kUrlPy)).status, 201);
    auto r = http_request(d.port(), "GET", "/fn/web", {}, {{"X-Amzn-Trace-Id", kTrace}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["trace"], kTrace);
    EXPECT_EQ(r.json()["header"], kTrace);
    EXPECT_EQ(r.header("x-amzn-trace-id"), kTrace);
    const json entry = ledger_entry(d, "web", r.header("x-funcd-request-id"));
    EXPECT_EQ(entry["trace_id"], kTrace);
    EXPECT_EQ(entry["trigger"], "url");

    // A malformed header is replaced, in the event too, by the id the function runs under.
    auto fresh = http_request(d.port(), "GET", "/fn/web", {}, {{"X-Amzn-Trace-Id", "Root=1-zz"}});
    ASSERT_EQ(fresh.status, 200) << fresh.body;
    const std::string trace = fresh.json()["trace"];
    EXPECT_TRUE(std::regex_match(trace, kAwsTrace)) << trace;
    EXPECT_EQ(fresh.json()["header"], trace);
    EXPECT_EQ(fresh.header("x-amzn-trace-id"), trace);

    // A route: the same, under its own trigger.
    ASSERT_EQ(d.api("PUT", "/v1/routes", R"([{"method": "GET", "path": "/web", "function": "web"}])").status, 200);
    auto routed = http_request(d.port(), "GET", "/api/web", {},
                               {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Amzn-Trace-Id", kTrace}});
    ASSERT_EQ(routed.status, 200) << routed.body;
    EXPECT_EQ(routed.json()["trace"], kTrace);
    EXPECT_EQ(routed.header("x-amzn-trace-id"), kTrace);
    const json routed_entry = ledger_entry(d, "web", routed.header("x-funcd-request-id"));
    EXPECT_EQ(routed_entry["trace_id"], kTrace);
    EXPECT_EQ(routed_entry["trigger"], "route");
}

TEST(InvocationHistory, ListingAndStatsAfterAKnownSequence) {
    Daemon d;
    ASSERT_EQ(d.deploy("h", python_settings({{"memory_mb", 256}}), python_zip(kTracePy)).status, 201);
    std::vector<std::string> ids;  // in order
    for (bool fail : {false, false, true, false, true}) {
        auto r = invoke(d, "h", fail ? R"({"fail": true})" : "{}");
        ASSERT_EQ(r.status, 200) << r.body;
        ids.push_back(r.header("x-funcd-request-id"));
    }
    ASSERT_EQ(d.api("PUT", "/v1/functions/h/concurrency", R"({"reserved_concurrency": 0})").status, 200);
    auto throttled = invoke(d, "h", "{}", {{"X-Amzn-Trace-Id", kTrace}});
    ASSERT_EQ(throttled.status, 429) << throttled.body;
    EXPECT_EQ(throttled.header("x-amzn-trace-id"), kTrace);
    ids.push_back(throttled.header("x-funcd-request-id"));

    json all = history(d, "h");
    ASSERT_EQ(all.size(), 6u) << all.dump();
    for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(all[i]["request_id"], ids[5 - i]) << "newest first";
    EXPECT_EQ(all[0]["outcome"], "throttled");
    EXPECT_EQ(all[0]["billed_ms"], 0);
    EXPECT_EQ(all[0]["trace_id"], kTrace);
    EXPECT_EQ(all[1]["outcome"], "function_error");
    EXPECT_EQ(all[5]["outcome"], "success");
    EXPECT_FALSE(all[5]["init_duration_ms"].is_null()) << "the first one was a cold start";
    EXPECT_TRUE(all[4]["init_duration_ms"].is_null());
    for (const auto& e : all) {
        EXPECT_EQ(e["memory_mb"], 256);
        EXPECT_EQ(e["trigger"], "api");
        EXPECT_TRUE(e["duration_ms"].is_number());
    }
    EXPECT_EQ(history(d, "h", "?outcome=function_error").size(), 2u);
    EXPECT_EQ(history(d, "h", "?limit=2").size(), 2u);
    EXPECT_EQ(history(d, "h", "?until=2000-01-01T00:00:00Z").size(), 0u);
    EXPECT_EQ(history(d, "h", "?since=2000-01-01T00:00:00Z").size(), 6u);
    // Throttles are not usage.
    EXPECT_EQ(d.api("GET", "/v1/usage?function=h").json()["total"]["invocations"], 5);

    auto stats = d.api("GET", "/v1/functions/h/stats?step=1d");
    ASSERT_EQ(stats.status, 200) << stats.body;
    const json s = stats.json();
    EXPECT_EQ(s["step_s"], 86400);
    json totals{{"invocations", 0}, {"errors", 0}, {"throttles", 0}, {"cold_starts", 0}};
    const json* busy = nullptr;  // (two steps, should the day change in between)
    const json* cold = nullptr;
    for (const auto& b : s["steps"]) {
        for (auto& [k, v] : totals.items()) v = v.get<int>() + b[k].get<int>();
        if (b["invocations"].get<int>() > 0) busy = &b;
        if (b["cold_starts"].get<int>() > 0) cold = &b;
    }
    EXPECT_EQ(totals, json({{"invocations", 5}, {"errors", 2}, {"throttles", 1}, {"cold_starts", 1}})) << s.dump();
    ASSERT_NE(busy, nullptr);
    EXPECT_TRUE((*busy)["duration_ms"]["p50"].is_number());
    EXPECT_LE((*busy)["duration_ms"]["p50"].get<double>(), (*busy)["duration_ms"]["p99"].get<double>());
    ASSERT_NE(cold, nullptr);
    EXPECT_GT((*cold)["init_ms_mean"].get<double>(), 0.0);
    EXPECT_TRUE((*busy)["gb_seconds"].is_string());
    EXPECT_TRUE((*busy)["cost_usd"].is_string());

    // Bad parameters: 400 with the /v1 error document naming the problem; unknown function 404.
    for (const std::string bad : {"/invocations?limit=0", "/invocations?limit=5000", "/invocations?outcome=nope",
                                  "/invocations?since=soon", "/invocations?color=red", "/stats?step=0s",
                                  "/stats?step=1m&since=2020-01-01T00:00:00Z",
                                  "/stats?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"}) {
        auto e = d.api("GET", "/v1/functions/h" + bad);
        EXPECT_EQ(e.status, 400) << bad << " " << e.body;
        EXPECT_EQ(e.json()["error"]["type"], "InvalidParameterValueException") << bad;
        EXPECT_FALSE(e.json()["error"]["message"].get<std::string>().empty()) << bad;
    }
    EXPECT_EQ(d.api("GET", "/v1/functions/nope/invocations").status, 404);
    EXPECT_EQ(d.api("GET", "/v1/functions/nope/stats").status, 404);
    EXPECT_EQ(d.api("POST", "/v1/functions/h/stats").status, 405);
}

}  // namespace
}  // namespace funcd::testing
