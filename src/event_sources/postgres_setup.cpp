#include "funcd/event_sources/postgres_setup.hpp"

#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "funcd/event_sources/pg_connection.hpp"

namespace funcd {
namespace {

// PostgreSQL's NAMEDATALEN - 1: the longest identifier, and slot name, it keeps.
constexpr std::size_t kMaxNameBytes = 63;
// How often a slot that is still active is looked at again while waiting for its stream to end.
constexpr auto kSlotPollInterval = std::chrono::milliseconds(100);
// SQLSTATE object_in_use: the slot is held by a walsender.
constexpr std::string_view kObjectInUse = "55006";

// FNV-1a, 32 bits: stable across builds and platforms, which a slot name must be.
std::uint32_t name_hash(std::string_view s) {
    std::uint32_t h = 2166136261u;
    for (const unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

PgConnection connect_for_setup(std::string_view conninfo) {
    try {
        return PgConnection::connect(conninfo, {{"application_name", "funcd"}});
    } catch (const PgError& e) {
        throw PostgresSetupError(e.what());
    }
}

std::string table_list(PgConnection& conn, const std::vector<PostgresTableInfo>& tables) {
    std::string out;
    for (const auto& t : tables) {
        const auto dot = t.table.find('.');
        if (!out.empty()) out += ", ";
        out += conn.quote_identifier(t.table.substr(0, dot)) + "." + conn.quote_identifier(t.table.substr(dot + 1));
    }
    return out;
}

PostgresTableInfo check_table(PgConnection& conn, const std::string& name) {
    PgRows rows;
    try {
        rows = conn.query(
            "SELECT n.nspname, c.relname, c.relkind, c.relreplident,"
            " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,"
            " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS has_identity_index"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            {name});
    } catch (const PgError& e) {
        throw PostgresSetupError(fmt::format("the table name '{}' is not valid: {}", name, e.what()));
    }
    if (rows.empty())
        throw PostgresSetupError(
            fmt::format("the table '{}' does not exist (or the role cannot see it)", name));
    PostgresTableInfo info;
    info.table = *rows.at(0, "nspname") + "." + *rows.at(0, "relname");
    const std::string kind = rows.at(0, "relkind").value_or("");
    if (kind != "r" && kind != "p")
        throw PostgresSetupError(
            fmt::format("'{}' is not a table (relkind '{}'); only tables can be published", info.table, kind));
    const auto identity = pgoutput::replica_identity_from_code(rows.at(0, "relreplident").value_or("d")[0]);
    info.identity = identity.value_or(pgoutput::ReplicaIdentity::default_key);
    info.has_primary_key = rows.at(0, "has_pk") == std::optional<std::string>("t");
    const bool has_identity_index = rows.at(0, "has_identity_index") == std::optional<std::string>("t");
    // PostgreSQL refuses UPDATE and DELETE on a published table it cannot identify rows of
    // ("cannot update table ... because it does not have a replica identity"): refusing the
    // mapping now is kinder than breaking the application's writes later.
    const auto fix = fmt::format("add a primary key or run ALTER TABLE {} REPLICA IDENTITY FULL", info.table);
    switch (info.identity) {
    case pgoutput::ReplicaIdentity::default_key:
        if (!info.has_primary_key)
            throw PostgresSetupError(fmt::format(
                "the table {} has no primary key and replica identity DEFAULT: once published, its updates and "
                "deletes would fail; {}",
                info.table, fix));
        break;
    case pgoutput::ReplicaIdentity::index:
        if (!has_identity_index)
            throw PostgresSetupError(fmt::format(
                "the table {} has replica identity INDEX but its index is gone: once published, its updates and "
                "deletes would fail; {}",
                info.table, fix));
        break;
    case pgoutput::ReplicaIdentity::nothing:
        throw PostgresSetupError(fmt::format(
            "the table {} has replica identity NOTHING: once published, its updates and deletes would fail; {}",
            info.table, fix));
    case pgoutput::ReplicaIdentity::full: break;
    }
    return info;
}

}  // namespace

PostgresSourceNames postgres_source_names(std::string_view mapping_id) {
    std::string base = "funcd_";
    bool changed = false;
    for (const char c : mapping_id) {
        const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        const bool allowed = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') || lower == '_';
        base += allowed ? lower : '_';
        changed = changed || !allowed || lower != c;
    }
    const std::string suffix = fmt::format("_{:08x}", name_hash(mapping_id));
    if (base.size() > kMaxNameBytes) {
        base.resize(kMaxNameBytes - suffix.size());
        changed = true;
    }
    if (changed) base += suffix;
    return {base, base};
}

std::vector<PostgresTableInfo> check_postgres_source(PgConnection& conn, const std::vector<std::string>& tables) {
    if (tables.empty()) throw PostgresSetupError("no tables: an event source reads the changes of at least one table");
    try {
        const auto server = conn.query(
            "SELECT current_setting('wal_level') AS wal_level, r.rolname, r.rolsuper, r.rolreplication,"
            " current_setting('max_replication_slots')::int AS max_slots,"
            " (SELECT count(*) FROM pg_replication_slots) AS used_slots"
            " FROM pg_roles r WHERE r.rolname = current_user");
        if (server.empty()) throw PostgresSetupError("the connection's role is not in pg_roles");
        const std::string wal_level = server.at(0, "wal_level").value_or("");
        if (wal_level != "logical")
            throw PostgresSetupError(
                fmt::format("wal_level is '{}'; set wal_level = logical and restart PostgreSQL", wal_level));
        const std::string role = server.at(0, "rolname").value_or("");
        if (server.at(0, "rolsuper") != std::optional<std::string>("t") &&
            server.at(0, "rolreplication") != std::optional<std::string>("t"))
            throw PostgresSetupError(fmt::format(
                "the role {} may not read changes: it needs the REPLICATION attribute (ALTER ROLE {} REPLICATION) "
                "or to be a superuser",
                role, conn.quote_identifier(role)));
        std::vector<PostgresTableInfo> out;
        for (const auto& t : tables) out.push_back(check_table(conn, t));
        return out;
    } catch (const PgError& e) {
        throw PostgresSetupError(fmt::format("checking the PostgreSQL server: {}", e.what()));
    }
}

PostgresSourceSetup create_postgres_source(std::string_view conninfo, std::string_view mapping_id,
                                           const std::vector<std::string>& tables) {
    PgConnection conn = connect_for_setup(conninfo);
    PostgresSourceSetup setup;
    setup.names = postgres_source_names(mapping_id);
    setup.tables = check_postgres_source(conn, tables);
    const auto& names = setup.names;
    try {
        const bool have_publication =
            !conn.query("SELECT 1 FROM pg_publication WHERE pubname = $1", {names.publication}).empty();
        const auto slot = conn.query("SELECT plugin, database = current_database() AS here FROM pg_replication_slots"
                                     " WHERE slot_name = $1",
                                     {names.slot});
        if (!slot.empty() && (slot.at(0, "plugin") != std::optional<std::string>("pgoutput") ||
                              slot.at(0, "here") != std::optional<std::string>("t")))
            throw PostgresSetupError(fmt::format(
                "a replication slot named {} exists already for another plugin or database; drop it or use "
                "another mapping",
                names.slot));
        if (slot.empty()) {
            const auto free = conn.query("SELECT current_setting('max_replication_slots')::int -"
                                         " (SELECT count(*) FROM pg_replication_slots) AS free");
            if (free.at(0, "free").value_or("0") == "0" || free.at(0, "free").value_or("0")[0] == '-')
                throw PostgresSetupError(
                    "every replication slot of the server is in use; raise max_replication_slots (a restart is "
                    "needed) or drop slots no longer used");
        }
        // Truncate is left out: a truncate has no rows to deliver, and RowChange has no
        // operation for it.
        const std::string list = table_list(conn, setup.tables);
        const std::string pub = conn.quote_identifier(names.publication);
        if (have_publication)
            conn.query(fmt::format("ALTER PUBLICATION {} SET TABLE {}", pub, list));
        else
            conn.query(fmt::format("CREATE PUBLICATION {} FOR TABLE {} WITH (publish = 'insert, update, delete')",
                                   pub, list));
        if (slot.empty()) {
            try {
                // Waits for transactions running now to end: a slot's first change must
                // follow a consistent snapshot.
                const auto made = conn.query("SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                                             {names.slot});
                setup.slot_created = true;
                parse_lsn(made.at(0, "lsn").value_or(""), setup.slot_lsn);
            } catch (const PgError& e) {
                if (!have_publication) {
                    try {
                        conn.query(fmt::format("DROP PUBLICATION IF EXISTS {}", pub));
                    } catch (const PgError& drop) {
                        spdlog::warn("event source {}: dropping publication {} after the slot failed: {}", mapping_id,
                                     names.publication, drop.what());
                    }
                }
                throw PostgresSetupError(fmt::format("creating the replication slot {}: {}", names.slot, e.what()));
            }
        }
    } catch (const PgError& e) {
        throw PostgresSetupError(fmt::format("creating the publication {}: {}", names.publication, e.what()));
    }
    spdlog::info("event source {}: publication {} of {} table(s) and slot {} ready", mapping_id, names.publication,
                 setup.tables.size(), names.slot);
    return setup;
}

void drop_postgres_source(std::string_view conninfo, std::string_view mapping_id,
                          std::chrono::milliseconds wait_for_release) {
    PgConnection conn = connect_for_setup(conninfo);
    const auto names = postgres_source_names(mapping_id);
    const auto give_up = std::chrono::steady_clock::now() + wait_for_release;
    try {
        for (;;) {
            const auto slot = conn.query("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", {names.slot});
            if (slot.empty()) break;
            const auto pid = slot.at(0, "active_pid");
            if (!pid) {
                try {
                    conn.query("SELECT pg_drop_replication_slot($1)", {names.slot});
                    break;
                } catch (const PgError& e) {
                    // Taken again between the look and the drop: wait like for an active one.
                    if (e.sqlstate() != kObjectInUse) throw;
                }
            }
            if (std::chrono::steady_clock::now() >= give_up)
                throw PostgresSetupError(fmt::format(
                    "the replication slot {} is still in use by PostgreSQL process {}; stop the stream reading it first",
                    names.slot, pid.value_or("?")));
            std::this_thread::sleep_for(kSlotPollInterval);
        }
        conn.query(fmt::format("DROP PUBLICATION IF EXISTS {}", conn.quote_identifier(names.publication)));
    } catch (const PgError& e) {
        throw PostgresSetupError(fmt::format("dropping the slot {} and publication {}: {}", names.slot,
                                             names.publication, e.what()));
    }
    spdlog::info("event source {}: slot {} and publication {} dropped", mapping_id, names.slot, names.publication);
}

std::optional<std::uint64_t> postgres_slot_retained_wal(std::string_view conninfo, std::string_view mapping_id) {
    PgConnection conn = connect_for_setup(conninfo);
    const auto names = postgres_source_names(mapping_id);
    try {
        const auto rows = conn.query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained "
            "FROM pg_replication_slots WHERE slot_name = $1",
            {names.slot});
        if (rows.empty()) return std::nullopt;
        const auto retained = rows.at(0, "retained");
        if (!retained) return std::nullopt;
        return std::stoull(*retained);
    } catch (const PgError& e) {
        throw PostgresSetupError(fmt::format("reading what the slot {} retains: {}", names.slot, e.what()));
    }
}

}  // namespace funcd
