#include "funcd/metering/usage_store.hpp"

#include "funcd/metering/shared_usage_ledger.hpp"

#include <sched.h>
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

// Pause before retrying a failed commit. Each attempt has already waited up to the
// storage timeout for competing writers, so this only paces retries on a persistent error
// (disk full, read-only file) to about one log line a second; the journal keeps the
// records safe meanwhile.
constexpr auto kRetryInterval = std::chrono::seconds(1);
// How long the flusher lets records gather before committing them. Usage queries flush
// first, so nobody waits for it; only SQLite's view of the records lags by this much.
// It is also how often the journal rolls to a new segment under load.
constexpr auto kBatchWindow = std::chrono::milliseconds(50);
// How often records past the retention are deleted. Retention is counted in days, so an
// hour's lag is noise, and one pass an hour deletes an hour's worth of old records.
constexpr auto kRetentionInterval = std::chrono::hours(1);
// While the journal cannot be written, a failed probe is logged once every this many
// probes (about a minute at the default interval), not every second.
constexpr int kProbeFailuresPerLog = 60;
// SQLite virtual-machine steps between two looks at a query's deadline (a few tens of us).
constexpr int kProgressSteps = 1000;

// Rows inserted between two yields of the flusher (~5 us each, so ~150 us). Inserting is
// pure CPU with no system call, and the scheduler let it run out its slice: with a whole
// batch inserted in one go, a worker or caller woken on the same CPU waited 1-4 ms
// (`perf sched timehist`, Linux 6.18, HZ=250), which made the warm p99 at one connection
// 2.4 ms; with these yields it is 0.5-0.9 ms. Lowering the thread's priority did not help
// (SCHED_IDLE measured the same): the wait is for the CPU to be given up, not a contest.
constexpr std::size_t kRowsPerYield = 32;

// A failed SQLite call, with SQLite's error code and message.
class SqlError : public std::runtime_error {
public:
    SqlError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

[[noreturn]] void sql_fail(sqlite3* db, std::string_view what) {
    throw SqlError(db ? sqlite3_errcode(db) : SQLITE_NOMEM,
                   "usage store: " + std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : sqlite3_errmsg(db);
        sqlite3_free(error);
        throw SqlError(sqlite3_errcode(db), "usage store: " + message + " in: " + sql);
    }
}

class Statement {
public:
    Statement(sqlite3* db, const std::string& sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
            sql_fail(db, "prepare " + sql);
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
    void bind(int i, std::string_view v) {
        check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    }
    void bind_null(int i) { check(sqlite3_bind_null(stmt_, i)); }
    // True while rows come back; throws on error.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        sql_fail(db_, "step");
    }
    void reset() { sqlite3_reset(stmt_); }

    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
    std::string text(int col) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
    }

private:
    void check(int rc) {
        if (rc != SQLITE_OK) sql_fail(db_, "bind");
    }
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

sqlite3* open_db(const std::filesystem::path& path, std::chrono::milliseconds busy_timeout) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        const std::string message = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        throw std::runtime_error("usage store: cannot open database " + path.string() + ": " + message);
    }
    // Every wait for another connection's lock ends within the storage timeout; that is
    // what bounds a flush, a query and the last commit at shutdown.
    sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
    return db;
}

// The columns of the first schemas, then those added since (migrated at start).
constexpr const char* kFirstColumns =
    "request_id, function, version, start_us, duration_us, billed_ms, memory_mb, max_memory_used_mb, "
    "init_duration_us, outcome";
constexpr const char* kRecordColumns =
    "request_id, function, version, start_us, duration_us, billed_ms, memory_mb, max_memory_used_mb, "
    "init_duration_us, outcome, trace_id, trigger";

// Whether the `usage` table has `column` (columns added by later versions).
bool usage_has_column(sqlite3* db, std::string_view column) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('usage') WHERE name = ?1", -1, &q, nullptr) !=
        SQLITE_OK)
        sql_fail(db, "cannot read the schema");
    sqlite3_bind_text(q, 1, column.data(), static_cast<int>(column.size()), SQLITE_TRANSIENT);
    const bool has = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    return has;
}

// A row of kRecordColumns; nullopt (logged) for an outcome this version does not know.
std::optional<UsageRecord> record_from(const Statement& stmt) {
    UsageRecord r;
    r.request_id = stmt.text(0);
    r.function = stmt.text(1);
    r.version = stmt.int64(2);
    r.start = from_unix_us(stmt.int64(3));
    r.duration_us = stmt.int64(4);
    r.billed_ms = stmt.int64(5);
    r.memory_mb = static_cast<int>(stmt.int64(6));
    r.max_memory_used_mb = stmt.int64(7);
    if (!stmt.is_null(8)) r.init_duration_us = stmt.int64(8);
    auto outcome = parse_outcome(stmt.text(9));
    if (!outcome) {
        spdlog::warn("usage store: record {} has unknown outcome '{}'", r.request_id, stmt.text(9));
        return std::nullopt;
    }
    r.outcome = *outcome;
    r.trace_id = stmt.text(10);
    r.trigger = stmt.text(11);
    return r;
}

// Whether `usage` is the first schema's table, keyed by the request id alone.
bool usage_table_keyed_by_request_id(sqlite3* db) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'usage'", -1, &q,
                           nullptr) != SQLITE_OK)
        sql_fail(db, "cannot read the schema");
    bool old = false;
    if (sqlite3_step(q) == SQLITE_ROW) {
        const auto* sql = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
        old = sql && std::string_view(sql).find("request_id TEXT PRIMARY KEY") != std::string_view::npos;
    }
    sqlite3_finalize(q);
    return old;
}

std::size_t batch_size(const MeteringLimits& limits) {
    return static_cast<std::size_t>(std::max<std::int64_t>(1, limits.batch_records));
}

std::string journal_line(const UsageRecord& r) {
    fmt::memory_buffer line;
    append_journal_line(r, line);
    return std::string(line.data(), line.size());
}

}  // namespace

UsageStore::UsageStore(const std::filesystem::path& db_path, const std::filesystem::path& journal_dir,
                       UsageStoreOptions options)
    : options_(options), journal_(journal_dir) {
    try {
        db_ = open_db(db_path, options_.limits.storage_timeout);
        // WAL so queries never block the flusher; synchronous=NORMAL because the journal,
        // not an fsync per commit, is what makes a record survive a crash.
        exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
        // One record per attempt: an asynchronous event keeps its request id across retries,
        // so the key is the request id and the attempt's start (a replayed journal record
        // has both and is still ignored). The start comes first in the key: records arrive
        // in start order, so each commit appends to the end of the key's index; random
        // request ids first made every row land on a different index page, which cost the
        // flusher a page read and a page write to the WAL per row.
        constexpr const char* kCreateUsage =
            "CREATE TABLE IF NOT EXISTS usage("
            "request_id TEXT NOT NULL, function TEXT NOT NULL, version INTEGER NOT NULL, "
            "start_us INTEGER NOT NULL, duration_us INTEGER NOT NULL, billed_ms INTEGER NOT NULL, "
            "memory_mb INTEGER NOT NULL, max_memory_used_mb INTEGER NOT NULL, init_duration_us INTEGER, "
            "outcome TEXT NOT NULL, trace_id TEXT, trigger TEXT, PRIMARY KEY (start_us, request_id));"
            "CREATE INDEX IF NOT EXISTS usage_function_start ON usage(function, start_us);";
        if (usage_table_keyed_by_request_id(db_)) {
            // Data directories from before: the same rows under the new key.
            exec(db_, std::string("BEGIN IMMEDIATE; DROP INDEX IF EXISTS usage_function_start; "
                                  "ALTER TABLE usage RENAME TO usage_by_request;") +
                          kCreateUsage + "INSERT INTO usage(" + kFirstColumns + ") SELECT " + kFirstColumns +
                          " FROM usage_by_request; DROP TABLE usage_by_request; COMMIT;");
            spdlog::info("usage store: records re-keyed by request id and start");
        }
        exec(db_, kCreateUsage);
        if (!usage_has_column(db_, "trace_id")) {
            // Tables from before trace ids: the columns are added, old rows keep NULL in them.
            exec(db_, "BEGIN IMMEDIATE; ALTER TABLE usage ADD COLUMN trace_id TEXT; "
                      "ALTER TABLE usage ADD COLUMN trigger TEXT; COMMIT;");
            spdlog::info("usage store: records have a trace id and a trigger from now on");
        }
        // What a trace's records are found by (GET /v1/logs?trace_id=): an index costs each
        // committed record one more entry, a scan of the ledger per query would grow with it.
        exec(db_, "CREATE INDEX IF NOT EXISTS usage_trace ON usage(trace_id);");

        query_db_ = open_db(db_path, options_.limits.storage_timeout);
        // Queries look at their deadline as they run, so a scan of a huge table ends too.
        sqlite3_progress_handler(
            query_db_, kProgressSteps,
            [](void* self) -> int { return Clock::now() > static_cast<UsageStore*>(self)->query_deadline_ ? 1 : 0; },
            this);

        replay_journal();
        open_current_segment();
    } catch (...) {
        sqlite3_close(query_db_);
        sqlite3_close(db_);
        throw;
    }
    flusher_ = std::thread([this] { flusher_main(); });
}

UsageStore::~UsageStore() {
    stop();
    if (sqlite3_close(query_db_) != SQLITE_OK) spdlog::error("usage store: closing database: {}", sqlite3_errmsg(query_db_));
    if (sqlite3_close(db_) != SQLITE_OK) spdlog::error("usage store: closing database: {}", sqlite3_errmsg(db_));
}

void UsageStore::open_current_segment() {
    int error = 0;
    auto segment = journal_.create_segment(error);
    std::unique_lock lock(mutex_);
    if (segment)
        journal_.roll(std::move(*segment), next_seq_);
    else
        journal_failed(error);
}

void UsageStore::journal_failed(int error) {
    const bool was_ok = journal_ok_;
    journal_ok_ = false;
    journal_error_ = std::string("the usage journal cannot be written: ") + std::strerror(error);
    next_probe_ = Clock::now() + options_.limits.journal_probe_interval;
    update_refusal();
    if (was_ok)
        spdlog::error("usage store: usage records cannot be made durable: the journal in {} cannot be written: {} "
                      "(errno {}). New invocations are refused (503) until it can; records of invocations that "
                      "already ran are kept in memory meanwhile. Trying again every {} ms.",
                      journal_.dir().string(), std::strerror(error), error,
                      options_.limits.journal_probe_interval.count());
}

void UsageStore::update_refusal() {
    std::string why;
    if (!journal_ok_) {
        why = "usage records cannot be made durable (" + journal_error_ +
              "); new invocations are refused until it can be written again";
    } else if (queue_.size() >= static_cast<std::size_t>(std::max<std::int64_t>(1, options_.limits.max_pending_records))) {
        why = fmt::format("usage records cannot be made durable: {} records wait for the usage database ({}); new "
                          "invocations are refused until it takes them",
                          queue_.size(), last_commit_error_.empty() ? "it is slower than the invocations" : last_commit_error_);
    }
    refusal_ = std::move(why);
    refusing_.store(!refusal_.empty(), std::memory_order_release);
}

std::size_t UsageStore::pending_records() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::optional<std::string> UsageStore::refusal() const {
    if (!refusing_.load(std::memory_order_acquire)) return std::nullopt;
    std::lock_guard lock(mutex_);
    if (refusal_.empty()) return std::nullopt;
    return refusal_;
}

bool UsageStore::append_to_journal(std::string_view line) {
    if (!journal_ok_) return false;
    if (!journal_.has_current()) {
        // Only after stop() sealed the journal (a record that arrives that late is rare):
        // a segment of its own, for the next start to replay.
        int error = 0;
        auto segment = journal_.create_segment(error);
        if (!segment) {
            journal_failed(error);
            return false;
        }
        journal_.roll(std::move(*segment), next_seq_);
        spdlog::warn("usage store: a record arrived after the store stopped; it stays in the journal for the next "
                     "start");
    }
    const int e = journal_.append(line, next_seq_);
    if (e != 0) journal_failed(e);
    return e == 0;
}

void UsageStore::record(const UsageRecord& r) {
    fmt::memory_buffer line;
    append_journal_line(r, line);
    bool notify = false;
    {
        std::unique_lock lock(mutex_);
        // Whether or not it is journaled: the invocation ran and its record must not be
        // lost. It reaches SQLite with the others (or the journal once it can be written).
        const bool journaled = append_to_journal(std::string_view(line.data(), line.size()));
        queue_.push_back({r, journaled});
        ++next_seq_;
        if (!refusing_.load(std::memory_order_relaxed) &&
            queue_.size() >= static_cast<std::size_t>(options_.limits.max_pending_records))
            update_refusal();
        // Only the first record of a batch needs to wake the flusher; later ones join it.
        notify = queue_.size() == 1;
    }
    if (notify) wake_.notify_one();
}

void UsageStore::flush() { flush_until(Clock::now() + options_.limits.storage_timeout); }

void UsageStore::flush_until(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    const std::uint64_t target = next_seq_;
    if (committed_seq_ >= target) return;
    flush_requested_ = true;  // skip the batching window and any retry pause
    wake_.notify_one();
    committed_cv_.wait_until(lock, deadline, [&] { return committed_seq_ >= target || flusher_done_; });
    if (committed_seq_ >= target) return;
    const std::string why = flusher_done_ ? "the usage store is stopped"
                            : !last_commit_error_.empty()
                                ? last_commit_error_
                                : "the commit is still waiting for the database's write lock (held by another "
                                  "connection?)";
    throw ApiError::storage_unavailable(
        fmt::format("usage records could not be committed to the usage database within {} ms ({} waiting): {}",
                    options_.limits.storage_timeout.count(), target - committed_seq_, why));
}

void UsageStore::requeue(std::vector<Pending>& batch) {
    // Records that only lived in memory go into the journal now if it can be written again.
    for (auto& p : batch) {
        if (p.journaled || !journal_ok_) continue;
        p.journaled = append_to_journal(journal_line(p.record));
    }
    // Back to the front, in order, so committed_seq_ keeps counting a prefix.
    queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
}

void UsageStore::probe_journal(std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    int error = 0;
    auto segment = journal_.create_segment(error);
    if (segment && (error = UsageJournal::probe_space(*segment, options_.limits.journal_probe_bytes)) != 0) {
        UsageJournal::discard(std::move(*segment));
        segment.reset();
    }
    lock.lock();
    next_probe_ = Clock::now() + options_.limits.journal_probe_interval;
    // The records that waited in memory go in first: once this segment is current, every
    // queued record is in the journal again.
    if (segment) {
        for (const auto& p : queue_) {
            if (p.journaled) continue;
            if ((error = UsageJournal::write_line(*segment, journal_line(p.record))) != 0) break;
        }
        if (error != 0) {
            UsageJournal::discard(std::move(*segment));
            segment.reset();
        }
    }
    if (!segment) {
        journal_error_ = std::string("the usage journal cannot be written: ") + std::strerror(error);
        update_refusal();
        if (probe_failures_++ % kProbeFailuresPerLog == 0)
            spdlog::warn("usage store: the journal in {} still cannot be written: {} (errno {}); new invocations are "
                         "still refused",
                         journal_.dir().string(), std::strerror(error), error);
        return;
    }
    std::size_t waiting = 0;
    for (auto& p : queue_) waiting += p.journaled ? 0 : 1, p.journaled = true;
    journal_.roll(std::move(*segment), next_seq_);
    journal_ok_ = true;
    journal_error_.clear();
    probe_failures_ = 0;
    update_refusal();
    spdlog::info("usage store: the journal in {} can be written again ({} records that waited in memory written to "
                 "it); admitting new invocations",
                 journal_.dir().string(), waiting);
}

void UsageStore::flusher_main() {
    std::unique_lock lock(mutex_);
    const std::size_t max_batch = batch_size(options_.limits);
    auto next_retention = Clock::now();  // once at start, then hourly
    for (;;) {
        const auto now = Clock::now();
        if (stopping_ && (queue_.empty() || now >= stop_deadline_)) break;
        if (!journal_ok_ && now >= next_probe_ && !stopping_) {
            probe_journal(lock);
            continue;
        }
        if (options_.retention && now >= next_retention && !stopping_) {
            lock.unlock();
            try {
                apply_retention(std::chrono::system_clock::now());
            } catch (const std::exception& e) {
                spdlog::error("usage store: deleting records past the retention failed, will retry: {}", e.what());
            }
            lock.lock();
            next_retention = Clock::now() + kRetentionInterval;
            continue;
        }
        if (queue_.empty()) {
            auto until = Clock::time_point::max();
            if (!journal_ok_) until = std::min(until, next_probe_);
            if (options_.retention) until = std::min(until, next_retention);
            auto ready = [&] { return stopping_ || !queue_.empty(); };
            if (until == Clock::time_point::max())
                wake_.wait(lock, ready);
            else
                wake_.wait_until(lock, until, ready);
            continue;
        }
        // Let records gather: one transaction per window instead of one per invocation
        // keeps SQLite's CPU off the core the invocations need. They are durable in the
        // journal meanwhile.
        if (!stopping_)
            wake_.wait_for(lock, kBatchWindow,
                           [&] { return stopping_ || flush_requested_ || queue_.size() >= max_batch; });
        flush_requested_ = false;

        // Roll: records from now on go to a new segment, so the current one stops growing
        // and is deleted once this batch (and any backlog before it) is committed.
        if (journal_.current_has_records()) {
            lock.unlock();
            int error = 0;
            auto next = journal_.create_segment(error);  // on failure the current one just keeps growing
            lock.lock();
            if (next && journal_ok_)
                journal_.roll(std::move(*next), next_seq_);
            else if (next)
                UsageJournal::discard(std::move(*next));
        }

        const std::size_t n = std::min(queue_.size(), max_batch);
        std::vector<Pending> batch(std::make_move_iterator(queue_.begin()),
                                   std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        lock.unlock();
        std::string error, detail;
        try {
            commit_batch(batch);
        } catch (const SqlError& e) {
            error = sqlite3_errstr(e.code());  // for callers: "database is locked", "disk I/O error"
            detail = e.what();
        } catch (const std::exception& e) {
            error = detail = e.what();
        }
        lock.lock();

        if (!error.empty()) {
            if (error != last_commit_error_)
                spdlog::error("usage store: committing {} records failed, will retry every {} s: {}", n,
                              kRetryInterval.count(), detail);
            last_commit_error_ = error;
            requeue(batch);
            update_refusal();
            const bool was_stopping = stopping_;
            const auto retry_at = stopping_ ? std::min(Clock::now() + kRetryInterval, stop_deadline_)
                                            : Clock::now() + kRetryInterval;
            wake_.wait_until(lock, retry_at, [&] { return flush_requested_ || stopping_ != was_stopping; });
            continue;
        }
        if (!last_commit_error_.empty()) spdlog::info("usage store: commits succeed again");
        last_commit_error_.clear();
        // The segments whose records are all committed go first, so that once a flush()
        // returns the journal holds nothing it has committed.
        if (auto committed = journal_.take_committed(committed_seq_ + n); !committed.empty()) {
            lock.unlock();
            UsageJournal::remove(committed);
            lock.lock();
        }
        committed_seq_ += n;
        if (refusing_.load(std::memory_order_relaxed)) update_refusal();
        committed_cv_.notify_all();
    }
    report_leftovers(lock);
    flusher_done_ = true;
    committed_cv_.notify_all();
}

void UsageStore::report_leftovers(std::unique_lock<std::mutex>& lock) {
    if (queue_.empty()) {
        journal_.seal(next_seq_);
        UsageJournal::remove(journal_.take_committed(committed_seq_));
        return;
    }
    // A last try for records only in memory: the journal may be writable again.
    if (!journal_ok_) probe_journal(lock);
    journal_.seal(next_seq_);
    UsageJournal::remove(journal_.take_committed(committed_seq_));
    std::size_t in_memory = 0;
    for (const auto& p : queue_) in_memory += p.journaled ? 0 : 1;
    const auto segments = journal_.live_segments();
    spdlog::error("usage store: stopping with {} records not committed to the database ({}); {} of them stay in the "
                  "journal for the next start ({} segments in {}, {} to {})",
                  queue_.size(), last_commit_error_.empty() ? "out of time" : last_commit_error_,
                  queue_.size() - in_memory, segments.size(), journal_.dir().string(),
                  segments.empty() ? "-" : segments.front().filename().string(),
                  segments.empty() ? "-" : segments.back().filename().string());
    if (in_memory == 0) return;
    // Neither in the database nor in the journal: the log is the last place they can go.
    spdlog::error("usage store: {} records could be made durable nowhere ({}); they are lost with this process. "
                  "Their journal lines follow; to keep them, put these lines in a file in {} named like the "
                  "segments there (a larger number) before the next start",
                  in_memory, journal_error_, journal_.dir().string());
    for (const auto& p : queue_)
        if (!p.journaled) {
            std::string line = journal_line(p.record);
            line.pop_back();
            spdlog::error("usage record not durable: {}", line);
        }
}

void UsageStore::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
        stop_deadline_ = Clock::now() + options_.limits.storage_timeout;
    }
    wake_.notify_all();
    if (flusher_.joinable()) flusher_.join();
}

void UsageStore::commit_batch(const std::vector<Pending>& batch) {
    std::vector<UsageRecord> records;
    records.reserve(batch.size());
    for (const auto& p : batch) records.push_back(p.record);
    commit_records(records);
}

void UsageStore::commit_records(const std::vector<UsageRecord>& records) {
    std::lock_guard lock(db_mutex_);
    // IMMEDIATE takes the write lock up front, so contention is resolved by busy_timeout
    // instead of failing later when a read transaction would need upgrading.
    exec(db_, "BEGIN IMMEDIATE");
    try {
        Statement insert(db_, std::string("INSERT OR IGNORE INTO usage(") + kRecordColumns +
                                  ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
        std::size_t rows = 0;
        for (const UsageRecord& r : records) {
            if (++rows % kRowsPerYield == 0) ::sched_yield();
            insert.reset();
            insert.bind(1, r.request_id);
            insert.bind(2, r.function);
            insert.bind(3, r.version);
            insert.bind(4, to_unix_us(r.start));
            insert.bind(5, r.duration_us);
            insert.bind(6, r.billed_ms);
            insert.bind(7, static_cast<std::int64_t>(r.memory_mb));
            insert.bind(8, r.max_memory_used_mb);
            if (r.init_duration_us)
                insert.bind(9, *r.init_duration_us);
            else
                insert.bind_null(9);
            insert.bind(10, to_string(r.outcome));
            if (r.trace_id.empty()) insert.bind_null(11);
            else insert.bind(11, r.trace_id);
            if (r.trigger.empty()) insert.bind_null(12);
            else insert.bind(12, r.trigger);
            insert.step();
        }
        exec(db_, "COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void UsageStore::replay_journal() {
    const auto& segments = journal_.leftover_segments();
    if (segments.empty()) return;
    const std::size_t max_batch = batch_size(options_.limits);
    std::vector<UsageRecord> batch;
    std::size_t records = 0, transactions = 0, skipped = 0, torn = 0;
    auto commit = [&] {
        if (batch.empty()) return;
        commit_records(batch);
        records += batch.size();
        ++transactions;
        batch.clear();
    };
    for (const auto& segment : segments) {
        const auto stats = UsageJournal::read(segment, [&](UsageRecord r) {
            batch.push_back(std::move(r));
            if (batch.size() >= max_batch) commit();
        });
        commit();
        // Only once every record in it is committed; a failure above throws and leaves it
        // (and the segments after it) for the next start.
        UsageJournal::remove({segment});
        skipped += stats.skipped_lines;
        torn += stats.torn_tail_bytes > 0 ? 1 : 0;
    }
    spdlog::info("usage journal {}: replayed {} records from {} segments in {} transactions ({} lines skipped, {} "
                 "torn tails)",
                 journal_.dir().string(), records, segments.size(), transactions, skipped, torn);
}

std::int64_t UsageStore::apply_retention(SystemTime now) {
    if (!options_.retention) return 0;
    const SystemTime cutoff = now - std::chrono::duration_cast<SystemTime::duration>(*options_.retention);
    const auto max_batch = static_cast<std::int64_t>(batch_size(options_.limits));
    std::int64_t total = 0;
    for (;;) {
        std::int64_t deleted = 0;
        {
            std::lock_guard lock(db_mutex_);
            exec(db_, "BEGIN IMMEDIATE");
            try {
                // Oldest first, a bounded batch per transaction: the write lock is held briefly.
                Statement del(db_, "DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage WHERE start_us < ?1 "
                                   "ORDER BY start_us LIMIT ?2)");
                del.bind(1, to_unix_us(cutoff));
                del.bind(2, max_batch);
                del.step();
                deleted = sqlite3_changes(db_);
                exec(db_, "COMMIT");
            } catch (...) {
                sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
                if (total > 0) spdlog::info("usage store: retention deleted {} records before failing", total);
                throw;
            }
        }
        total += deleted;
        if (deleted < max_batch) break;
        ::sched_yield();
    }
    if (total > 0)
        spdlog::info("usage store: deleted {} records that started before {} (retention {} days)", total,
                     format_rfc3339(cutoff), options_.retention->count());
    // This node's records in the shared ledger go by the same rule (each node its own); they
    // are copies of the ones counted above, and a database out of reach fails only this part.
    if (options_.shared) {
        try {
            if (const std::int64_t shared = options_.shared->apply_retention(cutoff); shared > 0)
                spdlog::info("usage store: deleted this node's {} records in the shared ledger that started before {}",
                             shared, format_rfc3339(cutoff));
        } catch (const std::exception& e) {
            spdlog::warn("usage store: cannot delete this node's records past the retention in the shared ledger "
                         "(tried again in an hour): {}", e.what());
        }
    }
    return total;
}

template <class F>
auto UsageStore::with_query_db(Clock::time_point deadline, F&& f) {
    std::unique_lock<std::timed_mutex> lock(query_mutex_, deadline);
    if (!lock.owns_lock())
        throw ApiError::storage_unavailable(fmt::format(
            "the usage database is busy with other usage queries for longer than {} ms",
            options_.limits.storage_timeout.count()));
    query_deadline_ = deadline;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    sqlite3_busy_timeout(query_db_, static_cast<int>(std::max<std::int64_t>(1, left.count())));
    try {
        return f(query_db_);
    } catch (const SqlError& e) {
        if (e.code() == SQLITE_INTERRUPT)
            throw ApiError::storage_unavailable(
                fmt::format("the usage query took longer than {} ms", options_.limits.storage_timeout.count()));
        throw ApiError::storage_unavailable(std::string("the usage database cannot be read: ") +
                                            sqlite3_errstr(e.code()));
    }
}

void UsageStore::flush_for_query(Clock::time_point deadline) {
    flush_until(deadline);
    if (options_.shared) options_.shared->ship(deadline);
}

UsageReport UsageStore::report(const UsageQuery& q) {
    const auto deadline = Clock::now() + options_.limits.storage_timeout;
    flush_for_query(deadline);
    if (options_.shared) return options_.shared->report(q);
    std::string sql =
        "SELECT function, COUNT(*), SUM(outcome <> 'success'), SUM(init_duration_us IS NOT NULL), "
        "SUM(duration_us), SUM(billed_ms), SUM(billed_ms * memory_mb) FROM usage WHERE outcome <> 'throttled'";
    // Filters are added only when present so SQLite can use the (function, start_us) index.
    if (q.function) sql += " AND function = ?";
    if (q.since) sql += " AND start_us >= ?";
    if (q.until) sql += " AND start_us < ?";
    sql += " GROUP BY function ORDER BY function";

    return with_query_db(deadline, [&](sqlite3* db) {
        UsageReport out;
        Statement stmt(db, sql);
        int i = 0;
        if (q.function) stmt.bind(++i, *q.function);
        if (q.since) stmt.bind(++i, to_unix_us(*q.since));
        if (q.until) stmt.bind(++i, to_unix_us(*q.until));
        while (stmt.step()) {
            UsageTotals t;
            t.name = stmt.text(0);
            t.invocations = stmt.int64(1);
            t.errors = stmt.int64(2);
            t.cold_starts = stmt.int64(3);
            t.duration_us = stmt.int64(4);
            t.billed_ms = stmt.int64(5);
            t.mb_ms = stmt.int64(6);
            add_function_totals(out, std::move(t));
        }
        return out;
    });
}

std::vector<UsageRecord> UsageStore::records(const std::optional<std::string>& function, int limit) {
    const auto deadline = Clock::now() + options_.limits.storage_timeout;
    flush_for_query(deadline);
    if (options_.shared) return options_.shared->records(function, limit);
    // Throttles are in the table for the invocation history; they were never invocations.
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM usage WHERE outcome <> 'throttled'";
    if (function) sql += " AND function = ?1";
    sql += function ? " ORDER BY start_us DESC, request_id DESC LIMIT ?2"
                    : " ORDER BY start_us DESC, request_id DESC LIMIT ?1";

    return with_query_db(deadline, [&](sqlite3* db) {
        std::vector<UsageRecord> out;
        Statement stmt(db, sql);
        int i = 0;
        if (function) stmt.bind(++i, *function);
        stmt.bind(++i, static_cast<std::int64_t>(std::clamp(limit, 1, kMaxRecordsLimit)));
        while (stmt.step()) {
            if (auto r = record_from(stmt)) out.push_back(std::move(*r));
        }
        return out;
    });
}

std::vector<UsageRecord> UsageStore::invocations(const InvocationQuery& q) {
    const auto deadline = Clock::now() + options_.limits.storage_timeout;
    flush_for_query(deadline);
    if (options_.shared) return options_.shared->invocations(q);
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM usage WHERE function = ?1";
    int i = 1;
    if (q.since) sql += fmt::format(" AND start_us >= ?{}", ++i);
    if (q.until) sql += fmt::format(" AND start_us < ?{}", ++i);
    if (q.outcome) sql += fmt::format(" AND outcome = ?{}", ++i);
    sql += fmt::format(" ORDER BY start_us DESC, request_id DESC LIMIT ?{}", ++i);

    return with_query_db(deadline, [&](sqlite3* db) {
        std::vector<UsageRecord> out;
        Statement stmt(db, sql);
        int n = 0;
        stmt.bind(++n, q.function);
        if (q.since) stmt.bind(++n, to_unix_us(*q.since));
        if (q.until) stmt.bind(++n, to_unix_us(*q.until));
        if (q.outcome) stmt.bind(++n, to_string(*q.outcome));
        stmt.bind(++n, static_cast<std::int64_t>(std::clamp(q.limit, 1, kMaxRecordsLimit)));
        while (stmt.step())
            if (auto r = record_from(stmt)) out.push_back(std::move(*r));
        return out;
    });
}

std::vector<UsageRecord> UsageStore::trace_invocations(std::string_view root,
                                                      const std::optional<std::string>& function, int limit) {
    const auto deadline = Clock::now() + options_.limits.storage_timeout;
    flush_for_query(deadline);
    if (options_.shared) return options_.shared->trace_invocations(root, function, limit);
    // Trace ids are stored as the header, Root first ("Root=<root>;Parent=...;Sampled=0"):
    // the trace's ids are the range from "Root=<root>" to just before "Root=<root><" ('<'
    // follows ';'), which the index finds without a scan.
    const std::string low = "Root=" + std::string(root);
    const std::string high = low + "<";
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM usage WHERE trace_id >= ?1 AND trace_id < ?2";
    if (function) sql += " AND function = ?3";
    sql += " ORDER BY start_us DESC, request_id DESC";
    return with_query_db(deadline, [&](sqlite3* db) {
        std::vector<UsageRecord> out;
        Statement stmt(db, sql);
        stmt.bind(1, low);
        stmt.bind(2, high);
        if (function) stmt.bind(3, *function);
        while (static_cast<int>(out.size()) < limit && stmt.step()) {
            auto r = record_from(stmt);
            if (!r) continue;
            // Only this Root: the text after it ends the field.
            const std::string_view rest = std::string_view(r->trace_id).substr(low.size());
            if (!rest.empty() && rest.front() != ';') continue;
            out.push_back(std::move(*r));
        }
        return out;
    });
}

std::vector<StatsBucket> UsageStore::stats(const StatsQuery& q) {
    const auto deadline = Clock::now() + options_.limits.storage_timeout;
    flush_for_query(deadline);
    if (options_.shared) return options_.shared->stats(q);
    return with_query_db(deadline, [&](sqlite3* db) {
        StatsBuckets buckets(q.since, q.until, q.step);
        Statement stmt(db,
                       "SELECT start_us, duration_us, billed_ms, memory_mb, init_duration_us, outcome FROM usage "
                       "WHERE function = ?1 AND start_us >= ?2 AND start_us < ?3");
        stmt.bind(1, q.function);
        stmt.bind(2, to_unix_us(q.since));
        stmt.bind(3, to_unix_us(q.until));
        while (stmt.step()) {
            StatsSample s;
            s.start_us = stmt.int64(0);
            s.duration_us = stmt.int64(1);
            s.billed_ms = stmt.int64(2);
            s.memory_mb = static_cast<int>(stmt.int64(3));
            if (!stmt.is_null(4)) s.init_duration_us = stmt.int64(4);
            auto outcome = parse_outcome(stmt.text(5));
            if (!outcome) continue;  // a later version's outcome: not counted
            s.outcome = *outcome;
            buckets.add(s);
        }
        return buckets.finish();
    });
}

nlohmann::json to_json(const UsageTotals& t, const Prices& prices, bool with_name) {
    nlohmann::json j = nlohmann::json::object();
    if (with_name) j["name"] = t.name;
    j["invocations"] = t.invocations;
    j["errors"] = t.errors;
    j["cold_starts"] = t.cold_starts;
    j["duration_ms"] = static_cast<double>(t.duration_us) / 1000.0;
    j["billed_ms"] = t.billed_ms;
    j["gb_seconds"] = gb_seconds_text(t.mb_ms);
    j["cost_usd"] = cost_usd_text(t.mb_ms, t.invocations, prices);
    return j;
}

}  // namespace funcd
