#include "funcd/sandbox/sandbox_child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "funcd/sandbox/capabilities.hpp"
#include "funcd/sandbox/network.hpp"
#include "funcd/sandbox/sandbox_init.hpp"
#include "funcd/sandbox/sync_channel.hpp"

namespace funcd {
namespace {

// The child's exit status when a step failed (as a shell's "found but not executable").
constexpr int kChildStepFailed = kSandboxStartFailed;
// What `hostname` says inside: resolvable through the sandbox's own /etc/hosts (mounts.cpp),
// which runtimes that look up their own name rely on, and says nothing about the host.
constexpr const char* kHostname = "localhost";

using StepFn = int (*)(const ChildPlan&, const char** what) noexcept;

struct ChildStep {
    const char* name;  // what the parent logs and what the exception names
    StepFn run;        // 0 or errno
};

int step_daemon_descriptors(const ChildPlan& p, const char**) noexcept {
    // The clone copied every descriptor of the daemon, including those of launches
    // running on other threads at this moment: their sync sockets and pipes. Until
    // closed here, a copy would keep a sibling's "exec" end-of-file (and its init's
    // parent-alive check) from happening, and while this child waits below for its own
    // go, two children holding each other's parent ends would wait forever once the
    // daemon died. So they go before anything that can block, our parent's end of the
    // socketpair with them (its hang-up is how we notice the daemon's death). The
    // standard descriptors stay until the stdio step replaces them.
    int from = 3;
    for (int fd : p.own) {
        if (fd > from && ::close_range(static_cast<unsigned>(from), static_cast<unsigned>(fd - 1), 0) != 0)
            return errno;
        from = fd + 1;
    }
    return ::close_range(static_cast<unsigned>(from), ~0U, 0) != 0 ? errno : 0;
}

int step_sync(const ChildPlan& p, const char**) noexcept {
    // Until the go byte the parent is writing our id maps and cgroup: nothing may run
    // with the unmapped ids, nor outside the worker's cgroup. EOF instead of the byte
    // means the parent died or gave up.
    return child_wait_for_go(p.sync) ? 0 : ECANCELED;
}

int open_into(const char* path, int slot) noexcept {
    int fd = ::open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int err = ::dup3(fd, slot, O_CLOEXEC) < 0 ? errno : 0;
    ::close(fd);
    return err;
}

int step_bind_sources(const ChildPlan& p, const char** what) noexcept {
    // Opened here, not in the parent: a bind mount's source must belong to the child's
    // own mount namespace (EINVAL otherwise). And opened now, while the child still has
    // host uid 0: as the worker's uid it could not search the data directory (0700), and
    // in a user namespace capabilities do not apply to inodes of unmapped owners.
    *what = p.code_dir.c_str();
    if (int err = open_into(p.code_dir.c_str(), p.code_slot)) return err;
    *what = p.runtime_dir.c_str();
    if (int err = open_into(p.runtime_dir.c_str(), p.runtime_slot)) return err;
    for (std::size_t i = 0; i < p.bind_dirs.size(); ++i) {
        *what = p.bind_dirs[i].c_str();
        if (int err = open_into(p.bind_dirs[i].c_str(), p.bind_slots[i])) return err;
    }
    return 0;
}

int step_detached_tmpfs(const ChildPlan& p, const char** what) noexcept {
    // While the child is still the host's root (see DetachedTmpfs): /tmp and /dev/shm then
    // show no host uid in mountinfo.
    return child_make_detached_tmpfs(p.root, what);
}

int step_session(const ChildPlan&, const char**) noexcept {
    // Detached from the daemon's terminal and process group: a job-control signal to
    // those must not reach the worker.
    return ::setsid() < 0 ? errno : 0;
}

int step_hostname(const ChildPlan&, const char**) noexcept {
    return ::sethostname(kHostname, std::strlen(kHostname)) != 0 ? errno : 0;
}

int step_mounts(const ChildPlan& p, const char** what) noexcept { return child_build_root(p.root, what); }

int step_loopback(const ChildPlan& p, const char**) noexcept {
    return p.private_network ? child_bring_loopback_up() : 0;
}

int step_runtime_api(const ChildPlan& p, const char** what) noexcept {
    if (!p.private_network) return 0;  // the parent listens on the host's loopback itself
    int fd = -1;
    if (int err = child_listen_runtime_api(&fd, what)) return err;
    int err = child_send_fd(p.sync, fd);
    if (err) *what = "send to parent";
    ::close(fd);
    return err;
}

int step_rlimits(const ChildPlan& p, const char** what) noexcept { return child_apply_rlimits(p.rlimits, what); }

int step_working_directory(const ChildPlan&, const char**) noexcept {
    return ::chdir("/var/task") != 0 ? errno : 0;
}

int step_stdio(const ChildPlan& p, const char** what) noexcept {
    // dup2 clears close-on-exec on the copies, so these three survive execve.
    const struct {
        int from, to;
        const char* name;
    } moves[] = {{p.dev_null, 0, "stdin"}, {p.output, 1, "stdout"}, {p.output, 2, "stderr"}};
    for (const auto& m : moves) {
        if (::dup2(m.from, m.to) < 0) {
            *what = m.name;
            return errno;
        }
    }
    return 0;
}

int step_telemetry(const ChildPlan& p, const char**) noexcept {
    // After stdio, which may have read from the fixed number; the launcher keeps every
    // descriptor used after this step off it. dup2 onto itself would leave close-on-exec set.
    if (p.telemetry == kTelemetryLogFd) return ::fcntl(p.telemetry, F_SETFD, 0) != 0 ? errno : 0;
    return ::dup2(p.telemetry, kTelemetryLogFd) < 0 ? errno : 0;
}

int step_close_descriptors(const ChildPlan& p, const char**) noexcept {
    // The child holds a copy of every descriptor of the daemon (listeners, databases,
    // other workers' pipes). Close-on-exec would cover most, but not a descriptor
    // another thread opened without it, so close them all. The sync socket stays: it
    // carries a failure of the remaining steps and closes itself at exec.
    // The runtime's Runtime API connection stays too: the runtime inherits it.
    std::array<int, 5> keep{p.sync, p.exit_status, p.runtime_api_fd, p.init, kTelemetryLogFd};
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int fd : keep) {
        const auto k = static_cast<unsigned>(fd);
        if (k > from && ::close_range(from, k - 1, 0) != 0) return errno;
        from = k + 1;
    }
    return ::close_range(from, ~0U, 0) != 0 ? errno : 0;
}

int step_runtime_api_connection(const ChildPlan& p, const char**) noexcept {
    // Kept across the runtime's exec, at the number FUNCD_RUNTIME_API_FD names (dup2 clears
    // close-on-exec on the copy; the original goes with the next step). The launcher chose
    // a number no descriptor used after this step has.
    if (p.runtime_api_fd == p.runtime_api) return ::fcntl(p.runtime_api, F_SETFD, 0) != 0 ? errno : 0;
    return ::dup2(p.runtime_api, p.runtime_api_fd) < 0 ? errno : 0;
}

int step_bounding_set(const ChildPlan& p, const char** what) noexcept {
    return child_drop_bounding_and_ambient(p.last_cap, what);
}

int step_credentials(const ChildPlan& p, const char** what) noexcept { return child_switch_ids(p.ids, what); }

int step_capabilities(const ChildPlan&, const char**) noexcept { return child_clear_capability_sets(); }

int step_parent_death_signal(const ChildPlan& p, const char**) noexcept {
    // Set only now: changing the effective uid or gid clears the parent-death signal,
    // so set earlier it would be gone. The signal follows the thread that called clone.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return errno;
    // If the parent died before the line above, nothing will signal us. getppid() can't
    // tell (the parent is outside our PID namespace: it reads 0); its end of the
    // socketpair can.
    return child_parent_alive(p.sync) ? 0 : ECANCELED;
}

int step_no_new_privs(const ChildPlan&, const char**) noexcept {
    // No setuid bit or file capability can give anything back after exec; seccomp
    // filters also require it from an unprivileged process.
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ? errno : 0;
}

int step_signals(const ChildPlan& p, const char**) noexcept {
    // A runtime forked from a template keeps the template's dispositions: they are what its
    // interpreter set up as it started (Python ignores SIGPIPE and SIGXFSZ and handles
    // SIGINT), as a runtime started afresh would have them, and its own bookkeeping
    // expects them. The template itself started with the defaults.
    if (p.finish == ChildFinish::fork_runtime) return 0;
    // The mask and ignored dispositions survive execve; a runtime must start with the
    // defaults, not with whatever the daemon blocks or ignores (SIGPIPE).
    sigset_t none;
    sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return errno;
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        ::sigaction(sig, &dfl, nullptr);  // EINVAL for libc-internal signals: nothing to reset
    }
    return 0;
}

int step_seccomp(const ChildPlan& p, const char**) noexcept { return install_seccomp(*p.seccomp); }

// PID 1 of the namespace is funcd-init, not this clone of the daemon: a clone that lived
// on would keep the daemon's memory (the API token, every function's environment), its
// command line and environment, readable by the worker wherever the host lets a process
// read another of its uid (fs.suid_dumpable), and private copies of the daemon's pages.
// funcd-init starts the runtime, reaps everything, and passes the runtime's wait status
// on (sandbox_init.hpp). Why PID 1 is not the runtime itself: a runtime as PID 1 would
// never reap the orphans its children leave (zombies count against pids.max), and the
// kernel drops every signal a namespace's init sends itself without a handler (a
// runtime's own kill(getpid(), SIGKILL) would do nothing).
//
// The sync socket and the exit status pipe are handed over open; funcd-init reports a
// failed start of the runtime on the former, whose end-of-file then means the runtime
// was exec'd, as before. execveat on a descriptor: the new root has no funcd-init, and
// the descriptor (close-on-exec) is gone once the exec succeeded.
int exec_init(const ChildPlan& p, char* const* argv, char* const* envp) noexcept {
    if (::fcntl(p.sync, F_SETFD, 0) != 0 || ::fcntl(p.exit_status, F_SETFD, 0) != 0) return errno;
    ::syscall(SYS_execveat, p.init, "", argv, envp, AT_EMPTY_PATH);
    const int err = errno;
    ::fcntl(p.sync, F_SETFD, FD_CLOEXEC);
    return err;
}

// A template's clone forks the runtime from itself: the copy returns to the template's
// code, which loads the function, and this process becomes funcd-init, adopting it.
// Everything the runtime inherits is already contained (credentials, capabilities,
// no_new_privs, seccomp, rlimits, root, namespaces, cgroup); fork keeps it all.
// The copy's pid is what fork returned here: this process is PID 1 of the namespace.
int fork_runtime(const ChildPlan& p, const char** what) noexcept {
    const pid_t runtime = ::fork();
    if (runtime < 0) {
        *what = "fork";
        return errno;
    }
    if (runtime == 0) {
        // The runtime: the init's descriptors are not its business (an exit status pipe
        // it could write would let it forge its own end). Dumpable again, as a runtime
        // exec'd as the worker's uid is: switching ids in the first process cleared it.
        ::close(p.exit_status);
        ::close(p.init);
        if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
            *what = "PR_SET_DUMPABLE";
            return errno;
        }
        return 0;
    }
    // Our copy of the sync socket goes now, not at the exec: the daemon's end-of-file then
    // waits only for the runtime's copy, and the exec below (which tears down this copy of
    // the template's memory) runs beside the runtime instead of before its answer. An exec
    // that failed shows as the worker's end (exit status kSandboxStartFailed).
    ::close(p.sync);
    // funcd-init -1 <exit-status> <runtime-api> --adopt <pid>: no allocation here.
    char pid_text[16];
    auto [end, ec] = std::to_chars(pid_text, pid_text + sizeof pid_text - 1, runtime);
    *end = '\0';
    char no_sync[] = "-1";
    char adopt[] = "--adopt";  // kSandboxInitAdopt, writable for execve's argv type
    char* argv[kSandboxInitFixedArgs + 3] = {};
    for (int i = 0; i < kSandboxInitFixedArgs; ++i) argv[i] = const_cast<char*>(p.init_args[i].c_str());
    argv[1] = no_sync;
    argv[kSandboxInitFixedArgs] = adopt;
    argv[kSandboxInitFixedArgs + 1] = pid_text;
    char* envp[] = {nullptr};
    if (::fcntl(p.exit_status, F_SETFD, 0) == 0)
        ::syscall(SYS_execveat, p.init, "", argv, envp, AT_EMPTY_PATH);
    // The runtime would run on without its init: end it (it is our child, we are PID 1),
    // and with it the sandbox.
    ::kill(runtime, SIGKILL);
    ::_exit(kChildStepFailed);
}

int step_init(const ChildPlan& p, const char** what) noexcept {
    if (p.finish == ChildFinish::fork_runtime) return fork_runtime(p, what);
    *what = kSandboxInitName;
    return exec_init(p, p.argv.data(), p.envp.data());
}

// The containment steps, in the order they run. Each can fail; the first failure ends
// the child and reaches the parent as "<name>[ <what>]: errno N". Order matters where
// the kernel makes it matter:
// - credentials before the mounts: the child starts as the host's uid, which is not
//   mapped in its namespace, and the kernel refuses to create files (EOVERFLOW) for an
//   owner it cannot represent in the filesystem's namespace -- the root included.
//   Switching keeps the namespace's capabilities: the kernel only strips them when
//   leaving the namespace's uid 0, which is not mapped here. Only what must be done as
//   the host's uid comes earlier: opening the bind sources, and creating the writable
//   tmpfs mounts (owned by that uid, they print no owner in mountinfo; their root is 1777);
// - the parent-death signal after the switch, which clears it;
// - mounts while capabilities last; /proc before the old root is detached;
// - the bounding set before the capability sets (it needs CAP_SETPCAP), no_new_privs
//   before seccomp, seccomp last, so none of the setup has to pass the filter.
constexpr ChildStep kChildSteps[] = {
    {"daemon descriptors", step_daemon_descriptors},
    {"sync", step_sync},
    {"bind sources", step_bind_sources},
    {"detached tmpfs", step_detached_tmpfs},
    {"credentials", step_credentials},
    {"parent death signal", step_parent_death_signal},
    {"session", step_session},
    {"hostname", step_hostname},
    {"mounts", step_mounts},
    {"loopback", step_loopback},
    {"runtime api listener", step_runtime_api},
    {"rlimits", step_rlimits},
    {"working directory", step_working_directory},
    {"stdio", step_stdio},
    {"telemetry descriptor", step_telemetry},
    {"runtime api connection", step_runtime_api_connection},
    {"close descriptors", step_close_descriptors},
    {"capability bounding set", step_bounding_set},
    {"capabilities", step_capabilities},
    {"no_new_privs", step_no_new_privs},
    {"signals", step_signals},
    {"seccomp", step_seccomp},
    {"init", step_init},
};

}  // namespace

int run_sandbox_child(const ChildPlan& plan) noexcept {
    for (const ChildStep& step : kChildSteps) {
        const char* what = nullptr;
        if (int err = step.run(plan, &what); err != 0) {
            child_report_failure(plan.sync, step.name, what, err);
            ::_exit(kChildStepFailed);
        }
    }
    // Only the runtime forked by fork_runtime gets here; exec_init never returns.
    return 0;
}


}  // namespace funcd
