#include "funcd/registry/sqlite.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "funcd/common/storage_full.hpp"

namespace funcd::sqlite {
namespace {

// How long a writer waits for another connection's write lock before failing; the
// daemon's connections only hold it for short transactions.
constexpr int kBusyTimeoutMs = 5000;

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
    const std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory");
    if (db && sqlite3_errcode(db) == SQLITE_FULL) throw StorageFull("the database is full: " + message);
    throw std::runtime_error(message);
}

}  // namespace

Database::Database(const std::filesystem::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw std::runtime_error("cannot open database " + path.string() + ": " + message);
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // The database holds every function's environment (secrets): the daemon's user only.
    // SQLite gives the WAL and shared-memory files the database file's mode; those of an
    // older data directory are narrowed too.
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string file = path.string() + suffix;
        if (::chmod(file.c_str(), 0600) != 0 && errno != ENOENT)
            spdlog::warn("database: chmod 0600 {} failed: {} (errno {})", file, std::strerror(errno), errno);
    }
    // WAL: readers never block the writer. synchronous=NORMAL: a commit is a write(2) to
    // the WAL, safe against the process dying; fsync happens at checkpoints only.
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
}

Database::~Database() { sqlite3_close(db_); }

int Database::changes() const { return sqlite3_changes(db_); }

void Database::exec(std::string_view sql) {
    char* error = nullptr;
    std::string text(sql);
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : "unknown error";
        sqlite3_free(error);
        if (sqlite3_errcode(db_) == SQLITE_FULL) throw StorageFull("the database is full: " + message);
        throw std::runtime_error("sqlite: " + message + " in: " + text);
    }
}

Statement::Statement(Database& db, std::string_view sql) : db_(db) {
    if (sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
        fail(db.handle(), "prepare " + std::string(sql));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) fail(db_.handle(), "bind");
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    if (sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT) != SQLITE_OK)
        fail(db_.handle(), "bind");
    return *this;
}

Statement& Statement::bind_null(int index) {
    if (sqlite3_bind_null(stmt_, index) != SQLITE_OK) fail(db_.handle(), "bind");
    return *this;
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_.handle(), "step");
}

void Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string Statement::column_text(int index) const {
    auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
    return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index))) : std::string();
}

bool Statement::column_is_null(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

Transaction::Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
    if (!done_) {
        try {
            db_.exec("ROLLBACK");
        } catch (const std::exception& e) {
            spdlog::error("sqlite rollback failed: {}", e.what());
        }
    }
}

void Transaction::commit() {
    db_.exec("COMMIT");
    done_ = true;
}

}  // namespace funcd::sqlite
