#include "funcd/pool/pool_manager.hpp"

#include <malloc.h>

#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace funcd {
namespace {

// How often idle workers are checked against their keep-alive (and pre-warms and
// provisioned workers are looked after). The shortest keep-alive is 1 s, so a worker
// outlives it by at most a quarter of that.
constexpr auto kReapInterval = std::chrono::milliseconds(250);

}  // namespace

PoolManager::PoolManager(PoolEnvironment& env) : env_(env), reaper_(env.io) {
    if (env_.memory)
        env_.memory->set_evictor(
            [this](std::int64_t needed, const WorkerPool* requester) { evict_idle(needed, requester); });
    schedule_reap();
}

PoolManager::~PoolManager() {
    reaper_.cancel();
    if (env_.memory) env_.memory->set_evictor(nullptr);
}

void PoolManager::evict_idle(std::int64_t needed_mb, const WorkerPool* requester) {
    while (needed_mb > 0) {
        WorkerPool* victim = nullptr;
        std::optional<Worker::Clock::time_point> oldest;
        for (auto& [name, pools] : pools_) {
            for (auto& [label, pool] : pools.current) {
                WorkerPool* p = pool.get();
                if (!p || p == requester) continue;
                auto t = p->oldest_idle();
                if (t && (!oldest || *t < *oldest)) {
                    oldest = t;
                    victim = p;
                }
            }
        }
        if (!victim) return;
        needed_mb -= victim->evict_oldest_idle();
    }
}

std::unique_ptr<WorkerPool> PoolManager::make_pool(const FunctionPtr& fn) {
    const std::string name = fn->config.name;
    return std::make_unique<WorkerPool>(env_, fn, [this, name](WorkerPool&) {
        // Never destroy a pool from inside its own call stack.
        boost::asio::post(env_.io, [this, name] { drop_drained(name); });
    });
}

WorkerPool& PoolManager::pool_for(const FunctionPtr& fn) {
    auto& pools = pools_[fn->config.name];
    auto& slot = pools.current[fn->label()];
    if (slot && slot->function()->generation >= fn->generation) return *slot;
    retire(pools, slot);
    slot = make_pool(fn);
    return *slot;
}

void PoolManager::sync(const std::string& name, const std::vector<FunctionPtr>& versions) {
    auto it = pools_.find(name);
    if (it != pools_.end()) {
        auto& pools = it->second;
        for (auto& [label, slot] : pools.current) {
            if (!slot) continue;
            auto v = std::find_if(versions.begin(), versions.end(), [&](const FunctionPtr& f) { return f->label() == label; });
            if (v == versions.end() || (*v)->generation > slot->function()->generation) retire(pools, slot);
            else if ((*v)->generation == slot->function()->generation) slot->update_function(*v);
        }
        std::erase_if(pools.current, [](const auto& entry) { return !entry.second; });
    }
    // Pools are otherwise made by the first invocation; provisioned workers need theirs now.
    for (const auto& v : versions)
        if (v->config.concurrency.provisioned > 0) pool_for(v).ensure_provisioned();
}

void PoolManager::retire_version(const std::string& name, const std::string& label) {
    auto it = pools_.find(name);
    if (it == pools_.end()) return;
    auto slot = it->second.current.find(label);
    if (slot == it->second.current.end()) return;
    retire(it->second, slot->second);
    it->second.current.erase(slot);
}

void PoolManager::retire_function(const std::string& name) {
    auto it = pools_.find(name);
    if (it == pools_.end()) return;
    for (auto& [label, slot] : it->second.current) retire(it->second, slot);
    it->second.current.clear();
}

void PoolManager::retire(FunctionPools& pools, std::unique_ptr<WorkerPool>& slot) {
    if (!slot) return;
    spdlog::info("pool: retiring function={} version={} ({} workers)", slot->function()->config.name,
                 slot->function()->label(), slot->live());
    auto pool = std::move(slot);
    pool->retire();
    pools.retired.push_back(std::move(pool));
}

void PoolManager::drop_drained(const std::string& name) {
    auto it = pools_.find(name);
    if (it == pools_.end()) return;
    auto& retired = it->second.retired;
    std::erase_if(retired, [](const auto& p) { return p->live() == 0; });
    if (it->second.current.empty() && retired.empty()) pools_.erase(it);
    if (drained_callback_) drained_callback_();
}

InstanceCounts PoolManager::instances(const std::string& name) const {
    InstanceCounts c;
    auto it = pools_.find(name);
    if (it == pools_.end()) return c;
    auto add = [&](const WorkerPool& p) {
        c.idle += p.idle();
        c.busy += p.busy();
    };
    for (const auto& [label, p] : it->second.current) add(*p);
    for (const auto& p : it->second.retired) add(*p);
    return c;
}

WorkerStates PoolManager::worker_states(const std::string& name) const {
    WorkerStates s;
    auto it = pools_.find(name);
    if (it == pools_.end()) return s;
    for (const auto& [label, p] : it->second.current) s += p->states();
    for (const auto& p : it->second.retired) s += p->states();
    return s;
}

ProvisionedCounts PoolManager::provisioned(const std::string& name, const std::string& label) const {
    ProvisionedCounts c;
    if (auto it = pools_.find(name); it != pools_.end())
        if (auto p = it->second.current.find(label); p != it->second.current.end()) c = p->second->provisioned();
    if (env_.provisioned_elsewhere) c.elsewhere = env_.provisioned_elsewhere(name, label);
    return c;
}

std::map<std::string, std::uint64_t, std::less<>> PoolManager::submitted() const {
    std::map<std::string, std::uint64_t, std::less<>> out;
    for (const auto& [name, pools] : pools_) {
        std::uint64_t n = 0;
        for (const auto& [label, p] : pools.current) n += p->submitted();
        for (const auto& p : pools.retired) n += p->submitted();
        out.emplace(name, n);
    }
    return out;
}

std::map<std::string, std::map<std::string, std::size_t>> PoolManager::provisioned_ready() const {
    std::map<std::string, std::map<std::string, std::size_t>> out;
    for (const auto& [name, pools] : pools_)
        for (const auto& [label, p] : pools.current)
            if (const std::size_t ready = p->provisioned().ready; ready > 0) out[name][label] = ready;
    return out;
}

std::size_t PoolManager::live_workers() const {
    std::size_t n = 0;
    for (const auto& [name, pools] : pools_) {
        for (const auto& [label, p] : pools.current) n += p->live();
        for (const auto& p : pools.retired) n += p->live();
    }
    return n;
}

std::set<std::string> PoolManager::code_in_use() const {
    std::set<std::string> out;
    auto add = [&](const WorkerPool& p) {
        if (p.live() == 0) return;
        out.insert(p.function()->code_sha256);
        for (const auto& l : p.function()->config.layers) out.insert(l.code_sha256);
        if (!p.function()->opt_dir.empty()) out.insert(p.function()->opt_dir.filename().string());
    };
    for (const auto& [name, pools] : pools_) {
        for (const auto& [label, p] : pools.current) add(*p);
        for (const auto& p : pools.retired) add(*p);
    }
    return out;
}

void PoolManager::kill_all() {
    for (auto& [name, pools] : pools_) {
        for (auto& [label, p] : pools.current) p->kill_all();
        for (auto& p : pools.retired) p->kill_all();
    }
}

void PoolManager::release_memory_at_zero() {
    const std::size_t live = live_workers();
    if (live > 0) {
        had_workers_ = true;
        return;
    }
    if (!had_workers_) return;
    had_workers_ = false;
    // Scaled to zero: hundreds of workers' buffers were freed, but glibc keeps freed heap
    // pages for reuse, so the daemon would keep its peak footprint while nothing runs.
    // Give them back to the kernel once, now.
    ::malloc_trim(0);
    spdlog::debug("pool: no workers left; heap trimmed");
}

void PoolManager::schedule_reap() {
    reaper_.expires_after(kReapInterval);
    reaper_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        const auto now = Worker::Clock::now();
        for (auto& [name, pools] : pools_)
            for (auto& [label, p] : pools.current) p->tick(now);
        release_memory_at_zero();
        schedule_reap();
    });
}

}  // namespace funcd
