#include "funcd/state/sqlite_function_store.hpp"

#include <stdexcept>
#include <string>

namespace funcd {
namespace {

constexpr std::string_view kFunctionSchema = R"sql(
CREATE TABLE IF NOT EXISTS function_records (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS deleted_functions (
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS store_revisions (
    scope TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO store_revisions (scope, value) VALUES ('functions', 1);
)sql";

// Rows written before revisions existed are all at revision 1, the counter's start: a
// reader at 0 sees them, and a writer that read one expects 1 (0 means "absent").
void add_revision_column(sqlite::Database& db, const std::string& table) {
    sqlite::Statement q(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = 'revision'");
    q.bind(1, table);
    if (q.step()) return;
    q.reset();
    db.exec("ALTER TABLE " + table + " ADD COLUMN revision INTEGER NOT NULL DEFAULT 1");
}

}  // namespace

SqliteFunctionStore::SqliteFunctionStore(const std::filesystem::path& db_path) : db_(db_path) {
    sqlite::Transaction tx(db_);
    db_.exec(kFunctionSchema);
    add_revision_column(db_, "function_records");
    add_revision_column(db_, "layer_versions");
    tx.commit();
}

std::int64_t SqliteFunctionStore::next_revision() {
    sqlite::Statement q(db_, "UPDATE store_revisions SET value = value + 1 WHERE scope = 'functions' RETURNING value");
    if (!q.step()) throw std::runtime_error("the store's revision counter is missing");
    return q.column_int(0);
}

FunctionStoreChanges SqliteFunctionStore::changes_since(std::int64_t revision) {
    std::lock_guard lock(mutex_);
    FunctionStoreChanges out;
    // One read transaction: the counter and the rows are of the same moment.
    db_.exec("BEGIN");
    try {
        sqlite::Statement counter(db_, "SELECT value FROM store_revisions WHERE scope = 'functions'");
        out.revision = counter.step() ? counter.column_int(0) : 0;
        sqlite::Statement functions(db_, "SELECT name, doc, revision FROM function_records WHERE revision > ?1");
        functions.bind(1, revision);
        while (functions.step())
            out.functions.push_back({functions.column_text(0), functions.column_text(1), functions.column_int(2)});
        sqlite::Statement deleted(db_, "SELECT name FROM deleted_functions WHERE revision > ?1");
        deleted.bind(1, revision);
        while (deleted.step()) out.deleted.push_back(deleted.column_text(0));
        sqlite::Statement layers(db_, "SELECT name, version, doc, revision FROM layer_versions WHERE revision > ?1");
        layers.bind(1, revision);
        while (layers.step())
            out.layers.push_back({layers.column_text(0), layers.column_int(1), layers.column_text(2), layers.column_int(3)});
    } catch (...) {
        db_.exec("ROLLBACK");
        throw;
    }
    db_.exec("COMMIT");
    return out;
}

std::optional<std::int64_t> SqliteFunctionStore::put_function(std::string_view name,
                                                              const std::optional<std::string>& doc,
                                                              std::int64_t expected) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    sqlite::Statement current(db_, "SELECT revision FROM function_records WHERE name = ?1");
    current.bind(1, name);
    const std::int64_t found = current.step() ? current.column_int(0) : 0;
    if (found != expected) return std::nullopt;
    if (!doc && found == 0) return std::nullopt;  // deleting what is not there
    const std::int64_t revision = next_revision();
    if (doc) {
        sqlite::Statement(db_, R"sql(
            INSERT INTO function_records (name, doc, revision) VALUES (?1, ?2, ?3)
            ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, revision = excluded.revision)sql")
            .bind(1, name)
            .bind(2, *doc)
            .bind(3, revision)
            .run();
        sqlite::Statement(db_, "DELETE FROM deleted_functions WHERE name = ?1").bind(1, name).run();
    } else {
        sqlite::Statement(db_, "DELETE FROM function_records WHERE name = ?1").bind(1, name).run();
        sqlite::Statement(db_, "INSERT OR REPLACE INTO deleted_functions (name, revision) VALUES (?1, ?2)")
            .bind(1, name)
            .bind(2, revision)
            .run();
    }
    tx.commit();
    return revision;
}

StoredLayer SqliteFunctionStore::add_layer(std::string_view name,
                                           const std::function<std::string(std::int64_t version)>& doc_for) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    sqlite::Statement last(db_, "SELECT coalesce(max(version), 0) FROM layer_versions WHERE name = ?1");
    last.bind(1, name);
    last.step();
    StoredLayer l{std::string(name), last.column_int(0) + 1, {}, 0};
    l.doc = doc_for(l.version);
    l.revision = next_revision();
    sqlite::Statement(db_, "INSERT INTO layer_versions (name, version, doc, revision) VALUES (?1, ?2, ?3, ?4)")
        .bind(1, l.name)
        .bind(2, l.version)
        .bind(3, l.doc)
        .bind(4, l.revision)
        .run();
    tx.commit();
    return l;
}

std::optional<std::int64_t> SqliteFunctionStore::put_layer(std::string_view name, std::int64_t version,
                                                           const std::string& doc) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(db_);
    const std::int64_t revision = next_revision();
    sqlite::Statement(db_, "UPDATE layer_versions SET doc = ?3, revision = ?4 WHERE name = ?1 AND version = ?2")
        .bind(1, name)
        .bind(2, version)
        .bind(3, doc)
        .bind(4, revision)
        .run();
    if (db_.changes() == 0) return std::nullopt;  // the transaction rolls back, the counter with it
    tx.commit();
    return revision;
}

}  // namespace funcd
