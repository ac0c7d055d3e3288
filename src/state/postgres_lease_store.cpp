#include "funcd/state/postgres_lease_store.hpp"

namespace funcd {

PostgresLeaseStore::PostgresLeaseStore(std::string conninfo) : session_(std::move(conninfo)) {}

bool PostgresLeaseStore::acquire(const std::string& name, const std::string& holder, std::chrono::seconds ttl) {
    return session_.run([&](PgConnection& conn) {
        // One statement: the row's lock orders two nodes asking at once, and the loser's
        // re-check finds the winner's unexpired lease.
        return !conn.query("INSERT INTO funcd_leases (name, holder, expires_at) "
                           "VALUES ($1, $2, now() + make_interval(secs => $3)) "
                           "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                           "WHERE funcd_leases.holder = excluded.holder OR funcd_leases.expires_at <= now() "
                           "RETURNING holder",
                           {name, holder, std::to_string(ttl.count())})
                    .empty();
    });
}

std::optional<std::string> PostgresLeaseStore::holder(const std::string& name) {
    const PgRows rows = session_.run([&](PgConnection& conn) {
        return conn.query("SELECT holder FROM funcd_leases WHERE name = $1 AND expires_at > now()", {name});
    });
    if (rows.empty()) return std::nullopt;
    return rows.at(0, "holder");
}

void PostgresLeaseStore::release(const std::string& name, const std::string& holder) {
    session_.run([&](PgConnection& conn) {
        conn.query("DELETE FROM funcd_leases WHERE name = $1 AND holder = $2", {name, holder});
    });
}

}  // namespace funcd
