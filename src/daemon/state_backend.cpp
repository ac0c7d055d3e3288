#include "funcd/daemon/state_backend.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "funcd/dispatch/sqlite_event_store.hpp"
#include "funcd/event_sources/sqlite_mapping_store.hpp"
#include "funcd/registry/legacy_function_table.hpp"
#include "funcd/state/pg_migrator.hpp"
#include "funcd/state/postgres_event_store.hpp"
#include "funcd/state/postgres_lease_store.hpp"
#include "funcd/state/postgres_mapping_store.hpp"
#include "funcd/state/postgres_trigger_store.hpp"
#include "funcd/state/postgres_function_store.hpp"
#include "funcd/state/postgres_node_store.hpp"
#include "funcd/state/sqlite_function_store.hpp"
#include "funcd/state/sqlite_node_store.hpp"
#include "funcd/triggers/sqlite_trigger_store.hpp"

namespace funcd {
StateBackend open_state_backend(const DaemonOptions& options, const std::filesystem::path& data_dir,
                                const EnvCipher& env_cipher) {
    StateBackend b;
    if (options.state_url.empty()) {
        const auto db = data_dir / "funcd.db";
        b.mappings = std::make_unique<SqliteMappingStore>(db, env_cipher);
        b.functions = std::make_unique<SqliteFunctionStore>(db);
        migrate_legacy_function_table(db, *b.functions, env_cipher);
        b.nodes = std::make_unique<SqliteNodeStore>(db);
        b.events = std::make_unique<SqliteEventStore>(db);
        b.triggers = std::make_unique<SqliteTriggerStore>(db);
        b.leases = std::make_unique<SingleHostLeases>();
        return b;
    }
    try {
        PgConnection conn = PgConnection::connect(options.state_url);
        const int version = migrate_pg_schema(conn, pg_state_migrations());
        spdlog::info("state: shared in PostgreSQL database '{}' on {}:{} (schema version {})", PQdb(conn.get()),
                     PQhost(conn.get()), PQport(conn.get()), version);
        b.shared_url = options.state_url;
        b.functions = std::make_unique<PostgresFunctionStore>(b.shared_url);
        b.shared_code = std::make_unique<PostgresCodeBlobStore>(b.shared_url);
        b.nodes = std::make_unique<PostgresNodeStore>(b.shared_url);
        // A node's claim on its asynchronous events: renewed by AsyncInvoker every kLeaseRenewal;
        // a dead node's events wait kLeaseTerm before others take them.
        b.events = std::make_unique<PostgresEventStore>(b.shared_url, options.node_id, kLeaseTerm);
        b.triggers = std::make_unique<PostgresTriggerStore>(b.shared_url, options.node_id);
        b.leases = std::make_unique<PostgresLeaseStore>(b.shared_url);
        b.mappings = std::make_unique<PostgresMappingStore>(b.shared_url, options.node_id, env_cipher);
        b.shared_usage = std::make_unique<PostgresUsageLedger>(b.shared_url, options.node_id, data_dir / "funcd.db");
    } catch (const PgError& e) {
        throw std::runtime_error(std::string("--state: ") + e.what());
    }
    return b;
}

}  // namespace funcd
