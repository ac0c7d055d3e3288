#pragma once
// What a PostgreSQL event source needs on the server, made and removed: a publication of
// the mapping's tables and a logical replication slot (pgoutput) that keeps the changes
// until they are acknowledged. Checks first whether the server and role can do it at all,
// so that a mapping is refused at creation with the reason rather than failing later.
//
// Blocking (one libpq connection, a few queries): run on a blocking thread, never the loop.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/event_sources/pgoutput_decoder.hpp"

namespace funcd {

class PgConnection;

// The server or role cannot serve a mapping, or a table cannot be published, or PostgreSQL
// cannot be reached: the message says which and what to change. Never holds the
// connection string.
class PostgresSetupError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The publication and slot of one mapping: "funcd_" and the mapping id, lowercased, with
// every character other than a-z, 0-9 and _ made _ (slot names allow only those), and a
// hash of the id appended when that changed anything or the name had to be cut to
// PostgreSQL's 63 bytes, so that two ids never share a slot.
struct PostgresSourceNames {
    std::string publication;
    std::string slot;
};
PostgresSourceNames postgres_source_names(std::string_view mapping_id);

// A published table and what its updates and deletes carry of the old row:
//   DEFAULT  the old primary key, only when an update changed it, and on deletes
//   INDEX    the same for the chosen unique index's columns
//   FULL     the whole old row on every update and delete
//   NOTHING  nothing (refused: PostgreSQL then refuses the table's updates and deletes)
struct PostgresTableInfo {
    std::string table;  // "schema.name"
    pgoutput::ReplicaIdentity identity = pgoutput::ReplicaIdentity::default_key;
    bool has_primary_key = false;
};

struct PostgresSourceSetup {
    PostgresSourceNames names;
    std::vector<PostgresTableInfo> tables;
    bool slot_created = false;   // false when a slot of this name was there already (kept)
    std::uint64_t slot_lsn = 0;  // where a new slot's changes begin
};

// Checks the server (wal_level = logical, a free replication slot), the role (REPLICATION or
// superuser) and each table (exists, is a table, has a usable replica identity). `tables`
// are names as SQL reads them: "orders", "sales.orders", "\"Mixed Case\"". Throws
// PostgresSetupError naming the first problem.
std::vector<PostgresTableInfo> check_postgres_source(PgConnection& conn, const std::vector<std::string>& tables);

// Checks, then creates (or updates the table list of) the publication and creates the slot.
// Idempotent: run again after a failure half-way, it finishes the job.
PostgresSourceSetup create_postgres_source(std::string_view conninfo, std::string_view mapping_id,
                                           const std::vector<std::string>& tables);

// Drops the slot and the publication; what is already gone is no error. A slot still in use
// by a stream (one being stopped lets go within moments) is waited for up to
// `wait_for_release`; then PostgresSetupError names the process holding it.
void drop_postgres_source(std::string_view conninfo, std::string_view mapping_id,
                          std::chrono::milliseconds wait_for_release = std::chrono::seconds(5));

// Bytes of WAL the mapping's slot keeps the server from recycling: the server's current WAL
// position minus the slot's restart position. nullopt when there is no such slot (or it has
// no position yet). Throws PostgresSetupError when the server cannot be asked.
std::optional<std::uint64_t> postgres_slot_retained_wal(std::string_view conninfo, std::string_view mapping_id);

}  // namespace funcd
