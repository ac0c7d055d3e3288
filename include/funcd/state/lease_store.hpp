#pragma once
// Named leases among nodes: a lease is held by one holder at a time, until it expires
// unless renewed. The scheduler's leadership is one ("scheduler"). One interface, two
// backends: on a single host this node holds every lease (SingleHostLeases); nodes sharing
// PostgreSQL take turns through funcd_leases (postgres_lease_store.hpp).
//
// Calls block (a database round trip): blocking pool, never the loop.
#include <chrono>
#include <string>

namespace funcd {

class LeaseStore {
public:
    virtual ~LeaseStore() = default;
    // Takes lease `name` for `holder` for `ttl`, or renews it when `holder` has it; true when
    // `holder` holds it now, false when another holder's lease has not expired.
    virtual bool acquire(const std::string& name, const std::string& holder, std::chrono::seconds ttl) = 0;
};

// One node alone: nobody else could hold a lease.
class SingleHostLeases final : public LeaseStore {
public:
    bool acquire(const std::string&, const std::string&, std::chrono::seconds) override { return true; }
};

}  // namespace funcd
