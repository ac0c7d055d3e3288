// funcd-init: PID 1 of a sandbox (see include/funcd/sandbox/sandbox_init.hpp). Small on
// purpose: statically linked, no allocation of its own, a few system calls, so that what
// each sandbox keeps alive besides the runtime costs a few hundred kilobytes, shared
// between all sandboxes where it can be.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "funcd/sandbox/sandbox_init.hpp"
#include "funcd/sandbox/sync_channel.hpp"

extern char** environ;

namespace {

bool parse_fd(const char* text, int* fd) {
    const char* end = text + std::strlen(text);
    auto [p, ec] = std::from_chars(text, end, *fd);
    return ec == std::errc{} && p == end && *fd >= -1;
}

[[noreturn]] void fail(int sync, const char* step, const char* what, int err) {
    funcd::child_report_failure(sync, step, what, err);
    ::_exit(funcd::kSandboxStartFailed);
}

}  // namespace

int main(int argc, char** argv) {
    using funcd::kSandboxInitFixedArgs;
    int sync = -1, exit_status = -1, runtime_api = -1;
    // Only the launcher starts this program, always with this shape; anything else is a
    // bug there, and exiting is all that can be done (the daemon sees the worker end).
    if (argc <= kSandboxInitFixedArgs || !parse_fd(argv[1], &sync) || !parse_fd(argv[2], &exit_status) ||
        !parse_fd(argv[3], &runtime_api) || exit_status < 0)
        return funcd::kSandboxStartFailed;
    // Only an adopting init has no sync socket: its sandbox's first process closed it.
    const bool adopting = std::strcmp(argv[kSandboxInitFixedArgs], funcd::kSandboxInitAdopt) == 0;
    if (sync < 0 && !adopting) return funcd::kSandboxStartFailed;

    // First, before the runtime exists: nothing in this sandbox may read this process.
    // Exec made it dumpable again (it runs as the worker's uid), and fs.suid_dumpable
    // does not apply to an exec without a change of ids; only this call is certain.
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail(sync, "init", "PR_SET_DUMPABLE", errno);
    // Exec'd from a descriptor, the kernel names the process after it ("memfd:funcd-ini"
    // or a number): the name ps shows on the host is set here.
    ::prctl(PR_SET_NAME, funcd::kSandboxInitName, 0, 0, 0);

    // The launcher cleared close-on-exec on these two for our exec; the runtime must not
    // inherit them. The Runtime API connection is the runtime's, so it keeps that one.
    if (sync >= 0 && ::fcntl(sync, F_SETFD, FD_CLOEXEC) != 0) fail(sync, "init", "sync socket", errno);
    if (::fcntl(exit_status, F_SETFD, FD_CLOEXEC) != 0) fail(sync, "init", "exit status pipe", errno);

    char** runtime_argv = argv + kSandboxInitFixedArgs;
    pid_t runtime = -1;
    if (adopting) {
        // A template's clone forked the runtime before exec'ing us: it is our child already.
        if (argc != kSandboxInitFixedArgs + 2 || !parse_fd(runtime_argv[1], &runtime) || runtime <= 1)
            fail(sync, "init", "adopt: pid", EINVAL);
    } else if (int err = ::posix_spawn(&runtime, runtime_argv[0], nullptr, nullptr, runtime_argv, environ);
               err != 0) {
        // posix_spawn (vfork semantics): no copy of this address space, and a failed execve
        // comes back as its result.
        fail(sync, "execve", runtime_argv[0], err);
    }
    // The runtime's exec closed its copy of the sync socket (an adopted runtime closes its
    // own); with ours closed too, the daemon reads end-of-file: the runtime runs.
    if (sync >= 0) ::close(sync);
    // Without our copy, the daemon sees the connection end as soon as the runtime lets go.
    if (runtime_api >= 0) ::close(runtime_api);
    // Likewise the telemetry pipe: the daemon's read end then sees end-of-file with the runtime.
    ::close(funcd::kTelemetryLogFd);

    // Reap everything: orphans re-parent to us, and zombies count against pids.max.
    for (;;) {
        int status = 0;
        const pid_t done = ::waitpid(-1, &status, 0);
        if (done == runtime) {
            [[maybe_unused]] auto n = ::write(exit_status, &status, sizeof status);
            ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        if (done < 0 && errno != EINTR) ::_exit(funcd::kSandboxStartFailed);
    }
}
