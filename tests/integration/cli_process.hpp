#pragma once
// Runs the real funcd binary's client commands as a subprocess, the way a user's shell
// does: its own working directory and config home (so nothing of the machine's is found),
// the endpoint and token in the environment, stdin, stdout and stderr in pipes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

extern char** environ;

namespace funcd::testing {

struct CliResult {
    int status = -1;  // the exit code; 128 + signal when killed
    std::string out;
    std::string err;
    nlohmann::json json() const { return nlohmann::json::parse(out); }
};

class CliProcess {
public:
    // `env` is set on top of the test's environment, from which every FUNCD_* variable,
    // XDG_CONFIG_HOME and HOME are removed first.
    CliProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
               const std::filesystem::path& cwd, const std::string& input = {}) {
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe failed");
        std::vector<std::string> envs;
        for (char** e = environ; *e; ++e) {
            const std::string kv = *e;
            if (kv.starts_with("FUNCD_") || kv.starts_with("XDG_CONFIG_HOME=") || kv.starts_with("HOME=") ||
                kv.starts_with("NO_COLOR="))
                continue;
            envs.push_back(kv);
        }
        for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
        std::vector<std::string> argv_s = {FUNCD_BINARY};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            if (::chdir(cwd.c_str()) != 0) ::_exit(126);
            std::vector<char*> argv, envp;
            for (auto& a : argv_s) argv.push_back(a.data());
            argv.push_back(nullptr);
            for (auto& e : envs) envp.push_back(e.data());
            envp.push_back(nullptr);
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        out_fd_ = out[0];
        err_fd_ = err[0];
        for (std::size_t off = 0; off < input.size();) {
            const ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        ::close(in[1]);
    }
    ~CliProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_fd_ >= 0) ::close(out_fd_);
        if (err_fd_ >= 0) ::close(err_fd_);
    }
    CliProcess(const CliProcess&) = delete;
    CliProcess& operator=(const CliProcess&) = delete;

    // Reads output until `done(out, err)` holds or `timeout` passes; true if it held.
    template <class Pred>
    bool read_until(Pred done, std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        while (!done(result_.out, result_.err)) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0 || (out_fd_ < 0 && err_fd_ < 0)) return done(result_.out, result_.err);
            pump(static_cast<int>(left.count()));
        }
        return true;
    }

    // Waits for exit (killing it after `timeout`) and returns what it wrote.
    CliResult wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(60'000)) {
        read_until([this](const std::string&, const std::string&) { return out_fd_ < 0 && err_fd_ < 0; }, timeout);
        if (out_fd_ >= 0 || err_fd_ >= 0) ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        result_.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return result_;
    }

    void interrupt() { ::kill(pid_, SIGINT); }
    const CliResult& so_far() const { return result_; }

private:
    void pump(int timeout_ms) {
        pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
        if (::poll(fds, 2, timeout_ms) <= 0) return;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            int& fd = i == 0 ? out_fd_ : err_fd_;
            if (n <= 0) {
                ::close(fd);
                fd = -1;
            } else {
                (i == 0 ? result_.out : result_.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }

    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    CliResult result_;
};

}  // namespace funcd::testing
