#include "funcd/sandbox/process_launcher.hpp"
#include "funcd/sandbox/process_memory.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <system_error>

#include "funcd/common/syscall_error.hpp"
#include "funcd/sandbox/fd_placement.hpp"
#include "funcd/sandbox/network.hpp"

namespace funcd {
namespace {

std::chrono::microseconds since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t);
}

class ProcessGroupResources final : public WorkerResources {
public:
    explicit ProcessGroupResources(pid_t pid) : pid_(pid), memory_(pid) {}

    void kill_all() override {
        // The worker leads its own process group; killing the group reaches what it
        // forked, stopped processes included (SIGKILL needs no delivery).
        if (::kill(-pid_, SIGKILL) != 0 && errno != ESRCH)
            spdlog::warn("launcher: kill(-{}) failed: {} (errno {})", pid_, std::strerror(errno), errno);
        // Before the child's setpgid the group does not exist yet.
        ::kill(pid_, SIGKILL);
    }

    std::optional<std::uint64_t> peak_memory_bytes() override { return memory_.read(); }

private:
    pid_t pid_;
    ProcessPeakMemory memory_;
};

}  // namespace

UniqueFd listen_loopback_ephemeral() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) throw_syscall_error("launcher", errno, "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw_syscall_error("launcher", errno, "bind 127.0.0.1:0");
    if (::listen(fd.get(), kRuntimeApiBacklog) != 0) throw_syscall_error("launcher", errno, "listen");
    return fd;
}

unsigned short local_port(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw_syscall_error("launcher", errno, "getsockname");
    return ntohs(addr.sin_port);
}

SandboxPaths ProcessLauncher::paths_for(const std::filesystem::path& code_dir,
                                        const std::filesystem::path& runtime_dir,
                                        const std::filesystem::path& opt_dir) const {
    // Unsandboxed there is no /opt of the worker's own: layers are used where they are.
    return {code_dir.string(), runtime_dir.string(), opt_dir.string()};
}

LaunchedWorker ProcessLauncher::launch(const WorkerSpec& spec) {
    // Nothing here is shared between calls, so concurrent launches need no lock. Children
    // forked meanwhile by other threads get copies of these descriptors (all close-on-exec)
    // only until their close_range below, a few system calls after fork.
    const auto started = std::chrono::steady_clock::now();
    LaunchedWorker out;
    out.runtime_api_listener = listen_loopback_ephemeral();
    const std::string api_env =
        "AWS_LAMBDA_RUNTIME_API=127.0.0.1:" + std::to_string(local_port(out.runtime_api_listener.get()));
    int api_pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, api_pair) != 0)
        throw_syscall_error("launcher", errno, "socketpair");
    out.runtime_api_connection.reset(api_pair[0]);
    UniqueFd api_theirs(api_pair[1]);
    // The runtime finds its end at descriptor 3, the first after stdio.
    constexpr int kApiFd = 3;
    api_theirs = above_stdio(std::move(api_theirs), "the runtime's Runtime API connection");
    const std::string api_fd_env = std::string(kRuntimeApiFdVariable) + "=" + std::to_string(kApiFd);

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_syscall_error("launcher", errno, "pipe2");
    UniqueFd out_read(pipe_fds[0]), out_write(pipe_fds[1]);
    out_write = above_stdio(std::move(out_write), "the output pipe");
    int telemetry_fds[2];
    if (::pipe2(telemetry_fds, O_CLOEXEC) != 0) throw_syscall_error("launcher", errno, "pipe2 (telemetry)");
    UniqueFd telemetry_read(telemetry_fds[0]), telemetry_write(telemetry_fds[1]);
    // Above both fixed numbers, so neither dup2 below replaces the other's source.
    if (telemetry_write.get() <= kTelemetryLogFd) {
        UniqueFd moved(::fcntl(telemetry_write.get(), F_DUPFD_CLOEXEC, kTelemetryLogFd + 1));
        if (!moved) throw_syscall_error("launcher", errno, "fcntl(F_DUPFD_CLOEXEC) for the telemetry pipe");
        telemetry_write = std::move(moved);
    }
    if (api_theirs.get() == kTelemetryLogFd) {
        UniqueFd moved(::fcntl(api_theirs.get(), F_DUPFD_CLOEXEC, kTelemetryLogFd + 1));
        if (!moved) throw_syscall_error("launcher", errno, "fcntl(F_DUPFD_CLOEXEC) for the Runtime API connection");
        api_theirs = std::move(moved);
    }
    const std::string telemetry_env = std::string(kTelemetryFdVariable) + "=" + std::to_string(kTelemetryLogFd);
    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!dev_null) throw_syscall_error("launcher", errno, "open /dev/null");
    dev_null = above_stdio(std::move(dev_null), "/dev/null");

    // Everything the child needs is built before fork: after it, only
    // async-signal-safe calls are allowed (the daemon has other threads).
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(const_cast<char*>(api_env.c_str()));
    envp.push_back(const_cast<char*>(api_fd_env.c_str()));
    envp.push_back(const_cast<char*>(telemetry_env.c_str()));
    envp.push_back(nullptr);
    const std::string cwd = spec.code_dir.string();
    const pid_t parent = ::getpid();
    out.timings.prepare = since(started);

    const auto forking = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid < 0) throw_syscall_error("launcher", errno, "fork");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);  // the daemon died before the line above
        ::setpgid(0, 0);
        ::dup2(dev_null.get(), 0);
        ::dup2(out_write.get(), 1);
        ::dup2(out_write.get(), 2);
        // dup2 onto itself would leave close-on-exec set.
        if (api_theirs.get() == kApiFd) ::fcntl(kApiFd, F_SETFD, 0);
        else ::dup2(api_theirs.get(), kApiFd);
        ::dup2(telemetry_write.get(), kTelemetryLogFd);
        ::close_range(kTelemetryLogFd + 1, ~0U, 0);
        // The daemon ignores SIGPIPE and blocks nothing, but a runtime must start with defaults.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
        if (::chdir(cwd.c_str()) != 0) {
            static const char msg[] = "funcd: cannot enter the code directory\n";
            [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
            ::_exit(126);
        }
        ::execve(argv[0], argv.data(), envp.data());
        static const char msg[] = "funcd: cannot execute the runtime entry point\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    out.timings.spawn = since(forking);
    // Also set from the parent, so the group exists before anyone signals it.
    ::setpgid(pid, pid);

    out.pid = pid;
    out.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!out.pidfd) {
        int e = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        errno = e;
        throw_syscall_error("launcher", errno, "pidfd_open");
    }
    out.output = std::move(out_read);
    out.telemetry = std::move(telemetry_read);
    out.resources = std::make_unique<ProcessGroupResources>(pid);
    out.timings.total = since(started);
    return out;
}

}  // namespace funcd
