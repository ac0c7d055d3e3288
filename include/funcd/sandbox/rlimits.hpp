#pragma once
// Resource limits of a sandbox worker, computed by the parent, applied by the child.
#include <sys/resource.h>

#include <array>
#include <cstddef>

namespace funcd {

struct RlimitSetting {
    int resource = 0;
    rlim_t value = 0;
    const char* name = "";
};

struct RlimitPlan {
    // Fixed capacity: the child applies the plan without allocating.
    std::array<RlimitSetting, 8> settings{};
    std::size_t count = 0;
};

// `ephemeral_storage_mb` caps file size; `per_worker_uid` enables the process-count cap
// (counted per uid, so only meaningful when each worker has its own).
RlimitPlan plan_rlimits(int ephemeral_storage_mb, bool per_worker_uid);

// The name a plan gives `resource` ("RLIMIT_NOFILE"), for error reports.
const char* rlimit_name(int resource) noexcept;

// Child: applies the plan. Returns 0 or errno; `what` names the limit that failed.
int child_apply_rlimits(const RlimitPlan& plan, const char** what) noexcept;

}  // namespace funcd
