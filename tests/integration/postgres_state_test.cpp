// funcd's shared state on a real PostgreSQL 15 (postgres_server.hpp): the schema's
// migrations, and the node store's conformance suite (tests/state/node_store_conformance.hpp)
// on the PostgreSQL backend.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <string>
#include <thread>
#include <vector>

#include "../state/node_store_conformance.hpp"
#include "funcd/state/pg_migrator.hpp"
#include "funcd/state/postgres_node_store.hpp"
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
    } catch (const PgError&) {
    }
    store->heartbeat(report("node-a", 2));
    EXPECT_EQ(store->nodes().at(0).report.load["workers"]["busy"], 2);
}

}  // namespace
}  // namespace funcd::testing
