#include "funcd/daemon/captured_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "funcd/common/unique_fd.hpp"

namespace funcd {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kReadChunk = 1024;

}  // namespace

bool CapturedRun::succeeded() const { return started && !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string CapturedRun::describe() const {
    if (!started) return failure;
    if (timed_out) return "did not finish in time";
    if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
    return fmt::format("wait status {}", status);
}

CapturedRun run_captured(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                         std::size_t max_output, mode_t umask) {
    CapturedRun run;
    const auto started = Clock::now();
    if (args.empty()) {
        run.failure = "nothing to run";
        return run;
    }
    if (::access(args[0].c_str(), X_OK) != 0) {
        run.failure = fmt::format("cannot run {}: {}", args[0], std::strerror(errno));
        return run;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        run.failure = fmt::format("pipe2 failed: {}", std::strerror(errno));
        return run;
    }
    UniqueFd out_read(fds[0]);
    UniqueFd out_write(fds[1]);
    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));

    // Everything the child needs is built before fork: after it, only async-signal-safe
    // calls are allowed (the daemon may already have other threads).
    std::vector<std::string> storage = args;
    std::vector<char*> argv;
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string lang = "LANG=C.UTF-8";
    char* envp[] = {lang.data(), nullptr};

    const pid_t pid = ::fork();
    if (pid < 0) {
        run.failure = fmt::format("fork failed: {}", std::strerror(errno));
        return run;
    }
    if (pid == 0) {
        ::umask(umask);
        if (dev_null) ::dup2(dev_null.get(), 0);
        ::dup2(out_write.get(), 1);
        ::dup2(out_write.get(), 2);
        ::close_range(3, ~0U, 0);
        // The daemon ignores SIGPIPE, and an ignored signal stays ignored across execve.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::signal(SIGPIPE, SIG_DFL);
        ::execve(argv[0], argv.data(), envp);
        static const char msg[] = "cannot execute the program\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    run.started = true;
    out_write.reset();  // so that the read below ends when the child exits

    const auto deadline = started + timeout;
    char buf[kReadChunk];
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{out_read.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            run.timed_out = true;
            break;
        }
        const ssize_t n = ::read(out_read.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            run.timed_out = true;
            break;
        }
        if (n == 0) break;
        if (run.output.size() < max_output)
            run.output.append(buf, std::min(static_cast<std::size_t>(n), max_output - run.output.size()));
    }
    if (run.timed_out) ::kill(pid, SIGKILL);
    while (::waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
    }
    return run;
}

}  // namespace funcd
