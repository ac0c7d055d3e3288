// Reaching the daemon through what it leaves in a sandbox or on the host: the sandbox's
// PID 1 (its memory, command line and environment), the mount table's host paths and
// uids, socket buffers outside the memory limit, and cgroups of daemons that were killed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "funcd/sandbox/cgroup.hpp"
#include "sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

namespace fs = std::filesystem;

// The whole of a /proc file ("" when it cannot be read).
std::string whole_proc_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Sets a sysctl for the length of a test and puts the old value back, pass or fail.
class SysctlOverride {
public:
    SysctlOverride(std::string path, const std::string& value) : path_(std::move(path)) {
        old_ = whole_proc_file(path_);
        while (!old_.empty() && old_.back() == '\n') old_.pop_back();
        std::ofstream out(path_);
        out << value << "\n";
        out.flush();
        ok_ = !old_.empty() && out.good();
    }
    ~SysctlOverride() {
        if (old_.empty()) return;
        std::ofstream out(path_);
        out << old_ << "\n";
    }
    bool ok() const { return ok_; }

private:
    std::string path_;
    std::string old_;
    bool ok_ = false;
};

const char* kPid1Probe = R"(
def attempt_read(path, n=4096):
    try:
        with open(path, "rb") as f:
            return {"data": f.read(n).decode("latin-1")}
    except OSError as e:
        return {"errno": e.errno}

def read_mem():
    # A readable address of PID 1, if its maps can be read at all; else just the open.
    try:
        fd = os.open("/proc/1/mem", os.O_RDONLY)
    except OSError as e:
        return {"errno": e.errno}
    try:
        maps = attempt_read("/proc/1/maps", 1 << 16)
        if "data" not in maps:
            return {"opened": True, "maps_errno": maps["errno"]}
        start = int(maps["data"].split("-", 1)[0], 16)
        return {"opened": True, "data": os.pread(fd, 64, start).hex()}
    except OSError as e:
        return {"opened": True, "read_errno": e.errno}
    finally:
        os.close(fd)

def handler(event, context):
    try:
        exe = os.readlink("/proc/1/exe")
    except OSError as e:
        exe = e.errno
    return {
        "cmdline": attempt_read("/proc/1/cmdline"),
        "environ": attempt_read("/proc/1/environ"),
        "maps": attempt_read("/proc/1/maps"),
        "mem": read_mem(),
        "exe": exe,
        "mountinfo": open("/proc/self/mountinfo").read(),
        "uid_map": open("/proc/self/uid_map").read(),
    }
)";

// Host pids of the sandboxes' PID 1 processes under the daemon.
std::vector<pid_t> sandbox_inits(Daemon& d) {
    std::vector<pid_t> out;
    for (pid_t pid : children_of(d.pid()))
        if (proc_text(std::to_string(pid), "comm") == "funcd-init\n") out.push_back(pid);
    return out;
}

TEST_F(SandboxAttack, SandboxPid1HoldsNothingOfTheDaemonEvenWhenTheHostLetsDumpsThrough) {
    // fs.suid_dumpable=1: a process that changed its ids stays dumpable, so readable by
    // any process of its uid. The daemon's clone that was PID 1 did; funcd-init must be
    // out of reach whatever this says.
    SysctlOverride dumpable("/proc/sys/fs/suid_dumpable", "1");
    ASSERT_TRUE(dumpable.ok()) << "cannot set fs.suid_dumpable, which this test needs";
    ASSERT_EQ(whole_proc_file("/proc/sys/fs/suid_dumpable"), "1\n");

    auto d = start();
    const std::string other_secret = "other-function-env-secret-4711";
    auto other = d->deploy("other", {{"runtime", "python3"}, {"handler", "app.handler"},
                                     {"env", {{"OTHER_SECRET", other_secret}}}},
                           python_zip("def handler(e, c):\n    return 1\n"));
    ASSERT_EQ(other.status, 201) << other.body;
    ASSERT_EQ(d->invoke("other").status, 200);  // its environment is now in the daemon's memory
    ASSERT_EQ(deploy_attack(*d, "pid1", kPid1Probe).status, 201);
    auto r = d->invoke("pid1");
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("cmdline")) << r.body;

    // Its command line is funcd-init's: no daemon arguments, no data directory, no token.
    ASSERT_TRUE(body["cmdline"].contains("data")) << body["cmdline"];
    const std::string cmdline = body["cmdline"]["data"];
    EXPECT_EQ(cmdline.rfind(std::string("funcd-init") + '\0', 0), 0u) << cmdline;
    for (const std::string& daemon_word : {d->data_dir().string(), Daemon::kToken, std::string("serve"),
                                           std::string("--data-dir"), std::string(FUNCD_BINARY)})
        EXPECT_EQ(cmdline.find(daemon_word), std::string::npos) << "PID 1's command line names " << daemon_word;

    // Its memory, environment and maps are closed to the worker, dumpable host or not.
    EXPECT_EQ(body["environ"], json({{"errno", EACCES}})) << "PID 1's environment: " << body["environ"];
    EXPECT_EQ(body["maps"], json({{"errno", EACCES}})) << "PID 1's maps: " << body["maps"];
    EXPECT_EQ(body["mem"], json({{"errno", EACCES}})) << "PID 1's memory: " << body["mem"];
    EXPECT_EQ(body["exe"], EACCES) << "PID 1's program: " << body["exe"];

    // Seen from the host, every sandbox's PID 1 is funcd-init, and neither its command
    // line nor its environment holds the token, the data directory or (but in its own
    // sandbox) another function's environment.
    auto inits = sandbox_inits(*d);
    ASSERT_GE(inits.size(), 3u) << "benign, other and pid1 each have a sandbox whose PID 1 is funcd-init";
    for (pid_t pid : inits) {
        const std::string dir = "/proc/" + std::to_string(pid);
        const std::string init_cmdline = whole_proc_file(dir + "/cmdline");
        const std::string init_environ = whole_proc_file(dir + "/environ");
        ASSERT_FALSE(init_cmdline.empty()) << pid;
        // funcd-init that started its runtime has the worker's environment (to pass it on);
        // one that adopted a runtime forked from a template has none at all.
        if (init_cmdline.find(std::string("--adopt") + '\0') != std::string::npos)
            EXPECT_TRUE(init_environ.empty()) << pid << ": " << init_environ;
        else
            EXPECT_FALSE(init_environ.empty()) << pid;
        for (const std::string& text : {init_cmdline, init_environ}) {
            EXPECT_EQ(text.find(Daemon::kToken), std::string::npos) << pid << " holds the API token";
            EXPECT_EQ(text.find(d->data_dir().string()), std::string::npos) << pid << " names the data directory";
        }
        if (init_environ.find("AWS_LAMBDA_FUNCTION_NAME=other") == std::string::npos) {
            EXPECT_EQ(init_environ.find(other_secret), std::string::npos) << pid << " holds another's environment";
        }
        const std::string status = whole_proc_file(dir + "/status");
        RecordProperty("init_status_" + std::to_string(pid), status.substr(status.find("VmRSS"), 24));
    }
    expect_still_serving(*d);
}

TEST_F(SandboxAttack, MountTableShowsNoHostUidAndNoRootMountPoint) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "mounts", kPid1Probe).status, 201);
    auto r = d->invoke("mounts");
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("mountinfo")) << r.body;
    const std::string mountinfo = body["mountinfo"];
    RecordProperty("mountinfo", mountinfo);
    // "993 <host uid> 1": the host uid the worker runs as.
    std::istringstream map(body["uid_map"].get<std::string>());
    std::string inside, host_uid;
    map >> inside >> host_uid;
    ASSERT_EQ(inside, "993") << body["uid_map"];
    EXPECT_EQ(mountinfo.find("uid=" + host_uid), std::string::npos) << mountinfo;
    EXPECT_EQ(mountinfo.find("gid=" + host_uid), std::string::npos) << mountinfo;
    // No filesystem of the sandbox's own prints an owner (the host's ext4 may print resuid=).
    EXPECT_EQ(mountinfo.find(",uid="), std::string::npos) << mountinfo;
    EXPECT_EQ(mountinfo.find(",gid="), std::string::npos) << mountinfo;
    EXPECT_EQ(mountinfo.find("sandbox-root"), std::string::npos) << mountinfo;
    // /tmp and /dev/shm are still the size-limited tmpfs they were.
    EXPECT_NE(mountinfo.find(" /tmp rw,nosuid,nodev"), std::string::npos) << mountinfo;
    EXPECT_NE(mountinfo.find(" /dev/shm rw,nosuid,nodev,noexec"), std::string::npos) << mountinfo;
    expect_still_serving(*d);
}

// Many loopback connections whose buffers are filled and never read: kernel memory the
// worker holds outside its processes. Payload bytes queued are a lower bound on what the
// kernel charges (every buffer costs more than its payload).
const char* kSocketHog = R"(
def handler(event, context):
    cap = event["stop_at_mb"] << 20
    big = 8 << 20
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, big)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    pairs, errors = [], {}
    for _ in range(event["connections"]):
        try:
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, big)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, big)
            c.connect(srv.getsockname())
            s, _ = srv.accept()
            c.setblocking(False)
            pairs.append((c, s))
        except OSError as e:
            errors[e.strerror] = errors.get(e.strerror, 0) + 1
            break
    chunk = b"\x00" * (256 << 10)
    queued, idle_rounds = 0, 0
    while queued < cap and idle_rounds < 5:
        before = queued
        for c, _ in pairs:
            while queued < cap:
                try:
                    n = c.send(chunk)
                except BlockingIOError:
                    break
                except OSError as e:
                    errors[e.strerror] = errors.get(e.strerror, 0) + 1
                    break
                queued += n
        idle_rounds = idle_rounds + 1 if queued == before else 0
        time.sleep(0.02)
    for c, s in pairs:
        c.close()
        s.close()
    srv.close()
    return {"connections": len(pairs), "queued_mb": queued / (1 << 20), "errors": errors}
)";

TEST_F(SandboxAttack, SocketBuffersStopAtMemoryMb) {
    auto d = start();
    constexpr int kMemoryMb = 128;  // the smallest memory_mb
    // Enough connections to queue twice the limit where buffers are not charged (about
    // 8 MB each: a full send buffer and a full receive buffer).
    auto dep = deploy_attack(*d, "sockets", kSocketHog, {{"memory_mb", kMemoryMb}, {"timeout_s", 60}});
    ASSERT_EQ(dep.status, 201) << dep.body;
    auto r = d->invoke("sockets", json{{"connections", 40}, {"stop_at_mb", 2 * kMemoryMb}}.dump());
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("queued_mb")) << r.body;
    EXPECT_GE(body["connections"].get<int>(), 8) << r.body;
    // The kernel lets each connection past the limit by one buffer when its queue is
    // empty (a forced allocation, so a socket can always make progress): a little slack.
    constexpr double kForcedSlackMb = 16;
    EXPECT_LE(body["queued_mb"].get<double>(), kMemoryMb + kForcedSlackMb)
        << "unread socket buffers held past memory_mb: " << r.body;
    expect_still_serving(*d);
}

TEST_F(SandboxAttack, CgroupsOfKilledDaemonsAreRemovedAtStart) {
    auto cgroups = CgroupManager::detect("funcd");
    ASSERT_NE(cgroups, nullptr) << "no writable cgroup hierarchy: the daemon's would be the same";

    // A daemon pid that is gone: a child that exited and was reaped.
    const pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    ASSERT_GT(dead, 0);
    ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
    ASSERT_NE(::kill(dead, 0), 0);

    // What a killed daemon leaves: its worker's cgroup, in every hierarchy funcd uses,
    // with a process still in it (one that escaped the parent-death signal); beside it,
    // the cgroup of a daemon that lives (this test's pid), made the way funcd makes them.
    CgroupLimits limits;
    std::unique_ptr<WorkerCgroup> alive = cgroups->create(worker_cgroup_id(::getpid(), "alive", 1, 0), limits);
    const auto alive_dirs = alive->directories();
    ASSERT_FALSE(alive_dirs.empty());
    std::vector<fs::path> leftover_dirs;
    for (const auto& dir : alive_dirs) {
        leftover_dirs.push_back(dir.parent_path() / worker_cgroup_id(dead, "ghost", 1, 0));
        ASSERT_TRUE(fs::create_directory(leftover_dirs.back())) << leftover_dirs.back();
    }
    struct RemoveDirs {
        std::vector<fs::path> dirs;
        ~RemoveDirs() {
            for (const auto& dir : dirs) ::rmdir(dir.c_str());
        }
    } remove_leftovers{leftover_dirs};
    const pid_t straggler = ::fork();
    if (straggler == 0) {
        ::pause();
        ::_exit(0);
    }
    ASSERT_GT(straggler, 0);
    struct Reap {
        pid_t pid;
        ~Reap() {
            if (pid <= 0) return;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reap{straggler};
    for (const auto& dir : leftover_dirs) std::ofstream(dir / "cgroup.procs") << straggler << "\n";
    ASSERT_NE(whole_proc_file((leftover_dirs.front() / "cgroup.procs").string()), "");

    auto d = start();
    for (const auto& dir : leftover_dirs) EXPECT_FALSE(fs::exists(dir)) << dir << " is still there";
    for (const auto& dir : alive_dirs) EXPECT_TRUE(fs::exists(dir)) << dir << " (a living daemon's) was removed";
    int status = 0;
    EXPECT_TRUE(eventually([&] { return ::waitpid(straggler, &status, WNOHANG) == straggler; }))
        << "the process in the leftover still runs";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    if (WIFSIGNALED(status)) reap.pid = -1;
    // Which daemon's start removed them is not asserted: the suite runs in parallel with
    // others that start daemons, and any of them, starting after the leftovers were made,
    // sweeps them (before the fix, none did).
    expect_still_serving(*d);
}

}  // namespace
}  // namespace funcd::testing::sandbox
