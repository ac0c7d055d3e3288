#pragma once
// The first process of a sandbox and the steps that contain it (namespace_launcher.hpp
// describes the sandbox). The steps only make system calls: everything they read is in the
// plan, built before the process was cloned, because the clone of a multi-threaded daemon
// must not allocate. Two processes run them:
// - a clone of the daemon (NamespaceLauncher), which ends by exec'ing funcd-init with the
//   runtime's command line: ChildFinish::exec_init;
// - a clone of a runtime template (runtime_template.hpp), which ends by forking the
//   runtime from itself and exec'ing funcd-init to adopt it: ChildFinish::fork_runtime.
#include <sched.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "funcd/sandbox/mounts.hpp"
#include "funcd/sandbox/rlimits.hpp"
#include "funcd/sandbox/seccomp_policy.hpp"
#include "funcd/sandbox/user_namespace.hpp"

namespace funcd {

// The namespaces a sandbox's first process is cloned into, whoever clones it; a private
// network namespace (CLONE_NEWNET) is added unless the worker shares the host's.
inline constexpr unsigned long kSandboxNamespaceFlags =
    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;

// How the sandbox's first process hands over to the runtime once it is contained.
enum class ChildFinish {
    // execs funcd-init, which starts `argv`'s runtime (sandbox_init.hpp)
    exec_init,
    // forks: the copy returns to its caller as the runtime; the first process execs
    // funcd-init in adopt mode, which reaps everything and reports the copy's status
    fork_runtime,
};

struct ChildPlan {
    int sync = -1;          // the child's end of the socketpair (close-on-exec)
    // The descriptors above and the bind slots, ascending: everything else the child
    // inherited is closed first.
    std::vector<int> own;
    int dev_null = -1;
    int output = -1;
    int telemetry = -1;  // the write end the runtime finds at kTelemetryLogFd
    bool private_network = true;
    RootPlan root;
    RlimitPlan rlimits;
    IdMapping ids;
    int last_cap = 0;
    const SeccompPolicy* seccomp = nullptr;
    // The host directories bound at /var/task and /var/runtime, opened by the child into
    // these descriptor numbers (reserved by the parent) before it gives up host uid 0.
    std::string code_dir;
    std::string runtime_dir;
    int code_slot = -1;
    int runtime_slot = -1;
    // The spec's extra binds (file triggers' directories), opened the same way.
    std::vector<std::string> bind_dirs;
    std::vector<int> bind_slots;
    int exit_status = -1;  // write end: the init passes on the runtime's wait status
    int runtime_api = -1;  // the runtime's end of its own Runtime API connection
    // The number the runtime finds it at (FUNCD_RUNTIME_API_FD): the lowest free one, so
    // that a runtime's own start marks it close-on-exec (node marks up to about 16), and a
    // process its handler starts does not get it.
    int runtime_api_fd = -1;
    int init = -1;         // funcd-init, for execveat (the launcher's, shared by every launch)
    ChildFinish finish = ChildFinish::exec_init;
    std::vector<std::string> env;  // storage behind envp
    // Storage behind argv: funcd-init's own arguments (kSandboxInitFixedArgs of them).
    std::vector<std::string> init_args;
    // exec_init: funcd-init's command line, the runtime's after its own; null-terminated.
    std::vector<char*> argv;
    std::vector<char*> envp;  // null-terminated
};

// Runs the containment steps in order. The first failure is reported on the sync socket
// as "<step>[ <what>]: errno N" and ends the process (kSandboxStartFailed). With
// exec_init this never returns. With fork_runtime it returns 0 only in the forked
// runtime, which then holds the sync socket (to read what its parent sends last and close
// it) and nothing else of the plan's descriptors but stdio, the telemetry descriptor and
// its Runtime API connection.
int run_sandbox_child(const ChildPlan& plan) noexcept;

}  // namespace funcd
