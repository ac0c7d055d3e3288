#pragma once
// The workers of one function version: an idle stack (most recently used on top, so the
// least recently used age out first) and everything live. An invocation takes the top
// idle worker or cold-starts a new one; N concurrent invocations run on N workers.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "funcd/pool/worker.hpp"

namespace funcd {

// What every pool needs from the daemon; outlives all pools.
struct PoolEnvironment {
    boost::asio::io_context& io;
    SandboxLauncher& launcher;
    LogDirectory& logs;
    std::filesystem::path runtime_dir;  // funcd's runtime/ directory on the host
    std::string python;                 // interpreter for the python3 runtime
    std::chrono::milliseconds init_timeout{10'000};
    std::string region = "us-east-1";
    std::string account_id = "000000000000";
};

class WorkerPool final : public WorkerOwner {
public:
    WorkerPool(PoolEnvironment& env, FunctionPtr fn, std::function<void(WorkerPool&)> on_drained);
    ~WorkerPool() override;

    void submit(InvocationPtr inv);
    // Stops taking work: idle workers end now, busy ones after their invocation.
    void retire();
    // Ends workers idle for longer than the function's keep-alive.
    void reap_idle(Worker::Clock::time_point now);
    // Ends every worker now (daemon shutdown).
    void kill_all();

    const FunctionPtr& function() const { return fn_; }
    std::size_t idle() const { return idle_.size(); }
    std::size_t live() const { return workers_.size(); }
    std::size_t busy() const { return workers_.size() - idle_.size(); }
    bool retired() const { return retired_; }

    // WorkerOwner
    void worker_available(Worker& w) override;
    void worker_exited(Worker& w) override;

private:
    WorkerSpec make_spec() const;
    std::shared_ptr<Worker> cold_start();

    PoolEnvironment& env_;
    FunctionPtr fn_;
    std::function<void(WorkerPool&)> on_drained_;
    std::shared_ptr<FunctionLog> log_;
    WorkerSpec spec_;
    WorkerSettings settings_;
    std::vector<std::shared_ptr<Worker>> idle_;     // back = most recently used
    std::vector<std::shared_ptr<Worker>> workers_;  // every live worker
    bool retired_ = false;
};

}  // namespace funcd
