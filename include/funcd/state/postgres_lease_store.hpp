#pragma once
// LeaseStore in the PostgreSQL database nodes share (funcd_leases). Expiry is judged by the
// database's clock, so nodes whose clocks disagree still agree on who holds a lease.
#include <string>

#include "funcd/state/lease_store.hpp"
#include "funcd/state/pg_session.hpp"

namespace funcd {

class PostgresLeaseStore final : public LeaseStore {
public:
    explicit PostgresLeaseStore(std::string conninfo);
    bool acquire(const std::string& name, const std::string& holder, std::chrono::seconds ttl) override;
    std::optional<std::string> holder(const std::string& name) override;
    void release(const std::string& name, const std::string& holder) override;

private:
    PgSession session_;
};

}  // namespace funcd
