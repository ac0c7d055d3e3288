#pragma once
// What every EventStore backend does (include/funcd/dispatch/event_store.hpp), as one suite:
// a fixture deriving from EventStoreConformance says how to open a store on its backend (each
// open() is a node restarted on the same state, or another node), and
// FUNCD_EVENT_STORE_CONFORMANCE(Fixture) defines the tests for it. SQLite runs it among the
// unit tests, PostgreSQL among the postgres tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "funcd/dispatch/event_store.hpp"

namespace funcd::testing {

class EventStoreConformance : public ::testing::Test {
protected:
    virtual std::unique_ptr<EventStore> open() = 0;

    static AsyncEvent event(const std::string& id, const std::string& function, int age_s = 0) {
        AsyncEvent e;
        e.id = id;
        e.function = function;
        e.payload = "{\"id\":\"" + id + "\"}";
        e.received = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()) -
                     std::chrono::seconds(age_s);
        e.next_attempt = e.received;
        e.source = "api";
        e.trace_id = "Root=1-00000000-" + id;
        return e;
    }
    static std::vector<std::string> ids(const std::vector<AsyncEvent>& events) {
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(e.id);
        return out;
    }
};

#define FUNCD_EVENT_STORE_CONFORMANCE(Fixture)                                                                   \
    TEST_F(Fixture, QueuedEventsOutliveARestartOldestFirstWithTheirRetryState) {                               \
        {                                                                                                      \
            auto store = open();                                                                               \
            AsyncEvent retried = event("b", "fn", 5);                                                          \
            store->enqueue(retried);                                                                           \
            store->enqueue(event("a", "fn:prod", 10));                                                         \
            retried.attempts = 1;                                                                              \
            retried.throttles = 2;                                                                             \
            retried.next_attempt = retried.received + std::chrono::seconds(60);                                \
            retried.errors = nlohmann::json::array({{{"error_type", "Unhandled"}}});                           \
            store->update(retried);                                                                            \
        }                                                                                                      \
        auto store = open();                                                                                   \
        const auto pending = store->take_pending();                                                            \
        ASSERT_EQ(ids(pending), (std::vector<std::string>{"a", "b"}));                                         \
        EXPECT_EQ(pending[0].function, "fn:prod");                                                             \
        EXPECT_EQ(pending[0].payload, "{\"id\":\"a\"}");                                                      \
        EXPECT_EQ(pending[0].trace_id, "Root=1-00000000-a");                                                   \
        EXPECT_EQ(pending[1].attempts, 1);                                                                     \
        EXPECT_EQ(pending[1].throttles, 2);                                                                    \
        EXPECT_EQ(pending[1].next_attempt - pending[1].received, std::chrono::seconds(60));                    \
        EXPECT_EQ(pending[1].errors.size(), 1u);                                                               \
    }                                                                                                          \
                                                                                                               \
    TEST_F(Fixture, CompletingDeadLetteringAndRedrivingMoveEventsWhole) {                                      \
        auto store = open();                                                                                   \
        store->enqueue(event("done", "fn"));                                                                   \
        store->enqueue(event("failed", "fn"));                                                                 \
        store->complete("done", event("follow", "destination"));                                               \
        DeadLetter d{event("failed", "fn"), std::chrono::system_clock::now(), "RetriesExhausted"};             \
        d.event.attempts = 3;                                                                                  \
        store->dead_letter(d, std::nullopt);                                                                   \
        EXPECT_EQ(ids(open()->take_pending()), std::vector<std::string>{"follow"});                            \
        auto letters = store->dead_letters(std::nullopt, 10);                                                  \
        ASSERT_EQ(letters.size(), 1u);                                                                         \
        EXPECT_EQ(letters[0].reason, "RetriesExhausted");                                                      \
        EXPECT_EQ(letters[0].event.attempts, 3);                                                               \
        EXPECT_TRUE(store->dead_letters(std::string("other"), 10).empty());                                    \
        const auto redriven = store->redrive("failed", std::chrono::system_clock::now());                      \
        ASSERT_TRUE(redriven);                                                                                 \
        EXPECT_EQ(redriven->attempts, 0);                                                                      \
        EXPECT_FALSE(store->redrive("failed", std::chrono::system_clock::now())) << "gone from the letters";   \
        EXPECT_EQ(ids(open()->take_pending()), (std::vector<std::string>{"follow", "failed"}));                \
        store->dead_letter({event("again", "fn"), std::chrono::system_clock::now() - std::chrono::hours(2),    \
                            "EventAgeExceeded"},                                                               \
                           std::nullopt);                                                                      \
        store->dead_letter({event("recent", "fn"), std::chrono::system_clock::now(), "EventAgeExceeded"},      \
                           std::nullopt);                                                                      \
        EXPECT_EQ(store->purge_dead_letters(std::chrono::system_clock::now() - std::chrono::hours(1)), 1u);    \
        EXPECT_TRUE(store->delete_dead_letter("recent"));                                                      \
        EXPECT_FALSE(store->delete_dead_letter("recent"));                                                     \
        EXPECT_TRUE(store->dead_letters(std::nullopt, 10).empty());                                            \
    }                                                                                                          \
                                                                                                               \
    TEST_F(Fixture, DroppingAFunctionTakesItsQualifiersButNoOtherFunction) {                                   \
        auto store = open();                                                                                   \
        for (const char* target : {"fn", "fn:prod", "fn2", "fn_x", "f%n"}) {                                   \
            store->enqueue(event(std::string("e-") + target, target));                                         \
            EventConfig c;                                                                                     \
            c.maximum_retry_attempts = 1;                                                                      \
            store->put_event_config(target, c);                                                                \
        }                                                                                                      \
        store->drop_function("fn");                                                                            \
        store->drop_function("f%");                                                                            \
        auto left = ids(open()->take_pending());                                                               \
        std::sort(left.begin(), left.end());                                                                   \
        EXPECT_EQ(left, (std::vector<std::string>{"e-f%n", "e-fn2", "e-fn_x"}));                               \
        EXPECT_EQ(store->event_configs().size(), 3u);                                                          \
        EXPECT_FALSE(store->event_config("fn:prod"));                                                          \
        ASSERT_TRUE(store->event_config("fn2"));                                                               \
        EXPECT_EQ(store->event_config("fn2")->maximum_retry_attempts, 1);                                      \
        store->delete_event_config("fn2");                                                                     \
        EXPECT_FALSE(store->event_config("fn2"));                                                              \
    }

}  // namespace funcd::testing
