#pragma once
// Durable usage records.
//
// Why a journal in front of SQLite: a record must survive a daemon SIGKILL once the
// caller has its answer, but a SQLite commit per invocation would sit on the invoke
// path. `record()` appends one line to an O_APPEND journal file with a single write(2)
// (in the kernel's page cache, so it survives the process dying; no fsync), queues the
// record, and returns. A background thread moves queued records into SQLite in batches
// and truncates the journal once everything in it is committed. At start the journal
// is replayed (INSERT OR IGNORE on the request id), so a crash between the two loses
// nothing and duplicates nothing.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json_fwd.hpp>

#include "funcd/metering/pricing.hpp"
#include "funcd/metering/usage_record.hpp"

struct sqlite3;

namespace funcd {

struct UsageQuery {
    std::optional<std::string> function;
    std::optional<SystemTime> since;  // inclusive, on the record's start time
    std::optional<SystemTime> until;  // exclusive
};

struct UsageTotals {
    std::string name;  // empty for the grand total
    std::int64_t invocations = 0;
    std::int64_t errors = 0;  // every outcome but success
    std::int64_t cold_starts = 0;
    double duration_ms = 0;
    std::int64_t billed_ms = 0;
    double gb_seconds = 0;
    double cost_usd = 0;
};

struct UsageReport {
    std::vector<UsageTotals> functions;  // sorted by name
    UsageTotals total;
};

class UsageStore {
public:
    // Opens (creating if needed) the `usage` table in the SQLite database at `db_path`
    // and the journal at `journal_path`; replays the journal; starts the flusher.
    UsageStore(const std::filesystem::path& db_path, const std::filesystem::path& journal_path);
    ~UsageStore();  // flushes everything, stops the flusher
    UsageStore(const UsageStore&) = delete;
    UsageStore& operator=(const UsageStore&) = delete;

    // Durable against a process crash when it returns. Thread-safe.
    void record(const UsageRecord& r);

    // Commits everything queued so far to SQLite; returns when done.
    void flush();

    // Appends the journal line for `r` (to_json(r) as one line of JSON, with its newline).
    static void journal_line(const UsageRecord& r, fmt::memory_buffer& out);

    // Flushes, then aggregates. Thread-safe.
    UsageReport report(const UsageQuery& q, const Prices& prices);
    // Newest first (by start time, then request id).
    std::vector<UsageRecord> records(const std::optional<std::string>& function, int limit);

private:
    void flusher_main();
    void commit_batch(std::vector<UsageRecord>& batch);
    void replay_journal();

    sqlite3* db_ = nullptr;
    std::filesystem::path journal_path_;
    int journal_fd_ = -1;

    std::mutex mutex_;              // guards queue_, seq counters, journal truncation
    std::condition_variable wake_;
    std::condition_variable committed_cv_;
    std::deque<UsageRecord> queue_;
    std::uint64_t appended_seq_ = 0;   // records appended to the journal
    std::uint64_t committed_seq_ = 0;  // records committed to SQLite
    bool stopping_ = false;
    bool flush_requested_ = false;  // a flush() is waiting: commit without the batching window
    std::mutex db_mutex_;  // one SQLite connection, used by the flusher and by queries
    std::thread flusher_;
};

nlohmann::json to_json(const UsageRecord& r);
std::optional<UsageRecord> usage_record_from_json(const nlohmann::json& j);
nlohmann::json to_json(const UsageTotals& t, bool with_name);

}  // namespace funcd
