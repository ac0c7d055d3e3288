#pragma once
// Holds SQLite's lock on a database from a connection of its own, as another process
// would, until released or destroyed.
#include <sqlite3.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace funcd::testing {

class SqliteLock {
public:
    // `begin`: "BEGIN IMMEDIATE" (writers wait) or "BEGIN EXCLUSIVE" (readers wait too).
    SqliteLock(const std::filesystem::path& db, const char* begin) {
        EXPECT_EQ(sqlite3_open(db.c_str(), &h_), SQLITE_OK);
        char* err = nullptr;
        EXPECT_EQ(sqlite3_exec(h_, begin, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
        sqlite3_free(err);
    }
    ~SqliteLock() { release(); }
    SqliteLock(const SqliteLock&) = delete;
    SqliteLock& operator=(const SqliteLock&) = delete;

    void release() {
        if (!h_) return;
        sqlite3_exec(h_, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(h_);
        h_ = nullptr;
    }

private:
    sqlite3* h_ = nullptr;
};

}  // namespace funcd::testing
