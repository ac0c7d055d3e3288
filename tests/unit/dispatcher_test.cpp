// The dispatcher with real pools and real workers: reserved and global concurrency, the
// bounded FIFO of waiting invocations, the memory budget, shutdown, metering of every
// answered invocation, and admission closed while usage records cannot be made durable.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include "dispatch_fixture.hpp"
#include "sqlite_lock.hpp"

namespace funcd::dispatch_testing {
namespace {

constexpr std::string_view kReservedReason = "ReservedFunctionConcurrentInvocationLimitExceeded";
constexpr std::string_view kGlobalReason = "ConcurrentInvocationLimitExceeded";

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }


using DispatcherTest = DispatchFixture;

TEST_F(DispatcherTest, EveryAnsweredInvocationLeavesOneUsageRecord) {
    start();
    deploy("f");
    deploy("off", {.reserved = 0});
    const Call first = invoke("f", {.tag = "one"});
    const InvocationResult r1 = first.wait();
    ASSERT_EQ(r1.outcome, Outcome::success) << r1.body;
    EXPECT_EQ(json::parse(r1.body)["tag"], "one");
    const InvocationResult r2 = invoke("f", {.tag = "two"}).wait();
    ASSERT_EQ(r2.outcome, Outcome::success) << r2.body;
    const Call failing = invoke("f", {.tag = "three", .fail = true});
    const InvocationResult r3 = failing.wait();
    ASSERT_EQ(r3.outcome, Outcome::function_error) << r3.body;
    EXPECT_EQ(r3.error_type, "TestFailure");
    // A throttled invocation never ran: nothing to bill.
    ASSERT_TRUE(invoke("off").wait().throttled);

    const auto records = usage_of("f");
    ASSERT_EQ(records.size(), 3u);
    std::map<std::string, UsageRecord> by_id;
    for (const auto& r : records) by_id[r.request_id] = r;
    ASSERT_EQ(by_id.size(), 3u) << "one record per invocation";
    ASSERT_TRUE(by_id.count(first.request_id));
    ASSERT_TRUE(by_id.count(failing.request_id));
    const UsageRecord& cold = by_id[first.request_id];
    EXPECT_TRUE(cold.init_duration_us) << "the first invocation cold-started the worker";
    EXPECT_EQ(cold.outcome, Outcome::success);
    EXPECT_EQ(cold.memory_mb, 128);
    EXPECT_EQ(cold.billed_ms, billed_ms_for(cold.duration_us));
    EXPECT_GE(cold.billed_ms, 1);
    EXPECT_EQ(by_id[failing.request_id].outcome, Outcome::function_error);
    EXPECT_FALSE(by_id[failing.request_id].init_duration_us) << "it ran on the warm worker";
    EXPECT_TRUE(usage_of("off").empty());
    EXPECT_EQ(on_io([this] { return dispatcher_->in_flight(); }), 0u);
}

TEST_F(DispatcherTest, RecordsCarryTheTraceIdAndTriggerAndThrottlesAreInTheHistory) {
    start();
    deploy("f");
    deploy("off", {.reserved = 0});
    const std::string trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    auto promise = std::make_shared<std::promise<InvocationResult>>();
    auto given = promise->get_future();
    on_io([&, promise] {
        InvokeOptions options;
        options.trace_id = trace;
        options.trigger = "route";
        dispatcher_->invoke(
            dispatcher_->admit("f"), "{}", [promise](const Invocation&, InvocationResult r) { promise->set_value(r); },
            std::move(options));
        return 0;
    });
    ASSERT_EQ(given.get().outcome, Outcome::success);
    ASSERT_EQ(invoke("f").wait().outcome, Outcome::success);
    const Call throttled = invoke("off");
    ASSERT_TRUE(throttled.wait().throttled);

    const auto f = usage_->invocations({"f", std::nullopt, std::nullopt, std::nullopt, 10});
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[1].trace_id, trace) << "the caller's";
    EXPECT_EQ(f[1].trigger, "route");
    EXPECT_NE(f[0].trace_id, trace);
    EXPECT_TRUE(f[0].trace_id.starts_with("Root=1-")) << "a new one: " << f[0].trace_id;
    EXPECT_EQ(f[0].trigger, "api");
    const auto off = usage_->invocations({"off", std::nullopt, std::nullopt, std::nullopt, 10});
    ASSERT_EQ(off.size(), 1u) << "the throttle is in the history";
    EXPECT_EQ(off[0].request_id, throttled.request_id);
    EXPECT_EQ(off[0].outcome, Outcome::throttled);
    EXPECT_EQ(off[0].billed_ms, 0);
    EXPECT_FALSE(off[0].trace_id.empty());
    EXPECT_TRUE(usage_of("off").empty()) << "but it is not usage";
}

TEST_F(DispatcherTest, ReservedZeroThrottlesAtOnce) {
    start({.queue_wait = 10s});
    deploy("off", {.reserved = 0});
    const Call c = invoke("off");
    EXPECT_TRUE(c.answered_at_once) << "waiting cannot help a disabled function";
    const InvocationResult r = c.wait();
    ASSERT_TRUE(r.throttled);
    EXPECT_EQ(*r.throttled, kReservedReason);
    EXPECT_EQ(r.error_type, "TooManyRequestsException");
    EXPECT_TRUE(contains(r.body, "reserved_concurrency 0")) << r.body;
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 0u);
    EXPECT_EQ(started("off"), 0u);
}

TEST_F(DispatcherTest, AFunctionAtItsReservedConcurrencyIsThrottledAfterTheQueueWait) {
    // Long enough for the checks made while it waits, on a loaded machine.
    constexpr auto kWait = 1s;
    start({.queue_wait = kWait});
    deploy("r", {.reserved = 2});
    deploy("u");
    const Call a = invoke("r", {.gate = "a"});
    const Call b = invoke("r", {.gate = "a"});
    ASSERT_TRUE(eventually([&] { return started("r") == 2; }));

    const auto asked = std::chrono::steady_clock::now();
    const Call excess = invoke("r");
    EXPECT_FALSE(excess.answered_at_once) << "it waits in the queue first";
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 1u);
    // Another function is not held back by this one's reservation.
    const InvocationResult other = invoke("u").wait();
    EXPECT_EQ(other.outcome, Outcome::success) << other.body;

    const InvocationResult r = excess.wait();
    const auto answered = std::chrono::steady_clock::now();
    ASSERT_TRUE(r.throttled) << r.body;
    EXPECT_EQ(*r.throttled, kReservedReason);
    EXPECT_TRUE(contains(r.body, "reserved_concurrency of 2")) << r.body;
    EXPECT_GE(answered - asked, kWait) << "throttled only once the queue wait is over";
    EXPECT_EQ(started("r"), 2u) << "the throttled invocation never ran";
    EXPECT_EQ(on_io([this] { return dispatcher_->running("r"); }), 2);

    open_gate("a");
    EXPECT_EQ(a.wait().outcome, Outcome::success);
    EXPECT_EQ(b.wait().outcome, Outcome::success);
    EXPECT_TRUE(wait_until([this] { return dispatcher_->running("r") == 0 && dispatcher_->in_flight() == 0; }));
}

// With several nodes, a reservation is the function's limit across them: each node allows
// its share, rounded up, and goes back to the whole once it is alone again.
TEST_F(DispatcherTest, AReservationIsSharedAmongTheLiveNodes) {
    start({.queue_wait = 0ms});
    deploy("r", {.reserved = 5});
    on_io([this] {
        dispatcher_->set_live_nodes(2);
        return 0;
    });
    std::vector<Call> running;
    for (int i = 0; i < 3; ++i) running.push_back(invoke("r", {.gate = "shared"}));
    ASSERT_TRUE(eventually([&] { return started("r") == 3; })) << "ceil(5 / 2) = 3 on this node";
    const InvocationResult excess = invoke("r").wait();
    ASSERT_TRUE(excess.throttled) << excess.body;
    EXPECT_EQ(*excess.throttled, kReservedReason);
    EXPECT_TRUE(contains(excess.body, "reserved_concurrency of 5 (3 on each of 2 nodes)")) << excess.body;
    // Alone again: the whole reservation is this node's.
    on_io([this] {
        dispatcher_->set_live_nodes(1);
        return 0;
    });
    running.push_back(invoke("r", {.gate = "shared"}));
    running.push_back(invoke("r", {.gate = "shared"}));
    EXPECT_TRUE(eventually([&] { return started("r") == 5; }));
    open_gate("shared");
    for (const Call& c : running) EXPECT_EQ(c.wait().outcome, Outcome::success);
}

// Each reserved function's share is rounded up on its own, so what the unreserved ones may
// use is the limit less the sum of the shares (not less the share of the sum).
TEST_F(DispatcherTest, AmongNodesUnreservedFunctionsLeaveEachReservationItsRoundedUpShare) {
    start({.max_concurrency = 5, .queue_wait = 0ms});
    for (const char* name : {"r1", "r2", "r3"}) deploy(name, {.reserved = 1});
    deploy("u");
    on_io([this] {
        dispatcher_->set_live_nodes(2);
        return 0;
    });
    // 5 - (1 + 1 + 1): two unreserved invocations here; ceil(3 / 2) would have let three run.
    std::vector<Call> running;
    for (int i = 0; i < 2; ++i) running.push_back(invoke("u", {.gate = "u"}));
    ASSERT_TRUE(eventually([&] { return started("u") == 2; }));
    const InvocationResult third = invoke("u").wait();
    ASSERT_TRUE(third.throttled) << third.body;
    EXPECT_EQ(*third.throttled, kGlobalReason);
    // Each reserved function still has its one.
    for (const char* name : {"r1", "r2", "r3"}) EXPECT_EQ(invoke(name).wait().outcome, Outcome::success) << name;
    open_gate("u");
    for (const Call& c : running) EXPECT_EQ(c.wait().outcome, Outcome::success);
}

TEST_F(DispatcherTest, UnreservedFunctionsShareWhatTheReservationsLeaveOfTheGlobalLimit) {
    start({.max_concurrency = 3, .queue_wait = 300ms});
    deploy("reserved", {.reserved = 1});
    deploy("a");
    deploy("b");
    // 3 - 1 reserved: two unreserved invocations at once, of any functions.
    const Call a1 = invoke("a", {.gate = "a"});
    const Call b1 = invoke("b", {.gate = "a"});
    ASSERT_TRUE(eventually([&] { return started("a") == 1 && started("b") == 1; }));

    const Call b2 = invoke("b");
    const InvocationResult r = b2.wait();
    ASSERT_TRUE(r.throttled) << r.body;
    EXPECT_EQ(*r.throttled, kGlobalReason);
    EXPECT_TRUE(contains(r.body, "--max-concurrency 3, of which 1 reserved")) << r.body;
    EXPECT_EQ(started("b"), 1u);

    // The reservation stays available to its function while the rest is taken.
    const InvocationResult own = invoke("reserved").wait();
    EXPECT_EQ(own.outcome, Outcome::success) << own.body;

    open_gate("a");
    EXPECT_EQ(a1.wait().outcome, Outcome::success);
    EXPECT_EQ(b1.wait().outcome, Outcome::success);
    // Capacity is back.
    EXPECT_EQ(invoke("b").wait().outcome, Outcome::success);
}

TEST_F(DispatcherTest, WaitingInvocationsStartInOrderWhenCapacityFrees) {
    // Far longer than the test: a waiting invocation that is not started when capacity
    // frees is throttled at the end of it, which fails the test.
    start({.queue_wait = 10s});
    deploy("q", {.reserved = 1});
    const Call first = invoke("q", {.tag = "first", .gate = "a"});
    ASSERT_TRUE(eventually([&] { return started("q") == 1; }));
    const Call second = invoke("q", {.tag = "second"});
    const Call third = invoke("q", {.tag = "third"});
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 2u);
    EXPECT_EQ(on_io([this] { return dispatcher_->in_flight(); }), 3u) << "waiting invocations are in flight";
    EXPECT_FALSE(second.done());
    EXPECT_FALSE(third.done());

    open_gate("a");
    for (const Call* c : {&first, &second, &third}) {
        const InvocationResult r = c->wait();
        EXPECT_FALSE(r.throttled) << r.body;
        EXPECT_EQ(r.outcome, Outcome::success) << r.body;
    }
    const auto m = marks_of("q");
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[0].tag, "first");
    EXPECT_EQ(m[1].tag, "second") << "first in, first out";
    EXPECT_EQ(m[2].tag, "third");
    EXPECT_EQ(most_at_once(m), 1u);
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 0u);
}

TEST_F(DispatcherTest, TheWaitingQueueIsBounded) {
    // The queue holds at most max_concurrency invocations; one more is throttled at once.
    start({.max_concurrency = 2, .queue_wait = 10s});
    deploy("g");
    std::vector<Call> calls;
    for (int i = 0; i < 2; ++i) calls.push_back(invoke("g", {.gate = "a"}));
    ASSERT_TRUE(eventually([&] { return started("g") == 2; }));
    for (int i = 0; i < 2; ++i) calls.push_back(invoke("g"));
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 2u);

    const Call over = invoke("g");
    EXPECT_TRUE(over.answered_at_once) << "a full queue does not grow";
    const InvocationResult r = over.wait();
    ASSERT_TRUE(r.throttled);
    EXPECT_EQ(*r.throttled, kGlobalReason);
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 2u);

    open_gate("a");
    for (const auto& c : calls) EXPECT_EQ(c.wait().outcome, Outcome::success);
    EXPECT_EQ(started("g"), 4u);
}

TEST_F(DispatcherTest, StopAcceptingRefusesNewWorkAndLetsRunningInvocationsFinish) {
    start();
    deploy("f");
    const Call running = invoke("f", {.gate = "a"});
    ASSERT_TRUE(eventually([&] { return started("f") == 1; }));
    EXPECT_NO_THROW(on_io([this] {
        dispatcher_->check_accepting();
        return 0;
    }));

    on_io([this] {
        dispatcher_->stop_accepting();
        return 0;
    });
    try {
        on_io([this] {
            dispatcher_->check_accepting();
            return 0;
        });
        ADD_FAILURE() << "check_accepting accepted after stop_accepting";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 503);
        EXPECT_EQ(e.type(), "ServiceUnavailableException");
    }
    EXPECT_THROW(invoke("f"), ApiError) << "admission refuses too";
    EXPECT_EQ(on_io([this] { return dispatcher_->in_flight(); }), 1u);

    open_gate("a");
    EXPECT_EQ(running.wait().outcome, Outcome::success);
    EXPECT_TRUE(wait_until([this] { return dispatcher_->in_flight() == 0; }));
    EXPECT_EQ(started("f"), 1u);
}

TEST_F(DispatcherTest, AnInvocationNoWorkerFitsInTheMemoryBudgetForIsThrottled) {
    start({.queue_wait = 300ms, .memory_budget_mb = 128});
    deploy("m1");
    deploy("m2");
    const Call holder = invoke("m1", {.gate = "a"});
    ASSERT_TRUE(eventually([&] { return started("m1") == 1; }));

    const Call c = invoke("m2");
    EXPECT_FALSE(c.answered_at_once) << "it waits for memory first";
    const InvocationResult r = c.wait();
    ASSERT_TRUE(r.throttled) << r.body;
    EXPECT_EQ(*r.throttled, "MemoryBudgetExceeded");
    EXPECT_TRUE(contains(r.body, "no room for another worker of 'm2' (memory_mb 128")) << r.body;
    EXPECT_EQ(started("m2"), 0u);
    // The busy worker holds the budget: a second worker of its own function does not fit either.
    const InvocationResult same = invoke("m1").wait();
    ASSERT_TRUE(same.throttled);
    EXPECT_EQ(*same.throttled, "MemoryBudgetExceeded");

    open_gate("a");
    EXPECT_EQ(holder.wait().outcome, Outcome::success);
}

TEST_F(DispatcherTest, AnInvocationWaitingForMemoryStartsWhenAnIdleWorkerCanMakeRoom) {
    // The wait covers m1's answer, the eviction and m2's cold start of a Python
    // interpreter: as long as any wait here, so a loaded machine cannot make it a throttle.
    start({.queue_wait = kPatience, .memory_budget_mb = 128});
    deploy("m1");
    deploy("m2");
    const Call holder = invoke("m1", {.gate = "a"});
    ASSERT_TRUE(eventually([&] { return started("m1") == 1; }));
    const Call waiting = invoke("m2", {.tag = "waited"});
    EXPECT_EQ(on_io([this] { return dispatcher_->waiting(); }), 1u);

    // m1's worker goes idle: evicted to make room for m2's.
    open_gate("a");
    EXPECT_EQ(holder.wait().outcome, Outcome::success);
    const InvocationResult r = waiting.wait(2 * kPatience);
    EXPECT_FALSE(r.throttled) << r.body;
    EXPECT_EQ(r.outcome, Outcome::success) << r.body;
    EXPECT_EQ(marks_tagged("waited").size(), 1u);
    EXPECT_TRUE(wait_until([this] { return pools_->instances("m1").idle + pools_->instances("m1").busy == 0; }))
        << "m1's idle worker was ended for the memory";
    EXPECT_EQ(on_io([this] { return memory_->used_mb(); }), 128);
}

// Observed admission: workers are charged what they were seen to use (here the peak
// resident size of the unsandboxed worker process), so memory_mb alone fills nothing, and
// eviction and throttling follow what workers really took.
TEST_F(DispatcherTest, UnderObservedAdmissionWhatWorkersWereSeenToUseEvictsIdleOnesThenThrottles) {
    start({.queue_wait = 300ms, .memory_budget_mb = 200, .admission = MemoryAdmission::observed});
    deploy("m1");  // 128 MB each
    deploy("m2");
    auto workers = [this](const std::string& name) {
        return on_io([this, name] {
            const auto i = pools_->instances(name);
            return i.idle + i.busy;
        });
    };
    // m1's worker peaks past 100 MB: charged that once its invocation ended.
    ASSERT_EQ(invoke("m1", {.spike_mb = 100}).wait().outcome, Outcome::success);
    ASSERT_TRUE(wait_until([this] { return memory_->used_mb() > 100; })) << on_io([this] { return memory_->used_mb(); });

    // m2's first worker is charged the initial estimate: it fits beside m1's (two workers of
    // memory_mb 128 would not), and m1's idle worker stays.
    ASSERT_EQ(invoke("m2").wait().outcome, Outcome::success);
    EXPECT_EQ(workers("m1"), 1u);
    EXPECT_EQ(workers("m2"), 1u);

    // m2's worker grows as big: the two are past the budget, and the idle one of the
    // other function is ended to bring it back.
    ASSERT_EQ(invoke("m2", {.spike_mb = 100}).wait().outcome, Outcome::success);
    EXPECT_TRUE(wait_until([this] { return pools_->instances("m1").idle == 0; })) << "m1's idle worker was evicted";
    EXPECT_EQ(workers("m2"), 1u);
    EXPECT_LE(on_io([this] { return memory_->used_mb(); }), 200);

    // m2 busy: a new m1 worker, expected to take what m1's took, does not fit, and nothing
    // idle is left to end.
    const Call holder = invoke("m2", {.gate = "b"});
    ASSERT_TRUE(eventually([&] { return started("m2") == 3; }));
    const InvocationResult r = invoke("m1").wait();
    ASSERT_TRUE(r.throttled) << r.body;
    EXPECT_EQ(*r.throttled, "MemoryBudgetExceeded");
    open_gate("b");
    EXPECT_EQ(holder.wait().outcome, Outcome::success);
}

TEST_F(DispatcherTest, AdmissionClosesWhileUsageRecordsCannotBeMadeDurable) {
    FixtureOptions o;
    o.metering.max_pending_records = 2;
    o.metering.storage_timeout = 500ms;
    start(o);
    deploy("f");
    // Make the worker warm before the database is locked.
    ASSERT_EQ(invoke("f").wait().outcome, Outcome::success);
    usage_->flush();
    funcd::testing::SqliteLock lock(dir_ / "usage.db", "BEGIN IMMEDIATE");

    // Two records wait for the database, the most that may (once the flusher gives up on
    // the locked database, should it have taken the first already).
    ASSERT_EQ(invoke("f").wait().outcome, Outcome::success);
    ASSERT_EQ(invoke("f").wait().outcome, Outcome::success);
    ASSERT_TRUE(eventually([this] { return usage_->refusal().has_value(); }));
    try {
        on_io([this] {
            dispatcher_->check_accepting();
            return 0;
        });
        ADD_FAILURE() << "admitted while usage records cannot be kept";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 503);
        EXPECT_EQ(e.type(), "StorageUnavailableException");
        EXPECT_TRUE(contains(e.what(), "records wait for the usage database")) << e.what();
    }
    EXPECT_THROW(invoke("f"), ApiError);

    // A caller that does not ask check_accepting (an asynchronous delivery) is throttled,
    // and nothing runs.
    const std::size_t ran = started("f");
    Call direct;
    auto promise = std::make_shared<std::promise<InvocationResult>>();
    direct.result = promise->get_future().share();
    on_io([&] {
        FunctionPtr fn = registry_->find("f")->default_target();
        dispatcher_->invoke(fn, "{}", [promise](const Invocation&, InvocationResult r) { promise->set_value(r); });
        direct.answered_at_once = direct.done();
        return 0;
    });
    EXPECT_TRUE(direct.answered_at_once);
    const InvocationResult r = direct.wait();
    ASSERT_TRUE(r.throttled);
    EXPECT_EQ(*r.throttled, "UsageStorageUnavailable");
    EXPECT_EQ(started("f"), ran);

    // Once the database takes the records, invocations are admitted again.
    lock.release();
    ASSERT_TRUE(eventually([this] { return !usage_->refusal(); }));
    EXPECT_NO_THROW(on_io([this] {
        dispatcher_->check_accepting();
        return 0;
    }));
    EXPECT_EQ(invoke("f").wait().outcome, Outcome::success);
    EXPECT_EQ(usage_of("f").size(), 4u);
}

}  // namespace
}  // namespace funcd::dispatch_testing
