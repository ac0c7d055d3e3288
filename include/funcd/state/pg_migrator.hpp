#pragma once
// funcd's schema in a shared PostgreSQL database, created and upgraded by funcd itself: an
// ordered list of migrations, each applied once, in its own transaction, and recorded in
// funcd_schema_migrations. Nodes that start together take turns: each migration runs under a
// transaction-scoped advisory lock, and one that finds its version recorded skips it.
#include <span>
#include <string>

#include "funcd/event_sources/pg_connection.hpp"

namespace funcd {

struct PgMigration {
    int version;       // 1, 2, 3...: applied in this order, never renumbered
    const char* name;  // what it does, recorded beside its version
    const char* sql;   // one or more statements
};

// The migrations of funcd's shared state, oldest first.
std::span<const PgMigration> pg_state_migrations();

// Applies every migration of `migrations` that `conn`'s database has not recorded; returns
// the database's schema version after it. Throws PgError. A database whose recorded version
// is newer than any migration here (a newer funcd wrote it) is refused: std::runtime_error.
int migrate_pg_schema(PgConnection& conn, std::span<const PgMigration> migrations);

}  // namespace funcd
