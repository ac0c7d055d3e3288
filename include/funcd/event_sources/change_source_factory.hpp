#pragma once
// Where a mapping's ChangeSource comes from: the plug point of the PostgreSQL source
// (logical replication). Besides making the source it owns what the source needs in the
// database: checking the connection and tables when a mapping is created, creating the
// publication and the replication slot, and dropping them when the mapping is deleted.
// The daemon's is PostgresSourceFactory (postgres_source_factory.hpp); tests of the
// delivery rules inject a scripted one.
#include <cstdint>
#include <memory>
#include <optional>

#include "funcd/event_sources/change_source.hpp"
#include "funcd/event_sources/mapping_config.hpp"

namespace funcd {

class ChangeSourceFactory {
public:
    virtual ~ChangeSourceFactory() = default;

    // A new mapping: check that its connection works and its tables exist, and create what
    // it reads through (PostgreSQL: a publication of the tables, a replication slot; the
    // slot's creation is the mapping's LATEST). Runs on the blocking pool and may take
    // seconds. Throws ApiError naming what is wrong (400: connection refused, no such
    // table, missing privilege). Never puts
    // the connection string in a message: it holds a password.
    virtual void provision(const MappingConfig& c) = 0;
    // The source of a provisioned mapping. On the loop, so it must not block: it connects
    // in ChangeSource::start. Throws std::exception when it cannot be made.
    virtual std::unique_ptr<ChangeSource> make(const MappingConfig& c) = 0;
    // The mapping was deleted (or its function was): drop what provision created. On the
    // blocking pool; throws on failure (logged: the slot then needs dropping by hand).
    virtual void deprovision(const MappingConfig& c) = 0;
    // Bytes of the server's WAL that the mapping's source keeps from being recycled while
    // nothing reads it (a disabled mapping's slot); nullopt when it keeps none. On the
    // blocking pool; throws std::exception when the server cannot be asked.
    virtual std::optional<std::uint64_t> retained_bytes(const MappingConfig& c) = 0;
};

}  // namespace funcd
