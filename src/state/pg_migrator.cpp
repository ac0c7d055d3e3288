#include "funcd/state/pg_migrator.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace funcd {
namespace {

// The advisory lock every node takes to apply a migration: a constant of funcd's own
// ("funcd" in ASCII, as a bigint), so that no other application's lock collides with it.
constexpr const char* kMigrationLockKey = "440056832868";

constexpr PgMigration kStateMigrations[] = {
    {1, "nodes: one row per node, its last heartbeat and report",
     "CREATE TABLE funcd_nodes ("
     " id text PRIMARY KEY,"
     " report jsonb NOT NULL,"
     " heartbeat_at timestamptz NOT NULL DEFAULT now())"},
};

int recorded_version(PgConnection& conn) {
    const PgRows r = conn.query("SELECT coalesce(max(version), 0) AS version FROM funcd_schema_migrations");
    return std::stoi(r.at(0, "version").value_or("0"));
}

// Runs `step` in a transaction holding the migration lock; rolls back if it throws.
template <class Step>
void under_migration_lock(PgConnection& conn, Step step) {
    conn.query("BEGIN");
    try {
        conn.query(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLockKey + ")");
        step();
        conn.query("COMMIT");
    } catch (...) {
        try {
            conn.query("ROLLBACK");
        } catch (const PgError&) {
            // The connection is gone; the server rolled the transaction back itself.
        }
        throw;
    }
}

}  // namespace

std::span<const PgMigration> pg_state_migrations() { return kStateMigrations; }

int migrate_pg_schema(PgConnection& conn, std::span<const PgMigration> migrations) {
    // Under the lock too: two sessions creating the same table at once collide in the catalog.
    under_migration_lock(conn, [&] {
        conn.query(
            "CREATE TABLE IF NOT EXISTS funcd_schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())");
    });
    const int newest = migrations.empty() ? 0 : migrations.back().version;
    if (const int found = recorded_version(conn); found > newest)
        throw std::runtime_error("the state database's schema is at version " + std::to_string(found) +
                                 ", newer than this funcd knows (" + std::to_string(newest) +
                                 "): a newer funcd migrated it");
    for (const PgMigration& m : migrations) {
        under_migration_lock(conn, [&] {
            const PgRows done = conn.query("SELECT 1 FROM funcd_schema_migrations WHERE version = $1",
                                           {std::to_string(m.version)});
            if (!done.empty()) return;
            conn.execute_script(m.sql);
            conn.query("INSERT INTO funcd_schema_migrations (version, name) VALUES ($1, $2)",
                       {std::to_string(m.version), std::string(m.name)});
            spdlog::info("state: schema migrated to version {} ({})", m.version, m.name);
        });
    }
    return recorded_version(conn);
}

}  // namespace funcd
