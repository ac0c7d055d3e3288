// The dashboard in a real browser against the real daemon: headless chromium signs in,
// lists the functions, opens one, sees an invocation the test made appear, opens its log
// lines (markup in them shown as text), follows the live log, redrives a dead letter and
// shows the usage page. Any JavaScript exception, console error or browser error (a
// Content-Security-Policy violation included) fails it. Screenshots are kept under the
// build directory (test-artifacts/dashboard/).
#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "headless_chromium.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::filesystem::path kArtifacts = std::filesystem::path(FUNCD_TEST_ARTIFACTS_DIR) / "dashboard";

const char* kHelloPy = R"(def handler(event, context):
    print("hello from", context.aws_request_id, "<script>window.__injected = 1</script>")
    return {"greeting": "hi", "n": event.get("n")}
)";
const char* kFailingJobPy = R"(def handler(event, context):
    raise ValueError("cannot do job " + str(event.get("job")))
)";
const char* kFixedJobPy = R"(def handler(event, context):
    print("did job", event.get("job"))
    return {"done": event.get("job")}
)";

std::string js(const std::string& s) { return json(s).dump(); }

// Clicks the element `selector` names (it must exist).
void click(HeadlessChromium& b, const std::string& selector) {
    ASSERT_TRUE(b.wait_for("document.querySelector(" + js(selector) + ")")) << selector << " never appeared";
    b.evaluate("document.querySelector(" + js(selector) + ").click()");
}

std::string text_of(HeadlessChromium& b, const std::string& selector) {
    json v = b.evaluate("(document.querySelector(" + js(selector) + ") || {}).textContent || ''");
    return v.is_string() ? v.get<std::string>() : std::string();
}

TEST(DashboardBrowser, SignInBrowseInvocationsLogsLiveTailRedriveAndUsage) {
    Daemon d;
    ASSERT_EQ(d.deploy("hello", python_settings(), python_zip(kHelloPy)).status, 201);
    ASSERT_EQ(d.deploy("jobs", python_settings(), python_zip(kFailingJobPy)).status, 201);
    ASSERT_EQ(d.api("PUT", "/v1/functions/jobs/event-config", R"({"maximum_retry_attempts": 0})").status, 200);
    auto first = d.invoke("hello", R"({"n": 1})");
    ASSERT_EQ(first.status, 200) << first.body;
    // An async event that fails once and becomes a dead letter; then the function is fixed.
    auto queued = http_request(d.port(), "POST", "/v1/functions/jobs/invoke", R"({"job": 7})",
                               {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Invocation-Type", "Event"}});
    ASSERT_EQ(queued.status, 202) << queued.body;
    ASSERT_TRUE(eventually([&] {
        return d.api("GET", "/v1/dead-letters?function=jobs").json()["dead_letters"].size() == 1;
    }, 15s));
    ASSERT_EQ(d.deploy("jobs", python_settings(), python_zip(kFixedJobPy)).status, 200);
    // A provisioned worker, ready before the page is opened, for the list's workers column.
    ASSERT_EQ(d.api("PUT", "/v1/functions/hello/concurrency", R"({"provisioned_concurrency": 1})").status, 200);
    ASSERT_TRUE(eventually([&] {
        return d.api("GET", "/v1/functions/hello").json()["provisioned"]["ready"] == 1;
    }, 15s));

    HeadlessChromium b;
    const std::string base = "http://127.0.0.1:" + std::to_string(d.port());
    b.navigate(base + "/ui");

    // Signing in: a wrong token is refused and not kept; the right one is, in sessionStorage only.
    ASSERT_TRUE(b.wait_for("!document.getElementById('login').hidden"));
    b.evaluate("document.getElementById('token').value = 'wrong'; document.getElementById('login-form').requestSubmit()");
    ASSERT_TRUE(b.wait_for("document.getElementById('login-error').textContent.includes('refused')"));
    EXPECT_EQ(b.evaluate("sessionStorage.length"), 0);
    // The browser logs the refused request itself; nothing else may go wrong from here on.
    const std::size_t refusals = b.errors().size();
    for (const auto& e : b.errors()) EXPECT_NE(e.find("401"), std::string::npos) << e;
    b.evaluate("document.getElementById('token').value = " + js(Daemon::kToken) +
               "; document.getElementById('login-form').requestSubmit()");

    // The functions, with their last hour filled in.
    ASSERT_TRUE(b.wait_for("document.querySelector('tr[data-function=\"hello\"]') && "
                           "document.querySelector('tr[data-function=\"jobs\"]') && !document.querySelector('.pending')"))
        << text_of(b, "#view");
    EXPECT_EQ(b.evaluate("sessionStorage.getItem('funcd.api-token')"), Daemon::kToken);
    EXPECT_EQ(b.evaluate("document.cookie"), "");
    const std::string row = text_of(b, "tr[data-function=\"hello\"]");
    EXPECT_NE(row.find("python3"), std::string::npos) << row;
    EXPECT_NE(row.find("128 MB"), std::string::npos) << row;
    EXPECT_NE(row.find("(1/1 provisioned)"), std::string::npos) << row;
    EXPECT_EQ(text_of(b, "tr[data-function=\"jobs\"]").find("provisioned"), std::string::npos);
    b.screenshot(kArtifacts / "functions.png");

    // One function: the invocation made before, then one made now appearing on refresh.
    click(b, "tr[data-function=\"hello\"] a");
    const std::string id1 = first.header("x-funcd-request-id");
    ASSERT_TRUE(b.wait_for("document.querySelector('#invocations tr[data-request-id=" + js(id1) + "]')"))
        << text_of(b, "#view");
    ASSERT_TRUE(b.wait_for("document.querySelectorAll('#activity svg.chart').length === 6"));
    auto second = d.invoke("hello", R"({"n": 2})");
    ASSERT_EQ(second.status, 200);
    const std::string id2 = second.header("x-funcd-request-id");
    click(b, "#refresh-invocations");
    const std::string row2 = "#invocations tr[data-request-id=" + js(id2) + "]";
    ASSERT_TRUE(b.wait_for("document.querySelector(" + js(row2) + ")"));
    EXPECT_NE(text_of(b, row2).find("success"), std::string::npos) << text_of(b, row2);

    // Its log lines, the function's markup shown as text and never run.
    click(b, row2);
    const std::string logs2 = "[data-logs-of=" + js(id2) + "]";
    ASSERT_TRUE(b.wait_for("document.querySelector(" + js(logs2) + ") && document.querySelector(" + js(logs2) +
                           ").textContent.includes('REPORT RequestId')"))
        << text_of(b, logs2);
    const std::string lines = text_of(b, logs2);
    EXPECT_NE(lines.find("hello from " + id2 + " <script>window.__injected = 1</script>"), std::string::npos) << lines;
    EXPECT_EQ(b.evaluate("document.querySelectorAll('#view script').length"), 0);
    EXPECT_EQ(b.evaluate("typeof window.__injected"), "undefined");

    // The live log: a line written after following starts arrives.
    click(b, "#live-toggle");
    ASSERT_TRUE(b.wait_for("document.getElementById('live-log').textContent.includes('Following')"));
    auto third = d.invoke("hello", R"({"n": 3})");
    ASSERT_EQ(third.status, 200);
    const std::string id3 = third.header("x-funcd-request-id");
    ASSERT_TRUE(b.wait_for("document.getElementById('live-log').textContent.includes(" + js("hello from " + id3) + ")"))
        << text_of(b, "#live-log");
    b.screenshot(kArtifacts / "function.png");
    click(b, "#live-toggle");

    // The dead letter, redriven: the fixed function runs it.
    b.evaluate("location.hash = '#/functions/jobs'");
    ASSERT_TRUE(b.wait_for("document.querySelector('tr[data-dead-letter] button.redrive')")) << text_of(b, "#view");
    EXPECT_NE(text_of(b, "#dead-letters").find("cannot do job 7"), std::string::npos) << text_of(b, "#dead-letters");
    click(b, "tr[data-dead-letter] button.redrive");
    ASSERT_TRUE(b.wait_for("document.getElementById('dead-letters').textContent.includes('Redriven')"))
        << text_of(b, "#dead-letters");
    ASSERT_TRUE(eventually([&] {
        const json doc = d.api("GET", "/v1/functions/jobs/invocations").json();
        for (const auto& inv : doc["invocations"])
            if (inv["outcome"] == "success") return true;
        return false;
    }, 15s));
    EXPECT_TRUE(d.api("GET", "/v1/dead-letters?function=jobs").json()["dead_letters"].empty());
    b.screenshot(kArtifacts / "dead-letters.png");

    // Usage by function and by day.
    b.evaluate("location.hash = '#/usage'");
    ASSERT_TRUE(b.wait_for("document.getElementById('usage-by-function') && "
                           "document.getElementById('usage-by-function').textContent.includes('hello')"))
        << text_of(b, "#view");
    EXPECT_TRUE(b.wait_for("document.getElementById('usage-by-day')"));
    b.screenshot(kArtifacts / "usage.png");

    // Signing out forgets the token.
    click(b, "#sign-out");
    EXPECT_TRUE(b.wait_for("!document.getElementById('login').hidden && sessionStorage.length === 0"));

    // Nothing the page did threw or was refused by its policy.
    EXPECT_EQ(b.errors().size(), refusals) << [&] {
        std::string all;
        for (const auto& e : b.errors()) all += e + "\n";
        return all;
    }();
}

}  // namespace
}  // namespace funcd::testing
