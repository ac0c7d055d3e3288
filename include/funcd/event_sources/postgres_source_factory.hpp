#pragma once
// The daemon's ChangeSourceFactory for mappings of type "postgres": provisioning checks the
// server, role and tables and creates the mapping's publication and logical replication
// slot (postgres_setup.hpp); each mapping reads through a PostgresChangeSource on the
// daemon's loop; deprovisioning drops the slot and publication.
#include <boost/asio/io_context.hpp>

#include "funcd/event_sources/change_source_factory.hpp"
#include "funcd/event_sources/event_source_limits.hpp"

namespace funcd {

class PostgresSourceFactory : public ChangeSourceFactory {
public:
    PostgresSourceFactory(boost::asio::io_context& io, EventSourceLimits limits);

    // A server, role or table that cannot serve the mapping, or a server that cannot be
    // reached, is 400 InvalidParameterValueException with PostgreSQL's reason.
    void provision(const MappingConfig& c) override;
    std::unique_ptr<ChangeSource> make(const MappingConfig& c) override;
    void deprovision(const MappingConfig& c) override;
    // What the slot holds back: the server's WAL position minus the slot's restart position.
    std::optional<std::uint64_t> retained_bytes(const MappingConfig& c) override;

private:
    boost::asio::io_context& io_;
    EventSourceLimits limits_;
};

}  // namespace funcd
