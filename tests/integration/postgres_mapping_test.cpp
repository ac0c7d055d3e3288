// Event source mappings end to end: a real PostgreSQL 15 (postgres_server.hpp), the real
// daemon and real Python workers. Row changes committed in the database reach the function
// as DynamoDB-Streams-like events, typed and in commit order; the mapping's state shows what
// was delivered; deleting it drops its replication slot and publication.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "daemon_harness.hpp"
#include "postgres_server.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Prints each record it gets as one JSON line after a marker, in the order received.
const char* kSinkPy = R"(import json

def handler(event, context):
    for r in event["Records"]:
        print("RECORD " + json.dumps(r, sort_keys=True))
    return {"records": len(event["Records"])}
)";

std::vector<json> records(const Daemon& d, const std::string& function) {
    return logged_json(d, function, "RECORD ");
}

// A mapping of `table` through `connection`, with `extra` settings merged in.
json postgres_mapping(const std::string& connection, const std::string& table, json extra = json::object()) {
    json m{{"type", "postgres"}, {"connection", connection}, {"tables", {table}}};
    m.update(extra);
    return m;
}

TEST(PostgresMapping, RowChangesReachTheFunctionTypedInCommitOrderAndDeleteDropsTheSlot) {
    PostgresServer pg;
    pg.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, item text, qty int, price numeric(10,2), meta jsonb, "
        "placed timestamptz);"
        "ALTER TABLE orders REPLICA IDENTITY FULL;");

    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/orders";
    const HttpResult created = d.api("PUT", path,
                                     postgres_mapping(pg.conninfo(), "public.orders", {{"batch_size", 10}}).dump());
    ASSERT_TRUE(created.status == 201 || created.status == 200) << created.body;
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'funcd_%'"), "1");

    // Two transactions: three inserts, then an update and a delete.
    pg.sql(
        "BEGIN;"
        "INSERT INTO orders VALUES (1, 'tea', 2, 3.50, '{\"gift\": true}', '2026-01-02 03:04:05+00');"
        "INSERT INTO orders VALUES (2, 'cake', 1, 12.00, NULL, NULL);"
        "INSERT INTO orders VALUES (3, 'jam', 5, 4.25, '[1, 2]', NULL);"
        "COMMIT;");
    pg.sql("BEGIN; UPDATE orders SET qty = 3 WHERE id = 1; DELETE FROM orders WHERE id = 2; COMMIT;");

    ASSERT_TRUE(eventually([&] { return records(d, "sink").size() >= 5; }, 30s))
        << d.api("GET", path).body << "\n" << function_log(d, "sink");
    const auto got = records(d, "sink");
    ASSERT_EQ(got.size(), 5u) << function_log(d, "sink");

    std::vector<std::string> names;
    for (const auto& r : got) names.push_back(r["eventName"]);
    EXPECT_EQ(names, (std::vector<std::string>{"INSERT", "INSERT", "INSERT", "MODIFY", "REMOVE"}));
    for (const auto& r : got) {
        EXPECT_EQ(r["eventSource"], "funcd:postgres") << r;
        EXPECT_EQ(r["table"], "public.orders") << r;
        EXPECT_TRUE(r["dynamodb"]["SequenceNumber"].is_string()) << r;
    }
    const json& first = got[0]["dynamodb"];
    EXPECT_EQ(first["Keys"], json({{"id", 1}})) << first;
    EXPECT_EQ(first["NewImage"]["item"], "tea");
    EXPECT_EQ(first["NewImage"]["qty"], 2);
    EXPECT_EQ(first["NewImage"]["price"], 3.5);
    EXPECT_EQ(first["NewImage"]["meta"], json({{"gift", true}}));
    EXPECT_EQ(first["NewImage"]["placed"], "2026-01-02T03:04:05Z");
    EXPECT_TRUE(got[1]["dynamodb"]["NewImage"]["meta"].is_null());
    EXPECT_EQ(got[2]["dynamodb"]["NewImage"]["meta"], json({1, 2}));
    // REPLICA IDENTITY FULL: the update and the delete carry the old row.
    EXPECT_EQ(got[3]["dynamodb"]["OldImage"]["qty"], 2) << got[3];
    EXPECT_EQ(got[3]["dynamodb"]["NewImage"]["qty"], 3) << got[3];
    EXPECT_EQ(got[4]["dynamodb"]["OldImage"]["item"], "cake") << got[4];
    // One transaction's records share its id; the two transactions' differ.
    EXPECT_EQ(got[0]["transactionId"], got[2]["transactionId"]);
    EXPECT_NE(got[2]["transactionId"], got[3]["transactionId"]);

    // The mapping's state: everything delivered and acknowledged, nothing behind.
    ASSERT_TRUE(eventually([&] {
        const json m = d.api("GET", path).json();
        return m["records_delivered"] == 5 && m["acknowledged_lsn"].is_string() && m["lag_bytes"] == 0;
    }, 30s)) << d.api("GET", path).body;
    const json m = d.api("GET", path).json();
    EXPECT_EQ(m["state"], "Enabled") << m;
    EXPECT_TRUE(m["connected"].get<bool>()) << m;

    // Each delivery is an ordinary invocation, in the usage ledger with its trigger.
    const json invocations = d.api("GET", "/v1/functions/sink/invocations").json();
    ASSERT_FALSE(invocations["invocations"].empty()) << invocations;
    EXPECT_EQ(invocations["invocations"][0]["trigger"], "event-source") << invocations;

    ASSERT_EQ(d.api("DELETE", path).status, 204);
    EXPECT_TRUE(eventually([&] {
        return pg.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'funcd_%'") == "0";
    }, 15s)) << "the slot is dropped with its mapping";
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM pg_publication WHERE pubname LIKE 'funcd_%'"), "0");
}

// Prints each record's id, then takes a while: a SIGKILL lands with a batch in flight.
const char* kSlowSinkPy = R"(import json, time

def handler(event, context):
    for r in event["Records"]:
        print("ID " + json.dumps(r["dynamodb"]["Keys"]["id"]))
    time.sleep(0.4)
    return {}
)";

TEST(PostgresMapping, ASigkilledDaemonLosesNothingAndRepeatsOnlyTheBatchInFlight) {
    PostgresServer pg;
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY, item text)");
    Daemon d;
    d.keep_data_dir();
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSlowSinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/orders";
    const HttpResult created = d.api("PUT", path,
                                     postgres_mapping(pg.conninfo(), "public.orders", {{"batch_size", 5}}).dump());
    ASSERT_EQ(created.status, 201) << created.body;
    // Forty commits of one row each.
    std::string inserts;
    for (int i = 1; i <= 40; ++i) inserts += "INSERT INTO orders VALUES (" + std::to_string(i) + ", 'x');";
    pg.sql(inserts);

    auto ids = [](const Daemon& daemon) {
        std::vector<int> out;
        for (const auto& v : logged_json(daemon, "sink", "ID ")) out.push_back(v.get<int>());
        return out;
    };
    ASSERT_TRUE(eventually([&] { return ids(d).size() >= 10; }, 30s)) << function_log(d, "sink");
    d.stop(SIGKILL);
    const std::size_t before = ids(d).size();
    ASSERT_LT(before, 40u) << "everything was delivered before the kill: the test proves nothing";

    const auto dir = d.data_dir();
    {
        Daemon again({}, dir);
        ASSERT_TRUE(eventually([&] {
            const auto got = ids(again);
            return std::set<int>(got.begin(), got.end()).size() == 40;
        }, 60s)) << again.api("GET", path).body;
        // Every id arrived (the wait above); at most the batch in flight (5 records) twice.
        EXPECT_LE(ids(again).size(), 40u + 5u) << "more repeated than the batch in flight";
        ASSERT_EQ(again.api("DELETE", path).status, 204);
    }
    std::filesystem::remove_all(dir);
}

// Fails for the record whose item is "bad"; the rest succeed.
const char* kPickySinkPy = R"(import json

def handler(event, context):
    items = [r["dynamodb"]["NewImage"]["item"] for r in event["Records"]]
    if "bad" in items:
        raise ValueError("cannot take " + json.dumps(items))
    for r in event["Records"]:
        print("ID " + json.dumps(r["dynamodb"]["Keys"]["id"]))
    return {}
)";

TEST(PostgresMapping, AFailingRecordIsBisectedOutAndDeadLetteredWhileLaterRecordsContinue) {
    PostgresServer pg;
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY, item text)");
    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kPickySinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/orders";
    ASSERT_EQ(d.api("PUT", path,
                    postgres_mapping(pg.conninfo(), "public.orders",
                                     {{"batch_size", 8},
                                      {"maximum_batching_window_s", 1},
                                      {"maximum_retry_attempts", 0},
                                      {"bisect_batch_on_function_error", true}})
                        .dump())
                  .status, 201);
    std::string rows = "BEGIN;";
    for (int i = 1; i <= 8; ++i)
        rows += "INSERT INTO orders VALUES (" + std::to_string(i) + ", '" + (i == 5 ? "bad" : "good") + "');";
    pg.sql(rows + "COMMIT;");
    pg.sql("INSERT INTO orders VALUES (9, 'later')");

    auto ids = [&] {
        std::set<int> out;
        for (const auto& v : logged_json(d, "sink", "ID ")) out.insert(v.get<int>());
        return out;
    };
    ASSERT_TRUE(eventually([&] { return ids().contains(9); }, 60s))
        << d.api("GET", path).body << "\n" << function_log(d, "sink");
    EXPECT_EQ(ids(), (std::set<int>{1, 2, 3, 4, 6, 7, 8, 9})) << "all but the bad record, and the later one";
    const json letters = d.api("GET", "/v1/dead-letters?function=sink").json()["dead_letters"];
    ASSERT_EQ(letters.size(), 1u) << letters;
    EXPECT_NE(letters[0].dump().find("bad"), std::string::npos) << "the dead letter holds the bad record: " << letters;
    const json m = d.api("GET", path).json();
    EXPECT_GE(m["batches"]["failed"].get<int>(), 1) << m;
}

// Reports the first record of id 3 it sees as failed (ReportBatchItemFailures), once.
const char* kPartialSinkPy = R"(import json

failed_once = set()

def handler(event, context):
    ids = [r["dynamodb"]["Keys"]["id"] for r in event["Records"]]
    print("BATCH " + json.dumps(ids))
    for r in event["Records"]:
        if r["dynamodb"]["Keys"]["id"] == 3 and 3 not in failed_once:
            failed_once.add(3)
            return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}
)";

TEST(PostgresMapping, APartialBatchFailureResumesFromTheFirstFailedRecord) {
    PostgresServer pg;
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY, item text)");
    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kPartialSinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/orders";
    ASSERT_EQ(d.api("PUT", path,
                    postgres_mapping(pg.conninfo(), "public.orders",
                                     {{"batch_size", 5},
                                      {"maximum_batching_window_s", 1},
                                      {"function_response_types", {"ReportBatchItemFailures"}}})
                        .dump())
                  .status, 201);
    pg.sql("BEGIN; INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 5) g; COMMIT;");

    auto batches = [&] { return logged_json(d, "sink", "BATCH "); };
    ASSERT_TRUE(eventually([&] { return batches().size() >= 2; }, 30s))
        << d.api("GET", path).body << "\n" << function_log(d, "sink");
    std::this_thread::sleep_for(1s);  // nothing more may come
    const auto got = batches();
    ASSERT_EQ(got.size(), 2u) << function_log(d, "sink");
    EXPECT_EQ(got[0], json({1, 2, 3, 4, 5}));
    EXPECT_EQ(got[1], json({3, 4, 5})) << "the batch resumes from the failed record, not from its start";
    EXPECT_EQ(d.api("GET", "/v1/dead-letters?function=sink").json()["dead_letters"], json::array());
    EXPECT_TRUE(eventually([&] { return d.api("GET", path).json()["lag_bytes"] == 0; }, 15s))
        << d.api("GET", path).body;
}

TEST(PostgresMapping, PostgresRestartedUnderLoadIsReconnectedToWithNothingLost) {
    PostgresServer pg;
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY, item text)");
    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSlowSinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/orders";
    const json mapping =
        postgres_mapping(pg.conninfo(), "public.orders", {{"batch_size", 20}, {"maximum_batching_window_s", 1}});
    ASSERT_EQ(d.api("PUT", path, mapping.dump()).status, 201);

    // One row per commit, while the server goes away and comes back; a commit the server
    // refused is made again once it is back, so every id is committed exactly once.
    constexpr int kRows = 150;
    std::atomic<int> committed{0};
    std::thread writer([&] {
        for (int i = 1; i <= kRows; ++i) {
            for (;;) {
                try {
                    pg.sql("INSERT INTO orders VALUES (" + std::to_string(i) + ", 'x') ON CONFLICT DO NOTHING");
                    break;
                } catch (const std::exception&) {
                    std::this_thread::sleep_for(100ms);
                }
            }
            committed = i;
            std::this_thread::sleep_for(10ms);
        }
    });
    ASSERT_TRUE(eventually([&] { return committed >= 40; }, 30s));
    pg.stop();
    // The mapping shows the server gone, and why.
    const bool seen_down = eventually([&] {
        const json m = d.api("GET", path).json();
        return m["connected"] == false && m["last_error"].is_string();
    }, 30s);
    const std::string while_down = d.api("GET", path).body;
    pg.start();
    writer.join();
    ASSERT_TRUE(seen_down) << while_down;

    auto ids = [&] {
        std::set<int> out;
        for (const auto& v : logged_json(d, "sink", "ID ")) out.insert(v.get<int>());
        return out;
    };
    ASSERT_TRUE(eventually([&] { return ids().size() == static_cast<std::size_t>(kRows); }, 90s))
        << ids().size() << " of " << kRows << " delivered\n" << d.api("GET", path).body;
    ASSERT_TRUE(eventually([&] {
        const json m = d.api("GET", path).json();
        return m["connected"] == true && m["lag_bytes"] == 0 && m["state"] == "Enabled";
    }, 30s)) << d.api("GET", path).body;
}

// Counts each batch's records; a little slow, so a load builds up a lag.
const char* kCountingSinkPy = R"(import json, time

def handler(event, context):
    print("COUNT " + json.dumps(len(event["Records"])))
    time.sleep(0.05)
    return {}
)";

TEST(PostgresMapping, AHundredThousandRowsAreDeliveredWithTheLagReportedThenBackToZero) {
    PostgresServer pg;
    pg.sql("CREATE TABLE events (id int PRIMARY KEY, payload text)");
    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings({{"timeout_s", 60}}), python_zip(kCountingSinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/events";
    const json mapping = postgres_mapping(pg.conninfo(), "public.events", {{"batch_size", 1000}});
    ASSERT_EQ(d.api("PUT", path, mapping.dump()).status, 201);
    // A hundred transactions of a thousand rows.
    pg.sql("DO $$ BEGIN FOR t IN 0..99 LOOP "
           "INSERT INTO events SELECT g, md5(g::text) FROM generate_series(t * 1000 + 1, t * 1000 + 1000) g; "
           "COMMIT; END LOOP; END $$;");

    auto delivered = [&] {
        long n = 0;
        for (const auto& v : logged_json(d, "sink", "COUNT ")) n += v.get<long>();
        return n;
    };
    long max_lag_bytes = 0;
    double max_seconds_behind = 0;
    const bool all = eventually([&] {
        const json m = d.api("GET", path).json();
        if (m["lag_bytes"].is_number()) max_lag_bytes = std::max(max_lag_bytes, m["lag_bytes"].get<long>());
        if (m["seconds_behind"].is_number())
            max_seconds_behind = std::max(max_seconds_behind, m["seconds_behind"].get<double>());
        return m["records_delivered"].get<long>() >= 100000;
    }, 240s);
    ASSERT_TRUE(all) << d.api("GET", path).body;
    // The function's log has the last batches' lines moments after their invocations ended.
    EXPECT_TRUE(eventually([&] { return delivered() >= 100000; }, 15s)) << delivered();
    EXPECT_EQ(delivered(), 100000) << "every row once: nothing failed, so nothing was delivered twice";
    EXPECT_GT(max_lag_bytes, 0) << "the lag was reported while the load was delivered";
    EXPECT_GT(max_seconds_behind, 0.0);
    EXPECT_TRUE(eventually([&] {
        const json m = d.api("GET", path).json();
        return m["lag_bytes"] == 0 && m["seconds_behind"] == 0;
    }, 30s)) << d.api("GET", path).body;
}

TEST(PostgresMapping, ADisabledMappingsSlotIsReportedHoldingTheServersWal) {
    PostgresServer pg;
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY, item text)");
    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSinkPy)).status, 201);
    const std::string path = "/v1/functions/sink/event-sources/orders";
    ASSERT_EQ(d.api("PUT", path, postgres_mapping(pg.conninfo(), "public.orders").dump()).status, 201);
    EXPECT_FALSE(d.api("GET", path).json().contains("warning")) << "an enabled mapping shows no slot warning";
    ASSERT_EQ(d.api("POST", path + "/disable").status, 200);
    pg.sql("INSERT INTO orders SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g");

    // The slot holds everything since the mapping was disabled: more than the rows' 1 MB.
    json m;
    ASSERT_TRUE(eventually([&] {
        m = d.api("GET", path).json();
        return m["slot_retained_wal_bytes"].is_number() && m["slot_retained_wal_bytes"].get<long>() > 1'000'000;
    }, 30s)) << m;
    EXPECT_EQ(m["state"], "Disabled");
    ASSERT_TRUE(m["warning"].is_string()) << m;
    EXPECT_NE(m["warning"].get<std::string>().find("max_slot_wal_keep_size"), std::string::npos) << m;
    EXPECT_NE(d.log().find("is disabled, and its replication slot holds"), std::string::npos)
        << "the daemon's log says so too";

    // Enabled again, it reads the held changes: nothing was lost while it was off.
    ASSERT_EQ(d.api("POST", path + "/enable").status, 200);
    EXPECT_TRUE(eventually([&] { return records(d, "sink").size() >= 5000; }, 120s)) << d.api("GET", path).body;
    m = d.api("GET", path).json();
    EXPECT_FALSE(m.contains("warning")) << m;
    EXPECT_FALSE(m.contains("slot_retained_wal_bytes")) << m;
}

TEST(PostgresMapping, TheOrdersExampleSummarisesEachBatchAsItsReadmeSays) {
    // The example's README: a role with REPLICATION that owns the table and may create a
    // publication; inserts only.
    PostgresServer pg;
    pg.sql("CREATE ROLE funcd LOGIN REPLICATION;"
           "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL);"
           "ALTER TABLE orders OWNER TO funcd;"
           "GRANT CREATE ON DATABASE postgres TO funcd;");
    Daemon d;
    const std::string app = read_file(std::filesystem::path(FUNCD_SOURCE_DIR) / "examples/orders-postgres/app.py");
    ASSERT_FALSE(app.empty());
    ASSERT_EQ(d.deploy("orders-summary", python_settings(), python_zip(app)).status, 201);
    const HttpResult created = d.api("PUT", "/v1/functions/orders-summary/event-sources/orders",
                                     postgres_mapping(pg.conninfo("funcd"), "public.orders",
                                                      {{"events", {"insert"}},
                                                       {"batch_size", 100},
                                                       {"maximum_batching_window_s", 1}})
                                         .dump());
    ASSERT_EQ(created.status, 201) << created.body;
    pg.sql("INSERT INTO orders (customer, amount) VALUES ('ada', 12.50), ('bob', 30.00);"
           "UPDATE orders SET amount = 1 WHERE customer = 'ada';");
    ASSERT_TRUE(eventually([&] { return !logged_json(d, "orders-summary", "SUMMARY ").empty(); }, 30s))
        << function_log(d, "orders-summary");
    const json summary = logged_json(d, "orders-summary", "SUMMARY ").at(0);
    EXPECT_EQ(summary["orders"], 2) << summary;
    EXPECT_EQ(summary["total"], "42.5") << summary;
    EXPECT_EQ(summary["customers"], json({"ada", "bob"})) << summary;
    EXPECT_TRUE(summary["first"].is_string()) << summary;
    // The update is not among the mapping's events: no second batch comes for it.
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(logged_json(d, "orders-summary", "SUMMARY ").size(), 1u) << function_log(d, "orders-summary");
}

TEST(PostgresMapping, AMappingThatCannotWorkIsRefusedAtCreationWithTheReason) {
    PostgresServer pg;
    pg.sql("CREATE TABLE orders (id int PRIMARY KEY)");
    Daemon d;
    ASSERT_EQ(d.deploy("sink", python_settings(), python_zip(kSinkPy)).status, 201);
    const HttpResult missing = d.api("PUT", "/v1/functions/sink/event-sources/nope",
                                     postgres_mapping(pg.conninfo(), "public.no_such_table").dump());
    EXPECT_EQ(missing.status, 400) << missing.body;
    EXPECT_NE(missing.body.find("no_such_table"), std::string::npos) << missing.body;
    const json with_wrong_password =
        postgres_mapping(pg.conninfo_with_password("not-the-password"), "public.orders");
    const HttpResult wrong_password =
        d.api("PUT", "/v1/functions/sink/event-sources/pw", with_wrong_password.dump());
    EXPECT_EQ(wrong_password.status, 400) << wrong_password.body;
    EXPECT_EQ(wrong_password.body.find("not-the-password"), std::string::npos) << wrong_password.body;
    EXPECT_EQ(d.log().find("not-the-password"), std::string::npos) << "the password is never logged";
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM pg_replication_slots"), "0") << "nothing was left behind";
    EXPECT_EQ(d.api("GET", "/v1/functions/sink/event-sources").json()["event_sources"], json::array());
}

}  // namespace
}  // namespace funcd::testing
