#pragma once
// The workers of one function version: idle stacks (most recently used on top, so the
// least recently used age out first) and everything live. An invocation takes an idle
// worker (provisioned ones first) or cold-starts a new one; N concurrent invocations
// run on N workers. Provisioned workers are started ahead of demand and never reaped;
// on-demand ones are kept by the function's keep-alive policy.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/pool/keep_alive.hpp"
#include "funcd/observe/histogram.hpp"
#include "funcd/pool/memory_budget.hpp"
#include "funcd/pool/runtime_catalog.hpp"
#include "funcd/pool/worker.hpp"

namespace funcd {

// What every pool needs from the daemon; outlives all pools.
struct PoolEnvironment {
    boost::asio::io_context& io;
    SandboxLauncher& launcher;
    LogDirectory& logs;
    std::filesystem::path runtime_dir;  // funcd's runtime/ directory on the host
    RuntimeCatalog runtimes;            // interpreters for the python3 and nodejs runtimes
    std::chrono::milliseconds init_timeout{10'000};
    std::string region = "us-east-1";
    std::string account_id = "000000000000";
    // Where launches run. Null: on the loop itself, one after another (for launchers
    // that are not thread-safe); else cold starts of a burst are launched in parallel.
    boost::asio::thread_pool* launch_threads = nullptr;
    // Null: no memory budget.
    MemoryBudget* memory = nullptr;
    // Where each launch's duration goes (observed on the loop); null: not measured.
    observe::Histogram* launch_duration = nullptr;
    // Called on the loop when a worker became idle: capacity an invocation may wait for.
    std::function<void()> on_worker_available;
    // Adds what other parts give a function's workers (file triggers' directories).
    std::function<void(const FunctionConfig&, WorkerSpec&)> adjust_spec;
    // Makes a function's keep-alive policy; null: the one its settings name.
    std::function<std::unique_ptr<KeepAlivePolicy>(const FunctionConfig&)> keep_alive_policy;
    // Extra environment for workers of functions with the host's network, which can reach
    // funcd itself: where Lambda's API is and credentials that may only invoke.
    std::vector<std::string> host_network_env;
    // Bounds on what each worker's runtime may hold through its Runtime API.
    RuntimeApiLimits runtime_api;
    // Nodes sharing the state: how many of a function's `requested` provisioned workers run
    // on this node, and how many of a version's are ready on the others. Null: all here.
    std::function<int(const std::string& function, int requested)> provisioned_share;
    std::function<std::size_t(const std::string& function, const std::string& label)> provisioned_elsewhere;
};

// Live workers by what they are doing; every live worker is in exactly one.
struct WorkerStates {
    std::size_t starting = 0;     // launching or initialising (an invocation may wait for it)
    std::size_t idle = 0;         // on-demand, ready, no invocation
    std::size_t provisioned = 0;  // provisioned, ready, no invocation
    std::size_t busy = 0;         // running an invocation

    WorkerStates& operator+=(const WorkerStates& o) {
        starting += o.starting;
        idle += o.idle;
        provisioned += o.provisioned;
        busy += o.busy;
        return *this;
    }
};

struct ProvisionedCounts {
    std::size_t requested = 0;  // for the whole cluster
    std::size_t here = 0;       // this node's part of it
    std::size_t ready = 0;      // ready on this node
    std::size_t elsewhere = 0;  // ready on the other nodes, as they last reported
};

class WorkerPool final : public WorkerOwner {
public:
    enum class Submit { started, no_memory };

    WorkerPool(PoolEnvironment& env, FunctionPtr fn, std::function<void(WorkerPool&)> on_drained);
    ~WorkerPool() override;

    // Runs `inv` on an idle worker or a new one. Returns no_memory, leaving `inv` with the
    // caller, when a new worker is needed and the memory budget cannot take it.
    Submit submit(InvocationPtr& inv);
    bool has_idle() const { return !idle_.empty() || !idle_provisioned_.empty(); }
    // Same version, new function-level settings (concurrency).
    void update_function(FunctionPtr fn);
    // Starts provisioned workers up to the function's setting; ends the excess.
    void ensure_provisioned();
    // Stops taking work: idle workers end now, busy ones after their invocation.
    void retire();
    // Periodic upkeep: keep-alive reaping, pre-warming, provisioned workers.
    void tick(Worker::Clock::time_point now);
    // Ends on-demand workers idle for longer than the keep-alive.
    void reap_idle(Worker::Clock::time_point now);
    // The least recently used on-demand idle worker's last use, if there is one.
    std::optional<Worker::Clock::time_point> oldest_idle() const;
    // Ends that worker to free its memory; returns the MB of the budget released.
    std::int64_t evict_oldest_idle();
    // Ends every worker now (daemon shutdown); the pool starts none after it.
    void kill_all();

    const FunctionPtr& function() const { return fn_; }
    std::size_t idle() const { return idle_.size() + idle_provisioned_.size(); }
    std::size_t live() const { return workers_.size(); }
    // Invocations submitted to this pool since it was made.
    std::uint64_t submitted() const { return submitted_; }
    std::size_t busy() const { return workers_.size() - idle(); }
    ProvisionedCounts provisioned() const;
    WorkerStates states() const;
    // What this function's workers are expected to use, learnt from their peaks.
    const MemoryEstimate& memory_estimate() const { return estimate_; }
    // The sum of what the memory budget charges this pool's live workers now.
    std::int64_t charged_mb() const;
    bool retired() const { return retired_; }

    // WorkerOwner
    void worker_available(Worker& w) override;
    void worker_exited(Worker& w) override;
    void run_elsewhere(InvocationPtr inv) override;

private:
    // submit() without counting an arrival: an idle worker, a starting one, or a new one.
    Submit place(InvocationPtr& inv);
    // Answers `inv` with an init error of `type`; it never ran.
    void fail_unstarted(InvocationPtr& inv, std::string type, std::string message);
    WorkerSpec make_spec(bool provisioned) const;
    // How many provisioned workers this pool keeps (this node's share of the setting).
    std::size_t provisioned_target() const;
    // Launches a worker already charged `charged_mb` of the memory budget. Throws if the
    // launcher fails synchronously.
    std::shared_ptr<Worker> cold_start(bool provisioned, bool report_init, std::int64_t charged_mb);
    // Charges the memory budget for a new worker (the one place a pool asks it); the MB
    // charged, 0 without a budget, nullopt when it does not fit.
    std::optional<std::int64_t> charge();
    // Gives back what `w` was charged; returns that.
    std::int64_t discharge(const Worker& w);
    // Learns from `w`'s latest peak reading and charges it what it was seen to use.
    void refresh_charge(const Worker& w);
    // Drops a dead worker's resources on a launch thread: removing its cgroup waits for its
    // last processes to finish exiting, a few ms each, which a scale to zero of hundreds
    // of workers turned into a stall of the loop (143 ms for 200).
    void dispose(std::unique_ptr<WorkerResources> resources);
    void end_idle(const std::shared_ptr<Worker>& w);
    void went_idle(Worker::Clock::time_point now);
    std::unique_ptr<KeepAlivePolicy> make_policy() const;

    PoolEnvironment& env_;
    FunctionPtr fn_;
    std::function<void(WorkerPool&)> on_drained_;
    std::shared_ptr<FunctionLog> log_;
    std::shared_ptr<const WorkerSpec> spec_;
    std::shared_ptr<const WorkerSpec> provisioned_spec_;
    WorkerSettings settings_;
    std::vector<std::shared_ptr<Worker>> idle_;              // on-demand; back = most recently used
    std::vector<std::shared_ptr<Worker>> idle_provisioned_;  // back = most recently used
    std::vector<std::shared_ptr<Worker>> starting_;          // launched ahead of demand, nothing assigned
    std::vector<std::shared_ptr<Worker>> workers_;           // every live worker
    std::unordered_map<const Worker*, std::int64_t> charged_;  // MB of the budget each live worker holds
    MemoryEstimate estimate_;
    bool template_charged_ = false;  // its runtime template is counted in the memory budget
    std::unique_ptr<KeepAlivePolicy> keep_alive_;
    KeepAliveDecision decision_;
    std::optional<Worker::Clock::time_point> prewarm_at_;
    bool warned_provisioned_ = false;
    std::uint64_t submitted_ = 0;
    bool retired_ = false;
};

}  // namespace funcd
