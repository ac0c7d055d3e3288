#include "funcd/state/postgres_usage_ledger.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

// How often records are shipped without a query asking: usage across nodes is at most this
// much (plus the local flusher's batching window) behind.
constexpr auto kShipInterval = std::chrono::milliseconds(500);
// Records per shipped batch: 13 parameters each, well under PostgreSQL's 65,535 a statement.
constexpr int kShipBatch = 500;
// The last shipping at stop is bounded: what is left is shipped at the next start.
constexpr auto kFinalShip = std::chrono::seconds(5);

constexpr const char* kColumns =
    "request_id, function, version, start_us, duration_us, billed_ms, memory_mb, max_memory_used_mb, "
    "init_duration_us, outcome, trace_id, trigger";
constexpr int kColumnCount = 12;

std::vector<UsageRecord> records_from(const PgRows& rows) {
    std::vector<UsageRecord> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        UsageRecord r;
        r.request_id = rows.at(i, "request_id").value_or("");
        const auto outcome = parse_outcome(rows.at(i, "outcome").value_or(""));
        if (!outcome) {
            spdlog::warn("usage: record {} has unknown outcome '{}'", r.request_id, rows.at(i, "outcome").value_or(""));
            continue;
        }
        r.function = rows.at(i, "function").value_or("");
        r.version = pg_int(rows.at(i, "version"));
        r.start = from_unix_us(pg_int(rows.at(i, "start_us")));
        r.duration_us = pg_int(rows.at(i, "duration_us"));
        r.billed_ms = pg_int(rows.at(i, "billed_ms"));
        r.memory_mb = static_cast<int>(pg_int(rows.at(i, "memory_mb")));
        r.max_memory_used_mb = pg_int(rows.at(i, "max_memory_used_mb"));
        if (rows.at(i, "init_duration_us")) r.init_duration_us = pg_int(rows.at(i, "init_duration_us"));
        r.outcome = *outcome;
        r.trace_id = rows.at(i, "trace_id").value_or("");
        r.trigger = rows.at(i, "trigger").value_or("");
        out.push_back(std::move(r));
    }
    return out;
}

// `AND start_us >= $n AND start_us < $m` for the bounds that are set, their values added
// to `params`.
void add_start_range(std::string& sql, std::vector<std::optional<std::string>>& params,
                     const std::optional<SystemTime>& since, const std::optional<SystemTime>& until) {
    if (since) {
        params.emplace_back(std::to_string(to_unix_us(*since)));
        sql += fmt::format(" AND start_us >= ${}", params.size());
    }
    if (until) {
        params.emplace_back(std::to_string(to_unix_us(*until)));
        sql += fmt::format(" AND start_us < ${}", params.size());
    }
}

}  // namespace

PostgresUsageLedger::PostgresUsageLedger(std::string conninfo, std::string node_id,
                                         const std::filesystem::path& local_db)
    : session_(std::move(conninfo)), node_id_(std::move(node_id)), local_(local_db) {
    local_.exec("CREATE TABLE IF NOT EXISTS usage_shipped (id INTEGER PRIMARY KEY CHECK (id = 1), "
                "last_rowid INTEGER NOT NULL)");
}

PostgresUsageLedger::~PostgresUsageLedger() { stop(); }

void PostgresUsageLedger::start() {
    shipper_ = std::thread([this] {
        bool failing = false;
        std::unique_lock lock(wait_mutex_);
        while (!stopping_) {
            lock.unlock();
            try {
                std::unique_lock ship_lock(ship_mutex_);
                while (ship_batch()) {
                }
                if (failing) spdlog::info("usage: shipping records to the shared ledger again");
                failing = false;
            } catch (const std::exception& e) {
                // They stay in this node's ledger and go at the next try.
                if (!failing) spdlog::warn("usage: cannot ship records to the shared ledger (trying again): {}", e.what());
                failing = true;
            }
            lock.lock();
            wake_.wait_for(lock, kShipInterval, [this] { return stopping_; });
        }
    });
}

void PostgresUsageLedger::stop() {
    {
        std::lock_guard lock(wait_mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    wake_.notify_all();
    if (!shipper_.joinable()) return;
    shipper_.join();
    // What the last local commits added; anything left goes at the next start.
    try {
        ship(std::chrono::steady_clock::now() + kFinalShip);
    } catch (const std::exception& e) {
        spdlog::warn("usage: records left unshipped at stop (shipped at the next start): {}", e.what());
    }
}

bool PostgresUsageLedger::ship_batch() {
    std::int64_t cursor = 0;
    {
        sqlite::Statement q(local_, "SELECT last_rowid FROM usage_shipped WHERE id = 1");
        if (q.step()) cursor = q.column_int(0);
    }
    std::vector<std::optional<std::string>> params;
    std::int64_t last = cursor;
    {
        sqlite::Statement q(local_, std::string("SELECT rowid, ") + kColumns +
                                        " FROM usage WHERE rowid > ?1 ORDER BY rowid LIMIT ?2");
        q.bind(1, cursor).bind(2, std::int64_t{kShipBatch});
        while (q.step()) {
            last = q.column_int(0);
            for (int c = 1; c <= kColumnCount; ++c)
                params.push_back(q.column_is_null(c) ? std::nullopt : std::optional(q.column_text(c)));
            params.emplace_back(node_id_);
        }
    }
    if (params.empty()) {
        // Rows numbered below the cursor appear when the ledger was emptied (retention) and
        // SQLite numbered rows from 1 again: ship those from the start (twice counts once).
        sqlite::Statement max(local_, "SELECT coalesce(max(rowid), 0) FROM usage");
        max.step();
        if (max.column_int(0) >= cursor) return false;
        sqlite::Statement(local_, "INSERT OR REPLACE INTO usage_shipped (id, last_rowid) VALUES (1, 0)").run();
        return true;
    }
    std::string sql = std::string("INSERT INTO funcd_usage (") + kColumns + ", node) VALUES ";
    const std::size_t rows = params.size() / (kColumnCount + 1);
    for (std::size_t r = 0; r < rows; ++r) {
        sql += r ? ",(" : "(";
        for (int c = 0; c <= kColumnCount; ++c)
            sql += fmt::format("{}${}", c ? "," : "", r * (kColumnCount + 1) + static_cast<std::size_t>(c) + 1);
        sql += ")";
    }
    sql += " ON CONFLICT (start_us, request_id) DO NOTHING";
    session_.run([&](PgConnection& conn) { conn.query(sql, params); });
    // After the shared ledger has them: a crash in between ships them again, counted once.
    sqlite::Statement(local_, "INSERT OR REPLACE INTO usage_shipped (id, last_rowid) VALUES (1, ?1)")
        .bind(1, last)
        .run();
    return true;
}

void PostgresUsageLedger::ship(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(ship_mutex_, deadline);
    if (!lock.owns_lock())
        throw ApiError::storage_unavailable("usage records are still being shipped to the shared ledger; retry");
    while (ship_batch())
        if (std::chrono::steady_clock::now() > deadline)
            throw ApiError::storage_unavailable("shipping usage records to the shared ledger took too long; retry");
}

UsageReport PostgresUsageLedger::report(const UsageQuery& q) {
    std::string sql =
        "SELECT function, count(*) AS invocations, sum((outcome <> 'success')::int) AS errors, "
        "sum((init_duration_us IS NOT NULL)::int) AS cold_starts, sum(duration_us) AS duration_us, "
        "sum(billed_ms) AS billed_ms, sum(billed_ms * memory_mb) AS mb_ms FROM funcd_usage "
        "WHERE outcome <> 'throttled'";
    std::vector<std::optional<std::string>> params;
    if (q.function) {
        params.emplace_back(*q.function);
        sql += fmt::format(" AND function = ${}", params.size());
    }
    add_start_range(sql, params, q.since, q.until);
    // Byte order, as the single host's ledger sorts.
    sql += " GROUP BY function ORDER BY function COLLATE \"C\"";
    const PgRows rows = session_.run([&](PgConnection& conn) { return conn.query(sql, params); });
    UsageReport out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        UsageTotals t;
        t.name = rows.at(i, "function").value_or("");
        t.invocations = pg_int(rows.at(i, "invocations"));
        t.errors = pg_int(rows.at(i, "errors"));
        t.cold_starts = pg_int(rows.at(i, "cold_starts"));
        t.duration_us = pg_int(rows.at(i, "duration_us"));
        t.billed_ms = pg_int(rows.at(i, "billed_ms"));
        t.mb_ms = pg_int(rows.at(i, "mb_ms"));
        add_function_totals(out, std::move(t));
    }
    return out;
}

std::vector<UsageRecord> PostgresUsageLedger::records(const std::optional<std::string>& function, int limit) {
    std::string sql = std::string("SELECT ") + kColumns + " FROM funcd_usage WHERE outcome <> 'throttled'";
    std::vector<std::optional<std::string>> params;
    if (function) {
        params.emplace_back(*function);
        sql += " AND function = $1";
    }
    params.emplace_back(std::to_string(std::clamp(limit, 1, kMaxRecordsLimit)));
    sql += fmt::format(" ORDER BY start_us DESC, request_id COLLATE \"C\" DESC LIMIT ${}", params.size());
    return records_from(session_.run([&](PgConnection& conn) { return conn.query(sql, params); }));
}

std::vector<UsageRecord> PostgresUsageLedger::invocations(const InvocationQuery& q) {
    std::string sql = std::string("SELECT ") + kColumns + " FROM funcd_usage WHERE function = $1";
    std::vector<std::optional<std::string>> params{q.function};
    add_start_range(sql, params, q.since, q.until);
    if (q.outcome) {
        params.emplace_back(std::string(to_string(*q.outcome)));
        sql += fmt::format(" AND outcome = ${}", params.size());
    }
    params.emplace_back(std::to_string(std::clamp(q.limit, 1, kMaxRecordsLimit)));
    sql += fmt::format(" ORDER BY start_us DESC, request_id COLLATE \"C\" DESC LIMIT ${}", params.size());
    return records_from(session_.run([&](PgConnection& conn) { return conn.query(sql, params); }));
}

std::vector<UsageRecord> PostgresUsageLedger::trace_invocations(std::string_view root,
                                                                const std::optional<std::string>& function,
                                                                int limit) {
    // A Root is "1-<hex>-<hex>": no LIKE wildcard can be in it, so the prefix pattern is
    // exact and the index (text_pattern_ops) finds it.
    const std::string low = "Root=" + std::string(root);
    std::string sql = std::string("SELECT ") + kColumns + " FROM funcd_usage WHERE trace_id LIKE $1";
    std::vector<std::optional<std::string>> params{low + "%"};
    if (function) {
        params.emplace_back(*function);
        sql += " AND function = $2";
    }
    sql += " ORDER BY start_us DESC, request_id COLLATE \"C\" DESC";
    std::vector<UsageRecord> out;
    for (auto& r : records_from(session_.run([&](PgConnection& conn) { return conn.query(sql, params); }))) {
        if (static_cast<int>(out.size()) >= limit) break;
        // Only this Root: the text after it ends the field.
        const std::string_view rest = std::string_view(r.trace_id).substr(low.size());
        if (!rest.empty() && rest.front() != ';') continue;
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<StatsBucket> PostgresUsageLedger::stats(const StatsQuery& q) {
    const PgRows rows = session_.run([&](PgConnection& conn) {
        return conn.query("SELECT start_us, duration_us, billed_ms, memory_mb, init_duration_us, outcome "
                          "FROM funcd_usage WHERE function = $1 AND start_us >= $2 AND start_us < $3",
                          {q.function, std::to_string(to_unix_us(q.since)), std::to_string(to_unix_us(q.until))});
    });
    StatsBuckets buckets(q.since, q.until, q.step);
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        const auto outcome = parse_outcome(rows.at(i, "outcome").value_or(""));
        if (!outcome) continue;  // a later version's outcome: not counted
        StatsSample s;
        s.start_us = pg_int(rows.at(i, "start_us"));
        s.duration_us = pg_int(rows.at(i, "duration_us"));
        s.billed_ms = pg_int(rows.at(i, "billed_ms"));
        s.memory_mb = static_cast<int>(pg_int(rows.at(i, "memory_mb")));
        if (rows.at(i, "init_duration_us")) s.init_duration_us = pg_int(rows.at(i, "init_duration_us"));
        s.outcome = *outcome;
        buckets.add(s);
    }
    return buckets.finish();
}

std::int64_t PostgresUsageLedger::apply_retention(SystemTime cutoff) {
    // In batches, so no statement holds many rows locked for long.
    std::int64_t total = 0;
    for (;;) {
        const auto n = static_cast<std::int64_t>(session_.run([&](PgConnection& conn) {
            return conn
                .query("DELETE FROM funcd_usage WHERE ctid IN (SELECT ctid FROM funcd_usage WHERE node = $1 AND "
                       "start_us < $2 LIMIT 1000) RETURNING 1",
                       {node_id_, std::to_string(to_unix_us(cutoff))})
                .rows.size();
        }));
        total += n;
        if (n < 1000) return total;
    }
}

}  // namespace funcd
