#include "funcd/state/pg_migrator.hpp"

#include "funcd/state/pg_session.hpp"

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
    {2, "functions, layers and code: documents with revisions, code zips in chunks",
     // The counter row orders the writers: each write takes the next value under the row's
     // lock and holds it until it commits, so revisions become visible in their order.
     "CREATE TABLE funcd_revisions (scope text PRIMARY KEY, value bigint NOT NULL);"
     "INSERT INTO funcd_revisions (scope, value) VALUES ('functions', 1);"
     // A deleted function keeps its row, doc NULL, so that changes_since can report it.
     "CREATE TABLE funcd_functions ("
     " name text PRIMARY KEY,"
     " doc text,"
     " revision bigint NOT NULL);"
     "CREATE INDEX funcd_functions_revision ON funcd_functions (revision);"
     "CREATE TABLE funcd_layer_versions ("
     " name text NOT NULL,"
     " version bigint NOT NULL,"
     " doc text NOT NULL,"
     " revision bigint NOT NULL,"
     " PRIMARY KEY (name, version));"
     "CREATE INDEX funcd_layer_versions_revision ON funcd_layer_versions (revision);"
     // A zip is present once its funcd_code row is: the row is inserted with its chunks.
     "CREATE TABLE funcd_code ("
     " sha256 text PRIMARY KEY,"
     " size bigint NOT NULL,"
     " chunks integer NOT NULL,"
     " created_at timestamptz NOT NULL DEFAULT now());"
     "CREATE TABLE funcd_code_chunks ("
     " sha256 text NOT NULL,"
     " chunk integer NOT NULL,"
     " data bytea NOT NULL,"
     " PRIMARY KEY (sha256, chunk))"},
    {3, "asynchronous events, dead letters, event configs; leases",
     // A lease is held by `holder` until `expires_at` (the database's clock): "node:<id>" is
     // a node's claim on the events it owns.
     "CREATE TABLE funcd_leases ("
     " name text PRIMARY KEY,"
     " holder text NOT NULL,"
     " expires_at timestamptz NOT NULL);"
     "CREATE TABLE funcd_async_events ("
     " id text PRIMARY KEY,"
     " function text NOT NULL,"
     " payload text NOT NULL,"
     " received_us bigint NOT NULL,"
     " next_attempt_us bigint NOT NULL,"
     " attempts integer NOT NULL,"
     " throttles integer NOT NULL,"
     " errors_json text NOT NULL,"
     " source text NOT NULL,"
     " trace_id text NOT NULL,"
     " owner text NOT NULL);"
     "CREATE INDEX funcd_async_events_owner ON funcd_async_events (owner, received_us);"
     "CREATE INDEX funcd_async_events_function ON funcd_async_events (function);"
     "CREATE TABLE funcd_dead_letters ("
     " id text PRIMARY KEY,"
     " function text NOT NULL,"
     " payload text NOT NULL,"
     " received_us bigint NOT NULL,"
     " failed_us bigint NOT NULL,"
     " reason text NOT NULL,"
     " attempts integer NOT NULL,"
     " errors_json text NOT NULL,"
     " source text NOT NULL,"
     " trace_id text NOT NULL);"
     "CREATE INDEX funcd_dead_letters_function ON funcd_dead_letters (function, failed_us);"
     "CREATE INDEX funcd_dead_letters_failed ON funcd_dead_letters (failed_us);"
     "CREATE TABLE funcd_event_configs ("
     " function text PRIMARY KEY,"
     " config_json text NOT NULL)"},
    {4, "schedules, file triggers, routes; schedule fires taken",
     "CREATE TABLE funcd_schedules ("
     " function text NOT NULL,"
     " name text NOT NULL,"
     " definition_json text NOT NULL,"
     " PRIMARY KEY (function, name));"
     "CREATE TABLE funcd_file_triggers ("
     " function text NOT NULL,"
     " name text NOT NULL,"
     " definition_json text NOT NULL,"
     " PRIMARY KEY (function, name));"
     "CREATE TABLE funcd_routes ("
     " id integer PRIMARY KEY CHECK (id = 1),"
     " routes_json text NOT NULL);"
     // One row per fire taken: the key is what lets two nodes that both think they lead never
     // fire one tick twice.
     "CREATE TABLE funcd_schedule_fires ("
     " function text NOT NULL,"
     " name text NOT NULL,"
     " fire_us bigint NOT NULL,"
     " node text NOT NULL,"
     " PRIMARY KEY (function, name, fire_us))"},
    {5, "usage records of every node",
     // Keyed as each node's own ledger is (start, request id): unique across nodes, and what
     // makes a batch shipped twice count once.
     "CREATE TABLE funcd_usage ("
     " request_id text NOT NULL,"
     " function text NOT NULL,"
     " version bigint NOT NULL,"
     " start_us bigint NOT NULL,"
     " duration_us bigint NOT NULL,"
     " billed_ms bigint NOT NULL,"
     " memory_mb bigint NOT NULL,"
     " max_memory_used_mb bigint NOT NULL,"
     " init_duration_us bigint,"
     " outcome text NOT NULL,"
     " trace_id text,"
     " trigger text,"
     " node text NOT NULL,"
     " PRIMARY KEY (start_us, request_id));"
     "CREATE INDEX funcd_usage_function_start ON funcd_usage (function, start_us);"
     "CREATE INDEX funcd_usage_trace ON funcd_usage (trace_id text_pattern_ops);"
     "CREATE INDEX funcd_usage_node_start ON funcd_usage (node, start_us)"},
    {6, "event source mappings and their checkpoints",
     // As a host's funcd.db keeps them: the config as JSON with its connection sealed, the
     // checkpoint in columns of its own. The node running a mapping holds lease
     // "mapping:<uuid>" in funcd_leases.
     "CREATE TABLE funcd_event_source_mappings ("
     " uuid text PRIMARY KEY,"
     " function text NOT NULL,"
     " name text NOT NULL,"
     " config_json text NOT NULL,"
     " checkpoint_commit_lsn bigint,"
     " checkpoint_ordinal bigint,"
     " UNIQUE (function, name))"},
};

int recorded_version(PgConnection& conn) {
    const PgRows r = conn.query("SELECT coalesce(max(version), 0) AS version FROM funcd_schema_migrations");
    return std::stoi(r.at(0, "version").value_or("0"));
}

// Runs `step` in a transaction holding the migration lock; rolls back if it throws.
template <class Step>
void under_migration_lock(PgConnection& conn, Step step) {
    pg_transaction(conn, [&](PgConnection& c) {
        c.query(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLockKey + ")");
        step();
    });
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
