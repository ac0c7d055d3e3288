#pragma once
// The host memory promised to workers: the sum of memory_mb of every live worker stays
// within the budget. A worker is charged when it is started and released when it is
// ended, so a budget full of idle workers can be made room in by evicting some.
#include <cstdint>
#include <functional>

namespace funcd {

class WorkerPool;

class MemoryBudget {
public:
    // Ends idle workers of pools other than `requester`, least recently used first, until
    // `needed_mb` is free or nothing more can be evicted.
    using Evictor = std::function<void(std::int64_t needed_mb, const WorkerPool* requester)>;

    explicit MemoryBudget(std::int64_t limit_mb) : limit_mb_(limit_mb) {}

    void set_evictor(Evictor evictor) { evictor_ = std::move(evictor); }
    // Called after memory was released (to wake invocations waiting for it).
    void on_release(std::function<void()> callback) { on_release_ = std::move(callback); }

    // Charges `mb` if it fits, evicting idle workers of other pools to make it fit.
    bool try_charge(std::int64_t mb, const WorkerPool* requester);
    void release(std::int64_t mb);

    std::int64_t used_mb() const { return used_mb_; }
    std::int64_t limit_mb() const { return limit_mb_; }

private:
    std::int64_t limit_mb_;
    std::int64_t used_mb_ = 0;
    Evictor evictor_;
    std::function<void()> on_release_;
};

}  // namespace funcd
