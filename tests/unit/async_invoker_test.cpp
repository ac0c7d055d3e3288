// The async invoker with the real dispatcher, pools and workers: accept, deliver and
// complete; retries then a dead letter; each function's bounded queue and its cap of
// deliveries in flight; a function deleted mid-delivery and created again; one function's
// backlog against another's events; dead letters past their retention.
#include <gtest/gtest.h>

#include "dispatch_fixture.hpp"

namespace funcd::dispatch_testing {
namespace {

class AsyncInvokerTest : public DispatchFixture {
protected:
    std::vector<AsyncEvent> pending() { return events_->take_pending(); }
    std::vector<DeadLetter> dead_letters(const std::string& function) { return events_->dead_letters(function, 100); }
    AsyncQueueStats stats(const std::string& function) {
        return on_io([this, function] { return invoker_->stats(function); });
    }
    // As the event-config API does: stored, then told to the invoker.
    void set_event_config(const std::string& function, const EventConfig& c) {
        events_->put_event_config(function, c);
        on_io([this, function, c] {
            invoker_->set_config(function, c);
            return 0;
        });
    }
    std::string accepted_id(const Submission& s) {
        const AcceptResult r = s.wait();
        EXPECT_TRUE(r.ok()) << r.message();
        EXPECT_FALSE(r.request_id().empty());
        return r.request_id();
    }
};

std::set<std::string> tags_of(const std::vector<Mark>& marks) {
    std::set<std::string> out;
    for (const auto& m : marks) out.insert(m.tag);
    return out;
}

TEST_F(AsyncInvokerTest, AnAcceptedEventIsDeliveredAndCompleted) {
    start();
    deploy("f");
    const Submission s = submit("f", {.tag = "e1"});
    const std::string id = accepted_id(s);

    ASSERT_TRUE(eventually([&] {
        auto m = marks_tagged("e1");
        return m.size() == 1 && m[0].end_ns;
    }));
    EXPECT_EQ(marks_tagged("e1")[0].request_id, id) << "the runtime sees the id the caller got";
    // Completed: out of the store and the queue, and metered under its id.
    ASSERT_TRUE(eventually([&] { return pending().empty(); }));
    EXPECT_TRUE(wait_until([this] { return invoker_->stats("f").depth == 0; }));
    const auto usage = usage_of("f");
    ASSERT_EQ(usage.size(), 1u);
    EXPECT_EQ(usage[0].request_id, id);
    EXPECT_EQ(usage[0].outcome, Outcome::success);
    EXPECT_TRUE(dead_letters("f").empty());
    EXPECT_EQ(marks_of("f").size(), 1u) << "delivered once";
}

TEST_F(AsyncInvokerTest, AFailingEventIsRetriedPerItsConfigThenDeadLettered) {
    start();
    deploy("twice");
    deploy("never");
    EventConfig retry_twice;
    retry_twice.maximum_retry_attempts = 2;
    retry_twice.retry_delays_s = {0};
    set_event_config("twice", retry_twice);
    EventConfig no_retry = retry_twice;
    no_retry.maximum_retry_attempts = 0;
    set_event_config("never", no_retry);

    const std::string id = accepted_id(submit("twice", {.tag = "t", .fail = true}));
    const std::string id0 = accepted_id(submit("never", {.tag = "n", .fail = true}));
    ASSERT_TRUE(eventually([&] { return dead_letters("twice").size() == 1 && dead_letters("never").size() == 1; }));

    const DeadLetter d = dead_letters("twice")[0];
    EXPECT_EQ(d.event.id, id);
    EXPECT_EQ(d.reason, "RetriesExhausted");
    EXPECT_EQ(d.event.attempts, 3) << "the attempt and two retries";
    ASSERT_EQ(d.event.errors.size(), 3u);
    for (const auto& e : d.event.errors) EXPECT_EQ(e["error_type"], "TestFailure") << e.dump();
    const auto runs = marks_of("twice");
    ASSERT_EQ(runs.size(), 3u);
    for (const auto& m : runs) EXPECT_EQ(m.request_id, id) << "every attempt keeps the request id";

    const DeadLetter d0 = dead_letters("never")[0];
    EXPECT_EQ(d0.event.id, id0);
    EXPECT_EQ(d0.event.attempts, 1);
    EXPECT_EQ(marks_of("never").size(), 1u);

    EXPECT_TRUE(eventually([&] { return pending().empty(); }));
    EXPECT_TRUE(wait_until([this] { return invoker_->stats("twice").depth == 0; }));
    EXPECT_EQ(usage_of("twice").size(), 3u) << "each attempt ran and is billed";
}

TEST_F(AsyncInvokerTest, AFullQueueAnswersQueueFullOnlyForItsFunction) {
    FixtureOptions o;
    o.async.queue_depth_per_function = 2;
    o.async.max_in_flight_per_function = 1;
    start(o);
    deploy("slow");
    deploy("other");
    accepted_id(submit("slow", {.tag = "s1", .gate = "a"}));
    accepted_id(submit("slow", {.tag = "s2", .gate = "a"}));
    const AcceptResult full = submit("slow", {.tag = "s3"}).wait();
    ASSERT_EQ(full.kind(), AcceptResult::Kind::queue_full) << full.message();
    EXPECT_NE(full.message().find("async.queue_depth_per_function"), std::string::npos) << full.message();
    EXPECT_TRUE(full.request_id().empty());

    // Another function's queue is its own.
    const std::string other = accepted_id(submit("other", {.tag = "o1"}));
    ASSERT_TRUE(eventually([&] {
        auto m = marks_tagged("o1");
        return m.size() == 1 && m[0].end_ns;
    }));
    EXPECT_EQ(marks_tagged("o1")[0].request_id, other);
    EXPECT_EQ(stats("slow").depth, 2u);

    // Once its events are delivered, there is room again.
    open_gate("a");
    ASSERT_TRUE(eventually([&] { return marks_of("slow").size() == 2 && running_now("slow") == 0; }));
    ASSERT_TRUE(wait_until([this] { return invoker_->stats("slow").depth == 0; }));
    accepted_id(submit("slow", {.tag = "s4"}));
    EXPECT_TRUE(eventually([&] { return marks_tagged("s4").size() == 1; }));
    EXPECT_TRUE(marks_tagged("s3").empty()) << "the refused event was not kept";
}

TEST_F(AsyncInvokerTest, DeliveriesOfAFunctionStayWithinItsInFlightCap) {
    FixtureOptions o;
    o.async.max_in_flight_per_function = 2;
    start(o);
    deploy("capped");
    for (int i = 0; i < 5; ++i) accepted_id(submit("capped", {.tag = "c" + std::to_string(i), .gate = "a"}));
    ASSERT_TRUE(eventually([&] { return started("capped") == 2; }));
    std::this_thread::sleep_for(kQuietPeriod);
    EXPECT_EQ(started("capped"), 2u) << "no third delivery while two run";
    EXPECT_EQ(on_io([this] { return dispatcher_->running("capped"); }), 2);
    EXPECT_EQ(stats("capped").depth, 5u) << "in flight included";

    open_gate("a");
    ASSERT_TRUE(eventually([&] { return started("capped") == 5 && running_now("capped") == 0; }));
    const auto m = marks_of("capped");
    EXPECT_EQ(most_at_once(m), 2u);
    EXPECT_EQ(tags_of(m).size(), 5u) << "each event delivered once";
    EXPECT_TRUE(eventually([&] { return pending().empty(); }));
}

TEST_F(AsyncInvokerTest, ReservedConcurrencyCapsDeliveriesWithoutThrottling) {
    // Delivering past the function's reservation would only be throttled and retried
    // later: the invoker holds its deliveries to the reservation instead.
    FixtureOptions o;
    o.async.max_in_flight_per_function = 5;
    o.queue_wait = std::chrono::milliseconds(0);  // a delivery over the limit is throttled at once
    start(o);
    deploy("one", {.reserved = 1});
    for (int i = 0; i < 3; ++i) accepted_id(submit("one", {.tag = "r" + std::to_string(i), .gate = "a"}));
    ASSERT_TRUE(eventually([&] { return started("one") == 1; }));
    std::this_thread::sleep_for(kQuietPeriod);
    EXPECT_EQ(started("one"), 1u);
    // A throttled attempt is saved with its count (for its backoff).
    const auto queued = pending();
    EXPECT_EQ(queued.size(), 3u);
    for (const auto& e : queued) EXPECT_EQ(e.throttles, 0) << e.id << " was delivered into a throttle";

    open_gate("a");
    ASSERT_TRUE(eventually([&] { return started("one") == 3 && running_now("one") == 0; }));
    EXPECT_EQ(most_at_once(marks_of("one")), 1u);
}

TEST_F(AsyncInvokerTest, ARecreatedFunctionGetsItsEventsAndTheOldDeliveryLeavesItsQueueAlone) {
    FixtureOptions o;
    o.async.max_in_flight_per_function = 1;
    start(o);
    deploy("f", {.gen = "1"});
    const std::string old1 = accepted_id(submit("f", {.tag = "old1", .gate = "old"}));
    accepted_id(submit("f", {.tag = "old2", .gate = "old"}));
    ASSERT_TRUE(eventually([&] { return marks_tagged("old1").size() == 1; }));

    remove("f");
    deploy("f", {.gen = "2"});
    for (const char* tag : {"new1", "new2", "new3"}) accepted_id(submit("f", {.tag = tag, .gate = "new"}));

    auto second_generation = [&] {
        auto m = marks_of("f");
        std::erase_if(m, [](const Mark& x) { return x.gen != "2"; });
        return m;
    };
    // The old delivery still runs; the new function's queue starts with its slot free.
    ASSERT_TRUE(eventually([&] { return second_generation().size() == 1; }));
    EXPECT_EQ(running_now("f"), 2u) << "old1 and one new event";
    EXPECT_EQ(stats("f").depth, 3u) << "only the new function's events";

    // The old delivery answers: its slot was the old queue's, not the new one's.
    open_gate("old");
    // Metered just before its result reaches the invoker.
    ASSERT_TRUE(eventually([&] {
        auto usage = usage_of("f");
        return std::any_of(usage.begin(), usage.end(), [&](const UsageRecord& r) { return r.request_id == old1; });
    }));
    std::this_thread::sleep_for(kQuietPeriod);
    EXPECT_EQ(second_generation().size(), 1u) << "the new queue still has one delivery in flight, its cap";
    EXPECT_EQ(stats("f").depth, 3u);

    open_gate("new");
    ASSERT_TRUE(eventually([&] { return second_generation().size() == 3 && running_now("f") == 0; }));
    const auto m = second_generation();
    EXPECT_EQ(tags_of(m), (std::set<std::string>{"new1", "new2", "new3"}));
    EXPECT_EQ(most_at_once(m), 1u);
    EXPECT_TRUE(marks_tagged("old2").empty()) << "the deleted function's queued event went with it";
    EXPECT_TRUE(wait_until([this] { return invoker_->stats("f").depth == 0; }));
    EXPECT_TRUE(eventually([&] { return pending().empty(); }));
}

TEST_F(AsyncInvokerTest, ADeepBacklogOfOneFunctionDoesNotDelayAnother) {
    constexpr int kBacklog = 40;
    FixtureOptions o;
    o.async.max_in_flight_per_function = 1;
    start(o);
    deploy("busy");
    deploy("free");
    for (int i = 0; i < kBacklog; ++i) accepted_id(submit("busy", {.tag = "b" + std::to_string(i), .gate = "a"}));
    ASSERT_TRUE(eventually([&] { return started("busy") == 1; }));

    const std::string id = accepted_id(submit("free", {.tag = "x"}));
    ASSERT_TRUE(eventually([&] {
        auto m = marks_tagged("x");
        return m.size() == 1 && m[0].end_ns;
    }));
    EXPECT_EQ(marks_tagged("x")[0].request_id, id);
    EXPECT_TRUE(wait_until([this] { return invoker_->stats("free").depth == 0; }));
    EXPECT_EQ(started("busy"), 1u) << "busy's backlog is still waiting behind its one delivery";
    EXPECT_EQ(stats("busy").depth, static_cast<std::size_t>(kBacklog));
}

TEST_F(AsyncInvokerTest, QueuedEventsOfAFunctionThatIsGoneLeaveTheStore) {
    // A daemon stopped between a function's deletion and the drop of its queued events
    // finds them at start: they are not delivered, and they must not stay in the store to
    // be loaded at every start and handed to a function created later under the name.
    {
        SqliteEventStore store(dir_ / "funcd.db");
        AsyncEvent e;
        e.id = "orphan";
        e.function = "gone";
        e.payload = R"({"tag": "orphan"})";
        e.received = std::chrono::system_clock::now();
        e.next_attempt = e.received;
        e.source = "api";
        store.enqueue(e);
    }
    start();
    ASSERT_TRUE(wait_until([this] { return invoker_->stats("gone").depth == 0; }));
    EXPECT_TRUE(eventually([&] { return pending().empty(); })) << "still queued in the store";
    EXPECT_TRUE(dead_letters("gone").empty());

    // A function created under the name, and a restart: it gets its own events only.
    deploy("gone");
    restart();
    const std::string id = accepted_id(submit("gone", {.tag = "new"}));
    ASSERT_TRUE(eventually([&] { return marks_tagged("new").size() == 1; }));
    EXPECT_EQ(marks_tagged("new")[0].request_id, id);
    ASSERT_TRUE(wait_until([this] { return invoker_->stats("gone").depth == 0; }));
    EXPECT_TRUE(marks_tagged("orphan").empty()) << "the deleted function's event reached the new one";
}

TEST_F(AsyncInvokerTest, DeadLettersPastTheirRetentionArePurged) {
    const auto now = std::chrono::system_clock::now();
    {
        SqliteEventStore store(dir_ / "funcd.db");
        auto letter = [&](const std::string& id, SystemTime failed) {
            AsyncEvent e;
            e.id = id;
            e.function = "f";
            e.payload = "{}";
            e.received = failed - std::chrono::seconds(5);
            e.next_attempt = e.received;
            e.attempts = 3;
            e.source = "api";
            store.dead_letter(DeadLetter{e, failed, "RetriesExhausted"}, std::nullopt);
        };
        letter("expired", now - std::chrono::hours(2));
        letter("just-expired", now - std::chrono::minutes(61));
        letter("fresh", now - std::chrono::minutes(59));
    }
    FixtureOptions o;
    o.async.dead_letter_retention = std::chrono::hours(1);
    start(o);
    ASSERT_TRUE(eventually([&] { return dead_letters("f").size() == 1; }));
    EXPECT_EQ(dead_letters("f")[0].event.id, "fresh");
}

}  // namespace
}  // namespace funcd::dispatch_testing

namespace funcd::dispatch_testing {
namespace {

TEST_F(AsyncInvokerTest, EventTablesFromBeforeTraceIdsAreMigratedAndEventsKeepTheirTrace) {
    {
        sqlite::Database db(dir_ / "funcd.db");
        db.exec(R"sql(
            CREATE TABLE async_events (id TEXT PRIMARY KEY, function TEXT NOT NULL, payload TEXT NOT NULL,
                received_us INTEGER NOT NULL, next_attempt_us INTEGER NOT NULL, attempts INTEGER NOT NULL,
                throttles INTEGER NOT NULL, errors_json TEXT NOT NULL, source TEXT NOT NULL);
            CREATE TABLE dead_letters (id TEXT PRIMARY KEY, function TEXT NOT NULL, payload TEXT NOT NULL,
                received_us INTEGER NOT NULL, failed_us INTEGER NOT NULL, reason TEXT NOT NULL,
                attempts INTEGER NOT NULL, errors_json TEXT NOT NULL, source TEXT NOT NULL);
            INSERT INTO async_events VALUES ('old', 'f', '{}', 1, 1, 0, 0, '[]', 'api');)sql");
    }
    SqliteEventStore store(dir_ / "funcd.db");
    AsyncEvent e;
    e.id = "new";
    e.function = "f";
    e.payload = "{}";
    e.received = std::chrono::system_clock::now();
    e.next_attempt = e.received;
    e.source = "schedule:nightly";
    e.trace_id = "Root=1-5759e988-bd862e3fe1be46a994272793";
    store.enqueue(e);
    std::map<std::string, AsyncEvent> by_id;
    for (auto& p : store.take_pending()) by_id[p.id] = p;
    ASSERT_EQ(by_id.size(), 2u);
    EXPECT_EQ(by_id["new"].trace_id, e.trace_id);
    EXPECT_TRUE(by_id["old"].trace_id.empty());
    // A dead letter keeps it, and so does its redrive.
    store.dead_letter(DeadLetter{by_id["new"], e.received, "RetriesExhausted"}, std::nullopt);
    ASSERT_EQ(store.dead_letters("f", 10).size(), 1u);
    EXPECT_EQ(store.dead_letters("f", 10)[0].event.trace_id, e.trace_id);
    auto again = store.redrive("new", e.received);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->trace_id, e.trace_id);
    SqliteEventStore reopened(dir_ / "funcd.db");  // the migration is done once
    EXPECT_EQ(reopened.take_pending().size(), 2u);
}

}  // namespace
}  // namespace funcd::dispatch_testing
