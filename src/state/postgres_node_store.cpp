#include "funcd/state/postgres_node_store.hpp"

#include <libpq-fe.h>

namespace funcd {

PostgresNodeStore::PostgresNodeStore(std::string conninfo)
    : conninfo_(std::move(conninfo)), conn_(PgConnection::connect(conninfo_)) {}

PgConnection& PostgresNodeStore::connection() {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) conn_ = PgConnection::connect(conninfo_);
    return conn_;
}

void PostgresNodeStore::heartbeat(const NodeReport& report) {
    std::lock_guard lock(mutex_);
    connection().query(
        "INSERT INTO funcd_nodes (id, report, heartbeat_at) VALUES ($1, $2::jsonb, now()) "
        "ON CONFLICT (id) DO UPDATE SET report = excluded.report, heartbeat_at = excluded.heartbeat_at",
        {report.id, node_report_json(report).dump()});
}

std::vector<NodeRecord> PostgresNodeStore::nodes() {
    std::lock_guard lock(mutex_);
    const PgRows rows = connection().query(
        "SELECT id, report::text AS report, extract(epoch FROM now() - heartbeat_at)::float8 AS age "
        "FROM funcd_nodes ORDER BY id");
    std::vector<NodeRecord> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        NodeRecord n;
        n.report = node_report_from_json(rows.at(i, "id").value_or(""),
                                         nlohmann::json::parse(rows.at(i, "report").value_or("{}")));
        n.heartbeat_age_s = std::stod(rows.at(i, "age").value_or("0"));
        out.push_back(std::move(n));
    }
    return out;
}

bool PostgresNodeStore::forget(const std::string& id) {
    std::lock_guard lock(mutex_);
    return !connection().query("DELETE FROM funcd_nodes WHERE id = $1 RETURNING id", {id}).empty();
}

}  // namespace funcd
