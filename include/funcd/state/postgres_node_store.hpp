#pragma once
// NodeStore in the PostgreSQL database the nodes share (funcd_nodes). Heartbeat ages are
// measured by the server's clock, so nodes whose clocks disagree still agree on who is late.
#include <string>

#include "funcd/state/pg_session.hpp"
#include "funcd/state/node_store.hpp"

namespace funcd {

class PostgresNodeStore final : public NodeStore {
public:
    // Connects now (throws PgError). The schema must be migrated (pg_migrator.hpp).
    explicit PostgresNodeStore(std::string conninfo);

    void heartbeat(const NodeReport& report) override;
    std::vector<NodeRecord> nodes() override;
    bool forget(const std::string& id) override;

private:
    PgSession session_;
};

}  // namespace funcd
