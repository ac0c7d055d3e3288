#include "funcd/sandbox/uid_pool.hpp"

namespace funcd {

UidPool::UidPool(uid_t base, unsigned slots) : base_(base), taken_(slots, false) {}

std::optional<uid_t> UidPool::acquire() {
    std::lock_guard lock(mutex_);
    const auto n = static_cast<unsigned>(taken_.size());
    for (unsigned i = 0; i < n; ++i) {
        unsigned slot = (next_ + i) % n;
        if (!taken_[slot]) {
            taken_[slot] = true;
            next_ = (slot + 1) % n;
            ++in_use_;
            return base_ + slot;
        }
    }
    return std::nullopt;
}

void UidPool::release(uid_t uid) {
    std::lock_guard lock(mutex_);
    if (uid < base_ || uid - base_ >= taken_.size() || !taken_[uid - base_]) return;
    taken_[uid - base_] = false;
    --in_use_;
}

unsigned UidPool::in_use() const {
    std::lock_guard lock(mutex_);
    return in_use_;
}

}  // namespace funcd
