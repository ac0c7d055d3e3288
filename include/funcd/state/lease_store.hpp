#pragma once
// Named leases among nodes: a lease is held by one holder at a time, until it expires
// unless renewed. The scheduler's leadership is one ("scheduler"); so is the running of an
// event source mapping ("mapping:<uuid>"). One interface, two
// backends: on a single host this node holds every lease (SingleHostLeases); nodes sharing
// PostgreSQL take turns through funcd_leases (postgres_lease_store.hpp).
//
// Calls block (a database round trip): blocking pool, never the loop.
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace funcd {

// How long a lease lasts unrenewed, and how often its holder renews it: a third, so that two
// renewals may fail before another node takes over, as a node is lost after three missed
// heartbeats (cluster_membership.hpp). The scheduler's leadership, mappings and each node's
// claim on its asynchronous events all use them.
inline constexpr std::chrono::seconds kLeaseTerm{15};
inline constexpr std::chrono::seconds kLeaseRenewal{5};

class LeaseStore {
public:
    virtual ~LeaseStore() = default;
    // Takes lease `name` for `holder` for `ttl`, or renews it when `holder` has it; true when
    // `holder` holds it now, false when another holder's lease has not expired.
    virtual bool acquire(const std::string& name, const std::string& holder, std::chrono::seconds ttl) = 0;
    // Who holds lease `name` (unexpired); nullopt: nobody.
    virtual std::optional<std::string> holder(const std::string& name) = 0;
    // Gives lease `name` up if `holder` holds it, so that another may take it at once.
    virtual void release(const std::string& name, const std::string& holder) = 0;
};

// One node alone: nobody else could hold a lease, so every lease is granted (and kept until
// released: there is no other node for it to expire for).
class SingleHostLeases final : public LeaseStore {
public:
    bool acquire(const std::string& name, const std::string& holder, std::chrono::seconds) override {
        std::lock_guard lock(mutex_);
        held_[name] = holder;
        return true;
    }
    std::optional<std::string> holder(const std::string& name) override {
        std::lock_guard lock(mutex_);
        auto it = held_.find(name);
        if (it == held_.end()) return std::nullopt;
        return it->second;
    }
    void release(const std::string& name, const std::string& holder) override {
        std::lock_guard lock(mutex_);
        if (auto it = held_.find(name); it != held_.end() && it->second == holder) held_.erase(it);
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::string> held_;
};

}  // namespace funcd
