#include "funcd/sandbox/rlimits.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace funcd {
namespace {

// Lambda's per-environment limits: 1024 descriptors and 1024 processes/threads.
constexpr rlim_t kMaxOpenFiles = 1024;
constexpr rlim_t kMaxProcesses = 1024;
// A crashing runtime must not write a core file into its /tmp (or anywhere).
constexpr rlim_t kNoCoreDumps = 0;

void add(RlimitPlan& plan, int resource, rlim_t wanted) {
    const char* name = rlimit_name(resource);
    // Only lowering is possible: raising a hard limit needs CAP_SYS_RESOURCE in the
    // initial user namespace, which the child never has. So never ask for more than
    // the daemon's own hard limit, or setrlimit fails with EPERM.
    rlimit current{};
    rlim_t value = wanted;
    if (::getrlimit(resource, &current) == 0) {
        if (current.rlim_max != RLIM_INFINITY) value = std::min(value, current.rlim_max);
    } else {
        spdlog::warn("sandbox: getrlimit({}) failed: {} (errno {})", name, std::strerror(errno), errno);
    }
    plan.settings[plan.count++] = RlimitSetting{resource, value, name};
}

}  // namespace

const char* rlimit_name(int resource) noexcept {
    switch (resource) {
        case RLIMIT_CORE: return "RLIMIT_CORE";
        case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
        case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
        case RLIMIT_NPROC: return "RLIMIT_NPROC";
        default: return "rlimit";
    }
}

RlimitPlan plan_rlimits(int ephemeral_storage_mb, bool per_worker_uid) {
    RlimitPlan plan;
    add(plan, RLIMIT_CORE, kNoCoreDumps);
    add(plan, RLIMIT_NOFILE, kMaxOpenFiles);
    // No single file can outgrow the worker's /tmp.
    add(plan, RLIMIT_FSIZE, static_cast<rlim_t>(std::max(ephemeral_storage_mb, 1)) << 20);
    // RLIMIT_NPROC counts every process of the real uid: with a shared uid (the daemon's
    // own) it would count the daemon's other workers and the daemon itself.
    if (per_worker_uid) add(plan, RLIMIT_NPROC, kMaxProcesses);
    return plan;
}

int child_apply_rlimits(const RlimitPlan& plan, const char** what) noexcept {
    for (std::size_t i = 0; i < plan.count; ++i) {
        const RlimitSetting& s = plan.settings[i];
        rlimit limit{s.value, s.value};
        if (::setrlimit(s.resource, &limit) != 0) {
            *what = s.name;
            return errno;
        }
    }
    return 0;
}

}  // namespace funcd
