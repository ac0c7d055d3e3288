#include "funcd/state/postgres_trigger_store.hpp"

#include "funcd/state/postgres_function_store.hpp"

namespace funcd {
namespace {

void notify_triggers(PgConnection& conn) { conn.query("SELECT pg_notify($1, 'triggers')", {std::string(kStateChannel)}); }

void put_row(PgConnection& conn, const std::string& table, const std::string& function, const std::string& name,
             const nlohmann::json& definition) {
    conn.query("INSERT INTO " + table + " (function, name, definition_json) VALUES ($1, $2, $3) "
               "ON CONFLICT (function, name) DO UPDATE SET definition_json = excluded.definition_json",
               {function, name, definition.dump()});
    notify_triggers(conn);
}

bool delete_row(PgConnection& conn, const std::string& table, const std::string& function, const std::string& name) {
    const bool deleted =
        !conn.query("DELETE FROM " + table + " WHERE function = $1 AND name = $2 RETURNING name", {function, name})
             .empty();
    if (deleted) notify_triggers(conn);
    return deleted;
}

}  // namespace

PostgresTriggerStore::PostgresTriggerStore(std::string conninfo, std::string node_id)
    : session_(std::move(conninfo)), node_id_(std::move(node_id)) {}

namespace {

// Every definition of `table`, by function then name, each made by `from_json`.
template <class FromJson>
auto read_definitions(PgSession& session, const std::string& table, FromJson from_json) {
    const PgRows rows = session.run([&](PgConnection& conn) {
        return conn.query("SELECT function, name, definition_json FROM " + table + " ORDER BY function, name");
    });
    std::vector<decltype(from_json(std::string(), std::string(), nlohmann::json()))> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i)
        out.push_back(from_json(*rows.at(i, "function"), *rows.at(i, "name"),
                                nlohmann::json::parse(*rows.at(i, "definition_json"))));
    return out;
}

}  // namespace

std::vector<ScheduleDefinition> PostgresTriggerStore::schedules() {
    return read_definitions(session_, "funcd_schedules", schedule_definition_from_json);
}

void PostgresTriggerStore::put_schedule(const ScheduleDefinition& s) {
    session_.transaction(
        [&](PgConnection& conn) { put_row(conn, "funcd_schedules", s.function, s.name, schedule_definition_json(s)); });
}

bool PostgresTriggerStore::delete_schedule(const std::string& function, const std::string& name) {
    return session_.transaction(
        [&](PgConnection& conn) { return delete_row(conn, "funcd_schedules", function, name); });
}

bool PostgresTriggerStore::claim_fire(const std::string& function, const std::string& name, SystemTime at) {
    return session_.transaction([&](PgConnection& conn) {
        const bool taken = !conn.query("INSERT INTO funcd_schedule_fires (function, name, fire_us, node) "
                                       "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING node",
                                       {function, name, std::to_string(to_unix_us(at)), node_id_})
                                .empty();
        conn.query("DELETE FROM funcd_schedule_fires WHERE function = $1 AND name = $2 AND fire_us < $3",
                   {function, name, std::to_string(to_unix_us(at - kScheduleFiresKept))});
        return taken;
    });
}

std::vector<FileTriggerDefinition> PostgresTriggerStore::file_triggers() {
    return read_definitions(session_, "funcd_file_triggers", file_trigger_definition_from_json);
}

void PostgresTriggerStore::put_file_trigger(const FileTriggerDefinition& t) {
    session_.transaction([&](PgConnection& conn) {
        put_row(conn, "funcd_file_triggers", t.function, t.name, file_trigger_definition_json(t));
    });
}

bool PostgresTriggerStore::delete_file_trigger(const std::string& function, const std::string& name) {
    return session_.transaction(
        [&](PgConnection& conn) { return delete_row(conn, "funcd_file_triggers", function, name); });
}

nlohmann::json PostgresTriggerStore::routes() {
    const PgRows rows =
        session_.run([](PgConnection& conn) { return conn.query("SELECT routes_json FROM funcd_routes WHERE id = 1"); });
    if (rows.empty()) return nlohmann::json::array();
    return nlohmann::json::parse(*rows.at(0, "routes_json"));
}

void PostgresTriggerStore::put_routes(const nlohmann::json& routes) {
    session_.transaction([&](PgConnection& conn) {
        conn.query("INSERT INTO funcd_routes (id, routes_json) VALUES (1, $1) "
                   "ON CONFLICT (id) DO UPDATE SET routes_json = excluded.routes_json",
                   {routes.dump()});
        notify_triggers(conn);
    });
}

void PostgresTriggerStore::drop_function(const std::string& function) {
    session_.transaction([&](PgConnection& conn) {
        for (const char* table : {"funcd_schedules", "funcd_file_triggers", "funcd_schedule_fires"})
            conn.query(std::string("DELETE FROM ") + table + " WHERE function = $1", {function});
        notify_triggers(conn);
    });
}

}  // namespace funcd
