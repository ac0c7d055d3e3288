#include "funcd/pool/worker_pool.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fmt/format.h>

namespace funcd {

WorkerPool::WorkerPool(PoolEnvironment& env, FunctionPtr fn, std::function<void(WorkerPool&)> on_drained)
    : env_(env), fn_(std::move(fn)), on_drained_(std::move(on_drained)), log_(env.logs.open(fn_->config.name)) {
    spec_ = make_spec();
    settings_.init_timeout = env_.init_timeout;
    settings_.function_arn =
        fmt::format("arn:aws:lambda:{}:{}:function:{}", env_.region, env_.account_id, fn_->config.name);
}

WorkerPool::~WorkerPool() { kill_all(); }

WorkerSpec WorkerPool::make_spec() const {
    const FunctionConfig& c = fn_->config;
    const SandboxPaths inside = env_.launcher.paths_for(fn_->code_dir, env_.runtime_dir);
    WorkerSpec spec;
    spec.function_name = c.name;
    spec.version = fn_->version;
    spec.memory_mb = c.memory_mb;
    spec.code_dir = fn_->code_dir;
    spec.runtime_dir = env_.runtime_dir;
    spec.ephemeral_storage_mb = c.ephemeral_storage_mb;
    spec.host_network = c.network == NetworkMode::host;
    if (c.runtime == Runtime::python3) {
        // -I: ignore PYTHON* variables and the user's site directory; -u: unbuffered,
        // so output lines reach the log tagged with the invocation that printed them.
        spec.argv = {env_.python, "-I", "-u", inside.runtime_root + "/python/bootstrap.py"};
    } else {
        spec.argv = {inside.task_root + "/bootstrap"};
    }
    // Lambda's environment (docs: "Defined runtime environment variables"), then the function's own.
    spec.env = {
        "AWS_LAMBDA_FUNCTION_NAME=" + c.name,
        "AWS_LAMBDA_FUNCTION_VERSION=" + std::to_string(fn_->version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(c.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + c.name,
        "AWS_LAMBDA_LOG_STREAM_NAME=" + std::to_string(fn_->version) + "/" + c.name,
        "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
        "AWS_EXECUTION_ENV=AWS_Lambda_" + std::string(c.runtime == Runtime::python3 ? "python3" : "provided"),
        "AWS_REGION=" + env_.region,
        "AWS_DEFAULT_REGION=" + env_.region,
        "_HANDLER=" + c.handler,
        "LAMBDA_TASK_ROOT=" + inside.task_root,
        "LAMBDA_RUNTIME_DIR=" + inside.runtime_root,
        "TZ=:UTC",
        "LANG=C.UTF-8",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "HOME=/tmp",
    };
    for (const auto& [k, v] : c.env) spec.env.push_back(k + "=" + v);
    return spec;
}

std::shared_ptr<Worker> WorkerPool::cold_start() {
    auto w = Worker::launch(env_.io, *this, fn_, log_, env_.launcher, spec_, settings_);
    workers_.push_back(w);
    return w;
}

void WorkerPool::submit(InvocationPtr inv) {
    if (!idle_.empty()) {
        auto w = std::move(idle_.back());
        idle_.pop_back();
        w->assign(std::move(inv));
        return;
    }
    std::shared_ptr<Worker> w;
    try {
        w = cold_start();
    } catch (const std::exception& e) {
        spdlog::error("pool: cannot start a worker for function={} version={}: {}", fn_->config.name, fn_->version,
                      e.what());
        InvocationResult r;
        r.outcome = Outcome::init_error;
        r.error_type = "Runtime.InitError";
        r.body = error_document(r.error_type, std::string("could not start the function's runtime: ") + e.what());
        r.version = fn_->version;
        r.start = std::chrono::system_clock::now();
        auto done = std::move(inv->done);
        done(std::move(r));
        return;
    }
    w->assign(std::move(inv));
}

void WorkerPool::worker_available(Worker& w) {
    if (retired_) {
        w.kill();
        return;
    }
    auto it = std::find_if(workers_.begin(), workers_.end(), [&](const auto& p) { return p.get() == &w; });
    if (it != workers_.end()) idle_.push_back(*it);
}

void WorkerPool::worker_exited(Worker& w) {
    idle_.erase(std::remove_if(idle_.begin(), idle_.end(), [&](const auto& p) { return p.get() == &w; }), idle_.end());
    auto it = std::find_if(workers_.begin(), workers_.end(), [&](const auto& p) { return p.get() == &w; });
    if (it == workers_.end()) return;
    // The worker may still be on the call stack (its exit handler called us): keep it
    // alive until this handler returns.
    auto keep = std::move(*it);
    workers_.erase(it);
    boost::asio::post(env_.io, [keep] {});
    if (workers_.empty() && retired_ && on_drained_) on_drained_(*this);
}

void WorkerPool::retire() {
    retired_ = true;
    for (auto& w : idle_) w->kill();
    idle_.clear();
    for (auto& w : workers_) w->retire();
    if (workers_.empty() && on_drained_) on_drained_(*this);
}

void WorkerPool::reap_idle(Worker::Clock::time_point now) {
    const auto keep_alive = std::chrono::seconds(fn_->config.keep_alive_s);
    // Front = least recently used; stop at the first one still within its keep-alive.
    std::size_t expired = 0;
    while (expired < idle_.size() && now - idle_[expired]->last_used() >= keep_alive) ++expired;
    if (expired == 0) return;
    for (std::size_t i = 0; i < expired; ++i) idle_[i]->kill();
    idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
    spdlog::debug("pool: function={} version={} reaped {} idle workers", fn_->config.name, fn_->version, expired);
}

void WorkerPool::kill_all() {
    idle_.clear();
    for (auto& w : workers_) w->kill();
}

}  // namespace funcd
