#include "funcd/event_sources/postgres_source_factory.hpp"

#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/event_sources/pg_connection.hpp"
#include "funcd/event_sources/postgres_change_source.hpp"
#include "funcd/event_sources/postgres_setup.hpp"

namespace funcd {

PostgresSourceFactory::PostgresSourceFactory(boost::asio::io_context& io, EventSourceLimits limits)
    : io_(io), limits_(limits) {}

void PostgresSourceFactory::provision(const MappingConfig& c) {
    try {
        const PostgresSourceSetup setup = create_postgres_source(c.connection, c.uuid, c.tables);
        spdlog::info("event sources: mapping {} of function={} reads slot {} (publication {}, {} table(s){})", c.name,
                     c.function, setup.names.slot, setup.names.publication, setup.tables.size(),
                     setup.slot_created ? ", from " + format_lsn(setup.slot_lsn) : ", the slot was there already");
    } catch (const PostgresSetupError& e) {
        throw ApiError(400, "InvalidParameterValueException", std::string("the PostgreSQL source cannot be used: ") + e.what());
    } catch (const PgError& e) {
        throw ApiError(400, "InvalidParameterValueException", std::string("PostgreSQL: ") + e.what());
    }
}

std::unique_ptr<ChangeSource> PostgresSourceFactory::make(const MappingConfig& c) {
    const PostgresSourceNames names = postgres_source_names(c.uuid);
    return std::make_unique<PostgresChangeSource>(
        io_, PostgresSourceConfig{c.function + "/" + c.name, c.connection, names.slot, names.publication}, limits_);
}

void PostgresSourceFactory::deprovision(const MappingConfig& c) { drop_postgres_source(c.connection, c.uuid); }

std::optional<std::uint64_t> PostgresSourceFactory::retained_bytes(const MappingConfig& c) {
    return postgres_slot_retained_wal(c.connection, c.uuid);
}

}  // namespace funcd
