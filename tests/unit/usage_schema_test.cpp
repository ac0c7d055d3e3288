// The usage table's key: one record per attempt (request id and start), and data
// directories written under the first schema (request id alone) carried over.
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "funcd/metering/usage_store.hpp"

namespace {

namespace fs = std::filesystem;
using funcd::UsageRecord;
using funcd::UsageStore;

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "funcd-usage-schema-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

UsageRecord attempt(const std::string& id, std::int64_t start_us) {
    UsageRecord r;
    r.request_id = id;
    r.function = "f";
    r.version = 1;
    r.start = funcd::from_unix_us(start_us);
    r.duration_us = 1500;
    r.billed_ms = 2;
    r.memory_mb = 128;
    r.outcome = funcd::Outcome::function_error;
    return r;
}

TEST(UsageSchema, EveryAttemptOfARequestIdIsKept) {
    TempDir dir;
    {
        UsageStore store(dir.path / "funcd.db", dir.path / "usage.journal");
        for (std::int64_t start : {1'000'000, 2'000'000, 3'000'000}) store.record(attempt("req-1", start));
        store.record(attempt("req-1", 3'000'000));  // the same attempt again (a replay) is one record
        store.flush();
        EXPECT_EQ(store.records("f", 10).size(), 3u);
    }
}

TEST(UsageSchema, FirstSchemaIsRekeyedWithItsRecords) {
    TempDir dir;
    const fs::path db_path = dir.path / "funcd.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE usage(request_id TEXT PRIMARY KEY, function TEXT NOT NULL, version INTEGER "
                           "NOT NULL, start_us INTEGER NOT NULL, duration_us INTEGER NOT NULL, billed_ms INTEGER NOT "
                           "NULL, memory_mb INTEGER NOT NULL, max_memory_used_mb INTEGER NOT NULL, init_duration_us "
                           "INTEGER, outcome TEXT NOT NULL);"
                           "CREATE INDEX usage_function_start ON usage(function, start_us);"
                           "INSERT INTO usage VALUES('old-1', 'f', 1, 500000, 1000, 1, 128, 20, NULL, 'success');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);

    UsageStore store(db_path, dir.path / "usage.journal");
    store.record(attempt("old-1", 900'000));  // a retry of the old request id
    store.flush();
    auto records = store.records("f", 10);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[1].request_id, "old-1");
    EXPECT_EQ(funcd::to_unix_us(records[1].start), 500'000);
    EXPECT_EQ(records[1].outcome, funcd::Outcome::success);
}

}  // namespace
