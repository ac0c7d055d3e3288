#pragma once
// Distinct host uids for sandbox workers. With one host uid per live worker, every
// per-uid kernel limit (RLIMIT_NPROC, signal permission, ownership of what a worker
// creates) separates one worker from another. A slot is used for both uid and gid.
#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace funcd {

class UidPool {
public:
    UidPool(uid_t base, unsigned slots);

    // A free uid, or nullopt when every slot is taken.
    std::optional<uid_t> acquire();
    // Returns a uid from acquire(); anything else is ignored.
    void release(uid_t uid);
    unsigned in_use() const;

private:
    mutable std::mutex mutex_;
    uid_t base_;
    std::vector<bool> taken_;
    unsigned next_ = 0;  // where the next search starts, so a just-freed uid is reused last
    unsigned in_use_ = 0;
};

// Holds one uid of a pool until destroyed; the pool outlives the launcher through it.
class UidLease {
public:
    UidLease() = default;
    UidLease(std::shared_ptr<UidPool> pool, uid_t uid) : pool_(std::move(pool)), uid_(uid) {}
    UidLease(UidLease&& other) noexcept : pool_(std::move(other.pool_)), uid_(other.uid_) {}
    UidLease& operator=(UidLease&& other) noexcept {
        if (this != &other) {
            reset();
            pool_ = std::move(other.pool_);
            uid_ = other.uid_;
        }
        return *this;
    }
    UidLease(const UidLease&) = delete;
    UidLease& operator=(const UidLease&) = delete;
    ~UidLease() { reset(); }

    bool held() const { return pool_ != nullptr; }
    uid_t uid() const { return uid_; }
    void reset() {
        if (pool_) pool_->release(uid_);
        pool_.reset();
    }

private:
    std::shared_ptr<UidPool> pool_;
    uid_t uid_ = 0;
};

}  // namespace funcd
