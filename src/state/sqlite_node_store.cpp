#include "funcd/state/sqlite_node_store.hpp"

#include <chrono>

namespace funcd {
namespace {

using nlohmann::json;

constexpr const char* kNodeSchema = R"(
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    report_json TEXT NOT NULL,
    heartbeat_us INTEGER NOT NULL
);
)";

std::int64_t node_clock_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

SqliteNodeStore::SqliteNodeStore(const std::filesystem::path& db_path) : db_(db_path) {
    db_.exec(kNodeSchema);
}

void SqliteNodeStore::heartbeat(const NodeReport& report) {
    std::lock_guard lock(mutex_);
    sqlite::Statement(db_,
                      "INSERT INTO nodes (id, report_json, heartbeat_us) VALUES (?1, ?2, ?3) "
                      "ON CONFLICT (id) DO UPDATE SET report_json = excluded.report_json, "
                      "heartbeat_us = excluded.heartbeat_us")
        .bind(1, report.id)
        .bind(2, node_report_json(report).dump())
        .bind(3, node_clock_us())
        .run();
}

std::vector<NodeRecord> SqliteNodeStore::nodes() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT id, report_json, heartbeat_us FROM nodes ORDER BY id");
    const std::int64_t now = node_clock_us();
    std::vector<NodeRecord> out;
    while (q.step()) {
        NodeRecord n;
        n.report = node_report_from_json(q.column_text(0), json::parse(q.column_text(1)));
        n.heartbeat_age_s = static_cast<double>(now - q.column_int(2)) / 1e6;
        out.push_back(std::move(n));
    }
    return out;
}

bool SqliteNodeStore::forget(const std::string& id) {
    std::lock_guard lock(mutex_);
    sqlite::Statement(db_, "DELETE FROM nodes WHERE id = ?1").bind(1, id).run();
    return db_.changes() > 0;
}

}  // namespace funcd
