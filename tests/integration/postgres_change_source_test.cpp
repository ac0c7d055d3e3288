// PostgresChangeSource and the setup of its publication and slot against a real PostgreSQL
// (postgres_server.hpp), driven directly on an io_context run by the test's thread.
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "funcd/event_sources/pg_connection.hpp"
#include "funcd/event_sources/postgres_change_source.hpp"
#include "funcd/event_sources/postgres_setup.hpp"
#include "postgres_server.hpp"

namespace funcd {
namespace {

using testing::PostgresServer;
using namespace std::chrono_literals;

class PostgresChangeSourceTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { server_ = new PostgresServer(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }

    void SetUp() override {
        // Each test its own table, mapping, publication and slot.
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        id_ = std::string(info->name());
        for (auto& c : id_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        table_ = "t_" + id_;
    }

    void TearDown() override {
        if (source_) source_->stop();
        source_.reset();
        if (!created_) return;
        try {
            drop_postgres_source(server_->conninfo(), id_);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "dropping the test's slot: " << e.what();
        }
    }

    PostgresSourceSetup create(const std::vector<std::string>& tables) {
        auto setup = create_postgres_source(server_->conninfo(), id_, tables);
        created_ = true;
        return setup;
    }

    std::unique_ptr<PostgresChangeSource> make_source(EventSourceLimits limits = {}) {
        const auto names = postgres_source_names(id_);
        return std::make_unique<PostgresChangeSource>(
            io_, PostgresSourceConfig{id_, server_->conninfo(), names.slot, names.publication}, limits);
    }

    // Reads from `source` until `n` changes arrived (or `patience` passed), `batch` at a time.
    std::vector<RowChange> read_n(PostgresChangeSource& source, std::size_t n, std::size_t batch = 1000,
                                  std::chrono::milliseconds patience = 20s) {
        std::vector<RowChange> got;
        const auto give_up = std::chrono::steady_clock::now() + patience;
        while (got.size() < n && std::chrono::steady_clock::now() < give_up) {
            if (!reading_) {
                reading_ = true;
                source.read(batch, [this, &got](std::error_code ec, std::vector<RowChange> changes) {
                    reading_ = false;
                    if (ec) return;
                    for (auto& c : changes) got.push_back(std::move(c));
                });
            }
            run_for(20ms);
        }
        // A read still outstanding would write into `got` after it is gone: end it (and
        // with it the source).
        while (reading_) {
            source.stop();
            run_for(10ms);
        }
        return got;
    }

    // Runs the loop while `f` (a blocking call on the server) runs on a thread of its own,
    // so the source answers the server meanwhile (a shutting-down server waits for its
    // replication clients' replies).
    template <class F>
    void while_looping(F f) {
        auto done = std::async(std::launch::async, std::move(f));
        while (done.wait_for(0ms) != std::future_status::ready) run_for(20ms);
        done.get();
    }

    // The loop stops itself whenever it runs out of work (a source stopped, none started
    // yet): restarted before each run.
    void run_for(std::chrono::milliseconds d) {
        io_.restart();
        io_.run_for(d);
    }

    static PostgresServer* server_;
    boost::asio::io_context io_;
    bool reading_ = false;
    std::unique_ptr<PostgresChangeSource> source_;
    std::string id_;
    std::string table_;
    bool created_ = false;
};

PostgresServer* PostgresChangeSourceTest::server_ = nullptr;

std::vector<std::int64_t> ids_of(const std::vector<RowChange>& changes) {
    std::vector<std::int64_t> ids;
    for (const auto& c : changes) ids.push_back(c.keys.at("id").get<std::int64_t>());
    return ids;
}

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
    std::vector<std::int64_t> v;
    for (auto i = from; i <= to; ++i) v.push_back(i);
    return v;
}

TEST_F(PostgresChangeSourceTest, InsertsUpdatesAndDeletesArriveTypedInCommitOrder) {
    server_->sql("CREATE TABLE " + table_ +
                 " (id bigint PRIMARY KEY, name text, n int4, small int2, big int8, f float8, amount numeric,"
                 " flag bool, doc jsonb, bin bytea, at timestamptz, day date, uid uuid, tags text[])");
    create({table_});
    source_ = make_source();
    source_->start({});
    const auto before = std::chrono::system_clock::now() - 5s;
    server_->sql("SET TimeZone = 'Asia/Kolkata'; INSERT INTO " + table_ +
                 " VALUES (1, 'pen', -7, 3, 9007199254740993, 1.5, 12.50, true, '{\"a\": [1, \"x\"]}',"
                 " '\\x68656c6c6f', '2026-01-02 08:34:05.25+05:30', '2026-01-02',"
                 " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{a,b}')");
    server_->sql("UPDATE " + table_ + " SET name = 'pencil', f = 'NaN', amount = NULL WHERE id = 1");
    server_->sql("DELETE FROM " + table_ + " WHERE id = 1");

    const auto got = read_n(*source_, 3);
    ASSERT_EQ(got.size(), 3u) << source_->status().last_error;
    const auto& ins = got[0];
    EXPECT_EQ(ins.table, "public." + table_);
    EXPECT_EQ(ins.operation, RowOperation::insert);
    EXPECT_EQ(ins.keys, (nlohmann::json{{"id", 1}}));
    EXPECT_EQ(ins.new_image, nlohmann::json::parse(R"({"id": 1, "name": "pen", "n": -7, "small": 3,
        "big": 9007199254740993, "f": 1.5, "amount": 12.5, "flag": true, "doc": {"a": [1, "x"]},
        "bin": "aGVsbG8=", "at": "2026-01-02T03:04:05.25Z", "day": "2026-01-02",
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "tags": "{a,b}"})"));
    EXPECT_TRUE(ins.old_image.is_null());
    EXPECT_TRUE(ins.last_in_transaction);
    EXPECT_EQ(ins.position.ordinal, 0u);
    EXPECT_NE(ins.lsn, 0u);
    EXPECT_NE(ins.xid, 0u);
    EXPECT_GT(ins.commit_time, before);
    EXPECT_LT(ins.commit_time, std::chrono::system_clock::now() + 5s);

    const auto& upd = got[1];
    EXPECT_EQ(upd.operation, RowOperation::update);
    EXPECT_EQ(upd.new_image["name"], "pencil");
    EXPECT_EQ(upd.new_image["f"], "NaN");
    EXPECT_TRUE(upd.new_image["amount"].is_null());
    // Replica identity DEFAULT and an unchanged key: no old row.
    EXPECT_TRUE(upd.old_image.is_null());

    const auto& del = got[2];
    EXPECT_EQ(del.operation, RowOperation::remove);
    EXPECT_EQ(del.keys, (nlohmann::json{{"id", 1}}));
    EXPECT_EQ(del.old_image, (nlohmann::json{{"id", 1}}));
    EXPECT_TRUE(del.new_image.is_null());

    EXPECT_LT(got[0].position, got[1].position);
    EXPECT_LT(got[1].position, got[2].position);
    EXPECT_LT(got[0].lsn, got[0].position.commit_lsn);

    const auto st = source_->status();
    EXPECT_TRUE(st.connected);
    EXPECT_EQ(st.last_received, got[2].position.commit_lsn);
    ASSERT_TRUE(st.server_wal_end.has_value());
    EXPECT_GE(*st.server_wal_end, got[2].lsn);
    EXPECT_TRUE(st.last_commit_time.has_value());
}

TEST_F(PostgresChangeSourceTest, InterleavedTransactionsArriveInCommitOrderAndWhole) {
    server_->sql("CREATE TABLE " + table_ + " (id bigint PRIMARY KEY, tx text)");
    create({table_});
    source_ = make_source();
    source_->start({});
    auto a = PgConnection::connect(server_->conninfo());
    auto b = PgConnection::connect(server_->conninfo());
    const std::string ins = "INSERT INTO " + table_ + " VALUES ";
    a.query("BEGIN");
    a.query(ins + "(1, 'a')");
    b.query("BEGIN");
    b.query(ins + "(2, 'b')");
    a.query(ins + "(3, 'a')");
    b.query(ins + "(4, 'b')");
    b.query("COMMIT");
    a.query(ins + "(5, 'a')");
    a.query("COMMIT");

    // Read one at a time: batch boundaries cut the transactions.
    const auto got = read_n(*source_, 5, 1);
    ASSERT_EQ(got.size(), 5u) << source_->status().last_error;
    EXPECT_EQ(ids_of(got), (std::vector<std::int64_t>{2, 4, 1, 3, 5}));
    EXPECT_EQ(got[0].position.commit_lsn, got[1].position.commit_lsn);
    EXPECT_EQ(got[2].position.commit_lsn, got[4].position.commit_lsn);
    EXPECT_LT(got[1].position.commit_lsn, got[2].position.commit_lsn);
    std::vector<bool> last;
    std::vector<std::uint32_t> ordinals;
    for (const auto& c : got) {
        last.push_back(c.last_in_transaction);
        ordinals.push_back(c.position.ordinal);
    }
    EXPECT_EQ(last, (std::vector<bool>{false, true, false, false, true}));
    EXPECT_EQ(ordinals, (std::vector<std::uint32_t>{0, 1, 0, 1, 2}));
    EXPECT_NE(got[0].xid, got[2].xid);
}

TEST_F(PostgresChangeSourceTest, ReplicaIdentityFullGivesOldImages) {
    server_->sql("CREATE TABLE " + table_ + " (id int PRIMARY KEY, name text, qty int);"
                 "ALTER TABLE " + table_ + " REPLICA IDENTITY FULL");
    const auto setup = create({table_});
    ASSERT_EQ(setup.tables.size(), 1u);
    EXPECT_EQ(setup.tables[0].identity, pgoutput::ReplicaIdentity::full);
    EXPECT_TRUE(setup.tables[0].has_primary_key);
    source_ = make_source();
    source_->start({});
    server_->sql("INSERT INTO " + table_ + " VALUES (1, 'pen', 5); UPDATE " + table_ +
                 " SET qty = 6 WHERE id = 1; DELETE FROM " + table_ + " WHERE id = 1");
    const auto got = read_n(*source_, 3);
    ASSERT_EQ(got.size(), 3u) << source_->status().last_error;
    EXPECT_EQ(got[1].old_image, (nlohmann::json{{"id", 1}, {"name", "pen"}, {"qty", 5}}));
    EXPECT_EQ(got[1].new_image, (nlohmann::json{{"id", 1}, {"name", "pen"}, {"qty", 6}}));
    EXPECT_EQ(got[2].old_image, (nlohmann::json{{"id", 1}, {"name", "pen"}, {"qty", 6}}));
}

TEST_F(PostgresChangeSourceTest, StartAfterAPositionRedeliversExactlyWhatFollowsIt) {
    server_->sql("CREATE TABLE " + table_ + " (id bigint PRIMARY KEY)");
    create({table_});
    const std::string ins = "INSERT INTO " + table_ + " VALUES ";
    server_->sql("BEGIN; " + ins + "(1); " + ins + "(2); " + ins + "(3); COMMIT");
    server_->sql("BEGIN; " + ins + "(4); " + ins + "(5); " + ins + "(6); COMMIT");
    server_->sql("BEGIN; " + ins + "(7); " + ins + "(8); COMMIT");

    source_ = make_source();
    source_->start({});
    const auto first = read_n(*source_, 8, 4);
    ASSERT_EQ(ids_of(first), range(1, 8)) << source_->status().last_error;
    // The mapping delivered 1..5 (cutting the second transaction after its second change)
    // and acknowledged the first transaction only.
    source_->acknowledge(first[2].position.commit_lsn);
    run_for(200ms);
    source_->stop();
    source_.reset();

    source_ = make_source();
    source_->start(first[4].position);
    const auto again = read_n(*source_, 3, 1000);
    ASSERT_EQ(ids_of(again), (std::vector<std::int64_t>{6, 7, 8})) << source_->status().last_error;
    EXPECT_EQ(again[0].position, first[5].position);
    // Nothing more comes.
    EXPECT_TRUE(read_n(*source_, 1, 1000, 1s).empty());
    source_->stop();
    source_.reset();

    // From the acknowledged transaction's end: the second and third transactions again.
    source_ = make_source();
    source_->start({first[2].position.commit_lsn, first[2].position.ordinal});
    EXPECT_EQ(ids_of(read_n(*source_, 5)), range(4, 8));
}

TEST_F(PostgresChangeSourceTest, ReconnectsAfterPostgresRestartsAndLosesNothing) {
    server_->sql("CREATE TABLE " + table_ + " (id bigint PRIMARY KEY)");
    create({table_});
    source_ = make_source();
    source_->start({});
    server_->sql("INSERT INTO " + table_ + " SELECT generate_series(1, 5)");
    auto got = read_n(*source_, 5);
    ASSERT_EQ(ids_of(got), range(1, 5)) << source_->status().last_error;
    source_->acknowledge(got.back().position.commit_lsn);
    run_for(100ms);

    while_looping([] { server_->restart(); });
    server_->sql("INSERT INTO " + table_ + " SELECT generate_series(6, 10)");
    auto more = read_n(*source_, 5);
    ASSERT_EQ(ids_of(more), range(6, 10)) << source_->status().last_error;
    EXPECT_FALSE(source_->status().last_error.empty());
    EXPECT_TRUE(source_->status().connected);
    source_->acknowledge(more.back().position.commit_lsn);

    // Killed, not stopped, with changes read but not acknowledged, and more committed while
    // it is down; after crash recovery the source reconnects on its own.
    server_->sql("INSERT INTO " + table_ + " SELECT generate_series(11, 13)");
    auto unacked = read_n(*source_, 3);
    ASSERT_EQ(ids_of(unacked), range(11, 13)) << source_->status().last_error;
    server_->kill_postmaster();
    run_for(300ms);
    EXPECT_FALSE(source_->status().connected);
    server_->start();
    server_->sql("INSERT INTO " + table_ + " SELECT generate_series(14, 16)");
    auto after_crash = read_n(*source_, 3);
    EXPECT_EQ(ids_of(after_crash), range(14, 16)) << source_->status().last_error;
    // Each change once.
    EXPECT_TRUE(read_n(*source_, 1, 1000, 1s).empty());
    source_->stop();
    source_.reset();

    // The slot kept what was never acknowledged: a new reader from the last acknowledgement
    // gets 11..16.
    source_ = make_source();
    source_->start(more.back().position);
    EXPECT_EQ(ids_of(read_n(*source_, 6)), range(11, 16)) << source_->status().last_error;
}

TEST_F(PostgresChangeSourceTest, AFullBufferStopsReadingUntilTheMappingReads) {
    server_->sql("CREATE TABLE " + table_ + " (id bigint PRIMARY KEY, pad text)");
    create({table_});
    EventSourceLimits limits;
    limits.max_buffered_changes = 5;
    source_ = make_source(limits);
    source_->start({});
    // 300 transactions of one row each.
    server_->sql("DO $$ BEGIN FOR i IN 1..300 LOOP INSERT INTO " + table_ +
                 " VALUES (i, repeat('x', 200)); COMMIT; END LOOP; END $$");
    run_for(1500ms);
    EXPECT_EQ(source_->buffered_changes(), 5u);
    EXPECT_TRUE(source_->reading_paused());
    run_for(500ms);
    EXPECT_EQ(source_->buffered_changes(), 5u);
    EXPECT_TRUE(source_->status().connected) << source_->status().last_error;

    const auto got = read_n(*source_, 300, 7);
    EXPECT_EQ(ids_of(got), range(1, 300)) << source_->status().last_error;
    EXPECT_LE(source_->buffered_changes(), 5u);
}

TEST_F(PostgresChangeSourceTest, ATransactionLargerThanTheBufferIsReadWhole) {
    server_->sql("CREATE TABLE " + table_ + " (id bigint PRIMARY KEY)");
    create({table_});
    EventSourceLimits limits;
    limits.max_buffered_changes = 5;
    source_ = make_source(limits);
    source_->start({});
    server_->sql("INSERT INTO " + table_ + " SELECT generate_series(1, 50)");
    server_->sql("INSERT INTO " + table_ + " SELECT generate_series(51, 60)");
    run_for(1500ms);
    // The first transaction whole (its changes get positions only at its commit), then no more.
    EXPECT_EQ(source_->buffered_changes(), 50u);
    EXPECT_TRUE(source_->reading_paused());
    EXPECT_EQ(ids_of(read_n(*source_, 60, 8)), range(1, 60));
}

TEST_F(PostgresChangeSourceTest, ATransactionOverItsLimitIsNotHeldAndNotLost) {
    server_->sql("CREATE TABLE " + table_ + " (id bigint PRIMARY KEY, pad text)");
    create({table_});
    EventSourceLimits limits;
    limits.max_transaction_bytes = 16 * 1024;
    source_ = make_source(limits);
    source_->start({});
    server_->sql("INSERT INTO " + table_ + " SELECT g, repeat('x', 100) FROM generate_series(1, 5) g");
    server_->sql("INSERT INTO " + table_ + " SELECT g, repeat('x', 100) FROM generate_series(6, 500) g");
    server_->sql("INSERT INTO " + table_ + " VALUES (501, 'after')");
    // The small transaction arrives; the large one is refused, naming the limit, and nothing
    // after it is read.
    EXPECT_EQ(ids_of(read_n(*source_, 5, 100)), range(1, 5));
    run_for(1500ms);
    const std::string error = source_->status().last_error;
    EXPECT_NE(error.find("event_sources.max_transaction_bytes"), std::string::npos) << error;
    EXPECT_EQ(source_->buffered_changes(), 0u) << "the large transaction is not held";

    // With a limit it fits in, a new source reads it and what follows: the slot kept them.
    source_->stop();
    source_ = make_source({});
    source_->start({});
    EXPECT_EQ(ids_of(read_n(*source_, 501, 1000)), range(1, 501)) << source_->status().last_error;
}

TEST_F(PostgresChangeSourceTest, SetupRefusesWhatCannotWork) {
    auto error_of = [&](const std::string& conninfo, const std::vector<std::string>& tables) -> std::string {
        try {
            create_postgres_source(conninfo, id_, tables);
        } catch (const PostgresSetupError& e) {
            return e.what();
        }
        ADD_FAILURE() << "accepted";
        return "";
    };
    server_->sql("CREATE TABLE " + table_ + " (id int PRIMARY KEY); CREATE TABLE " + table_ +
                 "_nopk (v int); CREATE VIEW " + table_ + "_v AS SELECT 1 AS one");
    EXPECT_NE(error_of(server_->conninfo(), {"no_such_table"}).find("the table 'no_such_table' does not exist"),
              std::string::npos);
    EXPECT_NE(error_of(server_->conninfo(), {table_ + "_nopk"})
                  .find("has no primary key and replica identity DEFAULT: once published, its updates and deletes "
                        "would fail"),
              std::string::npos);
    EXPECT_NE(error_of(server_->conninfo(), {table_ + "_v"}).find("is not a table"), std::string::npos);

    server_->sql("CREATE ROLE plain_" + id_ + " LOGIN");
    const auto role = error_of(server_->conninfo("plain_" + id_), {table_});
    EXPECT_NE(role.find("needs the REPLICATION attribute"), std::string::npos) << role;

    const auto bad_password = error_of(server_->conninfo_with_password("wrong-pw-123"), {table_});
    EXPECT_NE(bad_password.find("password authentication failed"), std::string::npos) << bad_password;
    EXPECT_EQ(bad_password.find("wrong-pw-123"), std::string::npos) << bad_password;
    const auto unparsable = error_of("host=127.0.0.1 password='never-shown-77", {table_});
    EXPECT_NE(unparsable.find("not valid"), std::string::npos) << unparsable;
    EXPECT_EQ(unparsable.find("never-shown-77"), std::string::npos) << unparsable;

    // Nothing was left behind by the refusals.
    const auto names = postgres_source_names(id_);
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + names.slot + "'"), "0");
    EXPECT_EQ(server_->scalar("SELECT count(*) FROM pg_publication WHERE pubname = '" + names.publication + "'"), "0");

    // A password role that may replicate, owns the table and may create in the database is fine.
    server_->sql("ALTER TABLE " + table_ + " OWNER TO " + PostgresServer::kPasswordUser +
                 "; GRANT CREATE ON DATABASE postgres TO " + PostgresServer::kPasswordUser);
    EXPECT_NO_THROW(create_postgres_source(server_->conninfo_with_password(PostgresServer::kPassword), id_ + "_pw",
                                           {table_}));
    drop_postgres_source(server_->conninfo(), id_ + "_pw");
}

TEST(PostgresSetup, WalLevelReplicaIsRefusedWithItsFix) {
    PostgresServer replica(PostgresServer::Options{"replica"});
    replica.sql("CREATE TABLE t (id int PRIMARY KEY)");
    try {
        create_postgres_source(replica.conninfo(), "m1", {"t"});
        FAIL() << "accepted";
    } catch (const PostgresSetupError& e) {
        EXPECT_NE(std::string(e.what()).find("wal_level is 'replica'; set wal_level = logical and restart PostgreSQL"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(PostgresChangeSourceTest, DeleteDropsSlotAndPublication) {
    server_->sql("CREATE TABLE " + table_ + " (id int PRIMARY KEY)");
    const auto setup = create({"public." + table_});
    EXPECT_TRUE(setup.slot_created);
    EXPECT_NE(setup.slot_lsn, 0u);
    const auto& names = setup.names;
    auto slots = [&] {
        return server_->scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + names.slot + "'");
    };
    auto publications = [&] {
        return server_->scalar("SELECT count(*) FROM pg_publication WHERE pubname = '" + names.publication + "'");
    };
    EXPECT_EQ(slots(), "1");
    EXPECT_EQ(publications(), "1");
    // Creating again changes nothing.
    EXPECT_FALSE(create({table_}).slot_created);

    source_ = make_source();
    source_->start({});
    server_->sql("INSERT INTO " + table_ + " VALUES (1)");
    ASSERT_EQ(read_n(*source_, 1).size(), 1u) << source_->status().last_error;
    // In use by the stream: refused, naming why.
    try {
        drop_postgres_source(server_->conninfo(), id_, 300ms);
        ADD_FAILURE() << "dropped an active slot";
    } catch (const PostgresSetupError& e) {
        EXPECT_NE(std::string(e.what()).find("is still in use by PostgreSQL process"), std::string::npos) << e.what();
    }
    source_->stop();
    drop_postgres_source(server_->conninfo(), id_);
    created_ = false;
    EXPECT_EQ(slots(), "0");
    EXPECT_EQ(publications(), "0");
    // Dropping what is gone is no error.
    EXPECT_NO_THROW(drop_postgres_source(server_->conninfo(), id_));
}

TEST(PostgresSourceNames, AreValidSlotNamesAndDistinct) {
    EXPECT_EQ(postgres_source_names("orders_1").slot, "funcd_orders_1");
    const auto a = postgres_source_names("Orders-1");
    const auto b = postgres_source_names("orders_1");
    EXPECT_NE(a.slot, b.slot);
    const auto long_id = postgres_source_names(std::string(100, 'x'));
    EXPECT_LE(long_id.slot.size(), 63u);
    for (const auto& n : {a.slot, long_id.slot})
        for (const char c : n) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << n;
}

}  // namespace
}  // namespace funcd
