#pragma once
// What every NodeStore backend does (include/funcd/state/node_store.hpp), as one suite: a
// fixture deriving from NodeStoreConformance says how to open a store on its backend (each
// open() is another node's handle on the same shared state), and
// FUNCD_NODE_STORE_CONFORMANCE(Fixture) defines the tests for it. The SQLite backend runs
// it among the unit tests, PostgreSQL among the postgres tests.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "funcd/state/node_store.hpp"

namespace funcd::testing {

class NodeStoreConformance : public ::testing::Test {
protected:
    virtual std::unique_ptr<NodeStore> open() = 0;

    static NodeReport report(const std::string& id, int busy) {
        NodeReport r;
        r.id = id;
        r.advertise_url = "http://" + id + ".internal:8080";
        r.version = "0.1.0";
        r.started_ms = 1'765'000'000'000;
        r.load = {{"workers", {{"busy", busy}, {"idle", 2}}}, {"functions", {"resize", "thumb\u00e9"}}};
        return r;
    }
};

#define FUNCD_NODE_STORE_CONFORMANCE(Fixture)                                                               \
    TEST_F(Fixture, AHeartbeatCreatesTheNodeAndTheNextReplacesWhatItReported) {                             \
        auto store = open();                                                                                \
        store->heartbeat(report("node-a", 1));                                                              \
        auto nodes = store->nodes();                                                                        \
        ASSERT_EQ(nodes.size(), 1u);                                                                        \
        EXPECT_EQ(nodes[0].report.id, "node-a");                                                            \
        EXPECT_EQ(nodes[0].report.advertise_url, "http://node-a.internal:8080");                            \
        EXPECT_EQ(nodes[0].report.version, "0.1.0");                                                        \
        EXPECT_EQ(nodes[0].report.started_ms, 1'765'000'000'000);                                           \
        EXPECT_EQ(nodes[0].report.load, report("node-a", 1).load) << "the report's JSON comes back whole";  \
        EXPECT_GE(nodes[0].heartbeat_age_s, 0.0);                                                           \
        EXPECT_LT(nodes[0].heartbeat_age_s, 5.0);                                                           \
        NodeReport again = report("node-a", 7);                                                             \
        again.advertise_url = "http://10.0.0.7:8080";                                                       \
        store->heartbeat(again);                                                                            \
        nodes = store->nodes();                                                                             \
        ASSERT_EQ(nodes.size(), 1u) << "one row per node id";                                              \
        EXPECT_EQ(nodes[0].report.advertise_url, "http://10.0.0.7:8080");                                   \
        EXPECT_EQ(nodes[0].report.load["workers"]["busy"], 7);                                              \
    }                                                                                                       \
                                                                                                            \
    TEST_F(Fixture, NodesSharingTheStateSeeEachOtherInIdOrder) {                                            \
        auto first = open();                                                                                \
        auto second = open();                                                                               \
        second->heartbeat(report("node-b", 0));                                                             \
        first->heartbeat(report("node-a", 3));                                                              \
        for (NodeStore* s : {first.get(), second.get()}) {                                                  \
            const auto nodes = s->nodes();                                                                  \
            ASSERT_EQ(nodes.size(), 2u);                                                                    \
            EXPECT_EQ(nodes[0].report.id, "node-a");                                                        \
            EXPECT_EQ(nodes[1].report.id, "node-b");                                                        \
            EXPECT_EQ(nodes[0].report.load["workers"]["busy"], 3);                                          \
        }                                                                                                   \
    }                                                                                                       \
                                                                                                            \
    TEST_F(Fixture, AHeartbeatsAgeGrowsUntilTheNextOne) {                                                   \
        auto store = open();                                                                                \
        store->heartbeat(report("node-a", 0));                                                              \
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));                                       \
        const double late = store->nodes().at(0).heartbeat_age_s;                                           \
        EXPECT_GE(late, 1.0);                                                                               \
        EXPECT_LT(late, 30.0);                                                                              \
        store->heartbeat(report("node-a", 0));                                                              \
        EXPECT_LT(store->nodes().at(0).heartbeat_age_s, late) << "a heartbeat makes the node current again";  \
    }                                                                                                       \
                                                                                                            \
    TEST_F(Fixture, AForgottenNodeIsGoneAndForgettingAnUnknownOneSaysSo) {                                  \
        auto store = open();                                                                                \
        store->heartbeat(report("node-a", 0));                                                              \
        store->heartbeat(report("node-b", 0));                                                              \
        EXPECT_TRUE(store->forget("node-a"));                                                               \
        const auto nodes = store->nodes();                                                                  \
        ASSERT_EQ(nodes.size(), 1u);                                                                        \
        EXPECT_EQ(nodes[0].report.id, "node-b");                                                            \
        EXPECT_FALSE(store->forget("node-a"));                                                              \
        EXPECT_FALSE(store->forget("no-such-node"));                                                        \
    }

}  // namespace funcd::testing
