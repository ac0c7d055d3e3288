#pragma once
// A cgroup per worker: memory limit without swap, a pids limit, CPU weight in
// proportion to memory, the memory peak for metering, and a kill that reaches every
// process of the worker. cgroup v2 where the host has the controllers there; otherwise
// the v1 memory/pids/cpu hierarchies (as on hosts that mount only those).
//
// Layout, in each hierarchy used: funcd's cgroup ("funcd", shared by every daemon on the
// host), in it one cgroup per daemon ("daemon-<pid>") when the daemon fences its workers'
// memory (fence_memory), and in that the workers' cgroups ("<pid>-<function>-<version>-<n>").
// A daemon that does not fence puts its workers directly in funcd's cgroup.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/common/unique_fd.hpp"

namespace funcd {

struct CgroupLimits {
    std::uint64_t memory_bytes = 128ull << 20;
    // Lambda's per-environment process/thread limit.
    std::uint64_t pids_max = 1024;
    int memory_mb = 128;  // CPU weight is derived from it: Lambda gives 1 vCPU at 1769 MB
};

// The calling thread's stay in a worker's cgroup (see WorkerCgroup::enter_calling_thread).
// Ending it moves the thread back to the cgroups it came from.
class CgroupThreadStay {
public:
    virtual ~CgroupThreadStay() = default;  // leaves, if leave() was not called
    // Moves the thread back; false when it could not (logged). Idempotent.
    virtual bool leave() noexcept = 0;
};

class WorkerCgroup {
public:
    virtual ~WorkerCgroup() = default;  // removes the cgroup (after killing what is left in it)
    // Moves `pid` into the cgroup (every controller). Throws std::system_error.
    virtual void add(pid_t pid) = 0;
    // SIGKILLs every process in the cgroup, stopped ones included. Idempotent.
    virtual void kill_all() = 0;
    virtual std::optional<std::uint64_t> peak_memory_bytes() = 0;
    // True once the kernel's OOM killer acted in this cgroup.
    virtual bool oom_killed() = 0;
    // For clone3(CLONE_INTO_CGROUP): a directory fd of the v2 cgroup, or -1 (v1).
    virtual int clone_into_fd() const { return -1; }
    // cgroup v1's stand-in for CLONE_INTO_CGROUP: moves the calling thread, and only it,
    // into the cgroup until the returned stay ends, so a process the thread creates
    // meanwhile starts inside. nullptr where that is not possible (v2, or refused: logged);
    // the caller then add()s the new process. The stay must end on the same thread
    // before anything kills the cgroup (kill_all would otherwise list the daemon).
    virtual std::unique_ptr<CgroupThreadStay> enter_calling_thread() { return nullptr; }
    // The same stand-in for another process (a runtime template): the v1 `tasks` files,
    // open for writing, into which a thread writes "0" to move itself. Empty on v2.
    virtual std::vector<UniqueFd> open_thread_entries() const { return {}; }
    // The cgroup's directories (one per v1 hierarchy, one for v2), for logs and checks.
    virtual std::vector<std::filesystem::path> directories() const { return {}; }
};

class CgroupManager {
public:
    virtual ~CgroupManager() = default;
    // Finds usable controllers and creates funcd's parent cgroup(s) named `name`;
    // nullptr when this host offers none we can write to (logged).
    static std::unique_ptr<CgroupManager> detect(const std::string& name = "funcd");

    // Creates the cgroup of one worker. Throws std::system_error.
    virtual std::unique_ptr<WorkerCgroup> create(const std::string& id, const CgroupLimits& limits) = 0;
    // E.g. "cgroup v1 (memory, pids, cpu)" for the start-up log.
    virtual std::string describe() const = 0;
    // Puts the workers created from now on in a cgroup of this daemon's own
    // (daemon_cgroup_name) whose memory limit is `memory_bytes`: v2 memory.max, v1
    // memory.limit_in_bytes (hierarchical). However much the workers together outgrow what
    // admission expected of them, the kernel then reclaims or OOM-kills among them, never
    // among the host's other processes. Call it before the first create(); a second call
    // changes the limit. False, logged as a warning with the cause, when it cannot be done
    // (no permission, a v1 memory hierarchy without use_hierarchy that cannot be switched
    // on, ...): workers are then created where they were, without the common limit.
    virtual bool fence_memory(std::uint64_t memory_bytes) = 0;
    // The memory limit of the fence; nullopt when there is none.
    virtual std::optional<std::uint64_t> memory_fence() const = 0;
    // Removes the worker cgroups of daemons that are gone (killed before they could remove
    // them: SIGKILL, OOM, a crash), in every hierarchy: those whose id names, as
    // worker_cgroup_id does, a daemon pid that no longer exists, and the daemon cgroups
    // (daemon_cgroup_name) of such pids with every worker cgroup in them. Whatever still
    // runs in one is killed first. Returns how many worker cgroups were removed. Cgroups
    // of living daemons (other daemons share the parent) are left alone.
    virtual std::size_t remove_dead_daemons_cgroups() = 0;
};

// The id of a worker's cgroup: "<daemon pid>-<function>-<version>-<n>". The daemon's pid
// keeps the cgroups of daemons sharing the parent apart and tells whose a leftover was.
std::string worker_cgroup_id(pid_t daemon, const std::string& function, std::int64_t version, std::uint64_t n);
// The daemon pid a worker cgroup id starts with; nullopt for names that are not such ids.
std::optional<pid_t> worker_cgroup_owner(std::string_view id);
// The name of a daemon's own cgroup under funcd's (see fence_memory): "daemon-<pid>".
std::string daemon_cgroup_name(pid_t daemon);
// The daemon pid of such a name; nullopt for other names (worker cgroup ids among them).
std::optional<pid_t> daemon_cgroup_owner(std::string_view name);

// CPU weight for a memory size, cgroup v2 scale (1..10000, 100 = default) and v1
// cpu.shares scale (2..262144, 1024 = default): 1769 MB = one full default share.
std::uint64_t cpu_weight_v2(int memory_mb);
std::uint64_t cpu_shares_v1(int memory_mb);

}  // namespace funcd
