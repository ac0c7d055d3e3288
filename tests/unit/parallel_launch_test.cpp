// Launchers called from several threads at once: every worker must come up complete and
// on its own (its own Runtime API socket, uid and cgroup), and hold nothing of the
// workers launched beside it, so that each one's end-of-file signals still mean that
// worker is gone.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "funcd/sandbox/namespace_launcher.hpp"
#include "funcd/sandbox/process_launcher.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kThreads = 8;
constexpr int kWorkersPerThread = 4;
constexpr int kWorkers = kThreads * kWorkersPerThread;
// Generous bounds for a loaded host; they only stop a broken test from hanging.
constexpr int kWaitMs = 20000;

// Tells who it is on its Runtime API connection, then stays until the test hangs up.
constexpr const char* kProbe = R"SH(#!/bin/bash
exec 3<>"/dev/tcp/${AWS_LAMBDA_RUNTIME_API%:*}/${AWS_LAMBDA_RUNTIME_API#*:}" || exit 3
echo "worker=$WORKER_ID" >&3
read -r _ <&3
)SH";

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// One line from `fd` (blocking socket or pipe), within kWaitMs.
std::string read_line(int fd) {
    std::string out;
    char c;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, kWaitMs) != 1) return out;
        if (::read(fd, &c, 1) != 1 || c == '\n') return out;
        out.push_back(c);
    }
}

funcd::UniqueFd accept_within(int listener) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, kWaitMs) != 1) return {};
    return funcd::UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

// True once `fd` reads end-of-file: every write end, in any process, is closed.
bool reaches_eof(int fd) {
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, kWaitMs) != 1) return false;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) return true;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    }
}

bool exited(int pidfd, int timeout_ms) {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

ino_t inode_of(int fd) {
    struct stat st{};
    return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// `pid` and its descendants.
std::vector<pid_t> process_tree(pid_t pid) {
    std::vector<pid_t> out{pid};
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::istringstream children(read_text("/proc/" + std::to_string(out[i]) + "/task/" + std::to_string(out[i]) +
                                              "/children"));
        pid_t child;
        while (children >> child) out.push_back(child);
    }
    return out;
}

// The inodes of the pipes that `pid` holds open.
std::set<ino_t> pipes_held(pid_t pid) {
    std::set<ino_t> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        std::string target = fs::read_symlink(entry.path(), ec).string();
        if (ec || target.rfind("pipe:[", 0) != 0) continue;
        out.insert(static_cast<ino_t>(std::stoull(target.substr(6, target.size() - 7))));
    }
    return out;
}

// The host uid `pid` runs as.
std::string host_uid(pid_t pid) {
    std::istringstream status(read_text("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Uid:", 0) == 0) {
            std::istringstream fields(line.substr(4));
            std::string uid;
            fields >> uid;
            return uid;
        }
    return {};
}

// The line of /proc/<pid>/cgroup for the hierarchy holding `controller` (v1), or the
// unified one.
std::string cgroup_of(const std::string& proc_cgroup_text, const std::string& controller) {
    std::istringstream in(proc_cgroup_text);
    std::string line, unified;
    while (std::getline(in, line)) {
        auto first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        std::string controllers = "," + line.substr(first + 1, second - first - 1) + ",";
        if (controllers.find("," + controller + ",") != std::string::npos) return line.substr(second + 1);
        if (line.rfind("0::", 0) == 0) unified = line.substr(3);
    }
    return unified;
}

struct Launched {
    int id;
    funcd::LaunchedWorker worker;
};

// Launches kWorkers workers from kThreads threads started together. The threads stay
// alive until `release` counts down: a worker is killed when its launching thread exits.
class ParallelLaunch {
public:
    ParallelLaunch(funcd::SandboxLauncher& launcher, std::function<funcd::WorkerSpec(int)> spec_for) {
        std::latch start(kThreads);
        for (int t = 0; t < kThreads; ++t) {
            threads_.emplace_back([&, t] {
                const std::string home_before = read_text("/proc/thread-self/cgroup");
                start.arrive_and_wait();
                for (int i = 0; i < kWorkersPerThread; ++i) {
                    const int id = t * kWorkersPerThread + i;
                    try {
                        funcd::LaunchedWorker w = launcher.launch(spec_for(id));
                        std::lock_guard lock(mutex_);
                        launched_.push_back({id, std::move(w)});
                    } catch (const std::exception& e) {
                        std::lock_guard lock(mutex_);
                        errors_.push_back(e.what());
                    }
                }
                // The launcher moves no thread for good (cgroup v1 steps in and out).
                if (read_text("/proc/thread-self/cgroup") != home_before) ++threads_moved_;
                launched_all_.count_down();
                release_.wait();
            });
        }
        launched_all_.wait();
        std::sort(launched_.begin(), launched_.end(), [](auto& a, auto& b) { return a.id < b.id; });
    }

    ~ParallelLaunch() {
        for (auto& l : launched_) {
            if (l.worker.resources) l.worker.resources->kill_all();
            siginfo_t info{};
            ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(l.worker.pidfd.get()), &info, WEXITED);
            l.worker.resources.reset();
        }
        release_.count_down();
        for (auto& t : threads_) t.join();
    }

    std::vector<Launched>& launched() { return launched_; }
    const std::vector<std::string>& errors() const { return errors_; }
    int threads_moved() const { return threads_moved_; }

private:
    std::mutex mutex_;
    std::vector<Launched> launched_;
    std::vector<std::string> errors_;
    std::atomic<int> threads_moved_{0};
    std::latch launched_all_{kThreads};
    std::latch release_{1};
    std::vector<std::thread> threads_;
};

// Checks shared by both launchers: every runtime reached its own listener, holds only
// its own pipes, and killing one worker closes its pipes while the others live on.
// `connections` keeps every runtime's connection open (closing it ends the runtime).
void expect_independent_workers(ParallelLaunch& run, std::map<int, funcd::UniqueFd>& connections) {
    ASSERT_TRUE(run.errors().empty()) << run.errors().front();
    auto& launched = run.launched();
    ASSERT_EQ(launched.size(), static_cast<std::size_t>(kWorkers));
    EXPECT_EQ(run.threads_moved(), 0) << "a launcher thread was left in another cgroup";

    std::set<ino_t> listeners;
    for (auto& [id, w] : launched) {
        ASSERT_TRUE(w.runtime_api_listener) << "worker " << id;
        listeners.insert(inode_of(w.runtime_api_listener.get()));
        // The runtime that reaches this listener is this worker's own.
        funcd::UniqueFd conn = accept_within(w.runtime_api_listener.get());
        ASSERT_TRUE(conn) << "worker " << id << " never connected to its Runtime API";
        EXPECT_EQ(read_line(conn.get()), "worker=" + std::to_string(id));
        connections[id] = std::move(conn);
    }
    EXPECT_EQ(listeners.size(), launched.size());

    // No process of one worker holds a pipe of another (the output pipe and the init's
    // exit status pipe of each are its own).
    std::map<ino_t, int> owner;
    for (auto& [id, w] : launched) {
        owner[inode_of(w.output.get())] = id;
        if (w.exit_status) owner[inode_of(w.exit_status.get())] = id;
    }
    for (auto& [id, w] : launched)
        for (pid_t p : process_tree(w.pid))
            for (ino_t pipe : pipes_held(p)) {
                auto it = owner.find(pipe);
                EXPECT_TRUE(it == owner.end() || it->second == id)
                    << "process " << p << " of worker " << id << " holds a pipe of worker " << it->second;
            }

    // Killing worker 0 ends it completely: its pidfd fires and both of its pipes reach
    // end-of-file, which would hang if any other worker kept a write end.
    auto& first = launched.front().worker;
    first.resources->kill_all();
    EXPECT_TRUE(exited(first.pidfd.get(), kWaitMs));
    EXPECT_TRUE(reaches_eof(first.output.get())) << "a copy of worker 0's output pipe is held elsewhere";
    if (first.exit_status) {
        EXPECT_TRUE(reaches_eof(first.exit_status.get())) << "a copy of worker 0's exit status pipe is held elsewhere";
    }
    for (std::size_t i = 1; i < launched.size(); ++i)
        EXPECT_FALSE(exited(launched[i].worker.pidfd.get(), 0)) << "worker " << launched[i].id << " died with worker 0";
}

class ParallelLaunchTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists("/bin/bash")) GTEST_SKIP() << "the probe runtime needs bash (/dev/tcp)";
        dir_ = fs::temp_directory_path() / ("funcd-plt-test-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "code");
        fs::create_directories(dir_ / "runtime");
        fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        const fs::path probe = dir_ / "code" / "probe.sh";
        std::ofstream(probe) << kProbe;
        fs::permissions(probe, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
    }

    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
        std::error_code ec;
        for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                                 "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"})
            fs::remove(fs::path(root) / cgroup_name(), ec);
    }

    static std::string cgroup_name() { return "funcd-plt-test-" + std::to_string(::getpid()); }

    // Skips unless the sandbox can run here; returns the launcher and whether it has cgroups.
    std::unique_ptr<funcd::NamespaceLauncher> sandbox(bool* cgroups) {
        std::string why;
        if (::geteuid() != 0) return nullptr;
        if (!funcd::NamespaceLauncher::supported(&why)) return nullptr;
        funcd::SandboxOptions options = funcd::SandboxOptions::for_daemon(::getpid());
        options.root_mount_point = dir_ / "root";
        auto manager = funcd::CgroupManager::detect(cgroup_name());
        *cgroups = manager != nullptr;
        return std::make_unique<funcd::NamespaceLauncher>(options, std::move(manager), funcd::SeccompPolicy::build());
    }

    funcd::WorkerSpec spec(const funcd::SandboxLauncher& launcher, int id) const {
        funcd::WorkerSpec s;
        s.function_name = "parallel";
        s.version = 1;
        s.memory_mb = 64;
        s.code_dir = dir_ / "code";
        s.runtime_dir = dir_ / "runtime";
        s.argv = {launcher.paths_for(s.code_dir, s.runtime_dir, {}).task_root + "/probe.sh"};
        s.env = {"PATH=/usr/bin:/bin", "WORKER_ID=" + std::to_string(id)};
        s.ephemeral_storage_mb = 8;
        return s;
    }

    fs::path dir_;
};

TEST_F(ParallelLaunchTest, SandboxedWorkersFromEightThreadsAreIndependent) {
    bool cgroups = false;
    auto launcher = sandbox(&cgroups);
    if (!launcher) GTEST_SKIP() << "needs root and user/PID/mount/network namespaces";
    ParallelLaunch run(*launcher, [&](int id) { return spec(*launcher, id); });
    std::map<int, funcd::UniqueFd> connections;
    expect_independent_workers(run, connections);
    if (HasFatalFailure()) return;

    // Each live worker has a host uid and (with cgroups) a cgroup of its own.
    std::set<std::string> uids, memory_cgroups;
    for (auto& [id, w] : run.launched()) {
        if (id == 0) continue;  // killed above
        uids.insert(host_uid(w.pid));
        if (cgroups) {
            const std::string memory = cgroup_of(read_text("/proc/" + std::to_string(w.pid) + "/cgroup"), "memory");
            EXPECT_NE(memory.find(cgroup_name() + "/"), std::string::npos) << "worker " << id << ": " << memory;
            memory_cgroups.insert(memory);
        }
    }
    EXPECT_EQ(uids.size(), static_cast<std::size_t>(kWorkers - 1));
    EXPECT_EQ(uids.count(""), 0u);
    if (cgroups) {
        EXPECT_EQ(memory_cgroups.size(), static_cast<std::size_t>(kWorkers - 1));
    }
}

TEST_F(ParallelLaunchTest, PlainProcessesFromEightThreadsAreIndependent) {
    funcd::ProcessLauncher launcher;
    ParallelLaunch run(launcher, [&](int id) { return spec(launcher, id); });
    std::map<int, funcd::UniqueFd> connections;
    expect_independent_workers(run, connections);
}

// The contract in launcher.hpp: the parent-death signal follows the launching thread.
TEST_F(ParallelLaunchTest, SandboxedWorkerEndsWithTheThreadThatLaunchedIt) {
    bool cgroups = false;
    auto launcher = sandbox(&cgroups);
    if (!launcher) GTEST_SKIP() << "needs root and user/PID/mount/network namespaces";
    funcd::LaunchedWorker w;
    std::thread([&] { w = launcher->launch(spec(*launcher, 0)); }).join();
    ASSERT_TRUE(w.pidfd);
    ASSERT_TRUE(exited(w.pidfd.get(), kWaitMs));
    siginfo_t info{};
    ASSERT_EQ(::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w.pidfd.get()), &info, WEXITED), 0);
    EXPECT_EQ(info.si_code, CLD_KILLED);
    EXPECT_EQ(info.si_status, SIGKILL);
}

}  // namespace
