#pragma once
// Durable usage records.
//
// Why a journal in front of SQLite: a record must survive a daemon SIGKILL once the
// caller has its answer, but a SQLite commit per invocation would sit on the invoke
// path. `record()` appends one line to the journal (usage_journal.hpp) with a single
// write(2) (in the kernel's page cache, so it survives the process dying; no fsync),
// queues the record, and returns. A background thread moves queued records into SQLite
// in batches; each time it takes a batch the journal rolls to a new segment, and a
// segment is deleted once all its records are committed, so the journal holds about one
// batch window of records however steady the load. At start the leftover segments are
// replayed in batches (INSERT OR IGNORE on the request id and start), so a crash between
// append and commit loses nothing and duplicates nothing.
//
// When a record cannot be made durable (the journal cannot be written: a full disk, an
// I/O error) it is kept in memory and committed or journaled later, and refusal() says
// why new invocations must wait, until a periodic probe finds the journal writable again.
// Waits on the database (flush, queries, the final commit at shutdown) are bounded by
// MeteringLimits::storage_timeout and end in ApiError::storage_unavailable (503).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "funcd/metering/invocation_stats.hpp"
#include "funcd/metering/metering_limits.hpp"
#include "funcd/metering/pricing.hpp"
#include "funcd/metering/usage_journal.hpp"
#include "funcd/metering/usage_record.hpp"
#include "funcd/metering/usage_record_json.hpp"

struct sqlite3;

namespace funcd {

class SharedUsageLedger;

// The most records one query lists (GET /v1/usage/records, .../invocations).
inline constexpr int kMaxRecordsLimit = 1000;

struct UsageQuery {
    std::optional<std::string> function;
    std::optional<SystemTime> since;  // inclusive, on the record's start time
    std::optional<SystemTime> until;  // exclusive
};

// One function's invocation history (GET /v1/functions/{name}/invocations).
struct InvocationQuery {
    std::string function;
    std::optional<SystemTime> since;  // inclusive, on the record's start time
    std::optional<SystemTime> until;  // exclusive
    std::optional<Outcome> outcome;
    int limit = 100;  // at most kMaxRecordsLimit
};

// Per-step statistics of one function (GET /v1/functions/{name}/stats).
struct StatsQuery {
    std::string function;
    SystemTime since;  // inclusive
    SystemTime until;  // exclusive
    std::chrono::seconds step{60};
};

// Sums over records, all exact integers; money is derived from them with the prices
// (to_json) so it is computed once, exactly.
struct UsageTotals {
    std::string name;  // empty for the grand total
    std::int64_t invocations = 0;
    std::int64_t errors = 0;  // every outcome but success
    std::int64_t cold_starts = 0;
    std::int64_t duration_us = 0;
    std::int64_t billed_ms = 0;
    std::int64_t mb_ms = 0;  // billed_ms * memory_mb, summed (pricing.hpp)
};

struct UsageReport {
    std::vector<UsageTotals> functions;  // sorted by name
    UsageTotals total;
};

struct UsageStoreOptions {
    MeteringLimits limits;
    // Records that started longer ago than this are deleted (in batches, hourly); unset:
    // kept forever.
    std::optional<std::chrono::days> retention;
    // With state shared by nodes: where queries go (every node's records), after this
    // node's are shipped there (shared_usage_ledger.hpp). Null: this node's ledger only.
    SharedUsageLedger* shared = nullptr;
};

class UsageStore {
public:
    // Opens (creating if needed) the `usage` table in the SQLite database at `db_path` and
    // the journal directory `journal_dir`; replays what the journal holds; starts the
    // flusher. Throws if the database cannot be opened or the replay cannot be committed.
    UsageStore(const std::filesystem::path& db_path, const std::filesystem::path& journal_dir,
               UsageStoreOptions options = {});
    ~UsageStore();  // stop()
    UsageStore(const UsageStore&) = delete;
    UsageStore& operator=(const UsageStore&) = delete;

    // Journals and queues `r`. Durable against a process crash when it returns, unless the
    // journal cannot be written: then `r` waits in memory (committed when the database
    // takes it, journaled when the journal can be written again) and refusal() is set.
    // Thread-safe; never throws for storage trouble.
    void record(const UsageRecord& r);

    // Why new invocations must not run now, for the caller's error (names the storage
    // problem, no paths): the journal cannot be written, or too many records wait for the
    // database. nullopt when records can be made durable. Thread-safe; one atomic load
    // when all is well.
    std::optional<std::string> refusal() const;

    // Records made but not yet committed to the database (the journal's lag). Thread-safe.
    std::size_t pending_records() const;

    // Commits everything recorded so far. Throws ApiError::storage_unavailable (503) if
    // that takes longer than storage_timeout (the database is locked or cannot be written).
    void flush();

    // Flush, then aggregate / list, all within storage_timeout; ApiError (503) past it or
    // when the database cannot be read. Thread-safe.
    UsageReport report(const UsageQuery& q);
    // Newest first (by start time, then request id). Throttles are not records of usage and
    // are left out.
    std::vector<UsageRecord> records(const std::optional<std::string>& function, int limit);
    // One function's records, throttles included, newest first, through the (function,
    // start) index: the work grows with `limit`, not with the table.
    std::vector<UsageRecord> invocations(const InvocationQuery& q);
    // The invocations of one trace (`root`: its Root value, "1-<8 hex>-<24 hex>"), of every
    // function or of `function`, newest first, at most `limit`; throttles included. Through
    // the index on trace ids: the work grows with the trace, not with the ledger.
    std::vector<UsageRecord> trace_invocations(std::string_view root, const std::optional<std::string>& function,
                                               int limit);
    // The statistics of every step in [since, until) (invocation_stats.hpp): one scan of the
    // function's records in the range through the (function, start) index.
    std::vector<StatsBucket> stats(const StatsQuery& q);

    // Deletes records that started before now - retention, batch_records per transaction;
    // returns how many. Run by the flusher at start and hourly; public for tests.
    std::int64_t apply_retention(SystemTime now);

    // Stops the flusher after a last commit bounded by storage_timeout; what is left stays
    // in the journal for the next start (logged, with the segments). Idempotent.
    void stop();

private:
    struct Pending {
        UsageRecord record;
        bool journaled = false;  // false: only in memory (the journal could not be written)
    };
    using Clock = std::chrono::steady_clock;

    void flusher_main();
    void commit_batch(const std::vector<Pending>& batch);
    void commit_records(const std::vector<UsageRecord>& records);
    void replay_journal();
    void flush_until(Clock::time_point deadline);
    // Before a query: this node's records committed, and shipped to the shared ledger if any.
    void flush_for_query(Clock::time_point deadline);
    void open_current_segment();
    // Under mutex_.
    bool append_to_journal(std::string_view line);  // true: durable; false: refusal() is set
    void journal_failed(int error);
    void probe_journal(std::unique_lock<std::mutex>& lock);
    void update_refusal();
    void requeue(std::vector<Pending>& batch);
    void report_leftovers(std::unique_lock<std::mutex>& lock);
    template <class F>
    auto with_query_db(Clock::time_point deadline, F&& f);

    const UsageStoreOptions options_;
    sqlite3* db_ = nullptr;        // the flusher's connection (and retention's)
    sqlite3* query_db_ = nullptr;  // queries' own connection, so they never wait on a commit
    UsageJournal journal_;

    mutable std::mutex mutex_;  // guards everything below up to db_mutex_, and journal_
    std::condition_variable wake_;
    std::condition_variable committed_cv_;
    std::deque<Pending> queue_;
    std::uint64_t next_seq_ = 0;       // records recorded (each one's number is its position)
    std::uint64_t committed_seq_ = 0;  // records committed to SQLite (always a prefix)
    bool stopping_ = false;
    Clock::time_point stop_deadline_{};  // of the last commits, once stopping_
    bool flusher_done_ = false;
    bool flush_requested_ = false;  // a flush() is waiting: commit without the batching window
    std::string last_commit_error_;  // of the last failed commit; empty once one succeeds
    bool journal_ok_ = true;
    std::string journal_error_;  // why the journal cannot be written, for refusal()
    Clock::time_point next_probe_{};
    int probe_failures_ = 0;
    std::string refusal_;
    std::atomic<bool> refusing_{false};

    std::mutex db_mutex_;  // db_
    std::timed_mutex query_mutex_;  // query_db_
    Clock::time_point query_deadline_{};  // under query_mutex_
    std::thread flusher_;
};

// The totals of one function (`with_name`) or of all, money at `prices`: cost and
// GB-seconds as exact decimal strings.
nlohmann::json to_json(const UsageTotals& t, const Prices& prices, bool with_name);

}  // namespace funcd
