#include "funcd/triggers/sqlite_trigger_store.hpp"

namespace funcd {
namespace {

using json = nlohmann::json;

constexpr std::string_view kTriggerSchema = R"sql(
CREATE TABLE IF NOT EXISTS schedules (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    definition_json TEXT NOT NULL,
    PRIMARY KEY (function, name)
);
CREATE TABLE IF NOT EXISTS file_triggers (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    definition_json TEXT NOT NULL,
    PRIMARY KEY (function, name)
);
CREATE TABLE IF NOT EXISTS routes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    routes_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_fires (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    fire_us INTEGER NOT NULL,
    PRIMARY KEY (function, name, fire_us)
);
)sql";

bool delete_row(sqlite::Database& db, std::string_view table, const std::string& function, const std::string& name) {
    sqlite::Statement q(db, "DELETE FROM " + std::string(table) + " WHERE function = ?1 AND name = ?2");
    q.bind(1, function).bind(2, name).run();
    return db.changes() > 0;
}

void put_row(sqlite::Database& db, std::string_view table, const std::string& function, const std::string& name,
             const json& definition) {
    sqlite::Statement q(db, "INSERT INTO " + std::string(table) +
                                " (function, name, definition_json) VALUES (?1, ?2, ?3) "
                                "ON CONFLICT(function, name) DO UPDATE SET definition_json = ?3");
    q.bind(1, function).bind(2, name).bind(3, definition.dump()).run();
}

// Every definition of `table`, by function then name, each made by `from_json`.
template <class FromJson>
auto read_definitions(sqlite::Database& db, const std::string& table, FromJson from_json) {
    sqlite::Statement q(db, "SELECT function, name, definition_json FROM " + table + " ORDER BY function, name");
    std::vector<decltype(from_json(std::string(), std::string(), json()))> out;
    while (q.step()) out.push_back(from_json(q.column_text(0), q.column_text(1), json::parse(q.column_text(2))));
    return out;
}

}  // namespace

SqliteTriggerStore::SqliteTriggerStore(const std::filesystem::path& db_path) : db_(db_path) {
    db_.exec(kTriggerSchema);
}

std::vector<ScheduleDefinition> SqliteTriggerStore::schedules() {
    std::lock_guard lock(mutex_);
    return read_definitions(db_, "schedules", schedule_definition_from_json);
}

void SqliteTriggerStore::put_schedule(const ScheduleDefinition& s) {
    std::lock_guard lock(mutex_);
    put_row(db_, "schedules", s.function, s.name, schedule_definition_json(s));
}

bool SqliteTriggerStore::delete_schedule(const std::string& function, const std::string& name) {
    std::lock_guard lock(mutex_);
    return delete_row(db_, "schedules", function, name);
}

bool SqliteTriggerStore::claim_fire(const std::string& function, const std::string& name, SystemTime at) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    sqlite::Statement(db_, "INSERT OR IGNORE INTO schedule_fires (function, name, fire_us) VALUES (?1, ?2, ?3)")
        .bind(1, function)
        .bind(2, name)
        .bind(3, to_unix_us(at))
        .run();
    const bool taken = db_.changes() > 0;
    // A fire is only ever asked about around its time: a week of them is plenty to answer.
    sqlite::Statement(db_, "DELETE FROM schedule_fires WHERE function = ?1 AND name = ?2 AND fire_us < ?3")
        .bind(1, function)
        .bind(2, name)
        .bind(3, to_unix_us(at - kScheduleFiresKept))
        .run();
    tx.commit();
    return taken;
}

std::vector<FileTriggerDefinition> SqliteTriggerStore::file_triggers() {
    std::lock_guard lock(mutex_);
    return read_definitions(db_, "file_triggers", file_trigger_definition_from_json);
}

void SqliteTriggerStore::put_file_trigger(const FileTriggerDefinition& t) {
    std::lock_guard lock(mutex_);
    put_row(db_, "file_triggers", t.function, t.name, file_trigger_definition_json(t));
}

bool SqliteTriggerStore::delete_file_trigger(const std::string& function, const std::string& name) {
    std::lock_guard lock(mutex_);
    return delete_row(db_, "file_triggers", function, name);
}

json SqliteTriggerStore::routes() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT routes_json FROM routes WHERE id = 1");
    if (!q.step()) return json::array();
    return json::parse(q.column_text(0));
}

void SqliteTriggerStore::put_routes(const json& routes) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "INSERT INTO routes (id, routes_json) VALUES (1, ?1) "
                             "ON CONFLICT(id) DO UPDATE SET routes_json = ?1");
    q.bind(1, routes.dump()).run();
}

void SqliteTriggerStore::drop_function(const std::string& function) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    for (std::string_view table : {"schedules", "file_triggers", "schedule_fires"}) {
        sqlite::Statement q(db_, "DELETE FROM " + std::string(table) + " WHERE function = ?1");
        q.bind(1, function).run();
    }
    tx.commit();
}

}  // namespace funcd
