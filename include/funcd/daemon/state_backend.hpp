#pragma once
// The stores behind what nodes may share, opened for --state: this host's SQLite (funcd.db)
// by default, or a PostgreSQL database nodes share, whose schema funcd creates and migrates
// at start (pg_migrator.hpp). What is not here stays in the data directory on every node.
#include <filesystem>
#include <memory>
#include <string>

#include "funcd/daemon/options.hpp"
#include "funcd/dispatch/event_store.hpp"
#include "funcd/event_sources/mapping_store.hpp"
#include "funcd/registry/env_cipher.hpp"
#include "funcd/state/code_blob_store.hpp"
#include "funcd/state/function_store.hpp"
#include "funcd/state/lease_store.hpp"
#include "funcd/state/node_store.hpp"
#include "funcd/state/postgres_usage_ledger.hpp"
#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

struct StateBackend {
    std::unique_ptr<FunctionStore> functions;
    std::unique_ptr<CodeBlobStore> shared_code;  // null on a single host
    std::unique_ptr<NodeStore> nodes;
    std::unique_ptr<EventStore> events;
    std::unique_ptr<TriggerStore> triggers;
    std::unique_ptr<LeaseStore> leases;
    std::unique_ptr<MappingStore> mappings;
    // Every node's usage records; null on a single host (its own ledger is all there is).
    std::unique_ptr<PostgresUsageLedger> shared_usage;
    std::string shared_url;                      // the PostgreSQL URL; empty on a single host

    bool shared() const { return !shared_url.empty(); }
};

// `options.node_id` is set. Build it before the Registry: the mapping store seals mappings'
// connections again under the current key, and the registry then drops the keys nothing is
// sealed with any more. Throws std::runtime_error naming what failed (never the URL: it
// may hold a password).
StateBackend open_state_backend(const DaemonOptions& options, const std::filesystem::path& data_dir,
                                const EnvCipher& env_cipher);

}  // namespace funcd
