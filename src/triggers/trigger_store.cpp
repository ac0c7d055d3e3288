#include "funcd/triggers/trigger_store.hpp"

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
)sql";

json to_json(const ScheduleDefinition& s) {
    return {{"expression", s.expression},
            {"input", s.input ? *s.input : json(nullptr)},
            {"has_input", s.input.has_value()},
            {"enabled", s.enabled},
            {"created_us", to_unix_us(s.created)}};
}

json to_json(const FileTriggerDefinition& t) {
    return {{"directory", t.directory.string()},
            {"patterns", t.patterns},
            {"events", t.events},
            {"output_directory", t.output_directory ? json(t.output_directory->string()) : json(nullptr)}};
}

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

}  // namespace

TriggerStore::TriggerStore(const std::filesystem::path& db_path) : db_(db_path) {
    db_.exec(kTriggerSchema);
}

std::vector<ScheduleDefinition> TriggerStore::schedules() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT function, name, definition_json FROM schedules ORDER BY function, name");
    std::vector<ScheduleDefinition> out;
    while (q.step()) {
        json j = json::parse(q.column_text(2));
        ScheduleDefinition s;
        s.function = q.column_text(0);
        s.name = q.column_text(1);
        s.expression = j.at("expression").get<std::string>();
        if (j.value("has_input", false)) s.input = j.at("input");
        s.enabled = j.value("enabled", true);
        s.created = from_unix_us(j.value("created_us", std::int64_t{0}));
        out.push_back(std::move(s));
    }
    return out;
}

void TriggerStore::put_schedule(const ScheduleDefinition& s) {
    std::lock_guard lock(mutex_);
    put_row(db_, "schedules", s.function, s.name, to_json(s));
}

bool TriggerStore::delete_schedule(const std::string& function, const std::string& name) {
    std::lock_guard lock(mutex_);
    return delete_row(db_, "schedules", function, name);
}

std::vector<FileTriggerDefinition> TriggerStore::file_triggers() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT function, name, definition_json FROM file_triggers ORDER BY function, name");
    std::vector<FileTriggerDefinition> out;
    while (q.step()) {
        json j = json::parse(q.column_text(2));
        FileTriggerDefinition t;
        t.function = q.column_text(0);
        t.name = q.column_text(1);
        t.directory = j.at("directory").get<std::string>();
        t.patterns = j.value("patterns", std::vector<std::string>{});
        t.events = j.value("events", std::vector<std::string>{"created"});
        if (j.contains("output_directory") && j["output_directory"].is_string())
            t.output_directory = j["output_directory"].get<std::string>();
        out.push_back(std::move(t));
    }
    return out;
}

void TriggerStore::put_file_trigger(const FileTriggerDefinition& t) {
    std::lock_guard lock(mutex_);
    put_row(db_, "file_triggers", t.function, t.name, to_json(t));
}

bool TriggerStore::delete_file_trigger(const std::string& function, const std::string& name) {
    std::lock_guard lock(mutex_);
    return delete_row(db_, "file_triggers", function, name);
}

json TriggerStore::routes() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT routes_json FROM routes WHERE id = 1");
    if (!q.step()) return json::array();
    return json::parse(q.column_text(0));
}

void TriggerStore::put_routes(const json& routes) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "INSERT INTO routes (id, routes_json) VALUES (1, ?1) "
                             "ON CONFLICT(id) DO UPDATE SET routes_json = ?1");
    q.bind(1, routes.dump()).run();
}

void TriggerStore::drop_function(const std::string& function) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    for (std::string_view table : {"schedules", "file_triggers"}) {
        sqlite::Statement q(db_, "DELETE FROM " + std::string(table) + " WHERE function = ?1");
        q.bind(1, function).run();
    }
    tx.commit();
}

}  // namespace funcd
