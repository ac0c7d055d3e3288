#include "funcd/sandbox/namespace_launcher.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "funcd/sandbox/uid_pool.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Reads `fd` until EOF or until `limit` passes.
std::string read_all(int fd, std::chrono::milliseconds limit) {
    std::string out;
    const auto deadline = Clock::now() + limit;
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

// Accepts one connection on a non-blocking listener within `limit`.
funcd::UniqueFd accept_within(int listener, std::chrono::milliseconds limit) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return {};
    return funcd::UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

// "key=value" lines into a map (later lines win).
std::map<std::string, std::string> facts(const std::string& text) {
    std::map<std::string, std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        if (auto eq = line.find('='); eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
        pos = end + 1;
    }
    return out;
}

void reap(funcd::LaunchedWorker& w) {
    if (w.resources) w.resources->kill_all();
    siginfo_t info{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w.pidfd.get()), &info, WEXITED);
    w.resources.reset();
}

class NamespaceLauncherTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (per-worker uids, cgroups)";
        std::string why;
        if (!funcd::NamespaceLauncher::supported(&why)) GTEST_SKIP() << "namespaces unavailable: " << why;
        dir_ = fs::temp_directory_path() / ("funcd-nsl-test-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "code");
        fs::create_directories(dir_ / "runtime");
        fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        funcd::SandboxOptions options;
        options.root_mount_point = dir_ / "root";
        launcher_ = std::make_unique<funcd::NamespaceLauncher>(
            options, funcd::CgroupManager::detect(cgroup_name()),
            funcd::SeccompPolicy::build());
    }

    void TearDown() override {
        launcher_.reset();
        if (!dir_.empty()) fs::remove_all(dir_);
        // The manager leaves its parent cgroup for the next daemon run; a test removes it.
        std::error_code ec;
        for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                                 "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"})
            fs::remove(fs::path(root) / cgroup_name(), ec);
    }

    static std::string cgroup_name() { return "funcd-nsl-test-" + std::to_string(::getpid()); }

    void write_script(const std::string& name, const std::string& text) {
        const fs::path p = dir_ / "code" / name;
        std::ofstream(p) << text;
        fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    }

    funcd::WorkerSpec spec_for(std::vector<std::string> argv) const {
        funcd::WorkerSpec spec;
        spec.function_name = "probe";
        spec.version = 1;
        spec.memory_mb = 128;
        spec.code_dir = dir_ / "code";
        spec.runtime_dir = dir_ / "runtime";
        spec.argv = std::move(argv);
        spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"};
        spec.ephemeral_storage_mb = 16;
        return spec;
    }

    fs::path dir_;
    std::unique_ptr<funcd::NamespaceLauncher> launcher_;
};

TEST_F(NamespaceLauncherTest, ContainsTheWorker) {
    if (!fs::exists("/bin/bash")) GTEST_SKIP() << "the probe script needs bash (/dev/tcp)";
    write_script("probe.sh", R"SH(#!/bin/bash
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
echo "pid=$$"
echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t ' | tr ':' '='
echo "root=$(ls / | tr '\n' ' ')"
echo "cwd=$(pwd)"
echo "api=$AWS_LAMBDA_RUNTIME_API"
if (echo x > /var/task/written) 2>/dev/null; then echo task_write=yes; else echo task_write=no; fi
if (echo x > /var/runtime/written) 2>/dev/null; then echo runtime_write=yes; else echo runtime_write=no; fi
if (echo x > /usr/written) 2>/dev/null; then echo usr_write=yes; else echo usr_write=no; fi
if (echo x > /tmp/written) 2>/dev/null; then echo tmp_write=yes; else echo tmp_write=no; fi
if (echo x > /written) 2>/dev/null; then echo root_write=yes; else echo root_write=no; fi
if [ -e /etc/shadow ]; then echo shadow=yes; else echo shadow=no; fi
echo "passwd=$(grep -c '^sbx_user1051:x:993:990:' /etc/passwd)"
echo "devnull=$(echo hi > /dev/null && echo ok)"
echo "old_root=$(ls /.old 2>&1 >/dev/null | wc -l)"
if exec 3<>/dev/tcp/127.0.0.1/9001; then echo connect=ok; echo ping >&3; else echo connect=failed; fi
)SH");

    funcd::LaunchedWorker w = launcher_->launch(spec_for({"/var/task/probe.sh"}));
    ASSERT_GT(w.pid, 0);
    ASSERT_TRUE(w.pidfd);
    ASSERT_TRUE(w.output);
    ASSERT_TRUE(w.runtime_api_listener);

    // The parent's descriptor is the socket the worker reaches at 127.0.0.1:9001 inside.
    funcd::UniqueFd conn = accept_within(w.runtime_api_listener.get(), 5000ms);
    std::string ping = conn ? read_all(conn.get(), 2000ms) : std::string();
    const std::string out = read_all(w.output.get(), 5000ms);
    reap(w);

    auto f = facts(out);
    SCOPED_TRACE(out);
    EXPECT_EQ(ping, "ping\n");
    EXPECT_EQ(f["connect"], "ok");
    EXPECT_EQ(f["uid"], "993");
    EXPECT_EQ(f["gid"], "990");
    EXPECT_EQ(f["groups"], "990");  // the daemon's supplementary groups were dropped
    EXPECT_EQ(f["hostname"], "localhost");
    EXPECT_EQ(f["pid"], "2");  // PID 1 is the sandbox's init, the runtime its first child
    EXPECT_LE(std::stoi(f["procs"].empty() ? "99" : f["procs"]), 5);
    EXPECT_EQ(f["CapEff"], "0000000000000000");
    EXPECT_EQ(f["CapPrm"], "0000000000000000");
    EXPECT_EQ(f["CapBnd"], "0000000000000000");
    EXPECT_EQ(f["CapAmb"], "0000000000000000");
    EXPECT_EQ(f["NoNewPrivs"], "1");
    EXPECT_EQ(f["Seccomp"], "2");
    EXPECT_EQ(f["cwd"], "/var/task");
    EXPECT_EQ(f["api"], "127.0.0.1:9001");
    EXPECT_EQ(f["task_write"], "no");
    EXPECT_EQ(f["runtime_write"], "no");
    EXPECT_EQ(f["usr_write"], "no");
    EXPECT_EQ(f["root_write"], "no");
    EXPECT_EQ(f["tmp_write"], "yes");
    EXPECT_EQ(f["shadow"], "no");
    EXPECT_EQ(f["passwd"], "1");
    EXPECT_EQ(f["devnull"], "ok");
    EXPECT_EQ(f["old_root"], "1");  // "No such file or directory"

    // Only the sandbox's own entries at the root; nothing of the host's (/home, /root, /work...).
    const std::vector<std::string> allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32",
                                              "opt", "proc", "sbin", "tmp", "usr", "var"};
    std::string root = f["root"];
    std::size_t pos = 0;
    while (pos < root.size()) {
        auto end = root.find(' ', pos);
        if (end == std::string::npos) end = root.size();
        std::string entry = root.substr(pos, end - pos);
        if (!entry.empty()) {
            EXPECT_NE(std::find(allowed.begin(), allowed.end(), entry), allowed.end()) << "unexpected /" << entry;
        }
        pos = end + 1;
    }
    EXPECT_NE(root.find("var"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir_ / "code" / "written"));
}

TEST_F(NamespaceLauncherTest, HostNetworkUsesAnEphemeralPortOnTheHostLoopback) {
    write_script("probe.sh", "#!/bin/sh\necho \"api=$AWS_LAMBDA_RUNTIME_API\"\n");
    auto spec = spec_for({"/var/task/probe.sh"});
    spec.host_network = true;
    funcd::LaunchedWorker w = launcher_->launch(spec);
    ASSERT_TRUE(w.runtime_api_listener);
    const std::string out = read_all(w.output.get(), 5000ms);
    reap(w);
    auto api = facts(out)["api"];
    EXPECT_EQ(api.rfind("127.0.0.1:", 0), 0u) << out;
    EXPECT_NE(api, "127.0.0.1:9001") << out;
}

TEST_F(NamespaceLauncherTest, TheRuntimeHasItsTelemetryDescriptorAtTheFixedNumber) {
    write_script("probe.sh",
                 "#!/bin/sh\necho \"fd=$_LAMBDA_TELEMETRY_LOG_FD\"\nprintf 'framed records go here' >&4\n");
    funcd::LaunchedWorker w = launcher_->launch(spec_for({"/var/task/probe.sh"}));
    ASSERT_TRUE(w.telemetry);
    const std::string out = read_all(w.output.get(), 5000ms);
    // End of file once the runtime is gone: funcd-init keeps no copy.
    const std::string telemetry = read_all(w.telemetry.get(), 5000ms);
    reap(w);
    EXPECT_EQ(facts(out)["fd"], std::to_string(funcd::kTelemetryLogFd)) << out;
    EXPECT_EQ(telemetry, "framed records go here");
}

TEST_F(NamespaceLauncherTest, RunsTheSystemPython) {
    if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
    funcd::LaunchedWorker w = launcher_->launch(spec_for(
        {"/usr/bin/python3", "-I", "-c", "import json, socket, ssl, os; print('py=' + json.dumps(os.getuid()))"}));
    const std::string out = read_all(w.output.get(), 5000ms);
    reap(w);
    EXPECT_EQ(facts(out)["py"], "993") << out;
}

TEST_F(NamespaceLauncherTest, FailingStepIsNamed) {
    auto spec = spec_for({"/var/task/bootstrap"});
    spec.code_dir = dir_ / "no-such-code";
    try {
        funcd::LaunchedWorker w = launcher_->launch(spec);
        reap(w);
        FAIL() << "launch succeeded without a code directory";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("bind sources " + spec.code_dir.string()), std::string::npos)
            << e.what();
        EXPECT_EQ(e.code().value(), ENOENT) << e.what();
    }
}

TEST_F(NamespaceLauncherTest, MissingEntryPointIsNamed) {
    try {
        funcd::LaunchedWorker w = launcher_->launch(spec_for({"/var/task/bootstrap"}));
        reap(w);
        FAIL() << "launch succeeded without an entry point";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("execve /var/task/bootstrap"), std::string::npos) << e.what();
        EXPECT_EQ(e.code().value(), ENOENT);
    }
}

TEST_F(NamespaceLauncherTest, ReturnsTheUidWhenTheWorkerGoes) {
    write_script("probe.sh", "#!/bin/sh\nexit 0\n");
    funcd::LaunchedWorker a = launcher_->launch(spec_for({"/var/task/probe.sh"}));
    funcd::LaunchedWorker b = launcher_->launch(spec_for({"/var/task/probe.sh"}));
    reap(a);
    reap(b);
    funcd::LaunchedWorker c = launcher_->launch(spec_for({"/var/task/probe.sh"}));
    reap(c);
    SUCCEED();
}

// Cold start to the runtime's first request: launch() to the first bytes of
// GET /next of the native noop runtime, which lives next to this test binary's build tree.
namespace {

// The first request a runtime sends on `conn`, within 5 s.
std::string first_request_on(int conn) {
    pollfd p{conn, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return {};
    char buf[256];
    ssize_t n = ::read(conn, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool install_noop(const fs::path& code_dir) {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    fs::path noop = exe.parent_path().parent_path() / "examples" / "noop-provided" / "noop-bootstrap";
    if (ec || !fs::exists(noop)) return false;
    fs::copy_file(noop, code_dir / "bootstrap", fs::copy_options::overwrite_existing);
    fs::permissions(code_dir / "bootstrap", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                                fs::perms::others_read | fs::perms::others_exec);
    return true;
}

}  // namespace

TEST_F(NamespaceLauncherTest, RuntimeStartsWithItsOwnConnectionAndTcpStillWorks) {
    if (!install_noop(dir_ / "code")) GTEST_SKIP() << "noop-bootstrap not built";
    {
        funcd::LaunchedWorker w = launcher_->launch(spec_for({"/var/task/bootstrap"}));
        ASSERT_TRUE(w.runtime_api_connection);
        EXPECT_NE(first_request_on(w.runtime_api_connection.get()).find("GET /2018-06-01/runtime/invocation/next"),
                  std::string::npos);
        reap(w);
    }
    {
        // A runtime that ignores the connection (NOOP_TCP=1 makes the noop one of those)
        // reaches the same API over TCP, as every Lambda runtime client does.
        auto spec = spec_for({"/var/task/bootstrap"});
        spec.env.push_back("NOOP_TCP=1");
        funcd::LaunchedWorker w = launcher_->launch(spec);
        funcd::UniqueFd conn = accept_within(w.runtime_api_listener.get(), 5000ms);
        ASSERT_TRUE(conn);
        EXPECT_NE(first_request_on(conn.get()).find("GET /2018-06-01/runtime/invocation/next"), std::string::npos);
        reap(w);
    }
}

TEST_F(NamespaceLauncherTest, ColdStartToFirstNext) {
    if (!install_noop(dir_ / "code")) GTEST_SKIP() << "noop-bootstrap not built";

    // With the cgroup, then without: the difference is what the cgroup costs a cold start
    // (creating it; and where the child cannot be created inside it, moving it there,
    // which waits for an RCU grace period). bench/launch_latency measures it properly.
    funcd::SandboxOptions options;
    options.root_mount_point = dir_ / "root";
    funcd::NamespaceLauncher no_cgroup(options, nullptr, funcd::SeccompPolicy::build());
    for (funcd::NamespaceLauncher* launcher : {launcher_.get(), &no_cgroup}) {
        constexpr int kRuns = 20;
        std::vector<double> launch_ms, next_ms;
        for (int i = 0; i < kRuns; ++i) {
            const auto t0 = Clock::now();
            funcd::LaunchedWorker w = launcher->launch(spec_for({"/var/task/bootstrap"}));
            const auto t1 = Clock::now();
            ASSERT_TRUE(w.runtime_api_connection);
            const std::string first = first_request_on(w.runtime_api_connection.get());
            const auto t2 = Clock::now();
            EXPECT_NE(first.find("/runtime/invocation/next"), std::string::npos) << first;
            reap(w);
            launch_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            next_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        }
        std::sort(launch_ms.begin(), launch_ms.end());
        std::sort(next_ms.begin(), next_ms.end());
        std::printf("sandbox cold start (%s), %d runs: launch() p50 %.2f ms, max %.2f; to first /next p50 %.2f ms, max %.2f\n",
                    launcher->unenforced().empty() ? "with cgroup" : "without cgroup", kRuns, launch_ms[kRuns / 2],
                    launch_ms.back(), next_ms[kRuns / 2], next_ms.back());
    }
}

TEST(NamespaceLauncherUidPool, HandsOutDistinctUidsAndReusesReturnedOnes) {
    funcd::UidPool pool(1000, 2);
    auto a = pool.acquire();
    auto b = pool.acquire();
    ASSERT_TRUE(a && b);
    EXPECT_NE(*a, *b);
    EXPECT_FALSE(pool.acquire());
    pool.release(*a);
    pool.release(*a);  // twice: ignored
    EXPECT_EQ(pool.in_use(), 1u);
    auto c = pool.acquire();
    ASSERT_TRUE(c);
    EXPECT_EQ(*c, *a);
}

}  // namespace
