// GET /metrics through the real daemon and real workers: a known sequence of invocations
// gives exact counts, every histogram's _count matches the invocations it observes, and the
// exposition passes a strict parser in both formats.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <future>
#include <regex>

#include "daemon_harness.hpp"
#include "exposition_parser.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kAppPy = R"(import time
def handler(event, context):
    if event.get("fail") or event.get("rawPath", "").endswith("/fail"):
        raise ValueError("asked to fail")
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
)";

const std::string kOpenMetricsAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

HttpResult scrape(Daemon& d, const std::string& accept = {}) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + Daemon::kToken}};
    if (!accept.empty()) headers.emplace_back("Accept", accept);
    return http_request(d.port(), "GET", "/metrics", {}, headers);
}

ParsedExposition metrics(Daemon& d) {
    auto r = scrape(d);
    EXPECT_EQ(r.status, 200) << r.body;
    return parse_exposition(r.body, false);
}

// The metrics listener's port, from the daemon's log.
unsigned short metrics_port(const Daemon& d) {
    static const std::regex at(R"(metrics: /metrics without a token at [0-9.]+:([0-9]+))");
    std::smatch m;
    const std::string log = d.log();
    if (!std::regex_search(log, m, at)) throw std::runtime_error("no metrics listener in the log:\n" + log);
    return static_cast<unsigned short>(std::stoi(m[1]));
}

int running(Daemon& d, const std::string& name) {
    auto r = d.api("GET", "/v1/functions/" + name + "/concurrency");
    return r.status == 200 ? r.json()["running"].get<int>() : -1;
}

TEST(Metrics, AKnownSequenceGivesExactCounts) {
    Daemon d({"--queue-wait-ms", "0"});
    json settings{{"runtime", "python3"}, {"handler", "app.handler"}, {"timeout_s", 1}, {"reserved_concurrency", 1},
                  {"memory_mb", 256}};
    ASSERT_EQ(d.deploy("m", settings, python_zip(kAppPy)).status, 201);
    ASSERT_EQ(d.deploy("untouched", settings, python_zip(kAppPy)).status, 201);

    // Deployed and never invoked: its series are there, at zero.
    auto before = metrics(d);
    EXPECT_EQ(before.value("funcd_invocations_total", {{"function", "untouched"}, {"outcome", "success"}}), 0);
    EXPECT_EQ(before.value("funcd_cold_starts_total", {{"function", "m"}}), 0);

    ASSERT_EQ(d.invoke("m", "{}").status, 200);                // cold start
    ASSERT_EQ(d.invoke("m", "{}").status, 200);                // warm
    ASSERT_EQ(d.invoke("m", R"({"fail": true})").status, 200);  // function error; the worker stays
    auto timing_out = std::async(std::launch::async, [&] { return d.invoke("m", R"({"sleep": 5})"); });
    ASSERT_TRUE(eventually([&] { return running(d, "m") == 1; }, 10s));
    auto throttled = d.invoke("m", "{}");  // over reserved_concurrency 1, no queue wait
    EXPECT_EQ(throttled.status, 429) << throttled.body;
    auto timeout = timing_out.get();
    EXPECT_EQ(timeout.json()["errorType"], "Sandbox.Timedout") << timeout.body;
    ASSERT_EQ(d.invoke("m", "{}").status, 200);  // the timed-out worker was killed: a second cold start

    auto p = metrics(d);
    const std::map<std::string, double> expected = {{"success", 3},   {"function_error", 1}, {"timeout", 1},
                                                    {"crash", 0},     {"init_error", 0},     {"throttled", 1}};
    for (const auto& [outcome, n] : expected)
        EXPECT_EQ(p.value("funcd_invocations_total", {{"function", "m"}, {"outcome", outcome}}), n) << outcome;
    EXPECT_EQ(p.value("funcd_cold_starts_total", {{"function", "m"}}), 2);
    EXPECT_EQ(p.value("funcd_throttles_total", {{"function", "m"}, {"reason", "reserved_concurrency"}}), 1);
    EXPECT_EQ(p.sum("funcd_throttles_total", {{"function", "m"}}), 1);

    // Histograms observe every invocation that ran: all but the throttled one.
    const double ran = p.sum("funcd_invocations_total", {{"function", "m"}}) -
                       *p.value("funcd_invocations_total", {{"function", "m"}, {"outcome", "throttled"}});
    EXPECT_EQ(ran, 5);
    EXPECT_EQ(p.value("funcd_invocation_duration_seconds_count", {{"function", "m"}}), ran);
    EXPECT_EQ(p.value("funcd_billed_duration_seconds_count", {{"function", "m"}}), ran);
    EXPECT_EQ(p.sum("funcd_init_duration_seconds_count", {{"function", "m"}}),
              *p.value("funcd_cold_starts_total", {{"function", "m"}}));
    // The timeout alone ran a second; the duration sum is at least that.
    EXPECT_GE(*p.value("funcd_invocation_duration_seconds_sum", {{"function", "m"}}), 1.0);
    // The timeout is past 1 s, the others well under: four in the 0.5 s bucket, five in +Inf.
    EXPECT_EQ(p.value("funcd_invocation_duration_seconds_bucket", {{"function", "m"}, {"le", "0.5"}}), 4);
    EXPECT_EQ(p.value("funcd_invocation_duration_seconds_bucket", {{"function", "m"}, {"le", "+Inf"}}), 5);
    // Billed GB-seconds follow the billed durations at 256 MB.
    const double billed_s = *p.value("funcd_billed_duration_seconds_sum", {{"function", "m"}});
    EXPECT_NEAR(*p.value("funcd_billed_gb_seconds_total", {{"function", "m"}}), billed_s * 256 / 1024, 1e-9);
    EXPECT_GT(*p.value("funcd_cost_usd_total", {{"function", "m"}}), 0);

    // Gauges now: nothing running, one warm worker.
    EXPECT_EQ(p.value("funcd_concurrent_executions", {{"function", "m"}}), 0);
    EXPECT_EQ(p.value("funcd_workers", {{"function", "m"}, {"state", "idle"}}), 1);
    EXPECT_EQ(p.value("funcd_workers", {{"function", "m"}, {"state", "busy"}}), 0);
    EXPECT_EQ(p.value("funcd_workers", {{"function", "untouched"}, {"state", "idle"}}), 0);
    EXPECT_GE(*p.value("funcd_launch_duration_seconds_count"), 2);
    EXPECT_EQ(p.value("funcd_build_info", {{"version", "0.1.0"}}), 1);
    EXPECT_GT(*p.value("process_resident_memory_bytes"), 0);
    EXPECT_EQ(p.value("funcd_invocations_total", {{"function", "untouched"}, {"outcome", "success"}}), 0);

    // A deleted function's series go.
    ASSERT_EQ(d.api("DELETE", "/v1/functions/untouched").status, 204);
    EXPECT_FALSE(metrics(d).value("funcd_invocations_total", {{"function", "untouched"}, {"outcome", "success"}}));
}

TEST(Metrics, AsyncRetriesAndDeadLettersAreCounted) {
    Daemon d;
    ASSERT_EQ(d.deploy("flaky", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kAppPy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/flaky/event-config",
                    R"({"maximum_retry_attempts": 1, "retry_delays_s": [0]})")
                  .status,
              200);
    auto r = http_request(d.port(), "POST", "/v1/functions/flaky/invoke", R"({"fail": true})",
                          {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Event"}});
    ASSERT_EQ(r.status, 202) << r.body;
    ParsedExposition p;
    ASSERT_TRUE(eventually(
        [&] {
            p = metrics(d);
            return p.value("funcd_dead_letters_total", {{"function", "flaky"}, {"reason", "retries_exhausted"}}) == 1;
        },
        15s));
    EXPECT_EQ(p.value("funcd_async_retries_total", {{"function", "flaky"}}), 1);
    EXPECT_EQ(p.value("funcd_invocations_total", {{"function", "flaky"}, {"outcome", "function_error"}}), 2);
    EXPECT_EQ(p.value("funcd_async_queue_depth", {{"function", "flaky"}}), 0);
    EXPECT_EQ(p.value("funcd_async_events_dropped_total"), 0);
}

TEST(Metrics, EveryFrontDoorCountsOnce) {
    Daemon d;
    ASSERT_EQ(d.deploy("web", {{"runtime", "python3"}, {"handler", "app.handler"}, {"url_auth", "none"}},
                       python_zip(kAppPy))
                  .status,
              201);
    ASSERT_EQ(d.invoke("web", "{}").status, 200);                                     // /v1
    ASSERT_EQ(http_request(d.port(), "GET", "/fn/web/anything").status, 200);         // function URL
    ASSERT_EQ(http_request(d.port(), "GET", "/fn/web/fail").status, 502);           // its error
    auto event = http_request(d.port(), "POST", "/v1/functions/web/invoke", "{}",
                              {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Event"}});
    ASSERT_EQ(event.status, 202);
    ParsedExposition p;
    ASSERT_TRUE(eventually(
        [&] {
            p = metrics(d);
            return p.sum("funcd_invocations_total", {{"function", "web"}}) >= 4;
        },
        10s));
    EXPECT_EQ(p.value("funcd_invocations_total", {{"function", "web"}, {"outcome", "success"}}), 3);
    EXPECT_EQ(p.value("funcd_invocations_total", {{"function", "web"}, {"outcome", "function_error"}}), 1);
    EXPECT_EQ(p.value("funcd_http_trigger_responses_total", {{"function", "web"}, {"code", "2xx"}}), 1);
    EXPECT_EQ(p.value("funcd_http_trigger_responses_total", {{"function", "web"}, {"code", "5xx"}}), 1);
    EXPECT_EQ(p.value("funcd_async_events_total", {{"function", "web"}, {"source", "api"}}), 1);
    EXPECT_EQ(p.value("funcd_cold_starts_total", {{"function", "web"}}), 1) << "one worker served them all";
}

TEST(Metrics, ProvisionedWorkersAreTheirOwnStateAndStartWithoutAColdStart) {
    Daemon d;
    ASSERT_EQ(d.deploy("ready", {{"runtime", "python3"}, {"handler", "app.handler"}, {"provisioned_concurrency", 2}},
                       python_zip(kAppPy))
                  .status,
              201);
    ParsedExposition p;
    ASSERT_TRUE(eventually(
        [&] {
            p = metrics(d);
            return p.value("funcd_workers", {{"function", "ready"}, {"state", "provisioned"}}) == 2;
        },
        15s));
    EXPECT_EQ(p.sum("funcd_workers", {{"function", "ready"}}), 2) << "each worker in one state";
    ASSERT_EQ(d.invoke("ready", "{}").status, 200);
    p = metrics(d);
    EXPECT_EQ(p.value("funcd_cold_starts_total", {{"function", "ready"}}), 0);
    EXPECT_EQ(p.value("funcd_invocations_total", {{"function", "ready"}, {"outcome", "success"}}), 1);
    EXPECT_EQ(p.sum("funcd_workers", {{"function", "ready"}}), 2);
}

TEST(Metrics, TheTokenGuardsItOnTheApiListenerAndItsOwnListenerServesItWithout) {
    Daemon d({"--metrics-listen", "127.0.0.1:0"});
    EXPECT_EQ(http_request(d.port(), "GET", "/metrics").status, 401);
    EXPECT_EQ(http_request(d.port(), "GET", "/metrics", {}, {{"Authorization", "Bearer wrong"}}).status, 401);

    auto text = scrape(d);
    ASSERT_EQ(text.status, 200);
    EXPECT_EQ(text.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NO_THROW(parse_exposition(text.body, false)) << text.body;

    auto om = scrape(d, kOpenMetricsAccept);
    ASSERT_EQ(om.status, 200);
    EXPECT_EQ(om.header("content-type"), "application/openmetrics-text; version=1.0.0; charset=utf-8");
    ParsedExposition parsed;
    EXPECT_NO_THROW(parsed = parse_exposition(om.body, true)) << om.body;
    EXPECT_EQ(parsed.families.at("funcd_invocations").type, "counter");
    EXPECT_EQ(parsed.families.at("funcd_build").type, "info");

    const unsigned short port = metrics_port(d);
    ASSERT_NE(port, d.port());
    auto open = http_request(port, "GET", "/metrics", {}, {{"Accept", kOpenMetricsAccept}});
    ASSERT_EQ(open.status, 200);
    EXPECT_NO_THROW(parse_exposition(open.body, true)) << open.body;
    EXPECT_EQ(http_request(port, "GET", "/v1/functions").status, 404) << "only /metrics there";
    EXPECT_EQ(http_request(port, "POST", "/metrics").status, 405);
}

TEST(Metrics, TheMetricsListenerKeepsTheConnectionDisciplineOfEveryListener) {
    Daemon d({"--metrics-listen", "127.0.0.1:0", "--limit", "metrics.head_timeout_ms=300"});
    const unsigned short port = metrics_port(d);
    // A client that connects and sends nothing is closed once the head deadline passes.
    const int fd = connect_loopback(port);
    timeval wait{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ::close(fd);
    EXPECT_GE(n, 0) << "closed by the server, not left open until the test's own timeout";
    // A head over the listener's limit (8 KiB) is refused.
    auto big = http_request(port, "GET", "/metrics", {}, {{"X-Filler", std::string(16 * 1024, 'x')}});
    EXPECT_EQ(big.status, 431);
    EXPECT_EQ(http_request(port, "GET", "/metrics").status, 200);
}

TEST(Metrics, OffLeavesNoEndpoint) {
    Daemon d({"--metrics", "off"});
    auto r = scrape(d);
    EXPECT_EQ(r.status, 404);
    EXPECT_NE(r.body.find("--metrics off"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace funcd::testing
