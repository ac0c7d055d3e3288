#include "funcd/dispatch/sqlite_event_store.hpp"

#include <spdlog/spdlog.h>

namespace funcd {
namespace {

constexpr std::string_view kEventSchema = R"sql(
CREATE TABLE IF NOT EXISTS async_events (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_us INTEGER NOT NULL,
    next_attempt_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    throttles INTEGER NOT NULL,
    errors_json TEXT NOT NULL,
    source TEXT NOT NULL,
    trace_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS async_events_function ON async_events(function);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_us INTEGER NOT NULL,
    failed_us INTEGER NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    errors_json TEXT NOT NULL,
    source TEXT NOT NULL,
    trace_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS dead_letters_function ON dead_letters(function, failed_us);
CREATE INDEX IF NOT EXISTS dead_letters_failed ON dead_letters(failed_us);
CREATE TABLE IF NOT EXISTS event_configs (
    function TEXT PRIMARY KEY,
    config_json TEXT NOT NULL
);
)sql";

AsyncEvent event_from_row(sqlite::Statement& q) {
    AsyncEvent e;
    e.id = q.column_text(0);
    e.function = q.column_text(1);
    e.payload = q.column_text(2);
    e.received = from_unix_us(q.column_int(3));
    e.next_attempt = from_unix_us(q.column_int(4));
    e.attempts = static_cast<int>(q.column_int(5));
    e.throttles = static_cast<int>(q.column_int(6));
    e.errors = nlohmann::json::parse(q.column_text(7), nullptr, false);
    if (!e.errors.is_array()) e.errors = nlohmann::json::array();
    e.source = q.column_text(8);
    e.trace_id = q.column_text(9);
    return e;
}

// Whether `table` has `column` (columns added by later versions).
bool has_column(sqlite::Database& db, std::string_view table, std::string_view column) {
    sqlite::Statement q(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
    q.bind(1, table).bind(2, column);
    return q.step();
}

}  // namespace

SqliteEventStore::SqliteEventStore(const std::filesystem::path& db_path) : db_(db_path) {
    db_.exec(kEventSchema);
    // Tables from before trace ids: events queued then get a new trace id at delivery.
    for (std::string_view table : {"async_events", "dead_letters"})
        if (!has_column(db_, table, "trace_id"))
            db_.exec("ALTER TABLE " + std::string(table) + " ADD COLUMN trace_id TEXT NOT NULL DEFAULT ''");
}

void SqliteEventStore::insert_event(const AsyncEvent& e) {
    sqlite::Statement q(db_, R"sql(
        INSERT OR REPLACE INTO async_events
            (id, function, payload, received_us, next_attempt_us, attempts, throttles, errors_json, source, trace_id)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql");
    q.bind(1, e.id)
        .bind(2, e.function)
        .bind(3, e.payload)
        .bind(4, to_unix_us(e.received))
        .bind(5, to_unix_us(e.next_attempt))
        .bind(6, e.attempts)
        .bind(7, e.throttles)
        .bind(8, e.errors.dump())
        .bind(9, e.source)
        .bind(10, e.trace_id);
    q.run();
}

void SqliteEventStore::enqueue(const AsyncEvent& e) {
    std::lock_guard lock(mutex_);
    insert_event(e);
}

std::vector<AsyncEvent> SqliteEventStore::take_pending() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, R"sql(
        SELECT id, function, payload, received_us, next_attempt_us, attempts, throttles, errors_json, source,
               trace_id
        FROM async_events ORDER BY received_us)sql");
    std::vector<AsyncEvent> out;
    while (q.step()) out.push_back(event_from_row(q));
    return out;
}

void SqliteEventStore::update(const AsyncEvent& e) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, R"sql(
        UPDATE async_events SET next_attempt_us = ?2, attempts = ?3, throttles = ?4, errors_json = ?5
        WHERE id = ?1)sql");
    q.bind(1, e.id).bind(2, to_unix_us(e.next_attempt)).bind(3, e.attempts).bind(4, e.throttles).bind(5, e.errors.dump());
    q.run();
}

void SqliteEventStore::complete(const std::string& id, const std::optional<AsyncEvent>& follow_up) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    sqlite::Statement del(db_, "DELETE FROM async_events WHERE id = ?1");
    del.bind(1, id).run();
    if (follow_up) insert_event(*follow_up);
    tx.commit();
}

void SqliteEventStore::dead_letter(const DeadLetter& d, const std::optional<AsyncEvent>& follow_up) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    const AsyncEvent& e = d.event;
    sqlite::Statement ins(db_, R"sql(
        INSERT OR REPLACE INTO dead_letters
            (id, function, payload, received_us, failed_us, reason, attempts, errors_json, source, trace_id)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql");
    ins.bind(1, e.id)
        .bind(2, e.function)
        .bind(3, e.payload)
        .bind(4, to_unix_us(e.received))
        .bind(5, to_unix_us(d.failed))
        .bind(6, d.reason)
        .bind(7, e.attempts)
        .bind(8, e.errors.dump())
        .bind(9, e.source)
        .bind(10, e.trace_id);
    ins.run();
    sqlite::Statement del(db_, "DELETE FROM async_events WHERE id = ?1");
    del.bind(1, e.id).run();
    if (follow_up) insert_event(*follow_up);
    tx.commit();
}

std::vector<DeadLetter> SqliteEventStore::dead_letters(const std::optional<std::string>& function, int limit) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, R"sql(
        SELECT id, function, payload, received_us, failed_us, reason, attempts, errors_json, source, trace_id
        FROM dead_letters WHERE (?1 IS NULL OR function = ?1) ORDER BY failed_us DESC LIMIT ?2)sql");
    if (function) q.bind(1, *function);
    else q.bind_null(1);
    q.bind(2, limit);
    std::vector<DeadLetter> out;
    while (q.step()) {
        DeadLetter d;
        d.event.id = q.column_text(0);
        d.event.function = q.column_text(1);
        d.event.payload = q.column_text(2);
        d.event.received = from_unix_us(q.column_int(3));
        d.failed = from_unix_us(q.column_int(4));
        d.reason = q.column_text(5);
        d.event.attempts = static_cast<int>(q.column_int(6));
        d.event.errors = nlohmann::json::parse(q.column_text(7), nullptr, false);
        if (!d.event.errors.is_array()) d.event.errors = nlohmann::json::array();
        d.event.source = q.column_text(8);
        d.event.trace_id = q.column_text(9);
        out.push_back(std::move(d));
    }
    return out;
}

std::optional<AsyncEvent> SqliteEventStore::redrive(const std::string& id, SystemTime now) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    sqlite::Statement q(db_, "SELECT function, payload, source, trace_id FROM dead_letters WHERE id = ?1");
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    AsyncEvent e;
    e.id = id;
    e.function = q.column_text(0);
    e.payload = q.column_text(1);
    e.source = q.column_text(2);
    e.trace_id = q.column_text(3);
    e.received = now;
    e.next_attempt = now;
    insert_event(e);
    sqlite::Statement del(db_, "DELETE FROM dead_letters WHERE id = ?1");
    del.bind(1, id).run();
    tx.commit();
    return e;
}

bool SqliteEventStore::delete_dead_letter(const std::string& id) {
    std::lock_guard lock(mutex_);
    sqlite::Statement del(db_, "DELETE FROM dead_letters WHERE id = ?1");
    del.bind(1, id).run();
    return db_.changes() > 0;
}

std::size_t SqliteEventStore::purge_dead_letters(SystemTime before) {
    // In batches, each its own transaction, so a large purge never holds the database's
    // write lock for long (async accepts wait on it).
    constexpr int kBatch = 1000;
    std::size_t removed = 0;
    for (;;) {
        std::lock_guard lock(mutex_);
        sqlite::Statement del(db_, "DELETE FROM dead_letters WHERE rowid IN "
                                   "(SELECT rowid FROM dead_letters WHERE failed_us < ?1 LIMIT ?2)");
        del.bind(1, to_unix_us(before)).bind(2, std::int64_t{kBatch}).run();
        const auto n = static_cast<std::size_t>(db_.changes());
        removed += n;
        if (n < static_cast<std::size_t>(kBatch)) return removed;
    }
}

void SqliteEventStore::drop_function(const std::string& function) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    // Events and configs for the function's qualifiers ("name:alias") go too.
    sqlite::Statement events(db_, "DELETE FROM async_events WHERE function = ?1 OR substr(function, 1, length(?1) + 1) = ?1 || ':'");
    events.bind(1, function).run();
    sqlite::Statement config(db_, "DELETE FROM event_configs WHERE function = ?1 OR substr(function, 1, length(?1) + 1) = ?1 || ':'");
    config.bind(1, function).run();
    tx.commit();
}

std::optional<EventConfig> SqliteEventStore::event_config(const std::string& function) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT config_json FROM event_configs WHERE function = ?1");
    q.bind(1, function);
    if (!q.step()) return std::nullopt;
    return event_config_from_json(nlohmann::json::parse(q.column_text(0)));
}

std::vector<std::pair<std::string, EventConfig>> SqliteEventStore::event_configs() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT function, config_json FROM event_configs");
    std::vector<std::pair<std::string, EventConfig>> out;
    while (q.step()) {
        try {
            out.emplace_back(q.column_text(0), event_config_from_json(nlohmann::json::parse(q.column_text(1))));
        } catch (const std::exception& e) {
            spdlog::error("events: unreadable event config of function={}, defaults apply: {}", q.column_text(0),
                          e.what());
        }
    }
    return out;
}

void SqliteEventStore::put_event_config(const std::string& function, const EventConfig& c) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, R"sql(
        INSERT INTO event_configs (function, config_json) VALUES (?1, ?2)
        ON CONFLICT(function) DO UPDATE SET config_json = ?2)sql");
    q.bind(1, function).bind(2, to_json(c).dump()).run();
}

void SqliteEventStore::delete_event_config(const std::string& function) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "DELETE FROM event_configs WHERE function = ?1");
    q.bind(1, function).run();
}

}  // namespace funcd
