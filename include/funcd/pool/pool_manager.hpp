#pragma once
// Owns every function version's pool, retires old versions' pools when a new version
// is deployed, and runs the keep-alive reaper that takes idle functions to zero.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "funcd/pool/worker_pool.hpp"

namespace funcd {

struct InstanceCounts {
    std::size_t idle = 0;
    std::size_t busy = 0;
};

class PoolManager {
public:
    explicit PoolManager(PoolEnvironment& env);
    ~PoolManager();

    // The pool serving `fn`: one per function version ($LATEST and each published one). A
    // newer generation of $LATEST retires the older one's pool; an older one (a change
    // raced this lookup) is served by the newest pool.
    WorkerPool& pool_for(const FunctionPtr& fn);
    // The function's versions are now `versions`: pools of versions that are gone or were
    // replaced are retired, the others take their new settings, and versions with
    // provisioned concurrency get their workers.
    void sync(const std::string& name, const std::vector<FunctionPtr>& versions);
    // Retires one version's pool: its idle workers end now, busy ones after their
    // invocation; a later invocation of that version starts a new pool.
    void retire_version(const std::string& name, const std::string& label);
    // The function was deleted: retire all its pools.
    void retire_function(const std::string& name);

    // Workers of every version of the function.
    InstanceCounts instances(const std::string& name) const;
    // Workers of every version of the function (retired pools included) by state.
    WorkerStates worker_states(const std::string& name) const;
    // Provisioned workers of one version's pool (and, nodes sharing the state, the others').
    ProvisionedCounts provisioned(const std::string& name, const std::string& label) const;
    // Invocations submitted per function to its pools that are still there (a retired pool's
    // go with it): where a function's traffic lands (ProvisionedPlacement).
    std::map<std::string, std::uint64_t, std::less<>> submitted() const;
    // Provisioned workers ready on this node, per function and version label (none: absent).
    std::map<std::string, std::map<std::string, std::size_t>> provisioned_ready() const;
    std::size_t live_workers() const;
    // Code hashes and layer views still used by live workers (retired pools included).
    std::set<std::string> code_in_use() const;

    // Called (on the loop) when a retired pool has no workers left.
    void on_pool_drained(std::function<void()> callback) { drained_callback_ = std::move(callback); }

    // Ends every worker; pools are dropped as their workers exit.
    void kill_all();

private:
    struct FunctionPools {
        std::map<std::string, std::unique_ptr<WorkerPool>> current;  // by version label
        std::vector<std::unique_ptr<WorkerPool>> retired;
    };

    std::unique_ptr<WorkerPool> make_pool(const FunctionPtr& fn);
    void retire(FunctionPools& pools, std::unique_ptr<WorkerPool>& slot);
    void drop_drained(const std::string& name);
    void schedule_reap();
    // Returns freed heap to the kernel when the last worker is gone.
    void release_memory_at_zero();
    // The memory budget's evictor: idle on-demand workers of other pools, least recently
    // used first, until `needed_mb` are free.
    void evict_idle(std::int64_t needed_mb, const WorkerPool* requester);

    PoolEnvironment& env_;
    std::map<std::string, FunctionPools, std::less<>> pools_;
    boost::asio::steady_timer reaper_;
    // Expires with the manager: a reap whose wait had already completed when the manager was
    // destroyed (its handler queued, so the timer's cancel cannot reach it) does nothing.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
    std::function<void()> drained_callback_;
    bool had_workers_ = false;
};

}  // namespace funcd
