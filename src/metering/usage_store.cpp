#include "funcd/metering/usage_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <system_error>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/unique_fd.hpp"

namespace funcd {
namespace {

// How long a statement waits for another connection's write lock (the registry shares
// the database file) before failing; the daemon's transactions are all short.
constexpr int kBusyTimeoutMs = 5000;

// Most records committed in one transaction, so a large backlog (after a long database
// outage) is moved in steps that keep each write-lock hold, and the memory of one
// batch, small; 10,000 rows of this table are a few MB of WAL and commit in tens of ms.
constexpr std::size_t kMaxBatch = 10'000;

// Pause before retrying a failed commit. Each attempt has already waited up to
// kBusyTimeoutMs for competing writers, so this only paces retries on a persistent error
// (disk full, read-only file) to about one log line a second; the journal keeps the
// records safe meanwhile.
constexpr auto kRetryInterval = std::chrono::seconds(1);
// How long the flusher lets records gather before committing them. Usage queries flush
// first, so nobody waits for it; only SQLite's view of the records lags by this much.
constexpr auto kBatchWindow = std::chrono::milliseconds(50);

constexpr int kMaxRecordsLimit = 1000;

// Rows inserted between two yields of the flusher (~5 us each, so ~150 us). Inserting is
// pure CPU with no system call, and the scheduler let it run out its slice: with a whole
// batch inserted in one go, a worker or caller woken on the same CPU waited 1-4 ms
// (`perf sched timehist`, Linux 6.18, HZ=250), which made the warm p99 at one connection
// 2.4 ms; with these yields it is 0.5-0.9 ms. Lowering the thread's priority did not help
// (SCHED_IDLE measured the same): the wait is for the CPU to be given up, not a contest.
constexpr std::size_t kRowsPerYield = 32;

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

[[noreturn]] void sql_fail(sqlite3* db, std::string_view what) {
    throw std::runtime_error("usage store: " + std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : sqlite3_errmsg(db);
        sqlite3_free(error);
        throw std::runtime_error("usage store: " + message + " in: " + sql);
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
    double real(int col) const { return sqlite3_column_double(stmt_, col); }
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

// One write(2) in the normal case; partial writes only happen on signals or a full disk,
// and O_APPEND plus the caller's lock keep any continuation contiguous.
bool write_all(int fd, std::string_view data, const std::filesystem::path& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            spdlog::error("usage journal {}: write failed: {} (errno {})", path.string(), errno_text(e), e);
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void truncate_journal(int fd, const std::filesystem::path& path) {
    if (::ftruncate(fd, 0) != 0) {
        int e = errno;
        spdlog::error("usage journal {}: ftruncate failed: {} (errno {})", path.string(), errno_text(e), e);
    }
}

std::optional<std::int64_t> int_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    if (it->is_number_unsigned() &&
        it->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
    return it->get<std::int64_t>();
}

std::optional<std::string> string_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

// True when `s` can go into JSON between quotes as it is: printable ASCII without
// quote or backslash. Request ids and function names always are.
bool plain_json_string(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
}

// A JSON number as nlohmann::json writes a double in this range: shortest round-trip
// digits in fixed notation, ".0" when integral.
void append_json_double(fmt::memory_buffer& out, double v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    if (ec != std::errc{}) {
        fmt::format_to(std::back_inserter(out), "{}", v);
        return;
    }
    out.append(buf, end);
    if (std::find(buf, end, '.') == end) out.append(std::string_view(".0"));
}

// format_rfc3339(t) without snprintf: the same 24 characters for years 0 to 9999.
void append_rfc3339(fmt::memory_buffer& out, SystemTime t) {
    using namespace std::chrono;
    const auto ms = floor<milliseconds>(t);
    const auto day = floor<days>(ms);
    const year_month_day ymd{day};
    const hh_mm_ss hms{ms - day};
    const int year = static_cast<int>(ymd.year());
    if (year < 0 || year > 9999) {
        out.append(format_rfc3339(t));
        return;
    }
    char text[] = "0000-00-00T00:00:00.000Z";
    auto put = [&text](int at, unsigned value, int digits) {
        for (int i = digits - 1; i >= 0; --i, value /= 10) text[at + i] = static_cast<char>('0' + value % 10);
    };
    put(0, static_cast<unsigned>(year), 4);
    put(5, static_cast<unsigned>(ymd.month()), 2);
    put(8, static_cast<unsigned>(ymd.day()), 2);
    put(11, static_cast<unsigned>(hms.hours().count()), 2);
    put(14, static_cast<unsigned>(hms.minutes().count()), 2);
    put(17, static_cast<unsigned>(hms.seconds().count()), 2);
    put(20, static_cast<unsigned>(hms.subseconds().count()), 3);
    out.append(std::string_view(text, sizeof text - 1));
}

constexpr const char* kRecordColumns =
    "request_id, function, version, start_us, duration_us, billed_ms, memory_mb, max_memory_used_mb, "
    "init_duration_us, outcome";

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

}  // namespace

UsageStore::UsageStore(const std::filesystem::path& db_path, const std::filesystem::path& journal_path)
    : journal_path_(journal_path) {
    try {
        if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK)
            sql_fail(db_, "cannot open database " + db_path.string());
        // WAL so queries never block the flusher; synchronous=NORMAL because the journal,
        // not an fsync per commit, is what makes a record survive a crash.
        exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=" +
                      std::to_string(kBusyTimeoutMs) + ";");
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
            "outcome TEXT NOT NULL, PRIMARY KEY (start_us, request_id));"
            "CREATE INDEX IF NOT EXISTS usage_function_start ON usage(function, start_us);";
        if (usage_table_keyed_by_request_id(db_)) {
            // Data directories from before: the same rows under the new key.
            exec(db_, std::string("BEGIN IMMEDIATE; DROP INDEX IF EXISTS usage_function_start; "
                                  "ALTER TABLE usage RENAME TO usage_by_request;") +
                          kCreateUsage + "INSERT INTO usage SELECT " + kRecordColumns +
                          " FROM usage_by_request; DROP TABLE usage_by_request; COMMIT;");
            spdlog::info("usage store: records re-keyed by request id and start");
        }
        exec(db_, kCreateUsage);

        journal_fd_ = ::open(journal_path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (journal_fd_ < 0) {
            int e = errno;
            spdlog::error("usage journal {}: open failed: {} (errno {})", journal_path_.string(), errno_text(e), e);
            throw std::runtime_error("usage store: cannot open journal " + journal_path_.string() + ": " +
                                     errno_text(e));
        }
        replay_journal();
    } catch (...) {
        if (journal_fd_ >= 0) ::close(journal_fd_);
        sqlite3_close(db_);
        throw;
    }
    flusher_ = std::thread([this] { flusher_main(); });
}

UsageStore::~UsageStore() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    if (::close(journal_fd_) != 0) {
        int e = errno;
        spdlog::error("usage journal {}: close failed: {} (errno {})", journal_path_.string(), errno_text(e), e);
    }
    if (sqlite3_close(db_) != SQLITE_OK) spdlog::error("usage store: closing database: {}", sqlite3_errmsg(db_));
}

void UsageStore::record(const UsageRecord& r) {
    fmt::memory_buffer line;
    journal_line(r, line);
    {
        std::lock_guard lock(mutex_);
        // A failed append is logged and the record still queued: it reaches SQLite unless
        // the process dies first, which is better than dropping it here.
        write_all(journal_fd_, std::string_view(line.data(), line.size()), journal_path_);
        queue_.push_back(r);
        ++appended_seq_;
        // Only the first record of a batch needs to wake the flusher; later ones join it.
        if (queue_.size() != 1) return;
    }
    wake_.notify_one();
}

void UsageStore::journal_line(const UsageRecord& r, fmt::memory_buffer& out) {
    if (!plain_json_string(r.request_id) || !plain_json_string(r.function)) {
        // Replacing invalid UTF-8 instead of throwing: a byte-exact name matters less than the record.
        const std::string line = to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        out.append(line);
        out.push_back('\n');
        return;
    }
    // The same document as to_json(r).dump() (keys in its sorted order), written directly:
    // building the JSON tree cost more than everything else in record() together.
    auto it = std::back_inserter(out);
    fmt::format_to(it, FMT_COMPILE(R"({{"billed_ms":{},"duration_ms":)"), r.billed_ms);
    append_json_double(out, static_cast<double>(r.duration_us) / 1000.0);
    fmt::format_to(it, FMT_COMPILE(R"(,"duration_us":{},"function":"{}","init_duration_ms":)"), r.duration_us,
                   r.function);
    if (r.init_duration_us) {
        append_json_double(out, static_cast<double>(*r.init_duration_us) / 1000.0);
        fmt::format_to(it, FMT_COMPILE(R"(,"init_duration_us":{})"), *r.init_duration_us);
    } else {
        out.append(std::string_view(R"(null,"init_duration_us":null)"));
    }
    fmt::format_to(it,
                   FMT_COMPILE(R"(,"max_memory_used_mb":{},"memory_mb":{},"outcome":"{}","request_id":"{}","start":")"),
                   r.max_memory_used_mb, r.memory_mb, to_string(r.outcome), r.request_id);
    append_rfc3339(out, r.start);
    fmt::format_to(it, FMT_COMPILE(R"(","start_us":{},"version":{}}})" "\n"),
                   to_unix_us(r.start), r.version);
}

void UsageStore::flush() {
    std::unique_lock lock(mutex_);
    const std::uint64_t target = appended_seq_;
    if (committed_seq_ >= target) return;
    flush_requested_ = true;  // skip the batching window
    wake_.notify_one();
    committed_cv_.wait(lock, [&] { return committed_seq_ >= target; });
}

void UsageStore::flusher_main() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything is committed
        // Let records gather: one transaction per window instead of one per invocation
        // keeps SQLite's CPU off the core the invocations need. They are durable in the
        // journal meanwhile.
        wake_.wait_for(lock, kBatchWindow,
                       [&] { return stopping_ || flush_requested_ || queue_.size() >= kMaxBatch; });
        flush_requested_ = false;

        const std::size_t n = std::min(queue_.size(), kMaxBatch);
        std::vector<UsageRecord> batch(std::make_move_iterator(queue_.begin()),
                                       std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        lock.unlock();
        bool committed = true;
        try {
            commit_batch(batch);
        } catch (const std::exception& e) {
            committed = false;
            spdlog::error("usage store: committing {} records failed, will retry: {}", n, e.what());
        }
        lock.lock();

        if (!committed) {
            // Back to the front, in order, so committed_seq_ keeps counting a prefix of the journal.
            queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
            if (stopping_) {
                spdlog::error("usage store: stopping with {} uncommitted records; they stay in {} for replay",
                              queue_.size(), journal_path_.string());
                return;
            }
            wake_.wait_for(lock, kRetryInterval, [&] { return stopping_; });
            continue;
        }
        committed_seq_ += n;
        // Only when nothing was appended meanwhile: every line in the journal is then in
        // SQLite. record() writes under this same lock, so no append can race the truncate.
        if (committed_seq_ == appended_seq_) truncate_journal(journal_fd_, journal_path_);
        committed_cv_.notify_all();
    }
}

void UsageStore::commit_batch(std::vector<UsageRecord>& batch) {
    std::lock_guard lock(db_mutex_);
    // IMMEDIATE takes the write lock up front, so contention is resolved by busy_timeout
    // instead of failing later when a read transaction would need upgrading.
    exec(db_, "BEGIN IMMEDIATE");
    try {
        Statement insert(db_, std::string("INSERT OR IGNORE INTO usage(") + kRecordColumns +
                                  ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
        std::size_t rows = 0;
        for (const UsageRecord& r : batch) {
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
            insert.step();
        }
        exec(db_, "COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void UsageStore::replay_journal() {
    UniqueFd fd(::open(journal_path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        int e = errno;
        spdlog::error("usage journal {}: open for replay failed: {} (errno {})", journal_path_.string(),
                      errno_text(e), e);
        throw std::runtime_error("usage store: cannot read journal " + journal_path_.string());
    }
    std::string content;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            spdlog::error("usage journal {}: read failed: {} (errno {})", journal_path_.string(), errno_text(e), e);
            throw std::runtime_error("usage store: cannot read journal " + journal_path_.string());
        }
        content.append(buf, static_cast<std::size_t>(n));
    }
    if (content.empty()) return;

    std::vector<UsageRecord> batch;
    std::size_t pos = 0;
    while (pos < content.size()) {
        std::size_t end = content.find('\n', pos);
        if (end == std::string::npos) {
            // The process died inside a write(2): that record never got its answer out.
            spdlog::warn("usage journal {}: ignoring torn last line ({} bytes)", journal_path_.string(),
                         content.size() - pos);
            break;
        }
        std::string_view line(content.data() + pos, end - pos);
        pos = end + 1;
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        auto r = j.is_discarded() ? std::nullopt : usage_record_from_json(j);
        if (!r) {
            spdlog::warn("usage journal {}: skipping malformed line: {}", journal_path_.string(), line);
            continue;
        }
        batch.push_back(std::move(*r));
    }
    // A failure throws before the truncate, leaving the journal for the next start.
    if (!batch.empty()) commit_batch(batch);
    spdlog::info("usage journal {}: replayed {} records", journal_path_.string(), batch.size());
    truncate_journal(journal_fd_, journal_path_);
}

UsageReport UsageStore::report(const UsageQuery& q, const Prices& prices) {
    flush();
    std::string sql =
        "SELECT function, COUNT(*), SUM(outcome <> 'success'), SUM(init_duration_us IS NOT NULL), "
        "SUM(duration_us), SUM(billed_ms), SUM(billed_ms / 1000.0 * memory_mb / 1024.0) FROM usage WHERE 1";
    // Filters are added only when present so SQLite can use the (function, start_us) index.
    if (q.function) sql += " AND function = ?";
    if (q.since) sql += " AND start_us >= ?";
    if (q.until) sql += " AND start_us < ?";
    sql += " GROUP BY function ORDER BY function";

    UsageReport out;
    std::lock_guard lock(db_mutex_);
    Statement stmt(db_, sql);
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
        t.duration_ms = static_cast<double>(stmt.int64(4)) / 1000.0;
        t.billed_ms = stmt.int64(5);
        t.gb_seconds = stmt.real(6);
        t.cost_usd = cost_usd(t.gb_seconds, t.invocations, prices);

        out.total.invocations += t.invocations;
        out.total.errors += t.errors;
        out.total.cold_starts += t.cold_starts;
        out.total.duration_ms += t.duration_ms;
        out.total.billed_ms += t.billed_ms;
        out.total.gb_seconds += t.gb_seconds;
        out.functions.push_back(std::move(t));
    }
    out.total.cost_usd = cost_usd(out.total.gb_seconds, out.total.invocations, prices);
    return out;
}

std::vector<UsageRecord> UsageStore::records(const std::optional<std::string>& function, int limit) {
    flush();
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM usage";
    if (function) sql += " WHERE function = ?1";
    sql += function ? " ORDER BY start_us DESC, request_id DESC LIMIT ?2"
                    : " ORDER BY start_us DESC, request_id DESC LIMIT ?1";

    std::vector<UsageRecord> out;
    std::lock_guard lock(db_mutex_);
    Statement stmt(db_, sql);
    int i = 0;
    if (function) stmt.bind(++i, *function);
    stmt.bind(++i, static_cast<std::int64_t>(std::clamp(limit, 1, kMaxRecordsLimit)));
    while (stmt.step()) {
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
            continue;
        }
        r.outcome = *outcome;
        out.push_back(std::move(r));
    }
    return out;
}

nlohmann::json to_json(const UsageRecord& r) {
    nlohmann::json j = {
        {"request_id", r.request_id},
        {"function", r.function},
        {"version", r.version},
        {"start", format_rfc3339(r.start)},
        {"start_us", to_unix_us(r.start)},
        {"duration_us", r.duration_us},
        {"duration_ms", static_cast<double>(r.duration_us) / 1000.0},
        {"billed_ms", r.billed_ms},
        {"memory_mb", r.memory_mb},
        {"max_memory_used_mb", r.max_memory_used_mb},
        {"init_duration_us", nullptr},
        {"init_duration_ms", nullptr},
        {"outcome", to_string(r.outcome)},
    };
    if (r.init_duration_us) {
        j["init_duration_us"] = *r.init_duration_us;
        j["init_duration_ms"] = static_cast<double>(*r.init_duration_us) / 1000.0;
    }
    return j;
}

std::optional<UsageRecord> usage_record_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return std::nullopt;
    auto request_id = string_field(j, "request_id");
    auto function = string_field(j, "function");
    auto outcome_text = string_field(j, "outcome");
    auto version = int_field(j, "version");
    auto duration_us = int_field(j, "duration_us");
    auto billed_ms = int_field(j, "billed_ms");
    auto memory_mb = int_field(j, "memory_mb");
    auto max_memory = int_field(j, "max_memory_used_mb");
    if (!request_id || request_id->empty() || !function || function->empty() || !outcome_text || !version ||
        !duration_us || !billed_ms || !memory_mb || !max_memory)
        return std::nullopt;
    if (*memory_mb < 0 || *memory_mb > std::numeric_limits<int>::max()) return std::nullopt;
    auto outcome = parse_outcome(*outcome_text);
    if (!outcome) return std::nullopt;

    // start_us is exact; the RFC 3339 form only carries milliseconds.
    std::optional<SystemTime> start;
    if (auto us = int_field(j, "start_us"))
        start = from_unix_us(*us);
    else if (auto text = string_field(j, "start"))
        start = parse_rfc3339(*text);
    if (!start) return std::nullopt;

    UsageRecord r;
    auto init = j.find("init_duration_us");
    if (init != j.end() && !init->is_null()) {
        auto us = int_field(j, "init_duration_us");
        if (!us) return std::nullopt;
        r.init_duration_us = *us;
    }
    r.request_id = std::move(*request_id);
    r.function = std::move(*function);
    r.version = *version;
    r.start = *start;
    r.duration_us = *duration_us;
    r.billed_ms = *billed_ms;
    r.memory_mb = static_cast<int>(*memory_mb);
    r.max_memory_used_mb = *max_memory;
    r.outcome = *outcome;
    return r;
}

nlohmann::json to_json(const UsageTotals& t, bool with_name) {
    nlohmann::json j = nlohmann::json::object();
    if (with_name) j["name"] = t.name;
    j["invocations"] = t.invocations;
    j["errors"] = t.errors;
    j["cold_starts"] = t.cold_starts;
    j["duration_ms"] = t.duration_ms;
    j["billed_ms"] = t.billed_ms;
    j["gb_seconds"] = t.gb_seconds;
    j["cost_usd"] = t.cost_usd;
    return j;
}

}  // namespace funcd
