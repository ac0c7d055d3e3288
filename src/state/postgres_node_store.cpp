#include "funcd/state/postgres_node_store.hpp"

namespace funcd {

PostgresNodeStore::PostgresNodeStore(std::string conninfo) : session_(std::move(conninfo)) {}

void PostgresNodeStore::heartbeat(const NodeReport& report) {
    session_.run([&](PgConnection& conn) {
        conn.query(
            "INSERT INTO funcd_nodes (id, report, heartbeat_at) VALUES ($1, $2::jsonb, now()) "
            "ON CONFLICT (id) DO UPDATE SET report = excluded.report, heartbeat_at = excluded.heartbeat_at",
            {report.id, node_report_json(report).dump()});
    });
}

std::vector<NodeRecord> PostgresNodeStore::nodes() {
    const PgRows rows = session_.run([](PgConnection& conn) {
        return conn.query(
            "SELECT id, report::text AS report, extract(epoch FROM now() - heartbeat_at)::float8 AS age "
            "FROM funcd_nodes ORDER BY id");
    });
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
    return session_.run([&](PgConnection& conn) {
        return !conn.query("DELETE FROM funcd_nodes WHERE id = $1 RETURNING id", {id}).empty();
    });
}

}  // namespace funcd
