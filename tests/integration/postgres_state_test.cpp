// funcd's shared state on a real PostgreSQL 15 (postgres_server.hpp): the schema's
// migrations, the node and function stores' conformance suites (tests/state/) on the
// PostgreSQL backend, shared code zips and the change listener.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../state/event_store_conformance.hpp"
#include "../state/function_store_conformance.hpp"
#include "../state/mapping_store_conformance.hpp"
#include "../state/node_store_conformance.hpp"
#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/state/pg_listener.hpp"
#include "funcd/state/pg_migrator.hpp"
#include "funcd/state/postgres_event_store.hpp"
#include "funcd/state/postgres_lease_store.hpp"
#include "funcd/state/postgres_mapping_store.hpp"
#include "funcd/registry/sqlite.hpp"
#include "funcd/state/postgres_function_store.hpp"
#include "funcd/state/postgres_node_store.hpp"
#include "funcd/state/postgres_trigger_store.hpp"
#include "funcd/state/postgres_usage_ledger.hpp"
#include "daemon_harness.hpp"
#include "postgres_server.hpp"

namespace funcd::testing {
namespace {

// One server for each suite, and a fresh database for each test.
template <class Base>
class FreshDatabase : public Base {
protected:
    static void SetUpTestSuite() { server_ = new PostgresServer(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    void SetUp() override {
        std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        database_ = "state_" + name.substr(0, 40);
        server_->sql("DROP DATABASE IF EXISTS " + database_);
        server_->sql("CREATE DATABASE " + database_);
    }
    std::string conninfo() const { return server_->conninfo("postgres", database_); }

    static inline PostgresServer* server_ = nullptr;
    std::string database_;
};

using PostgresState = FreshDatabase<::testing::Test>;

TEST_F(PostgresState, TheSchemaIsMigratedOnceAndRecordsItsVersion) {
    PgConnection conn = PgConnection::connect(conninfo());
    const int newest = pg_state_migrations().back().version;
    EXPECT_EQ(migrate_pg_schema(conn, pg_state_migrations()), newest);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_schema_migrations", database_),
              std::to_string(pg_state_migrations().size()));
    EXPECT_EQ(server_->scalar("SELECT to_regclass('funcd_nodes') IS NOT NULL", database_), "t");
    // Again: nothing to do, nothing recorded twice.
    EXPECT_EQ(migrate_pg_schema(conn, pg_state_migrations()), newest);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_schema_migrations", database_),
              std::to_string(pg_state_migrations().size()));
}

TEST_F(PostgresState, NodesStartingTogetherMigrateOnceBetweenThem) {
    constexpr int kNodes = 4;
    std::atomic<int> failures{0};
    std::vector<std::thread> nodes;
    for (int i = 0; i < kNodes; ++i)
        nodes.emplace_back([&] {
            try {
                PgConnection conn = PgConnection::connect(conninfo());
                migrate_pg_schema(conn, pg_state_migrations());
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
                ++failures;
            }
        });
    for (auto& t : nodes) t.join();
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_schema_migrations", database_),
              std::to_string(pg_state_migrations().size()));
}

TEST_F(PostgresState, ADatabaseANewerFuncdMigratedIsRefused) {
    PgConnection conn = PgConnection::connect(conninfo());
    migrate_pg_schema(conn, pg_state_migrations());
    server_->sql("INSERT INTO funcd_schema_migrations (version, name) VALUES (9999, 'from the future')", database_);
    try {
        migrate_pg_schema(conn, pg_state_migrations());
        FAIL() << "a schema newer than this funcd was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("9999"), std::string::npos) << e.what();
    }
}

TEST_F(PostgresState, AFailedMigrationLeavesNothingOfItselfAndIsTriedAgain) {
    static const PgMigration kBroken[] = {
        {1, "fine", "CREATE TABLE t_fine (x int)"},
        {2, "broken halfway", "CREATE TABLE t_half (x int); SELECT no_such_function()"},
    };
    PgConnection conn = PgConnection::connect(conninfo());
    try {
        migrate_pg_schema(conn, kBroken);
        FAIL() << "a failing migration was recorded";
    } catch (const PgError& e) {
        EXPECT_EQ(e.sqlstate(), "42883") << e.what() << ": the script's second statement, after its first ran";
    }
    EXPECT_EQ(server_->scalar("SELECT max(version) FROM funcd_schema_migrations", database_), "1");
    EXPECT_EQ(server_->scalar("SELECT to_regclass('t_half') IS NULL", database_), "t") << "rolled back whole";
    static const PgMigration kFixed[] = {
        {1, "fine", "CREATE TABLE t_fine (x int)"},
        {2, "fixed", "CREATE TABLE t_half (x int)"},
    };
    EXPECT_EQ(migrate_pg_schema(conn, kFixed), 2);
}

// The schema migrated in each test's database; each open() a connection of its own, as
// each node has.
class PostgresNodeStoreConformance : public FreshDatabase<NodeStoreConformance> {
protected:
    void SetUp() override {
        FreshDatabase::SetUp();
        PgConnection conn = PgConnection::connect(conninfo());
        migrate_pg_schema(conn, pg_state_migrations());
    }
    std::unique_ptr<NodeStore> open() override { return std::make_unique<PostgresNodeStore>(conninfo()); }
};

FUNCD_NODE_STORE_CONFORMANCE(PostgresNodeStoreConformance)

TEST_F(PostgresNodeStoreConformance, AStoreWhoseConnectionWasCutConnectsAgain) {
    auto store = open();
    store->heartbeat(report("node-a", 0));
    server_->sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database_ +
                 "' AND pid <> pg_backend_pid()");
    // The cut is seen by the next query, which fails; the one after connects again.
    try {
        store->heartbeat(report("node-a", 1));
    } catch (const std::exception&) {
        // ApiError (503): the database could not be reached by that query.
    }
    store->heartbeat(report("node-a", 2));
    EXPECT_EQ(store->nodes().at(0).report.load["workers"]["busy"], 2);
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

class PostgresFunctionStoreConformance : public FreshDatabase<FunctionStoreConformance> {
protected:
    void SetUp() override {
        FreshDatabase::SetUp();
        PgConnection conn = PgConnection::connect(conninfo());
        migrate_pg_schema(conn, pg_state_migrations());
    }
    std::unique_ptr<FunctionStore> open() override { return std::make_unique<PostgresFunctionStore>(conninfo()); }
};

FUNCD_FUNCTION_STORE_CONFORMANCE(PostgresFunctionStoreConformance)

using PostgresSharedCode = PostgresFunctionStoreConformance;

TEST_F(PostgresSharedCode, AZipComesBackByteForByteAcrossChunksAndIsStoredOnce) {
    PostgresCodeBlobStore first(conninfo());
    PostgresCodeBlobStore second(conninfo());
    // Over two chunks (1 MiB each), with every byte value, NULs included.
    std::string zip;
    for (std::size_t i = 0; i < (1u << 20) + 4097; ++i) zip.push_back(static_cast<char>((i * 131 + i / 7) & 0xff));
    const std::string sha = sha256_hex(zip);
    EXPECT_FALSE(second.touch(sha));
    EXPECT_FALSE(second.get(sha));
    first.put(sha, zip);
    first.put(sha, zip);  // again: nothing changes
    EXPECT_TRUE(second.touch(sha));
    const auto back = second.get(sha);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->size(), zip.size());
    EXPECT_TRUE(*back == zip);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_code_chunks WHERE sha256 = '" + sha + "'", database_), "2");
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_code", database_), "1");
    const std::string empty_sha = sha256_hex("");
    first.put(empty_sha, "");
    EXPECT_EQ(second.get(empty_sha).value_or("x"), "") << "an empty zip is a zip too";
}

TEST_F(PostgresSharedCode, ACollectionRemovesUnnamedZipsOnlyOnceTheirGraceSinceTheLastPutOrTouchIsOver) {
    PostgresCodeBlobStore store(conninfo());
    const std::string kept = "kept zip", dropped = "dropped zip", touched = "touched zip";
    for (const auto& z : {kept, dropped, touched}) store.put(sha256_hex(z), z);
    const std::set<std::string> in_use{sha256_hex(kept)};
    EXPECT_EQ(store.collect(in_use, std::chrono::seconds(3600)), 0u) << "all within their grace";
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_TRUE(store.touch(sha256_hex(touched))) << "a deploy found it there";
    EXPECT_EQ(store.collect(in_use, std::chrono::seconds(1)), 1u);
    EXPECT_FALSE(store.get(sha256_hex(dropped)));
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_code_chunks WHERE sha256 = '" + sha256_hex(dropped) + "'",
                              database_),
              "0")
        << "its chunks go with it";
    EXPECT_EQ(store.get(sha256_hex(kept)).value_or(""), kept);
    EXPECT_EQ(store.get(sha256_hex(touched)).value_or(""), touched) << "touched within its grace";
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(store.collect(in_use, std::chrono::seconds(1)), 1u);
    EXPECT_FALSE(store.touch(sha256_hex(touched)));
    // Put again after its removal: whole again.
    store.put(sha256_hex(touched), touched);
    EXPECT_EQ(store.get(sha256_hex(touched)).value_or(""), touched);
}

TEST_F(PostgresSharedCode, AnUnreachableDatabaseIsA503ThatPassesOnceItIsBack) {
    PostgresFunctionStore store(conninfo());
    ASSERT_TRUE(store.put_function("f", std::string("F1"), 0));
    server_->stop();
    try {
        store.changes_since(0);
        ADD_FAILURE() << "read a stopped database";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 503);
        EXPECT_NE(std::string(e.what()).find("cannot be reached"), std::string::npos) << e.what();
    }
    server_->start();
    EXPECT_EQ(store.changes_since(0).functions.at(0).doc, "F1") << "the next call connects again";
}

TEST_F(PostgresSharedCode, TheListenerIsToldOfEachWriteAndPollsBetween) {
    std::atomic<int> calls{0};
    PgListener listener(conninfo(), kStateChannel, std::chrono::seconds(30), [&] { ++calls; });
    listener.start();
    auto wait_for = [&](int n) {
        for (int i = 0; i < 500 && calls.load() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return calls.load();
    };
    EXPECT_GE(wait_for(1), 1) << "once at the start: what happened while nobody listened";
    const int before = calls.load();
    PostgresFunctionStore store(conninfo());
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(store.put_function("f", std::string("F1"), 0));
    EXPECT_GE(wait_for(before + 1), before + 1);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1)) << "told, not polled (every 30 s)";
    EXPECT_GE(listener.notifications(), 1u);
    // Its connection cut: it listens again, and says so with a call (what it may have missed).
    const int before_cut = calls.load();
    server_->sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database_ +
                 "' AND pid <> pg_backend_pid()");
    EXPECT_GE(wait_for(before_cut + 1), before_cut + 1);
    listener.stop();
}

TEST_F(PostgresSharedCode, TheListenerPollsWhenNothingTellsIt) {
    std::atomic<int> calls{0};
    PgListener listener(conninfo(), kStateChannel, std::chrono::milliseconds(100), [&] { ++calls; });
    listener.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(750));
    listener.stop();
    EXPECT_GE(calls.load(), 4) << "about one call per 100 ms";
    EXPECT_EQ(listener.notifications(), 0u);
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

class PostgresEventStoreConformance : public FreshDatabase<EventStoreConformance> {
protected:
    void SetUp() override {
        FreshDatabase::SetUp();
        PgConnection conn = PgConnection::connect(conninfo());
        migrate_pg_schema(conn, pg_state_migrations());
    }
    // The same node each time, as a restart of it.
    std::unique_ptr<EventStore> open() override { return node("node-a", std::chrono::seconds(15)); }
    std::unique_ptr<EventStore> node(const std::string& id, std::chrono::seconds lease) {
        return std::make_unique<PostgresEventStore>(conninfo(), id, lease);
    }
};

FUNCD_EVENT_STORE_CONFORMANCE(PostgresEventStoreConformance)

TEST_F(PostgresEventStoreConformance, ANodesEventsAreRescuedOnlyOnceItsClaimHasExpired) {
    auto a = node("node-a", std::chrono::seconds(1));
    auto b = node("node-b", std::chrono::seconds(15));
    EXPECT_TRUE(a->take_pending().empty());  // takes a's lease
    for (int i = 0; i < 3; ++i) a->enqueue(event("e" + std::to_string(i), "fn", 10 - i));
    EXPECT_TRUE(b->take_pending().empty()) << "a's claim holds";
    EXPECT_TRUE(b->rescue(10).empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a's lease runs out
    EXPECT_EQ(ids(b->rescue(2)), (std::vector<std::string>{"e0", "e1"})) << "oldest first, at most the limit";
    EXPECT_EQ(ids(b->rescue(10)), std::vector<std::string>{"e2"});
    EXPECT_TRUE(b->rescue(10).empty()) << "b's now, and b's claim holds";
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_async_events WHERE owner = 'node-b'", database_), "3");
    // a comes back: it renews, and what it enqueues now is its own again.
    a->renew_claims();
    a->enqueue(event("late", "fn"));
    EXPECT_TRUE(b->rescue(10).empty());
}

TEST_F(PostgresEventStoreConformance, NodesRescuingAtOnceNeverTakeTheSameEvent) {
    {
        auto dead = node("node-dead", std::chrono::seconds(1));
        dead->take_pending();
        for (int i = 0; i < 300; ++i) dead->enqueue(event("d" + std::to_string(i), "fn"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::vector<std::string> got[3];
    std::vector<std::thread> rescuers;
    for (int n = 0; n < 3; ++n)
        rescuers.emplace_back([&, n] {
            auto store = node("rescuer-" + std::to_string(n), std::chrono::seconds(15));
            store->renew_claims();
            while (true) {
                const auto batch = store->rescue(25);
                if (batch.empty()) break;
                for (const auto& e : batch) got[n].push_back(e.id);
            }
        });
    for (auto& t : rescuers) t.join();
    std::set<std::string> all;
    std::size_t total = 0;
    for (const auto& g : got) {
        all.insert(g.begin(), g.end());
        total += g.size();
    }
    EXPECT_EQ(total, 300u) << "each taken once";
    EXPECT_EQ(all.size(), 300u);
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

class PostgresMappingStoreConformance : public FreshDatabase<MappingStoreConformance> {
protected:
    void SetUp() override {
        MappingStoreConformance::SetUp();
        FreshDatabase::SetUp();
        PgConnection conn = PgConnection::connect(conninfo());
        migrate_pg_schema(conn, pg_state_migrations());
    }
    std::unique_ptr<MappingStore> open(const EnvCipher& cipher) override { return node("node-a", cipher); }
    std::unique_ptr<PostgresMappingStore> node(const std::string& id, const EnvCipher& cipher) {
        return std::make_unique<PostgresMappingStore>(conninfo(), id, cipher);
    }
    void hold(const std::string& uuid) override {
        PostgresLeaseStore leases(conninfo());
        ASSERT_TRUE(leases.acquire(mapping_lease_name(uuid), "node-a", std::chrono::seconds(30)));
    }
    std::string stored_text(const std::string& uuid) override {
        return server_->scalar("SELECT config_json FROM funcd_event_source_mappings WHERE uuid = '" + uuid + "'",
                               database_);
    }
};

FUNCD_MAPPING_STORE_CONFORMANCE(PostgresMappingStoreConformance)

TEST_F(PostgresMappingStoreConformance, OnlyTheNodeHoldingAMappingsLeaseMovesItsCheckpoint) {
    auto a = node("node-a", *cipher_);
    auto b = node("node-b", *cipher_);
    a->put(mapping("u-1", "resize", "orders"));
    EXPECT_FALSE(a->save_checkpoint("u-1", ChangePosition{10, 0})) << "nobody holds its lease";
    PostgresLeaseStore leases(conninfo());
    ASSERT_TRUE(leases.acquire(mapping_lease_name("u-1"), "node-a", std::chrono::seconds(1)));
    EXPECT_TRUE(a->save_checkpoint("u-1", ChangePosition{20, 1}));
    EXPECT_FALSE(b->save_checkpoint("u-1", ChangePosition{30, 0})) << "node a holds it";
    // Node a's lease expires and node b takes it: node a, not knowing yet, cannot move it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    ASSERT_TRUE(leases.acquire(mapping_lease_name("u-1"), "node-b", std::chrono::seconds(30)));
    EXPECT_EQ(leases.holder(mapping_lease_name("u-1")), "node-b");
    EXPECT_FALSE(a->save_checkpoint("u-1", ChangePosition{40, 0}));
    EXPECT_TRUE(b->save_checkpoint("u-1", ChangePosition{50, 2}));
    const auto all = a->list();
    ASSERT_EQ(all.size(), 1u);
    ASSERT_TRUE(all[0].checkpoint);
    EXPECT_EQ(all[0].checkpoint->commit_lsn, 50u);
    EXPECT_EQ(all[0].checkpoint->ordinal, 2u);
    // Given up, and deleted with its mapping.
    leases.release(mapping_lease_name("u-1"), "node-a");
    EXPECT_EQ(leases.holder(mapping_lease_name("u-1")), "node-b") << "only its holder gives a lease up";
    EXPECT_TRUE(b->remove("u-1"));
    EXPECT_FALSE(leases.holder(mapping_lease_name("u-1")));
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

using PostgresTriggersAndLeases = PostgresFunctionStoreConformance;

TEST_F(PostgresTriggersAndLeases, EachScheduleFireIsTakenOnceWhicheverNodesAsk) {
    PostgresTriggerStore first(conninfo(), "node-a");
    PostgresTriggerStore second(conninfo(), "node-b");
    const auto at = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    // Both nodes ask for the same 20 fires at once: each is taken exactly once.
    std::atomic<int> taken{0};
    auto ask = [&](PostgresTriggerStore& store) {
        for (int i = 0; i < 20; ++i)
            if (store.claim_fire("fn", "tick", at + std::chrono::minutes(i))) ++taken;
    };
    std::thread a([&] { ask(first); });
    std::thread b([&] { ask(second); });
    a.join();
    b.join();
    EXPECT_EQ(taken.load(), 20);
    EXPECT_TRUE(first.claim_fire("fn", "other", at)) << "per schedule";
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_schedule_fires", database_), "21");
    first.drop_function("fn");
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_schedule_fires", database_), "0");
}

TEST_F(PostgresTriggersAndLeases, DefinitionsAreSharedAndFileTriggersNameTheirNode) {
    PostgresTriggerStore first(conninfo(), "node-a");
    PostgresTriggerStore second(conninfo(), "node-b");
    ScheduleDefinition s;
    s.function = "fn";
    s.name = "nightly";
    s.expression = "cron(0 3 * * ? *)";
    s.input = nlohmann::json{{"k", 1}};
    s.created = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    first.put_schedule(s);
    FileTriggerDefinition f;
    f.function = "fn";
    f.name = "inbox";
    f.directory = "/srv/inbox";
    f.patterns = {"*.csv"};
    f.events = {"created"};
    f.node = "node-a";
    first.put_file_trigger(f);
    first.put_routes(nlohmann::json::array({{{"method", "GET"}, {"path", "/x"}, {"function", "fn"}}}));
    const auto schedules = second.schedules();
    ASSERT_EQ(schedules.size(), 1u);
    EXPECT_EQ(schedule_definition_json(schedules[0]), schedule_definition_json(s));
    const auto files = second.file_triggers();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0].node, "node-a");
    EXPECT_EQ(files[0].patterns, std::vector<std::string>{"*.csv"});
    EXPECT_EQ(second.routes().size(), 1u);
    EXPECT_TRUE(second.delete_schedule("fn", "nightly"));
    EXPECT_FALSE(first.delete_schedule("fn", "nightly"));
    EXPECT_TRUE(first.schedules().empty());
}

TEST_F(PostgresTriggersAndLeases, ALeaseIsHeldByOneHolderUntilItExpires) {
    PostgresLeaseStore first(conninfo());
    PostgresLeaseStore second(conninfo());
    EXPECT_TRUE(first.acquire("scheduler", "node-a", std::chrono::seconds(1)));
    EXPECT_FALSE(second.acquire("scheduler", "node-b", std::chrono::seconds(1))) << "held by node-a";
    EXPECT_TRUE(first.acquire("scheduler", "node-a", std::chrono::seconds(1))) << "renewed by its holder";
    EXPECT_TRUE(second.acquire("other", "node-b", std::chrono::seconds(1))) << "leases are by name";
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    EXPECT_TRUE(second.acquire("scheduler", "node-b", std::chrono::seconds(10))) << "expired: taken over";
    EXPECT_FALSE(first.acquire("scheduler", "node-a", std::chrono::seconds(10)));
    // Asked for by many at once: one holder.
    std::atomic<int> holders{0};
    std::vector<std::thread> askers;
    for (int i = 0; i < 4; ++i)
        askers.emplace_back([&, i] {
            PostgresLeaseStore store(conninfo());
            if (store.acquire("contended", "node-" + std::to_string(i), std::chrono::seconds(30))) ++holders;
        });
    for (auto& t : askers) t.join();
    EXPECT_EQ(holders.load(), 1);
}

}  // namespace
}  // namespace funcd::testing

namespace funcd::testing {
namespace {

// Two nodes' usage stores, each with its own data directory and journal, shipping to one
// shared ledger.
class PostgresSharedUsage : public PostgresFunctionStoreConformance {
protected:
    struct UsageNode {
        UsageNode(const std::string& conninfo, const std::string& id, const std::filesystem::path& dir)
            : ledger(conninfo, id, dir / "funcd.db"),
              store(dir / "funcd.db", dir / "usage.journal", UsageStoreOptions{{}, {}, &ledger}) {
            ledger.start();
        }
        ~UsageNode() {
            store.stop();
            ledger.stop();
        }
        PostgresUsageLedger ledger;
        UsageStore store;
    };

    void SetUp() override {
        PostgresFunctionStoreConformance::SetUp();
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-usage-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::filesystem::remove_all(dir_);
        PostgresFunctionStoreConformance::TearDown();
    }
    std::unique_ptr<UsageNode> node(const std::string& id) {
        std::filesystem::create_directories(dir_ / id);
        return std::make_unique<UsageNode>(conninfo(), id, dir_ / id);
    }
    static UsageRecord record(const std::string& function, int i, Outcome outcome = Outcome::success) {
        UsageRecord r;
        r.request_id = function + "-" + std::to_string(i);
        r.function = function;
        r.version = 1;
        r.start = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        r.duration_us = 1500 + i;
        r.billed_ms = billed_ms_for(r.duration_us);
        r.memory_mb = 128;
        r.max_memory_used_mb = 20;
        if (i == 0) r.init_duration_us = 50'000;
        r.outcome = outcome;
        r.trace_id = "Root=1-00000000-" + std::string(24 - std::to_string(i).size(), '0') + std::to_string(i) +
                     ";Parent=0000000000000001;Sampled=0";
        r.trigger = "api";
        return r;
    }

    std::filesystem::path dir_;
};

TEST_F(PostgresSharedUsage, EveryNodeAnswersWithTheRecordsOfAllOfThem) {
    auto a = node("node-a");
    auto b = node("node-b");
    for (int i = 0; i < 30; ++i) a->store.record(record("shared-fn", i));
    for (int i = 30; i < 50; ++i) b->store.record(record("shared-fn", i, i == 30 ? Outcome::function_error : Outcome::success));
    b->store.record(record("only-b", 0));
    b->store.record(record("shared-fn", 99, Outcome::throttled));
    // A node's query includes its own records at once, the other node's once it has shipped
    // them (its batching window, then every 500 ms).
    for (auto* n : {a.get(), b.get()})
        ASSERT_TRUE(eventually([&] { return n->store.report({}).total.invocations == 51; }, std::chrono::seconds(5)));
    for (auto* n : {a.get(), b.get()}) {
        const UsageReport r = n->store.report({});
        ASSERT_EQ(r.functions.size(), 2u);
        EXPECT_EQ(r.functions[0].name, "only-b");
        EXPECT_EQ(r.functions[1].name, "shared-fn");
        EXPECT_EQ(r.functions[1].invocations, 50) << "30 from a, 20 from b; the throttle is no invocation";
        EXPECT_EQ(r.functions[1].errors, 1);
        EXPECT_EQ(r.functions[1].cold_starts, 1);
        EXPECT_EQ(r.total.invocations, 51);
        EXPECT_EQ(n->store.records(std::string("shared-fn"), 1000).size(), 50u);
        EXPECT_EQ(n->store.invocations({"shared-fn", {}, {}, {}, 1000}).size(), 51u) << "throttles included";
        EXPECT_EQ(n->store.invocations({"shared-fn", {}, {}, Outcome::function_error, 10}).size(), 1u);
        const auto trace = n->store.trace_invocations("1-00000000-000000000000000000000042", std::nullopt, 10);
        ASSERT_EQ(trace.size(), 1u);
        EXPECT_EQ(trace[0].request_id, "shared-fn-42");
        const auto now = std::chrono::system_clock::now();
        const auto buckets = n->store.stats({"shared-fn", now - std::chrono::minutes(5), now + std::chrono::minutes(1),
                                             std::chrono::seconds(60)});
        std::int64_t counted = 0;
        for (const auto& bucket : buckets) counted += bucket.invocations;
        EXPECT_EQ(counted, 50);
    }
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_usage WHERE node = 'node-b'", database_), "22");
}

TEST_F(PostgresSharedUsage, ABatchShippedAgainCountsOnceAndAStoppedDatabaseLosesNothing) {
    {
        auto a = node("node-a");
        for (int i = 0; i < 10; ++i) a->store.record(record("fn", i));
        EXPECT_EQ(a->store.report({}).total.invocations, 10);
    }
    // As if the node died between shipping and noting it: everything is shipped again.
    {
        sqlite::Database local(dir_ / "node-a" / "funcd.db");
        local.exec("UPDATE usage_shipped SET last_rowid = 0");
    }
    {
        auto a = node("node-a");
        EXPECT_EQ(a->store.report({}).total.invocations, 10) << "shipped twice, counted once";
        // The shared database goes away: records stay in the node's own ledger...
        server_->stop();
        for (int i = 10; i < 15; ++i) a->store.record(record("fn", i));
        EXPECT_THROW(a->store.report({}), ApiError) << "a query needs the shared ledger: 503";
        server_->start();
        // ...and are shipped once it is back.
        EXPECT_TRUE(eventually([&] {
            try {
                return a->store.report({}).total.invocations == 15;
            } catch (const ApiError&) {
                return false;
            }
        }));
    }
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM funcd_usage", database_), "15");
}

}  // namespace
}  // namespace funcd::testing
