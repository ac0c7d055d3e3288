#include "funcd/sandbox/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "funcd/common/text.hpp"

namespace funcd {
namespace {

// A parent of its own, so the tests never touch a running daemon's cgroups.
constexpr const char* kTestParent = "funcd-unit-test";
constexpr std::uint64_t kMiB = 1ull << 20;

std::string unique_id(const char* what) {
    static std::atomic<int> counter{0};
    return std::string(what) + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::unique_ptr<CgroupManager> manager_or_null() {
    if (::geteuid() != 0) return nullptr;
    return CgroupManager::detect(kTestParent);
}

#define REQUIRE_CGROUPS(m)                                                  \
    auto m = manager_or_null();                                             \
    if (!m) GTEST_SKIP() << "needs root and a writable cgroup hierarchy"

// A child that blocks until the parent writes to (or closes) `gate`, then runs `body`.
template <typename Body>
pid_t gated_child(int gate[2], int report_fd, Body body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(gate[1]);
        char c;
        if (::read(gate[0], &c, 1) != 1) ::_exit(2);
        ::_exit(body(report_fd));
    }
    ::close(gate[0]);
    return pid;
}

void release(int gate[2]) {
    char c = 'g';
    ASSERT_EQ(::write(gate[1], &c, 1), 1);
    ::close(gate[1]);
}

TEST(CgroupWeights, FollowLambdasCpuPerMemory) {
    EXPECT_EQ(cpu_weight_v2(1769), 100u);
    EXPECT_EQ(cpu_weight_v2(128), 7u);
    EXPECT_EQ(cpu_weight_v2(10240), 578u);
    EXPECT_EQ(cpu_weight_v2(1), 1u);
    EXPECT_EQ(cpu_weight_v2(0), 1u);
    EXPECT_EQ(cpu_weight_v2(-5), 1u);
    EXPECT_EQ(cpu_weight_v2(1'000'000), 10000u);
    EXPECT_EQ(cpu_shares_v1(1769), 1024u);
    EXPECT_EQ(cpu_shares_v1(128), 74u);
    EXPECT_EQ(cpu_shares_v1(1), 2u);
    EXPECT_EQ(cpu_shares_v1(100'000'000), 262144u);
}

TEST(Cgroup, MemoryLimitKillsAndIsReported) {
    REQUIRE_CGROUPS(manager);
    CgroupLimits limits;
    limits.memory_bytes = 64 * kMiB;
    limits.pids_max = 16;
    limits.memory_mb = 64;
    std::string id = unique_id("oom");
    auto cg = manager->create(id, limits);
    ASSERT_FALSE(cg->directories().empty());

    int gate[2];
    ASSERT_EQ(::pipe(gate), 0);
    pid_t pid = gated_child(gate, -1, [](int) {
        // Well past the limit, touched page by page so it is really charged.
        constexpr std::size_t kSize = 100 * kMiB;
        auto* p = static_cast<char*>(::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (p == MAP_FAILED) return 3;
        for (std::size_t i = 0; i < kSize; i += 4096) p[i] = 1;
        return 0;
    });
    ASSERT_GT(pid, 0);
    cg->add(pid);
    std::string proc_cgroup = read_text("/proc/" + std::to_string(pid) + "/cgroup");
    EXPECT_NE(proc_cgroup.find(id), std::string::npos) << proc_cgroup;
    release(gate);

    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
    EXPECT_TRUE(cg->oom_killed());
    auto peak = cg->peak_memory_bytes();
    ASSERT_TRUE(peak.has_value());
    EXPECT_LE(*peak, limits.memory_bytes);
    EXPECT_GE(*peak, limits.memory_bytes * 3 / 4);
}

TEST(Cgroup, NoOomWithinTheLimit) {
    REQUIRE_CGROUPS(manager);
    auto cg = manager->create(unique_id("fits"), CgroupLimits{});
    int gate[2];
    ASSERT_EQ(::pipe(gate), 0);
    pid_t pid = gated_child(gate, -1, [](int) {
        constexpr std::size_t kSize = 8 * kMiB;
        auto* p = static_cast<char*>(::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (p == MAP_FAILED) return 3;
        std::memset(p, 1, kSize);
        return 0;
    });
    cg->add(pid);
    release(gate);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_FALSE(cg->oom_killed());
    auto peak = cg->peak_memory_bytes();
    ASSERT_TRUE(peak.has_value());
    EXPECT_GE(*peak, 8 * kMiB);
}

TEST(Cgroup, PidsLimitStopsForks) {
    REQUIRE_CGROUPS(manager);
    CgroupLimits limits;
    limits.pids_max = 16;
    auto cg = manager->create(unique_id("pids"), limits);

    int gate[2], report[2];
    ASSERT_EQ(::pipe(gate), 0);
    ASSERT_EQ(::pipe(report), 0);
    pid_t pid = gated_child(gate, report[1], [](int out) {
        // Children that wait forever, until kill_all.
        int forked = 0, eagain = 0;
        for (int i = 0; i < 50; ++i) {
            pid_t c = ::fork();
            if (c == 0) {
                ::pause();
                ::_exit(0);
            }
            if (c > 0)
                ++forked;
            else if (errno == EAGAIN)
                ++eagain;
        }
        int counts[2] = {forked, eagain};
        (void)!::write(out, counts, sizeof counts);
        ::pause();
        return 0;
    });
    ::close(report[1]);
    cg->add(pid);
    release(gate);

    int counts[2] = {-1, -1};
    ASSERT_EQ(::read(report[0], counts, sizeof counts), static_cast<ssize_t>(sizeof counts));
    ::close(report[0]);
    // 16 tasks: the child itself and 15 of its children.
    EXPECT_EQ(counts[0], 15);
    EXPECT_EQ(counts[1], 35);

    cg->kill_all();
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    // The grandchildren went too: nothing is left in any controller. They are listed until
    // they have died and been reaped by whoever inherited them, which a loaded machine
    // can take a moment to do.
    for (const auto& dir : cg->directories()) {
        const std::string procs = dir.string() + "/cgroup.procs";
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (read_text(procs) != "" && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_EQ(read_text(procs), "") << dir;
    }
}

TEST(Cgroup, KillAllReachesStoppedProcessesAndDestructorRemovesDirs) {
    REQUIRE_CGROUPS(manager);
    auto cg = manager->create(unique_id("stop"), CgroupLimits{});
    std::vector<std::filesystem::path> dirs = cg->directories();
    ASSERT_FALSE(dirs.empty());
    for (const auto& d : dirs) EXPECT_TRUE(std::filesystem::is_directory(d)) << d;

    pid_t pid = ::fork();
    if (pid == 0) {
        for (;;) ::pause();
    }
    ASSERT_GT(pid, 0);
    cg->add(pid);
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, WUNTRACED), pid);
    ASSERT_TRUE(WIFSTOPPED(status));

    cg->kill_all();
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    cg->kill_all();  // idempotent

    cg.reset();
    for (const auto& d : dirs) EXPECT_FALSE(std::filesystem::exists(d)) << d;
}

TEST(Cgroup, DestructorKillsWhatIsLeft) {
    REQUIRE_CGROUPS(manager);
    auto cg = manager->create(unique_id("left"), CgroupLimits{});
    std::vector<std::filesystem::path> dirs = cg->directories();
    pid_t pid = ::fork();
    if (pid == 0) {
        for (;;) ::pause();
    }
    ASSERT_GT(pid, 0);
    cg->add(pid);
    cg.reset();
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    // The child was still a zombie of ours while the directory went: that does not block rmdir.
    for (const auto& d : dirs) EXPECT_FALSE(std::filesystem::exists(d)) << d;
}

// cgroup v1's stand-in for CLONE_INTO_CGROUP: only the calling thread steps in, what it
// forks starts inside, and leaving puts the thread back where it was.
TEST(Cgroup, ProcessesForkedByAThreadInsideStartInside) {
    REQUIRE_CGROUPS(manager);
    const std::string id = unique_id("thread");
    auto cg = manager->create(id, CgroupLimits{});
    const std::string process_before = read_text("/proc/self/cgroup");
    bool unsupported = false;
    std::string thread_before, thread_inside, thread_after, child_cgroup, process_inside;
    bool left = false;
    std::thread([&] {
        thread_before = read_text("/proc/thread-self/cgroup");
        auto stay = cg->enter_calling_thread();
        if (!stay) {
            unsupported = true;
            return;
        }
        thread_inside = read_text("/proc/thread-self/cgroup");
        process_inside = read_text("/proc/self/cgroup");
        pid_t pid = ::fork();
        if (pid == 0) {
            ::pause();
            ::_exit(0);
        }
        left = stay->leave();
        thread_after = read_text("/proc/thread-self/cgroup");
        if (pid > 0) {
            child_cgroup = read_text("/proc/" + std::to_string(pid) + "/cgroup");
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }).join();
    if (unsupported) GTEST_SKIP() << "this host's cgroups cannot take a single thread (" << manager->describe() << ")";
    EXPECT_NE(thread_inside.find(id), std::string::npos) << thread_inside;
    EXPECT_NE(child_cgroup.find(id), std::string::npos) << child_cgroup;
    EXPECT_TRUE(left);
    EXPECT_EQ(thread_after, thread_before);
    // The rest of the process never moved.
    EXPECT_EQ(process_inside, process_before);
    EXPECT_EQ(read_text("/proc/self/cgroup"), process_before);
}

TEST(Cgroup, AStayEndedFromAnotherThreadMovesTheThreadThatEntered) {
    REQUIRE_CGROUPS(manager);
    auto cg = manager->create(unique_id("handover"), CgroupLimits{});
    std::unique_ptr<CgroupThreadStay> stay;
    std::string before, after;
    // One pipe per direction: a thread must never read back its own byte.
    int entered_pipe[2], ended_pipe[2];
    ASSERT_EQ(::pipe(entered_pipe), 0);
    ASSERT_EQ(::pipe(ended_pipe), 0);
    std::thread entered([&] {
        before = read_text("/proc/thread-self/cgroup");
        stay = cg->enter_calling_thread();
        char c = 'x';
        (void)!::write(entered_pipe[1], &c, 1);
        // Until the main thread has ended the stay.
        (void)!::read(ended_pipe[0], &c, 1);
        after = read_text("/proc/thread-self/cgroup");
    });
    char c = 0;
    const bool synced = ::read(entered_pipe[0], &c, 1) == 1;
    const bool supported = stay != nullptr;
    const std::string own_before = read_text("/proc/thread-self/cgroup");
    if (stay) {
        EXPECT_TRUE(stay->leave());
    }
    EXPECT_EQ(read_text("/proc/thread-self/cgroup"), own_before);  // not this thread
    (void)!::write(ended_pipe[1], &c, 1);
    entered.join();
    for (int fd : {entered_pipe[0], entered_pipe[1], ended_pipe[0], ended_pipe[1]}) ::close(fd);
    ASSERT_TRUE(synced);
    if (!supported) GTEST_SKIP() << "this host's cgroups cannot take a single thread";
    EXPECT_EQ(after, before);
}

// While a daemon thread is inside, the cgroup lists the daemon: a kill must spare it.
TEST(Cgroup, KillAllSparesTheDaemonItself) {
    REQUIRE_CGROUPS(manager);
    auto cg = manager->create(unique_id("self"), CgroupLimits{});
    bool supported = true;
    std::thread([&] {
        auto stay = cg->enter_calling_thread();
        supported = stay != nullptr;
        if (stay) cg->kill_all();  // would SIGKILL this test binary
    }).join();
    if (!supported) GTEST_SKIP() << "this host's cgroups cannot take a single thread";
    SUCCEED();
}

// The memory fence: the daemon's own cgroup, limited to the memory budget, holding every
// worker's. Root-only like the daemon's cgroups; as root without a writable hierarchy the
// tests fail, since the daemon would then admit workers by memory_mb alone.
#define REQUIRE_CGROUPS_AS_ROOT(m)                                                       \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (cgroups are written as root only)"; \
    auto m = CgroupManager::detect(kTestParent);                                          \
    ASSERT_NE(m, nullptr) << "root, but no writable cgroup hierarchy with memory and pids"

// A child touching `mb` MiB once `gate` opens, then telling `report` and holding it until
// `hold` closes; its exit status is 0 when it got that far.
pid_t memory_holder(int gate[2], int report, int hold, std::size_t mb) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(gate[1]);
        char c;
        if (::read(gate[0], &c, 1) != 1) ::_exit(2);
        const std::size_t size = mb * kMiB;
        auto* p = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (p == MAP_FAILED) ::_exit(3);
        for (std::size_t i = 0; i < size; i += 4096) p[i] = 1;
        if (report >= 0 && ::write(report, "k", 1) != 1) ::_exit(4);
        if (hold >= 0) (void)!::read(hold, &c, 1);
        ::_exit(0);
    }
    ::close(gate[0]);
    return pid;
}

std::string limit_of(const std::filesystem::path& group) {
    // v2: memory.max; v1: memory.limit_in_bytes (in the memory hierarchy's directory).
    const auto v2 = group / "memory.max";
    return trim(read_text(std::filesystem::exists(v2) ? v2 : group / "memory.limit_in_bytes"));
}

TEST(CgroupFence, WorkersTogetherAreHeldToTheFenceThoughEachFitsItsOwnLimit) {
    REQUIRE_CGROUPS_AS_ROOT(manager);
    ASSERT_TRUE(manager->fence_memory(64 * kMiB)) << manager->describe();
    EXPECT_EQ(manager->memory_fence(), 64 * kMiB);
    EXPECT_NE(manager->describe().find("fenced at 64 MB"), std::string::npos) << manager->describe();

    CgroupLimits limits;
    limits.memory_bytes = 64 * kMiB;
    limits.memory_mb = 64;
    limits.pids_max = 16;
    auto a = manager->create(unique_id("fence-a"), limits);
    auto b = manager->create(unique_id("fence-b"), limits);
    ASSERT_FALSE(a->directories().empty());
    // Every directory of a worker (one per hierarchy) is in the daemon's own cgroup.
    for (const auto& dir : a->directories())
        EXPECT_EQ(dir.parent_path().filename().string(), daemon_cgroup_name(::getpid())) << dir;
    const std::filesystem::path group = a->directories().front().parent_path();  // memory's first on v1
    EXPECT_EQ(limit_of(group), std::to_string(64 * kMiB));

    // a holds 40 MiB; then b asks for 40 more: each within its own 64 MiB, together past
    // the fence, so the kernel OOM-kills one of them (the larger, a, as a rule), and only one.
    int gate_a[2], gate_b[2], report[2], hold[2];
    ASSERT_EQ(::pipe(gate_a), 0);
    ASSERT_EQ(::pipe(gate_b), 0);
    ASSERT_EQ(::pipe(report), 0);
    ASSERT_EQ(::pipe(hold), 0);
    const pid_t pa = memory_holder(gate_a, report[1], hold[0], 40);
    ASSERT_GT(pa, 0);
    a->add(pa);
    release(gate_a);
    char c = 0;
    ASSERT_EQ(::read(report[0], &c, 1), 1) << "40 MiB alone fit";
    const pid_t pb = memory_holder(gate_b, -1, -1, 40);
    ASSERT_GT(pb, 0);
    b->add(pb);
    release(gate_b);
    int status_b = 0;
    ASSERT_EQ(::waitpid(pb, &status_b, 0), pb);
    ::close(hold[1]);  // a may go now, if it still runs
    int status_a = 0;
    ASSERT_EQ(::waitpid(pa, &status_a, 0), pa);
    for (int fd : {report[0], report[1], hold[0]}) ::close(fd);

    auto killed = [](int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; };
    auto finished = [](int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; };
    EXPECT_TRUE((killed(status_a) && finished(status_b)) || (finished(status_a) && killed(status_b)))
        << "a: " << status_a << ", b: " << status_b;
    EXPECT_EQ(a->oom_killed(), killed(status_a));
    EXPECT_EQ(b->oom_killed(), killed(status_b));

    // The daemon's cgroup goes with the manager, once its workers' cgroups have gone.
    a.reset();
    b.reset();
    manager.reset();
    EXPECT_FALSE(std::filesystem::exists(group)) << group;
}

TEST(CgroupFence, ASecondCallChangesTheLimit) {
    REQUIRE_CGROUPS_AS_ROOT(manager);
    ASSERT_TRUE(manager->fence_memory(64 * kMiB));
    auto cg = manager->create(unique_id("refence"), CgroupLimits{});
    const std::filesystem::path group = cg->directories().front().parent_path();
    ASSERT_TRUE(manager->fence_memory(256 * kMiB)) << "raised";
    EXPECT_EQ(limit_of(group), std::to_string(256 * kMiB));
    ASSERT_TRUE(manager->fence_memory(128 * kMiB)) << "lowered";
    EXPECT_EQ(limit_of(group), std::to_string(128 * kMiB));
    EXPECT_EQ(manager->memory_fence(), 128 * kMiB);
}

TEST(CgroupFence, AFenceThatCannotBeMadeIsRefusedAndWorkersStayWhereTheyWere) {
    REQUIRE_CGROUPS_AS_ROOT(unused);
    unused.reset();
    // A parent of its own, taken away under the manager: mkdir of the daemon's cgroup fails.
    const std::string parent = unique_id("funcd-unit-test-gone");
    auto manager = CgroupManager::detect(parent);
    ASSERT_NE(manager, nullptr);
    std::vector<std::filesystem::path> parents;
    {
        auto probe = manager->create(unique_id("probe"), CgroupLimits{});
        for (const auto& dir : probe->directories()) parents.push_back(dir.parent_path());
    }
    for (const auto& dir : parents) ::rmdir(dir.c_str());
    EXPECT_FALSE(manager->fence_memory(64 * kMiB));
    EXPECT_FALSE(manager->memory_fence().has_value());
    EXPECT_EQ(manager->describe().find("fenced"), std::string::npos) << manager->describe();
}

TEST(CgroupFence, TheCgroupsOfADaemonThatIsGoneAreRemovedWithItsWorkers) {
    REQUIRE_CGROUPS_AS_ROOT(manager);
    ASSERT_TRUE(manager->fence_memory(64 * kMiB));
    auto alive = manager->create(unique_id("alive"), CgroupLimits{});

    // A daemon pid that is gone: a child that exited and was reaped.
    const pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ASSERT_GT(dead, 0);
    ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);

    // What it left: its own cgroup with a worker's in it, in every hierarchy, and a
    // process still in the worker's (one that escaped the parent-death signal).
    std::vector<std::filesystem::path> groups, workers;
    for (const auto& dir : alive->directories()) {
        groups.push_back(dir.parent_path().parent_path() / daemon_cgroup_name(dead));
        workers.push_back(groups.back() / worker_cgroup_id(dead, "ghost", 1, 0));
        ASSERT_TRUE(std::filesystem::create_directory(groups.back())) << groups.back();
        ASSERT_TRUE(std::filesystem::create_directory(workers.back())) << workers.back();
    }
    const pid_t straggler = ::fork();
    if (straggler == 0) {
        for (;;) ::pause();
    }
    ASSERT_GT(straggler, 0);
    for (const auto& dir : workers) std::ofstream(dir / "cgroup.procs") << straggler << "\n";

    EXPECT_GE(manager->remove_dead_daemons_cgroups(), 1u);
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 500 && !reaped; ++i) {
        reaped = ::waitpid(straggler, &status, WNOHANG) == straggler;
        if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!reaped) {
        ADD_FAILURE() << "the process in the leftover still runs";
        ::kill(straggler, SIGKILL);
        ::waitpid(straggler, &status, 0);
    }
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    for (const auto& dir : groups) EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
    for (const auto& dir : alive->directories()) EXPECT_TRUE(std::filesystem::exists(dir)) << dir << " (ours)";
}

TEST(CgroupFence, DaemonCgroupNamesAreToldApartFromWorkers) {
    EXPECT_EQ(daemon_cgroup_name(4711), "daemon-4711");
    EXPECT_EQ(daemon_cgroup_owner("daemon-4711"), 4711);
    EXPECT_FALSE(daemon_cgroup_owner("4711-f-1-0").has_value());
    EXPECT_FALSE(daemon_cgroup_owner("daemon-").has_value());
    EXPECT_FALSE(daemon_cgroup_owner("daemon-12x").has_value());
    EXPECT_FALSE(daemon_cgroup_owner("daemon-0").has_value());
    EXPECT_FALSE(worker_cgroup_owner("daemon-4711").has_value());
}

TEST(Cgroup, DescribeNamesTheVersion) {
    REQUIRE_CGROUPS(manager);
    EXPECT_EQ(manager->describe().rfind("cgroup v", 0), 0u) << manager->describe();
}

}  // namespace
}  // namespace funcd
