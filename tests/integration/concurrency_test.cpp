// Concurrency limits, throttling, the memory budget and provisioned concurrency, through
// the real daemon and real workers.
#include <gtest/gtest.h>

#include <unistd.h>

#include <future>
#include <regex>
#include <set>
#include <vector>

#include "daemon_harness.hpp"
#include "exposition_parser.hpp"
#include "funcd/common/text.hpp"
#include "funcd/sandbox/cgroup.hpp"

namespace funcd::testing {
namespace {

// The answers of `calls` by status, and every answer other than 200 (status and body).
std::pair<std::map<int, int>, std::string> tally(std::vector<std::future<HttpResult>>& calls) {
    std::map<int, int> statuses;
    std::string failures;
    for (auto& c : calls) {
        auto r = c.get();
        ++statuses[r.status];
        if (r.status != 200) failures += std::to_string(r.status) + " " + r.body + "\n";
    }
    return {std::move(statuses), std::move(failures)};
}

using nlohmann::json;
using namespace std::chrono_literals;

// WORKER identifies the worker process (pids repeat across PID namespaces).
const char* kSleepPy = R"(import os, time, uuid
WORKER = uuid.uuid4().hex
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"worker": WORKER, "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
)";

json sleep_settings(json extra = json::object()) {
    json s{{"runtime", "python3"}, {"handler", "app.handler"}};
    s.update(extra);
    return s;
}

int running(Daemon& d, const std::string& name) {
    auto r = d.api("GET", "/v1/functions/" + name + "/concurrency");
    return r.status == 200 ? r.json()["running"].get<int>() : -1;
}

std::future<HttpResult> invoke_async(Daemon& d, const std::string& name, double sleep_s) {
    return std::async(std::launch::async, [&d, name, sleep_s] {
        return d.invoke(name, json{{"sleep", sleep_s}}.dump());
    });
}

void expect_throttled(const HttpResult& r, const std::string& reason, const std::string& message_part) {
    ASSERT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.header("retry-after"), "1");
    json body = r.json();
    EXPECT_EQ(body["error"]["type"], "TooManyRequestsException");
    EXPECT_EQ(body["Reason"], reason);
    EXPECT_NE(body["error"]["message"].get<std::string>().find(message_part), std::string::npos) << r.body;
    EXPECT_FALSE(r.header("x-funcd-request-id").empty());
}

TEST(Concurrency, ReservedConcurrencyThrottlesTheExcess) {
    Daemon d({"--queue-wait-ms", "0"});
    ASSERT_EQ(d.deploy("slow", sleep_settings({{"reserved_concurrency", 2}}), python_zip(kSleepPy)).status, 201);
    auto a = invoke_async(d, "slow", 2.0);
    auto b = invoke_async(d, "slow", 2.0);
    ASSERT_TRUE(eventually([&] { return running(d, "slow") == 2; }, 10s));

    expect_throttled(d.invoke("slow", R"({"sleep": 0})"), "ReservedFunctionConcurrentInvocationLimitExceeded",
                     "reserved_concurrency of 2");
    EXPECT_EQ(a.get().status, 200);
    EXPECT_EQ(b.get().status, 200);
    // The limit frees with the invocations: the next one runs.
    EXPECT_EQ(d.invoke("slow", R"({"sleep": 0})").status, 200);

    // A throttled invocation never ran, so it is not metered.
    ASSERT_TRUE(eventually([&] {
        return d.api("GET", "/v1/usage/records?function=slow").json()["records"].size() == 3;
    }));
    auto usage = d.api("GET", "/v1/usage?function=slow").json();
    EXPECT_EQ(usage["total"]["invocations"], 3) << usage.dump();
}

TEST(Concurrency, AnInvocationWaitsInTheQueueForAFreeWorker) {
    Daemon d({"--queue-wait-ms", "10000"});
    ASSERT_EQ(d.deploy("one", sleep_settings({{"reserved_concurrency", 1}}), python_zip(kSleepPy)).status, 201);
    auto first = invoke_async(d, "one", 1.0);
    ASSERT_TRUE(eventually([&] { return running(d, "one") == 1; }, 10s));
    // Over the limit, it waits instead of failing, and runs on the worker the first
    // invocation frees: the reservation of 1 never allows a second worker.
    auto second = d.invoke("one", R"({"sleep": 0})");
    ASSERT_EQ(second.status, 200) << second.body;
    auto r1 = first.get();
    ASSERT_EQ(r1.status, 200);
    EXPECT_EQ(second.json()["worker"], r1.json()["worker"]);
    EXPECT_EQ(d.api("GET", "/v1/functions/one").json()["instances"]["idle"], 1);
}

TEST(Concurrency, TheQueueWaitIsBounded) {
    Daemon d({"--queue-wait-ms", "200"});
    ASSERT_EQ(d.deploy("one", sleep_settings({{"reserved_concurrency", 1}}), python_zip(kSleepPy)).status, 201);
    auto first = invoke_async(d, "one", 3.0);
    ASSERT_TRUE(eventually([&] { return running(d, "one") == 1; }, 10s));
    expect_throttled(d.invoke("one", R"({"sleep": 0})"), "ReservedFunctionConcurrentInvocationLimitExceeded",
                     "reserved_concurrency of 1");
    EXPECT_EQ(first.get().status, 200);
}

TEST(Concurrency, ReservedZeroDisablesTheFunctionUntilRemoved) {
    Daemon d({"--queue-wait-ms", "5000"});
    ASSERT_EQ(d.deploy("off", sleep_settings(), python_zip(kSleepPy)).status, 201);
    auto put = d.api("PUT", "/v1/functions/off/concurrency", R"({"reserved_concurrency": 0})");
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.json()["reserved_concurrency"], 0);
    EXPECT_EQ(d.api("GET", "/v1/functions/off").json()["reserved_concurrency"], 0);
    // Disabled: throttled at once, not after the queue wait.
    auto t0 = std::chrono::steady_clock::now();
    expect_throttled(d.invoke("off"), "ReservedFunctionConcurrentInvocationLimitExceeded", "disabled");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);

    ASSERT_EQ(d.api("DELETE", "/v1/functions/off/concurrency").status, 200);
    EXPECT_TRUE(d.api("GET", "/v1/functions/off").json()["reserved_concurrency"].is_null());
    EXPECT_EQ(d.invoke("off").status, 200);
}

TEST(Concurrency, GlobalLimitKeepsReservedCapacityForItsFunction) {
    Daemon d({"--max-concurrency", "2", "--queue-wait-ms", "0"});
    ASSERT_EQ(d.deploy("shared", sleep_settings(), python_zip(kSleepPy)).status, 201);
    ASSERT_EQ(d.deploy("vip", sleep_settings({{"reserved_concurrency", 1}}), python_zip(kSleepPy)).status, 201);

    // Reservations cannot add up to more than the global limit.
    auto over = d.api("PUT", "/v1/functions/shared/concurrency", R"({"reserved_concurrency": 2})");
    EXPECT_EQ(over.status, 400) << over.body;
    EXPECT_NE(over.body.find("--max-concurrency 2"), std::string::npos) << over.body;
    EXPECT_NE(over.body.find("vip=1"), std::string::npos) << over.body;
    EXPECT_EQ(d.api("PUT", "/v1/functions/vip/concurrency", R"({"reserved_concurrency": 3})").status, 400);

    // One of two is reserved for vip, so shared gets one.
    auto busy = invoke_async(d, "shared", 2.0);
    ASSERT_TRUE(eventually([&] { return running(d, "shared") == 1; }, 10s));
    expect_throttled(d.invoke("shared", R"({"sleep": 0})"), "ConcurrentInvocationLimitExceeded",
                     "--max-concurrency 2");
    EXPECT_EQ(d.invoke("vip", R"({"sleep": 0})").status, 200) << "the reservation stays available";
    EXPECT_EQ(busy.get().status, 200);
}

// Without the sandbox there are no cgroups to fence the workers' memory with: the budget
// charges every worker its function's memory_mb (declared admission).
TEST(Concurrency, MemoryBudgetWithoutTheFenceChargesMemoryMbEvictsIdleWorkersThenThrottles) {
    Daemon d({"--memory-budget-mb", "256", "--queue-wait-ms", "0", "--sandbox", "off"});
    ASSERT_NE(d.log().find("memory_admission=declared"), std::string::npos) << d.log();
    for (const char* name : {"a", "b", "c"})
        ASSERT_EQ(d.deploy(name, sleep_settings(), python_zip(kSleepPy)).status, 201);
    auto instances = [&](const std::string& name) {
        auto i = d.api("GET", "/v1/functions/" + name).json()["instances"];
        return i["idle"].get<int>() + i["busy"].get<int>();
    };
    ASSERT_EQ(d.invoke("a").status, 200);
    ASSERT_EQ(d.invoke("b").status, 200);
    EXPECT_EQ(instances("a"), 1);
    EXPECT_EQ(instances("b"), 1);

    // The budget holds two 128 MB workers: c's cold start evicts the least recently used
    // idle worker (a's) instead of being throttled.
    ASSERT_EQ(d.invoke("c").status, 200);
    EXPECT_TRUE(eventually([&] { return instances("a") == 0; }));
    EXPECT_EQ(instances("b"), 1);
    EXPECT_EQ(instances("c"), 1);

    // With both workers busy nothing can be evicted.
    auto b = invoke_async(d, "b", 2.0);
    auto c = invoke_async(d, "c", 2.0);
    ASSERT_TRUE(eventually([&] { return running(d, "b") == 1 && running(d, "c") == 1; }, 10s));
    expect_throttled(d.invoke("a"), "MemoryBudgetExceeded", "memory budget");
    EXPECT_EQ(b.get().status, 200);
    EXPECT_EQ(c.get().status, 200);
    EXPECT_EQ(d.invoke("a").status, 200) << "idle workers can be evicted again";
}

// The daemon's own cgroup, which holds its workers' and is limited to the memory budget
// (the fence), from the sandbox's start-up line; empty when there is none.
std::filesystem::path fence_cgroup(const Daemon& d) {
    const std::regex group("(/[^ ,()]*/" + daemon_cgroup_name(d.pid()) + ")[ ,]");
    std::smatch m;
    const std::string log = d.log();
    return std::regex_search(log, m, group) ? std::filesystem::path(m[1].str()) : std::filesystem::path();
}

std::int64_t budget_used_mb(Daemon& d) {
    auto r = http_request(d.port(), "GET", "/metrics", {}, {{"Authorization", "Bearer " + Daemon::kToken}});
    EXPECT_EQ(r.status, 200) << r.body;
    const auto used = parse_exposition(r.body, false).value("funcd_memory_budget_bytes", {{"state", "used"}});
    EXPECT_TRUE(used.has_value()) << r.body;
    return static_cast<std::int64_t>(used.value_or(-1) / (1 << 20));
}

// The fence needs a writable cgroup hierarchy, which only root has; as root the daemon
// must have it (else it would admit workers by memory_mb alone), so these tests fail then.
#define REQUIRE_OBSERVED_ADMISSION(d)                                                                     \
    ASSERT_NE(d.log().find("memory_admission=observed"), std::string::npos)                              \
        << "as root the workers' memory is fenced and admission counts what they use:\n" << d.log()

const char* kNapPy = R"(import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
)";

// Allocates (and touches) `alloc_mb` for the length of the call: the worker's peak stays
// there, what it holds afterwards does not.
const char* kSpikePy = R"(import time
def handler(event, context):
    block = b"x" * (event.get("alloc_mb", 0) << 20)
    del block
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
)";

TEST(Concurrency, ABurstThatFitsInWhatWorkersUseIsAdmittedUnderTheFence) {
    if (::geteuid() != 0) GTEST_SKIP() << "the workers' memory fence needs root";
    // memory_mb would admit 4 workers of 128 MB; each of these uses a few MB.
    constexpr int kBurst = 12;
    Daemon d({"--memory-budget-mb", "512", "--queue-wait-ms", "0"});
    REQUIRE_OBSERVED_ADMISSION(d);
    const auto group = fence_cgroup(d);
    ASSERT_FALSE(group.empty()) << d.log();
    const auto limit_file = std::filesystem::exists(group / "memory.max") ? group / "memory.max"
                                                                          : group / "memory.limit_in_bytes";
    EXPECT_EQ(trim(read_file(limit_file)), std::to_string(512ull << 20)) << limit_file;

    ASSERT_EQ(d.deploy("nap", sleep_settings({{"memory_mb", 128}}), python_zip(kNapPy)).status, 201);
    std::vector<std::future<HttpResult>> calls;
    for (int i = 0; i < kBurst; ++i) calls.push_back(invoke_async(d, "nap", 2.0));
    auto [statuses, failures] = tally(calls);
    EXPECT_EQ(statuses[200], kBurst) << json(statuses).dump() << "\n" << failures;
    auto i = d.api("GET", "/v1/functions/nap").json()["instances"];
    const int workers = i["idle"].get<int>() + i["busy"].get<int>();
    EXPECT_GT(workers, 4) << "more workers than memory_mb would have admitted";
    // Each is charged what it was seen to use: more than the headroom, well under memory_mb.
    const std::int64_t used = budget_used_mb(d);
    EXPECT_GT(used, workers * 8) << workers << " workers";
    EXPECT_LT(used, workers * 64) << workers << " workers";
}

TEST(Concurrency, WhatWorkersAreSeenToUseFillsTheBudgetThenIdleOnesAreEvictedAndNewOnesThrottled) {
    if (::geteuid() != 0) GTEST_SKIP() << "the workers' memory fence needs root";
    Daemon d({"--memory-budget-mb", "300", "--queue-wait-ms", "0"});
    REQUIRE_OBSERVED_ADMISSION(d);
    for (const char* name : {"spike", "spike2", "small"})
        ASSERT_EQ(d.deploy(name, sleep_settings({{"memory_mb", 256}}), python_zip(kSpikePy)).status, 201);
    auto instances = [&](const std::string& name) {
        auto i = d.api("GET", "/v1/functions/" + name).json()["instances"];
        return i["idle"].get<int>() + i["busy"].get<int>();
    };

    // spike's worker peaks at 150 MB and more: charged that (not 256) once its call ended.
    ASSERT_EQ(d.invoke("spike", R"({"alloc_mb": 150})").status, 200);
    ASSERT_TRUE(eventually([&] { return budget_used_mb(d) >= 150; })) << budget_used_mb(d);
    EXPECT_LT(budget_used_mb(d), 256);
    // spike2's new worker fits beside it (charged a Python worker's start), then peaks as
    // high: both together are past 300, so the idle one of the other function goes.
    ASSERT_EQ(d.invoke("spike2", R"({"alloc_mb": 150})").status, 200);
    EXPECT_TRUE(eventually([&] { return instances("spike") == 0; })) << "spike's idle worker was evicted";
    EXPECT_EQ(instances("spike2"), 1);

    // spike2's worker busy: a new spike worker (its function's workers were seen at 150
    // MB and more) does not fit, and nothing idle can go.
    auto busy = invoke_async(d, "spike2", 3.0);
    ASSERT_TRUE(eventually([&] { return running(d, "spike2") == 1; }, 10s));
    expect_throttled(d.invoke("spike"), "MemoryBudgetExceeded", "memory budget");
    // A function whose workers were never seen big still gets one beside it (memory_mb,
    // 256, would not have fitted).
    EXPECT_EQ(d.invoke("small").status, 200);
    EXPECT_EQ(busy.get().status, 200);
}

TEST(Concurrency, ProvisionedWorkersAreStartedKeptAndRestored) {
    Daemon d;
    d.keep_data_dir();
    auto bad = d.deploy("warm", sleep_settings({{"reserved_concurrency", 1}, {"provisioned_concurrency", 2}}),
                        python_zip(kSleepPy));
    EXPECT_EQ(bad.status, 400) << bad.body;

    auto dep = d.deploy("warm", sleep_settings({{"provisioned_concurrency", 2}, {"keep_alive_s", 1}}),
                        python_zip(kSleepPy));
    ASSERT_EQ(dep.status, 201) << dep.body;
    EXPECT_EQ(dep.json()["provisioned_concurrency"], 2);
    auto provisioned = [&](Daemon& daemon) { return daemon.api("GET", "/v1/functions/warm").json()["provisioned"]; };
    EXPECT_EQ(provisioned(d)["requested"], 2);
    ASSERT_TRUE(eventually([&] { return provisioned(d)["ready"] == 2; }, 10s)) << provisioned(d);

    // Past the 1 s keep-alive they are still there.
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(d.api("GET", "/v1/functions/warm").json()["instances"]["idle"], 2);

    auto r = d.invoke("warm");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.header("x-funcd-init-duration-ms").empty()) << "a provisioned worker reports no init";
    EXPECT_EQ(r.json()["init_type"], "provisioned-concurrency");

    // A redeploy that does not mention concurrency keeps it.
    ASSERT_EQ(d.deploy("warm", sleep_settings({{"keep_alive_s", 1}}), python_zip(kSleepPy)).status, 200);
    EXPECT_EQ(provisioned(d)["requested"], 2);
    ASSERT_TRUE(eventually([&] { return provisioned(d)["ready"] == 2; }, 10s)) << provisioned(d);

    // After a restart, without any invocation.
    const auto dir = d.data_dir();
    d.stop();
    {
        Daemon again({}, dir);
        ASSERT_TRUE(eventually([&] { return provisioned(again)["ready"] == 2; }, 10s)) << provisioned(again);

        // Lowered to 0: the idle provisioned workers end.
        auto put = again.api("PUT", "/v1/functions/warm/concurrency", R"({"provisioned_concurrency": 0})");
        ASSERT_EQ(put.status, 200) << put.body;
        EXPECT_TRUE(eventually([&] {
            auto i = again.api("GET", "/v1/functions/warm").json()["instances"];
            return i["idle"] == 0 && i["busy"] == 0;
        }));
        EXPECT_EQ(provisioned(again)["ready"], 0);
    }
    std::filesystem::remove_all(dir);
}

TEST(Concurrency, ConcurrencyEndpointValidates) {
    Daemon d;
    ASSERT_EQ(d.deploy("f", sleep_settings(), python_zip(kSleepPy)).status, 201);
    EXPECT_EQ(d.api("PUT", "/v1/functions/nope/concurrency", R"({"reserved_concurrency": 1})").status, 404);
    auto unknown = d.api("PUT", "/v1/functions/f/concurrency", R"({"reserved": 1})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_NE(unknown.body.find("reserved"), std::string::npos);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/concurrency", R"({"reserved_concurrency": -1})").status, 400);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/concurrency", R"({"reserved_concurrency": "2"})").status, 400);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/concurrency", "not json").status, 400);
    EXPECT_EQ(d.api("PUT", "/v1/functions/f/concurrency", R"({"reserved_concurrency": 1})", "text/plain").status, 415);
    EXPECT_EQ(d.api("POST", "/v1/functions/f/concurrency").status, 405);
    // Nothing changed by the refused requests.
    auto get = d.api("GET", "/v1/functions/f/concurrency").json();
    EXPECT_TRUE(get["reserved_concurrency"].is_null());
    EXPECT_EQ(get["provisioned_concurrency"], 0);
}

TEST(Concurrency, BurstFromZeroCompletesWithoutErrors) {
    // A burst of first invocations, each needing its own worker: all cold-started, none
    // refused. The benchmark runs 500; this size keeps the test quick under sanitizers.
    constexpr int kBurst = 100;
    Daemon d({"--memory-budget-mb", "100000"});
    std::string noop = make_zip({{"bootstrap", {read_file(FUNCD_NOOP_BOOTSTRAP), 0755}}});
    ASSERT_EQ(d.deploy("noop", {{"runtime", "provided"}}, noop).status, 201);
    std::vector<std::future<HttpResult>> calls;
    for (int i = 0; i < kBurst; ++i)
        calls.push_back(std::async(std::launch::async, [&d] { return d.invoke("noop"); }));
    auto [statuses, failures] = tally(calls);
    EXPECT_EQ(statuses[200], kBurst) << "statuses: " << json(statuses).dump() << "\n"
                                     << failures << (failures.empty() ? "" : d.log());
    auto i = d.api("GET", "/v1/functions/noop").json()["instances"];
    EXPECT_GT(i["idle"].get<int>() + i["busy"].get<int>(), 1);
}

}  // namespace
}  // namespace funcd::testing
