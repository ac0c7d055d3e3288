// Two real funcd nodes sharing a real PostgreSQL 15 (--state): what one deploys, changes or
// deletes reaches the other within a second, code included, and both serve it.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <set>
#include <vector>

#include <signal.h>
#include <string>

#include "daemon_harness.hpp"
#include "postgres_server.hpp"

namespace funcd::testing {
namespace {

const char* kSharedEchoPy = R"(import os
def handler(event, context):
    return {"says": "v1", "node_env": os.environ.get("GREETING")}
)";

const char* kSharedEchoPyV2 = R"(import os
def handler(event, context):
    return {"says": "v2", "node_env": os.environ.get("GREETING")}
)";

class SharedStateNodes : public ::testing::Test {
protected:
    void SetUp() override {
        pg_ = std::make_unique<PostgresServer>();
        pg_->sql("CREATE DATABASE funcd_state");
        url_ = "postgresql://postgres@127.0.0.1:" + std::to_string(pg_->port()) + "/funcd_state";
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-nodes-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        root_ = tmpl;
        first_ = std::make_unique<Daemon>(std::vector<std::string>{"--state", url_, "--node-id", "node-1"}, root_ / "n1");
        // Every node opens environments sealed by the others: one keyring for all.
        std::filesystem::create_directories(root_ / "n2");
        std::filesystem::copy_file(root_ / "n1" / "env.keys", root_ / "n2" / "env.keys");
        start_second();
    }
    void start_second() {
        second_ = std::make_unique<Daemon>(std::vector<std::string>{"--state", url_, "--node-id", "node-2"}, root_ / "n2");
    }
    void TearDown() override {
        first_.reset();
        second_.reset();
        pg_.reset();
        remove_tree(root_);
    }

    // How long until `pred` holds, polled every 20 ms; nullopt after `limit`.
    template <class Pred>
    static std::optional<std::chrono::milliseconds> time_until(Pred pred, std::chrono::milliseconds limit) {
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < limit) {
            if (pred())
                return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return std::nullopt;
    }

    std::unique_ptr<PostgresServer> pg_;
    std::string url_;
    std::filesystem::path root_;
    std::unique_ptr<Daemon> first_;
    std::unique_ptr<Daemon> second_;
};

TEST_F(SharedStateNodes, ADeployThroughOneNodeIsServedByTheOtherWithinASecond) {
    ASSERT_EQ(first_->deploy("shared", python_settings({{"env", {{"GREETING", "sealed hello"}}}}),
                             python_zip(kSharedEchoPy))
                  .status,
              201);
    const auto reached = time_until([&] { return second_->api("GET", "/v1/functions/shared").status == 200; },
                                    std::chrono::seconds(5));
    ASSERT_TRUE(reached) << second_->log();
    EXPECT_LE(reached->count(), 1000) << "deploy to the other node's cache, in ms";
    auto r = second_->invoke("shared");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["says"], "v1");
    EXPECT_EQ(r.json()["node_env"], "sealed hello") << "the environment, sealed by node 1, opens on node 2";
    EXPECT_EQ(first_->invoke("shared").json()["says"], "v1");

    // New code through node 2: node 1 runs it within a second.
    ASSERT_EQ(second_->deploy("shared", python_settings({{"env", {{"GREETING", "again"}}}}), python_zip(kSharedEchoPyV2))
                  .status,
              200);
    const auto updated = time_until([&] { return first_->invoke("shared").json()["says"] == "v2"; },
                                    std::chrono::seconds(5));
    ASSERT_TRUE(updated) << first_->log();
    EXPECT_LE(updated->count(), 1000);

    // Deleted through node 1: node 2 no longer has it, and its workers are gone.
    ASSERT_EQ(first_->api("DELETE", "/v1/functions/shared").status, 204);
    const auto deleted = time_until([&] { return second_->api("GET", "/v1/functions/shared").status == 404; },
                                    std::chrono::seconds(5));
    ASSERT_TRUE(deleted);
    EXPECT_LE(deleted->count(), 1000);
    EXPECT_TRUE(eventually([&] { return children_of(second_->pid()).empty(); }, std::chrono::seconds(10)))
        << "node 2's workers of the deleted function end";
    EXPECT_EQ(second_->invoke("shared").status, 404);
}

TEST_F(SharedStateNodes, EachNodeListsBothAndVersionsAreNumberedOnceAcrossThem) {
    EXPECT_TRUE(eventually(
        [&] { return first_->api("GET", "/v1/cluster").json()["nodes"].size() == 2; }, std::chrono::seconds(10)))
        << first_->api("GET", "/v1/cluster").body;
    const auto nodes = second_->api("GET", "/v1/cluster").json()["nodes"];
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0]["id"], "node-1");
    EXPECT_EQ(nodes[1]["id"], "node-2");

    ASSERT_EQ(first_->deploy("numbered", python_settings(), python_zip(kSharedEchoPy)).status, 201);
    ASSERT_TRUE(eventually([&] { return second_->api("GET", "/v1/functions/numbered").status == 200; }));
    // A deploy through each node at once: each publishes a version, numbered once between them.
    auto on_first = std::async(std::launch::async,
                               [&] { return first_->deploy("numbered", python_settings(), python_zip(kSharedEchoPyV2)); });
    auto on_second = std::async(std::launch::async, [&] {
        return second_->deploy("numbered", python_settings({{"memory_mb", 256}}), python_zip(kSharedEchoPy));
    });
    const auto one = on_first.get();
    const auto two = on_second.get();
    ASSERT_EQ(one.status, 200) << one.body;
    ASSERT_EQ(two.status, 200) << two.body;
    EXPECT_NE(one.json()["version"], two.json()["version"]);
    for (Daemon* d : {first_.get(), second_.get()})
        EXPECT_TRUE(eventually([&] {
            return d->api("GET", "/v1/functions/numbered").json()["versions"] == nlohmann::json::array({1, 2, 3});
        })) << d->api("GET", "/v1/functions/numbered").body;
}

TEST_F(SharedStateNodes, RoutesSchedulesAndFileTriggersSetThroughOneNodeReachTheOther) {
    ASSERT_EQ(first_->deploy("routed", python_settings(), python_zip(kSharedEchoPy)).status, 201);
    ASSERT_TRUE(eventually([&] { return second_->api("GET", "/v1/functions/routed").status == 200; }));
    auto r = first_->api("PUT", "/v1/routes", R"([{"method": "GET", "path": "/hello", "function": "routed"}])");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(eventually([&] { return second_->api("GET", "/v1/routes").json()["routes"].size() == 1; },
                           std::chrono::seconds(3)));
    const auto routed =
        http_request(second_->port(), "GET", "/api/hello", {}, {{"Authorization", "Bearer " + Daemon::kToken}});
    EXPECT_EQ(routed.status, 200) << routed.body;
    r = second_->api("PUT", "/v1/functions/routed/schedules/nightly", R"js({"expression": "cron(0 3 * * ? *)"})js");
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_TRUE(eventually([&] { return first_->api("GET", "/v1/functions/routed/schedules/nightly").status == 200; },
                           std::chrono::seconds(3)));
    ASSERT_EQ(second_->api("DELETE", "/v1/functions/routed/schedules/nightly").status, 204);
    EXPECT_TRUE(eventually([&] { return first_->api("GET", "/v1/functions/routed/schedules/nightly").status == 404; },
                           std::chrono::seconds(3)));
    // A file trigger watches a directory of the node it is set through, and says which.
    const auto inbox = root_ / "inbox";
    std::filesystem::create_directories(inbox);
    r = first_->api("PUT", "/v1/functions/routed/file-triggers/inbox",
                    nlohmann::json{{"directory", inbox.string()}, {"node", "node-2"}}.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("node-1"), std::string::npos) << r.body;
    r = first_->api("PUT", "/v1/functions/routed/file-triggers/inbox", nlohmann::json{{"directory", inbox.string()}}.dump());
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.json()["node"], "node-1");
}

TEST_F(SharedStateNodes, UsageOnEitherNodeAddsUpTheInvocationsOfBoth) {
    ASSERT_EQ(first_->deploy("counted", python_settings(), python_zip(kSharedEchoPy)).status, 201);
    ASSERT_TRUE(eventually([&] { return second_->api("GET", "/v1/functions/counted").status == 200; }));
    for (int i = 0; i < 5; ++i) ASSERT_EQ(first_->invoke("counted").status, 200);
    for (int i = 0; i < 7; ++i) ASSERT_EQ(second_->invoke("counted").status, 200);
    // A node's own invocations are in its answer at once, the other's within about a second
    // (shipped every 500 ms after its batching window).
    for (Daemon* d : {first_.get(), second_.get()})
        EXPECT_TRUE(eventually(
            [&] { return d->api("GET", "/v1/usage?function=counted").json()["total"]["invocations"] == 12; },
            std::chrono::seconds(5)));
    for (Daemon* d : {first_.get(), second_.get()}) {
        const auto usage = d->api("GET", "/v1/usage?function=counted");
        ASSERT_EQ(usage.status, 200) << usage.body;
        const auto doc = usage.json();
        ASSERT_EQ(doc["functions"].size(), 1u) << usage.body;
        EXPECT_EQ(doc["functions"][0]["invocations"], 12) << "every invocation answered, on either node, once";
        EXPECT_EQ(doc["functions"][0]["cold_starts"], 2) << "one per node";
        const auto records = d->api("GET", "/v1/usage/records?function=counted").json();
        EXPECT_EQ(records["records"].size(), 12u);
    }
}

const char* kSharedQueuedPy = R"(import time
def handler(event, context):
    time.sleep(0.02)
    return {"n": event["n"]}
)";

// The request ids of `function`'s usage records on `d`, async deliveries only.
std::set<std::string> async_request_ids(Daemon& d, const std::string& function) {
    std::set<std::string> out;
    const auto doc = d.api("GET", "/v1/usage/records?function=" + function + "&limit=1000").json();
    for (const auto& r : doc["records"])
        if (r["trigger"] == "async") out.insert(r["request_id"].get<std::string>());
    return out;
}

TEST_F(SharedStateNodes, AsyncEventsAcceptedThroughBothNodesAreAllHandledWhenOneIsKilled) {
    ASSERT_EQ(first_->deploy("queued", python_settings(), python_zip(kSharedQueuedPy)).status, 201);
    ASSERT_TRUE(eventually([&] { return second_->api("GET", "/v1/functions/queued").status == 200; }));
    constexpr int kEvents = 300;
    std::set<std::string> accepted;
    for (int i = 0; i < kEvents; ++i) {
        Daemon& d = i % 2 ? *second_ : *first_;
        const auto r = http_request(d.port(), "POST", "/v1/functions/queued/invoke", "{\"n\":" + std::to_string(i) + "}",
                                    {{"Authorization", "Bearer " + Daemon::kToken},
                                     {"X-Funcd-Invocation-Type", "Event"}});
        ASSERT_EQ(r.status, 202) << r.body;
        accepted.insert(r.json()["request_id"].get<std::string>());
    }
    // Node 2 dies with events of its own still queued or running.
    const int queued_on_second = std::stoi(pg_->scalar(
        "SELECT count(*) FROM funcd_async_events WHERE owner = 'node-2'", "funcd_state"));
    second_->stop(SIGKILL);
    // Node 1 takes them over once node 2's claim expires (15 s), and handles every one.
    EXPECT_TRUE(eventually(
        [&] { return pg_->scalar("SELECT count(*) FROM funcd_async_events", "funcd_state") == "0"; },
        std::chrono::seconds(90)))
        << pg_->scalar("SELECT count(*) FROM funcd_async_events", "funcd_state") << " left; node 2 had "
        << queued_on_second;
    EXPECT_EQ(pg_->scalar("SELECT count(*) FROM funcd_dead_letters", "funcd_state"), "0");
    // Node 2 back on its data: its journal has what it ran before it died.
    start_second();
    std::set<std::string> handled = async_request_ids(*first_, "queued");
    const std::set<std::string> on_second = async_request_ids(*second_, "queued");
    handled.insert(on_second.begin(), on_second.end());
    std::vector<std::string> lost;
    for (const auto& id : accepted)
        if (!handled.count(id)) lost.push_back(id);
    EXPECT_TRUE(lost.empty()) << lost.size() << " of " << kEvents << " accepted events never ran; node 2 had "
                              << queued_on_second << " queued when it was killed";
    RecordProperty("queued_on_killed_node", queued_on_second);
}

// Its own suite (its own ctest test, run beside the others): it waits for three ticks of a
// one-minute schedule.
using SharedSchedule = SharedStateNodes;

TEST_F(SharedSchedule, ATickFiresOnceAcrossNodesWhileItsLeaderIsKilled) {
    ASSERT_EQ(first_->deploy("ticked", python_settings(), python_zip(kSharedQueuedPy)).status, 201);
    ASSERT_TRUE(eventually([&] { return second_->api("GET", "/v1/functions/ticked").status == 200; }));
    // The leader: whichever node took the lease first.
    std::string leader;
    ASSERT_TRUE(eventually(
        [&] {
            leader = pg_->scalar("SELECT holder FROM funcd_leases WHERE name = 'scheduler'", "funcd_state");
            return leader == "node-1" || leader == "node-2";
        },
        std::chrono::seconds(15)));
    auto r = first_->api("PUT", "/v1/functions/ticked/schedules/minutely",
                         R"js({"expression": "rate(1 minute)", "input": {"n": 0}})js");
    ASSERT_EQ(r.status, 201) << r.body;
    auto fires = [&] { return std::stoi(pg_->scalar("SELECT count(*) FROM funcd_schedule_fires", "funcd_state")); };
    // The first tick, fired by the leader.
    ASSERT_TRUE(eventually([&] { return fires() == 1; }, std::chrono::seconds(75)));
    EXPECT_EQ(pg_->scalar("SELECT node FROM funcd_schedule_fires", "funcd_state"), leader);
    // The leader dies a few seconds before the second tick: nobody leads when it comes.
    const auto next = std::chrono::seconds(
        std::stoll(pg_->scalar("SELECT max(fire_us) / 1000000 + 60 FROM funcd_schedule_fires", "funcd_state")));
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    if (next - now > std::chrono::seconds(5)) std::this_thread::sleep_for(next - now - std::chrono::seconds(5));
    Daemon& dead = leader == "node-1" ? *first_ : *second_;
    Daemon& survivor = leader == "node-1" ? *second_ : *first_;
    const std::string survivor_id = leader == "node-1" ? "node-2" : "node-1";
    dead.stop(SIGKILL);
    // The second tick, taken by the survivor late (it did not lead at the tick), the third
    // by it as the new leader.
    ASSERT_TRUE(eventually([&] { return fires() == 3; }, std::chrono::seconds(100)))
        << fires() << " fires; survivor's log:\n" << survivor.log();
    EXPECT_EQ(pg_->scalar("SELECT count(*) FROM funcd_schedule_fires WHERE node = '" + survivor_id + "'", "funcd_state"),
              "2");
    EXPECT_EQ(pg_->scalar("SELECT (max(fire_us) - min(fire_us)) / 1000000 FROM funcd_schedule_fires", "funcd_state"),
              "120")
        << "three consecutive ticks, none missed";
    EXPECT_EQ(pg_->scalar("SELECT holder FROM funcd_leases WHERE name = 'scheduler'", "funcd_state"), survivor_id);
    // Each tick ran once. The usage ledger is shared: the survivor lists the two it ran and the
    // first, which the dead leader ran and shipped long before it was killed.
    EXPECT_TRUE(eventually([&] {
        return pg_->scalar("SELECT count(*) FROM funcd_async_events", "funcd_state") == "0";
    }, std::chrono::seconds(30)));
    auto scheduled_runs = [&] {
        std::set<std::string> ids;
        std::size_t n = 0;
        const auto doc = survivor.api("GET", "/v1/usage/records?function=ticked&limit=1000").json();
        for (const auto& rec : doc["records"])
            if (rec["trigger"] == "schedule") {
                ++n;
                ids.insert(rec["request_id"].get<std::string>());
            }
        return std::pair(n, ids.size());
    };
    EXPECT_TRUE(eventually([&] { return scheduled_runs().first >= 3; }, std::chrono::seconds(10)));
    EXPECT_EQ(scheduled_runs(), std::pair(std::size_t{3}, std::size_t{3}))
        << survivor.api("GET", "/v1/usage/records?function=ticked").body;
}

// Prints the id of each row it gets, one line each.
const char* kSharedSinkPy = R"(import json
def handler(event, context):
    for r in event["Records"]:
        print("ROW " + json.dumps(r["dynamodb"]["Keys"]["id"]))
    return {}
)";

std::set<int> rows_delivered(const Daemon& d) {
    std::set<int> ids;
    for (const auto& id : logged_json(d, "sink", "ROW ")) ids.insert(id.get<int>());
    return ids;
}

std::string inserts(int from, int to) {
    std::string sql;
    for (int i = from; i <= to; ++i) sql += "INSERT INTO orders VALUES (" + std::to_string(i) + ");";
    return sql;
}

// Its own suite: it waits for a dead node's lease to expire. Both nodes know the function
// `sink` (printing the ids of the rows it gets) and the table `orders`.
class SharedMapping : public SharedStateNodes {
protected:
    void SetUp() override {
        SharedStateNodes::SetUp();
        pg_->sql("CREATE TABLE orders (id int PRIMARY KEY)");
        ASSERT_EQ(first_->deploy("sink", python_settings(), python_zip(kSharedSinkPy)).status, 201);
        ASSERT_TRUE(eventually([&] { return second_->api("GET", "/v1/functions/sink").status == 200; }));
    }
    // The mapping of `orders` to `sink`, created or changed through `d`.
    HttpResult put_mapping(Daemon& d, bool enabled = true) {
        return d.api("PUT", kPath,
                     nlohmann::json{{"type", "postgres"}, {"connection", pg_->conninfo()},
                                    {"tables", {"public.orders"}}, {"enabled", enabled}}
                         .dump());
    }
    static constexpr const char* kPath = "/v1/functions/sink/event-sources/orders";
};

TEST_F(SharedMapping, AMappingRunsOnOneNodeAndMovesToTheOtherWhenItsNodeIsKilled) {
    const std::string path = kPath;
    const auto created = put_mapping(*second_);
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.json()["node"], "node-2") << "the node it is created through takes its lease";
    // Node 1 learns of it, and of who runs it; the other node neither runs it nor holds its slot.
    ASSERT_TRUE(eventually([&] { return first_->api("GET", path).json()["node"] == "node-2"; },
                           std::chrono::seconds(10)))
        << first_->api("GET", path).body;
    EXPECT_EQ(first_->api("GET", path).json()["state"], "Enabled");

    pg_->sql(inserts(1, 10));
    ASSERT_TRUE(eventually([&] { return rows_delivered(*second_).size() == 10; }, std::chrono::seconds(30)))
        << second_->api("GET", path).body;
    EXPECT_TRUE(rows_delivered(*first_).empty()) << "one node at a time runs a mapping";
    // A record counts as delivered once its checkpoint is stored: node 2 dies with all ten saved.
    ASSERT_TRUE(eventually([&] { return second_->api("GET", path).json()["records_delivered"] == 10; }))
        << second_->api("GET", path).body;
    second_->stop(SIGKILL);
    pg_->sql(inserts(11, 20));
    // Node 1 takes the lease once node 2's expires (15 s), resumes after the checkpoint and
    // delivers what came since.
    const auto moved =
        time_until([&] { return rows_delivered(*first_).size() >= 10; }, std::chrono::seconds(60));
    ASSERT_TRUE(moved) << first_->api("GET", path).body << "\n" << first_->log();
    RecordProperty("takeover_ms", static_cast<int>(moved->count()));
    std::cout << "mapping taken over and caught up " << moved->count() << " ms after its node was killed\n";
    std::set<int> expected;
    for (int i = 11; i <= 20; ++i) expected.insert(i);
    EXPECT_EQ(rows_delivered(*first_), expected) << "neither a lost nor a repeated row: the checkpoint moved";
    EXPECT_EQ(first_->api("GET", path).json()["node"], "node-1");
    EXPECT_EQ(pg_->scalar("SELECT holder FROM funcd_leases WHERE name = 'mapping:" +
                              created.json()["uuid"].get<std::string>() + "'",
                          "funcd_state"),
              "node-1");

    // Deleted through node 1, which runs it: its slot and publication go.
    ASSERT_EQ(first_->api("DELETE", path).status, 204);
    EXPECT_TRUE(eventually([&] {
        return pg_->scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'funcd_%'") == "0";
    }, std::chrono::seconds(15)));
    EXPECT_EQ(pg_->scalar("SELECT count(*) FROM funcd_event_source_mappings", "funcd_state"), "0");
}

TEST_F(SharedMapping, AMappingDeletedThroughTheNodeNotRunningItStopsOnTheOtherAndLosesItsSlot) {
    const std::string path = kPath;
    const auto created = put_mapping(*first_);
    ASSERT_EQ(created.status, 201) << created.body;
    ASSERT_TRUE(eventually([&] { return second_->api("GET", path).status == 200; }, std::chrono::seconds(5)));
    // A change through node 2 reaches the runner on node 1: disabled, it stops there.
    auto r = put_mapping(*second_, false);
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(eventually([&] { return first_->api("GET", path).json()["state"] == "Disabled"; },
                           std::chrono::seconds(5)));
    EXPECT_TRUE(eventually([&] {
        return pg_->scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'funcd_%' AND active") == "0";
    }, std::chrono::seconds(10)));
    // Enabled again through node 2: node 2 now runs it, from where node 1 got to.
    pg_->sql(inserts(1, 3));
    r = put_mapping(*second_, true);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["node"], "node-2") << r.body;
    ASSERT_TRUE(eventually([&] { return rows_delivered(*second_).size() == 3; }, std::chrono::seconds(30)))
        << second_->api("GET", path).body;
    // Deleted through node 1, which does not run it: node 2 lets the slot go, node 1 drops it.
    ASSERT_EQ(first_->api("DELETE", path).status, 204) << first_->log();
    EXPECT_TRUE(eventually([&] { return second_->api("GET", path).status == 404; }, std::chrono::seconds(5)));
    EXPECT_TRUE(eventually([&] {
        return pg_->scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'funcd_%'") == "0";
    }, std::chrono::seconds(15))) << first_->log();
    EXPECT_EQ(pg_->scalar("SELECT count(*) FROM pg_publication WHERE pubname LIKE 'funcd_%'"), "0");
}

const char* kSharedWarmPy = R"(import os
def handler(event, context):
    return {"init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
)";

// Its own suite: placement moves at heartbeats (every 5 s).
using SharedProvisioned = SharedStateNodes;

TEST_F(SharedProvisioned, ProvisionedWorkersRunOnTheNodeTheFunctionsInvocationsGoTo) {
    ASSERT_EQ(first_->deploy("warm", python_settings({{"provisioned_concurrency", 2}}), python_zip(kSharedWarmPy))
                  .status,
              201);
    auto provisioned = [](Daemon& d) { return d.api("GET", "/v1/functions/warm").json()["provisioned"]; };
    // Not invoked yet: one node, chosen by the function's name, keeps both; either node
    // counts both as ready.
    ASSERT_TRUE(eventually([&] { return provisioned(*first_)["ready"] == 2 && provisioned(*second_)["ready"] == 2; },
                           std::chrono::seconds(30)))
        << provisioned(*first_) << provisioned(*second_);
    const int first_share = provisioned(*first_)["this_node"]["share"];
    const int second_share = provisioned(*second_)["this_node"]["share"];
    ASSERT_EQ(first_share + second_share, 2) << "two in all, not two per node";
    ASSERT_TRUE(first_share == 0 || second_share == 0) << "on one node";
    // The balancer sends the function to the other node: the workers follow its invocations.
    Daemon& other = first_share == 0 ? *first_ : *second_;
    Daemon& home = first_share == 0 ? *second_ : *first_;
    for (int i = 0; i < 10; ++i) ASSERT_EQ(other.invoke("warm").status, 200);
    EXPECT_TRUE(eventually(
        [&] {
            return provisioned(other)["this_node"] == nlohmann::json({{"share", 2}, {"ready", 2}}) &&
                   provisioned(home)["this_node"]["share"] == 0;
        },
        std::chrono::seconds(40)))
        << provisioned(other) << provisioned(home);
    EXPECT_TRUE(eventually([&] { return provisioned(home)["this_node"]["ready"] == 0; }, std::chrono::seconds(10)))
        << "the node the function left ends its provisioned workers";
    const auto invoked = other.invoke("warm");
    ASSERT_EQ(invoked.status, 200) << invoked.body;
    EXPECT_EQ(invoked.json()["init_type"], "provisioned-concurrency") << "served by a provisioned worker";
}

}  // namespace
}  // namespace funcd::testing
