#include "funcd/pool/memory_budget.hpp"

namespace funcd {

bool MemoryBudget::try_charge(std::int64_t mb, const WorkerPool* requester) {
    if (used_mb_ + mb > limit_mb_ && evictor_) evictor_(used_mb_ + mb - limit_mb_, requester);
    if (used_mb_ + mb > limit_mb_) return false;
    used_mb_ += mb;
    return true;
}

void MemoryBudget::release(std::int64_t mb) {
    used_mb_ -= mb;
    if (on_release_) on_release_();
}

}  // namespace funcd
