#include "funcd/state/postgres_event_store.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>

#include <spdlog/spdlog.h>

namespace funcd {
namespace {

constexpr const char* kEventColumns =
    "id, function, payload, received_us, next_attempt_us, attempts, throttles, errors_json, source, trace_id";

nlohmann::json errors_from(const std::optional<std::string>& text) {
    nlohmann::json errors = nlohmann::json::parse(text.value_or("[]"), nullptr, false);
    return errors.is_array() ? errors : nlohmann::json::array();
}

std::vector<AsyncEvent> events_from(const PgRows& rows) {
    std::vector<AsyncEvent> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        AsyncEvent e;
        e.id = rows.at(i, "id").value_or("");
        e.function = rows.at(i, "function").value_or("");
        e.payload = rows.at(i, "payload").value_or("");
        e.received = from_unix_us(pg_int(rows.at(i, "received_us")));
        e.next_attempt = from_unix_us(pg_int(rows.at(i, "next_attempt_us")));
        e.attempts = static_cast<int>(pg_int(rows.at(i, "attempts")));
        e.throttles = static_cast<int>(pg_int(rows.at(i, "throttles")));
        e.errors = errors_from(rows.at(i, "errors_json"));
        e.source = rows.at(i, "source").value_or("");
        e.trace_id = rows.at(i, "trace_id").value_or("");
        out.push_back(std::move(e));
    }
    return out;
}

// The pattern that matches a function's qualified targets ("name:..."), LIKE's wildcards
// in the name escaped.
std::string qualified_pattern(const std::string& function) {
    std::string out;
    for (char c : function) {
        if (c == '%' || c == '_' || c == '\\') out += '\\';
        out += c;
    }
    return out + ":%";
}

}  // namespace

PostgresEventStore::PostgresEventStore(std::string conninfo, std::string node_id, std::chrono::seconds lease)
    : session_(std::move(conninfo)), node_id_(std::move(node_id)), lease_(lease) {}

void PostgresEventStore::insert_event(PgConnection& conn, const AsyncEvent& e) {
    conn.query(
        "INSERT INTO funcd_async_events (id, function, payload, received_us, next_attempt_us, attempts, throttles, "
        "errors_json, source, trace_id, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT (id) DO UPDATE SET function = excluded.function, payload = excluded.payload, "
        "received_us = excluded.received_us, next_attempt_us = excluded.next_attempt_us, "
        "attempts = excluded.attempts, throttles = excluded.throttles, errors_json = excluded.errors_json, "
        "source = excluded.source, trace_id = excluded.trace_id, owner = excluded.owner",
        {e.id, e.function, e.payload, std::to_string(to_unix_us(e.received)), std::to_string(to_unix_us(e.next_attempt)),
         std::to_string(e.attempts), std::to_string(e.throttles), e.errors.dump(), e.source, e.trace_id, node_id_});
}

void PostgresEventStore::renew(PgConnection& conn) {
    conn.query(
        "INSERT INTO funcd_leases (name, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3)) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
        {"node:" + node_id_, node_id_, std::to_string(lease_.count())});
}

void PostgresEventStore::enqueue(const AsyncEvent& e) {
    session_.run([&](PgConnection& conn) { insert_event(conn, e); });
}

std::vector<AsyncEvent> PostgresEventStore::take_pending() {
    // The lease first: a node restarted within its lease keeps its events, and from here on
    // nobody rescues them while it runs.
    const auto own = session_.run([&](PgConnection& conn) {
        renew(conn);
        return events_from(conn.query(std::string("SELECT ") + kEventColumns +
                                          " FROM funcd_async_events WHERE owner = $1 ORDER BY received_us",
                                      {node_id_}));
    });
    auto rescued = rescue(std::numeric_limits<std::int32_t>::max());
    std::vector<AsyncEvent> out = own;
    out.insert(out.end(), std::make_move_iterator(rescued.begin()), std::make_move_iterator(rescued.end()));
    return out;
}

void PostgresEventStore::renew_claims() {
    session_.run([&](PgConnection& conn) { renew(conn); });
}

std::vector<AsyncEvent> PostgresEventStore::rescue(std::size_t limit) {
    auto rescued = session_.run([&](PgConnection& conn) {
        // Two statements: first the nodes whose claims expired, then their events. The second
        // names them as constants, so that a row another rescuer took meanwhile (locked, then
        // committed with a new owner) fails the re-check PostgreSQL makes on the row's newest
        // version and is skipped. A condition on the leases there would be judged against the
        // statement's older snapshot and let the row be taken twice.
        const PgRows dead = conn.query(
            "SELECT DISTINCT e.owner FROM funcd_async_events e WHERE e.owner <> $1 AND NOT EXISTS ("
            " SELECT 1 FROM funcd_leases l WHERE l.name = 'node:' || e.owner AND l.expires_at > now())",
            {node_id_});
        if (dead.empty()) return std::vector<AsyncEvent>{};
        std::string owners = "{";
        for (std::size_t i = 0; i < dead.rows.size(); ++i) {
            std::string quoted;
            for (char c : dead.at(i, "owner").value_or("")) {
                if (c == '"' || c == '\\') quoted += '\\';
                quoted += c;
            }
            owners += (i ? ",\"" : "\"") + quoted + "\"";
        }
        owners += "}";
        return events_from(conn.query(std::string("UPDATE funcd_async_events SET owner = $1 WHERE id IN ("
                                                  " SELECT id FROM funcd_async_events WHERE owner = ANY ($2::text[])"
                                                  " ORDER BY received_us LIMIT $3"
                                                  " FOR UPDATE SKIP LOCKED) RETURNING ") +
                                          kEventColumns,
                                      {node_id_, owners, std::to_string(limit)}));
    });
    std::sort(rescued.begin(), rescued.end(),
              [](const AsyncEvent& a, const AsyncEvent& b) { return a.received < b.received; });
    if (!rescued.empty())
        spdlog::info("events: {} asynchronous events of nodes whose claims expired taken over", rescued.size());
    return rescued;
}

void PostgresEventStore::update(const AsyncEvent& e) {
    session_.run([&](PgConnection& conn) {
        conn.query(
            "UPDATE funcd_async_events SET next_attempt_us = $2, attempts = $3, throttles = $4, errors_json = $5 "
            "WHERE id = $1",
            {e.id, std::to_string(to_unix_us(e.next_attempt)), std::to_string(e.attempts), std::to_string(e.throttles),
             e.errors.dump()});
    });
}

void PostgresEventStore::complete(const std::string& id, const std::optional<AsyncEvent>& follow_up) {
    session_.transaction([&](PgConnection& conn) {
        conn.query("DELETE FROM funcd_async_events WHERE id = $1", {id});
        if (follow_up) insert_event(conn, *follow_up);
    });
}

void PostgresEventStore::dead_letter(const DeadLetter& d, const std::optional<AsyncEvent>& follow_up) {
    const AsyncEvent& e = d.event;
    session_.transaction([&](PgConnection& conn) {
        conn.query(
            "INSERT INTO funcd_dead_letters (id, function, payload, received_us, failed_us, reason, attempts, "
            "errors_json, source, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (id) DO UPDATE SET function = excluded.function, payload = excluded.payload, "
            "received_us = excluded.received_us, failed_us = excluded.failed_us, reason = excluded.reason, "
            "attempts = excluded.attempts, errors_json = excluded.errors_json, source = excluded.source, "
            "trace_id = excluded.trace_id",
            {e.id, e.function, e.payload, std::to_string(to_unix_us(e.received)), std::to_string(to_unix_us(d.failed)),
             d.reason, std::to_string(e.attempts), e.errors.dump(), e.source, e.trace_id});
        conn.query("DELETE FROM funcd_async_events WHERE id = $1", {e.id});
        if (follow_up) insert_event(conn, *follow_up);
    });
}

std::vector<DeadLetter> PostgresEventStore::dead_letters(const std::optional<std::string>& function, int limit) {
    const PgRows rows = session_.run([&](PgConnection& conn) {
        return conn.query(
            "SELECT id, function, payload, received_us, failed_us, reason, attempts, errors_json, source, trace_id "
            "FROM funcd_dead_letters WHERE ($1::text IS NULL OR function = $1) ORDER BY failed_us DESC LIMIT $2",
            {function, std::to_string(limit)});
    });
    std::vector<DeadLetter> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        DeadLetter d;
        d.event.id = rows.at(i, "id").value_or("");
        d.event.function = rows.at(i, "function").value_or("");
        d.event.payload = rows.at(i, "payload").value_or("");
        d.event.received = from_unix_us(pg_int(rows.at(i, "received_us")));
        d.failed = from_unix_us(pg_int(rows.at(i, "failed_us")));
        d.reason = rows.at(i, "reason").value_or("");
        d.event.attempts = static_cast<int>(pg_int(rows.at(i, "attempts")));
        d.event.errors = errors_from(rows.at(i, "errors_json"));
        d.event.source = rows.at(i, "source").value_or("");
        d.event.trace_id = rows.at(i, "trace_id").value_or("");
        out.push_back(std::move(d));
    }
    return out;
}

std::optional<AsyncEvent> PostgresEventStore::redrive(const std::string& id, SystemTime now) {
    return session_.transaction([&](PgConnection& conn) -> std::optional<AsyncEvent> {
        const PgRows rows = conn.query(
            "DELETE FROM funcd_dead_letters WHERE id = $1 RETURNING function, payload, source, trace_id", {id});
        if (rows.empty()) return std::nullopt;
        AsyncEvent e;
        e.id = id;
        e.function = rows.at(0, "function").value_or("");
        e.payload = rows.at(0, "payload").value_or("");
        e.source = rows.at(0, "source").value_or("");
        e.trace_id = rows.at(0, "trace_id").value_or("");
        e.received = now;
        e.next_attempt = now;
        insert_event(conn, e);
        return e;
    });
}

bool PostgresEventStore::delete_dead_letter(const std::string& id) {
    return session_.run([&](PgConnection& conn) {
        return !conn.query("DELETE FROM funcd_dead_letters WHERE id = $1 RETURNING id", {id}).empty();
    });
}

std::size_t PostgresEventStore::purge_dead_letters(SystemTime before) {
    // In batches, each its own statement, so a large purge never holds many row locks long.
    constexpr int kBatch = 1000;
    std::size_t removed = 0;
    for (;;) {
        const std::size_t n = session_.run([&](PgConnection& conn) {
            return conn
                .query("DELETE FROM funcd_dead_letters WHERE id IN (SELECT id FROM funcd_dead_letters "
                       "WHERE failed_us < $1 LIMIT $2) RETURNING id",
                       {std::to_string(to_unix_us(before)), std::to_string(kBatch)})
                .rows.size();
        });
        removed += n;
        if (n < static_cast<std::size_t>(kBatch)) return removed;
    }
}

void PostgresEventStore::drop_function(const std::string& function) {
    session_.transaction([&](PgConnection& conn) {
        // Events and configs for the function's qualifiers ("name:alias") go too.
        conn.query("DELETE FROM funcd_async_events WHERE function = $1 OR function LIKE $2",
                   {function, qualified_pattern(function)});
        conn.query("DELETE FROM funcd_event_configs WHERE function = $1 OR function LIKE $2",
                   {function, qualified_pattern(function)});
    });
}

std::optional<EventConfig> PostgresEventStore::event_config(const std::string& function) {
    const PgRows rows = session_.run([&](PgConnection& conn) {
        return conn.query("SELECT config_json FROM funcd_event_configs WHERE function = $1", {function});
    });
    if (rows.empty()) return std::nullopt;
    return event_config_from_json(nlohmann::json::parse(rows.at(0, "config_json").value_or("{}")));
}

std::vector<std::pair<std::string, EventConfig>> PostgresEventStore::event_configs() {
    const PgRows rows = session_.run(
        [](PgConnection& conn) { return conn.query("SELECT function, config_json FROM funcd_event_configs"); });
    std::vector<std::pair<std::string, EventConfig>> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        const std::string function = rows.at(i, "function").value_or("");
        try {
            out.emplace_back(function,
                             event_config_from_json(nlohmann::json::parse(rows.at(i, "config_json").value_or("{}"))));
        } catch (const std::exception& e) {
            spdlog::error("events: unreadable event config of function={}, defaults apply: {}", function, e.what());
        }
    }
    return out;
}

void PostgresEventStore::put_event_config(const std::string& function, const EventConfig& c) {
    session_.run([&](PgConnection& conn) {
        conn.query(
            "INSERT INTO funcd_event_configs (function, config_json) VALUES ($1, $2) "
            "ON CONFLICT (function) DO UPDATE SET config_json = excluded.config_json",
            {function, to_json(c).dump()});
    });
}

void PostgresEventStore::delete_event_config(const std::string& function) {
    session_.run(
        [&](PgConnection& conn) { conn.query("DELETE FROM funcd_event_configs WHERE function = $1", {function}); });
}

}  // namespace funcd
