#include "funcd/daemon/python_bytecode.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "funcd/common/unique_fd.hpp"

namespace funcd {
namespace {

using Clock = std::chrono::steady_clock;

// compileall -q prints one complaint per file it could not compile; this is enough to
// say what went wrong without letting a runaway child fill the daemon's log.
constexpr std::size_t kMaxOutputBytes = 4096;
constexpr std::size_t kReadChunk = 1024;
// Workers run as other uids than the daemon: whatever umask the daemon was started with,
// they must be able to read the __pycache__ directory it creates, or they silently fall
// back to compiling from source. (A .pyc gets its source's permission bits.)
constexpr mode_t kCacheUmask = 022;
constexpr const char* kFromSource = "python3 workers compile what is missing from source on every start";

std::string describe_status(int status) {
    if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
    return fmt::format("wait status {}", status);
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
    return text;
}

long elapsed_ms(Clock::time_point since) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

}  // namespace

bool compile_python_runtime(const std::string& python, const std::filesystem::path& runtime_dir,
                            std::chrono::milliseconds timeout) {
    const auto started = Clock::now();
    const std::string dir = (runtime_dir / "python").string();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        spdlog::warn("python bytecode: {} is not a directory; nothing to compile", dir);
        return false;
    }
    if (::access(python.c_str(), X_OK) != 0) {
        spdlog::warn("python bytecode: cannot run {}: {}; {}", python, std::strerror(errno), kFromSource);
        return false;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        spdlog::warn("python bytecode: pipe2 failed: {}; {}", std::strerror(errno), kFromSource);
        return false;
    }
    UniqueFd out_read(fds[0]);
    UniqueFd out_write(fds[1]);
    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));

    // Everything the child needs is built before fork: after it, only async-signal-safe
    // calls are allowed (the daemon already has other threads).
    // --invalidation-mode timestamp: with SOURCE_DATE_EPOCH set, compileall would write
    // hash-checked files instead, which make every import read and hash the source.
    std::vector<std::string> args = {python, "-I", "-m", "compileall", "-q", "--invalidation-mode", "timestamp", dir};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // None of the daemon's environment, which may hold the API token.
    std::string lang = "LANG=C.UTF-8";
    char* envp[] = {lang.data(), nullptr};

    const pid_t pid = ::fork();
    if (pid < 0) {
        spdlog::warn("python bytecode: fork failed: {}; {}", std::strerror(errno), kFromSource);
        return false;
    }
    if (pid == 0) {
        ::umask(kCacheUmask);
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
        static const char msg[] = "cannot execute the interpreter\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    out_write.reset();  // so that the read below ends when the child exits

    std::string output;
    bool stuck = false;
    const auto deadline = started + timeout;
    char buf[kReadChunk];
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{out_read.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            stuck = true;
            break;
        }
        const ssize_t n = ::read(out_read.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            stuck = true;
            break;
        }
        if (n == 0) break;
        if (output.size() < kMaxOutputBytes)
            output.append(buf, std::min(static_cast<std::size_t>(n), kMaxOutputBytes - output.size()));
    }
    if (stuck) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    if (stuck) {
        spdlog::warn("python bytecode: compiling {} did not finish within {} ms; {}", dir, timeout.count(), kFromSource);
        return false;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        spdlog::warn("python bytecode: compiling {} with {} failed ({}): {}; {}", dir, python, describe_status(status),
                     trimmed(output), kFromSource);
        return false;
    }
    spdlog::info("python bytecode: {} compiled with {} ({} ms)", dir, python, elapsed_ms(started));
    return true;
}

}  // namespace funcd
