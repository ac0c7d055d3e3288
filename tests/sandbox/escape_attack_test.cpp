// Escapes: a function tries to write the host's files, read its secrets or another
// function's code, see or signal the host's processes, use privileged system calls, reach
// the host's network, inject terminal input, or use descriptors it inherited. Each attack
// must fail, and the daemon must keep serving afterwards.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

bool one_of(const json& v, std::initializer_list<int> codes) {
    if (!v.is_number_integer()) return false;
    for (int c : codes)
        if (v.get<int>() == c) return true;
    return false;
}

const char* kFilesProbe = R"(
def handler(event, context):
    writes = {}
    for d in event["write_dirs"]:
        p = d.rstrip("/") + "/.funcd-probe-" + event["tag"]
        def attempt():
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            os.unlink(p)
        writes[d] = os_errno(attempt)
    reads = {}
    for p in event["read_paths"]:
        def attempt():
            with open(p, "rb") as f:
                f.read(64)
        reads[p] = os_errno(attempt)
    own = open("/var/task/app.py").read() if os.path.exists("/var/task/app.py") else ""
    return {
        "writes": writes,
        "reads": reads,
        "chmod_code": os_errno(lambda: os.chmod("/var/task/app.py", 0o777)),
        # Opened for writing only, never written: a successful open is already the escape.
        "write_opens": {p: os_errno(lambda: os.close(os.open(p, os.O_WRONLY))) for p in event["write_opens"]},
        "code_listing": sorted(os.listdir("/var/task")) if os.path.isdir("/var/task") else None,
        "own_code_is_mine": "kFilesProbe-marker" in own,
        "dev": sorted(os.listdir("/dev")),
        "env": dict(os.environ),
    }
# kFilesProbe-marker
)";

TEST_F(SandboxAttack, HostFilesAndOtherFunctionsAreOutOfReach) {
    // A token file the daemon reads, at a host path the function is told about.
    std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-sbx-token-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    const std::filesystem::path token_dir = tmpl;
    struct RemoveDir {
        std::filesystem::path p;
        ~RemoveDir() { std::filesystem::remove_all(p); }
    } remove_token_dir{token_dir};
    const auto token_file = token_dir / "api-token";
    std::ofstream(token_file) << Daemon::kToken << "\n";
    ::chmod(token_file.c_str(), 0600);

    auto d = start({"--api-token-file", token_file.string()});
    // Another function whose code holds a secret.
    auto other = d->deploy("other", {{"runtime", "python3"}, {"handler", "app.handler"}},
                           python_zip("SECRET = 'other-function-secret'\ndef handler(e, c):\n    return SECRET\n"));
    ASSERT_EQ(other.status, 201) << other.body;
    const auto other_code = d->data_dir() / "code" / other.json()["code_sha256"].get<std::string>() / "app.py";
    const auto benign_code = d->data_dir() / "code" / benign_sha_ / "app.py";
    const auto db = d->data_dir() / "funcd.db";
    ASSERT_TRUE(std::filesystem::exists(other_code)) << other_code;
    ASSERT_TRUE(std::filesystem::exists(db)) << db;

    const std::string tag = unique_mark("p");
    const std::vector<std::string> write_dirs = {"/var/task", "/var/runtime", "/usr", "/usr/lib", "/etc", "/bin", "/"};
    std::vector<std::string> read_paths = {"/etc/shadow",       db.string(), token_file.string(), other_code.string(),
                                           benign_code.string(), "/proc/" + std::to_string(d->pid()) + "/environ"};
    if (std::filesystem::exists(d->data_dir() / "api-token")) read_paths.push_back((d->data_dir() / "api-token").string());

    // Kernel and cgroup knobs that would reach beyond the worker: SysRq, core_pattern (a
    // pipe there runs a program as root on the host), and moving itself out of its cgroups.
    const std::vector<std::string> write_opens = {
        "/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches",
        "/sys/fs/cgroup/memory/cgroup.procs", "/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/cgroup.procs",
        "/sys/kernel/uevent_helper"};

    ASSERT_EQ(deploy_attack(*d, "files", kFilesProbe).status, 201);
    auto r = d->invoke("files", json{{"tag", tag},
                                     {"write_dirs", write_dirs},
                                     {"read_paths", read_paths},
                                     {"write_opens", write_opens}}
                                    .dump());
    // Whatever happened, leave no probe file on the host.
    for (const auto& dir : write_dirs) std::filesystem::remove(std::filesystem::path(dir) / (".funcd-probe-" + tag));
    json body = ok_result(r);
    ASSERT_TRUE(body.is_object() && body.contains("writes")) << r.body;

    for (const auto& dir : write_dirs) {
        EXPECT_TRUE(one_of(body["writes"][dir], {EROFS, EACCES}))
            << "creating a file in " << dir << " gave " << body["writes"][dir] << " (null: it succeeded)";
    }
    EXPECT_TRUE(one_of(body["chmod_code"], {EROFS, EPERM, EACCES})) << body["chmod_code"];
    for (const auto& p : write_opens) {
        EXPECT_TRUE(one_of(body["write_opens"][p], {EACCES, EROFS, EPERM, ENOENT}))
            << p << " opened for writing (null: it opened): " << body["write_opens"][p];
    }

    EXPECT_TRUE(one_of(body["reads"]["/etc/shadow"], {ENOENT, EACCES})) << body["reads"];
    for (const auto& p : read_paths) {
        if (p == "/etc/shadow") continue;
        EXPECT_TRUE(one_of(body["reads"][p], {ENOENT})) << "host path " << p << " gave " << body["reads"][p]
                                                        << " (null: it was read)";
    }
    EXPECT_EQ(body["code_listing"], json::array({"app.py"})) << "/var/task shows only this function's code";
    EXPECT_EQ(body["own_code_is_mine"], true);

    // Nothing of the daemon's reaches the environment, only the runtime contract's own
    // variable: the number of the runtime's Runtime API connection.
    for (const auto& [key, value] : body["env"].items()) {
        if (key == "FUNCD_RUNTIME_API_FD") {
            EXPECT_EQ(value.get<std::string>().find_first_not_of("0123456789"), std::string::npos) << value;
            continue;
        }
        EXPECT_EQ(key.find("FUNCD"), std::string::npos) << key;
        EXPECT_EQ(value.get<std::string>().find(Daemon::kToken), std::string::npos) << key;
    }

    // A minimal /dev: no memory, kernel log or host block devices.
    std::set<std::string> dev;
    for (const auto& n : body["dev"]) dev.insert(n.get<std::string>());
    std::set<std::string> forbidden = {"mem", "kmem", "port", "kmsg", "sda", "vda", "nvme0n1", "xvda", "loop0"};
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/block", ec)) forbidden.insert(e.path().filename());
    for (const auto& f : forbidden) EXPECT_FALSE(dev.count(f)) << "/dev/" << f << " is visible in the sandbox";

    // The daemon's own files are intact.
    EXPECT_EQ(read_file(token_file), std::string(Daemon::kToken) + "\n");
    expect_still_serving(*d);
}

const char* kProcessProbe = R"(
import resource
def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()

def handler(event, context):
    dpid = event["daemon_pid"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard * 4, hard * 4))
        raised = "raised"
    except (ValueError, OSError):
        raised = "refused"
    victims = {str(pid): os_errno(lambda: os.kill(pid, signal.SIGKILL)) for pid in event["victims"]}
    return {
        "victims": victims,
        "proc_pids": sorted(int(n) for n in os.listdir("/proc") if n.isdigit()),
        "kill_daemon": os_errno(lambda: os.kill(dpid, 0)),
        "daemon_cmdline": os_errno(lambda: open(f"/proc/{dpid}/cmdline").read()),
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "setuid0": os_errno(lambda: os.setuid(0)),
        "cap_eff": status("CapEff"), "cap_prm": status("CapPrm"),
        "no_new_privs": status("NoNewPrivs"), "seccomp": status("Seccomp"),
        "nofile": [soft, hard], "raise_nofile": raised,
    }
)";

TEST_F(SandboxAttack, HostProcessesAreInvisibleAndPrivilegesAreGone) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "procs", kProcessProbe).status, 201);
    // The benign function's worker processes, by their host pids: SIGKILL must reach none.
    json victims = json::array();
    for (pid_t pid : baseline_) victims.push_back(pid);
    ASSERT_FALSE(victims.empty());
    auto r = d->invoke("procs", json{{"daemon_pid", d->pid()}, {"victims", victims}}.dump());
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("proc_pids")) << r.body;

    EXPECT_LT(body["proc_pids"].size(), 10u) << "host processes are listed in /proc: " << body["proc_pids"].size();
    for (const auto& pid : body["proc_pids"]) EXPECT_NE(pid.get<int>(), d->pid()) << "the daemon is visible";
    EXPECT_EQ(body["kill_daemon"], ESRCH) << "signalling the daemon's pid gave " << body["kill_daemon"];
    EXPECT_EQ(body["daemon_cmdline"], ENOENT);

    EXPECT_EQ(body["uid"], 993);
    EXPECT_EQ(body["euid"], 993);
    // EINVAL: uid 0 is not even mapped in the worker's user namespace.
    EXPECT_TRUE(one_of(body["setuid0"], {EPERM, EINVAL})) << "setuid(0) gave " << body["setuid0"];
    EXPECT_EQ(body["cap_eff"], "0000000000000000");
    EXPECT_EQ(body["cap_prm"], "0000000000000000");
    EXPECT_EQ(body["no_new_privs"], "1");
    EXPECT_EQ(body["seccomp"], "2");
    EXPECT_LE(body["nofile"][0].get<long>(), 1024) << body["nofile"];
    EXPECT_LE(body["nofile"][1].get<long>(), 1024) << body["nofile"];
    EXPECT_EQ(body["raise_nofile"], "refused");

    for (const auto& [pid, outcome] : body["victims"].items())
        EXPECT_EQ(outcome, ESRCH) << "SIGKILL to the other worker's host pid " << pid << " gave " << outcome;

    EXPECT_EQ(::kill(d->pid(), 0), 0) << "the daemon is still alive";
    auto warm = d->invoke("benign", R"({"still": "warm"})");
    EXPECT_EQ(warm.status, 200) << warm.body;
    EXPECT_TRUE(warm.header("x-funcd-init-duration-ms").empty()) << "the benign function's warm worker was lost";
    expect_still_serving(*d);
}

// Each probe passes harmless arguments: without the filter the kernel would refuse them
// with another errno (ENOENT, EBADF, EINVAL, EFAULT...) or, where one could succeed, it
// runs in a forked child so the change stays there.
const char* kSyscallProbe = R"(
import fcntl, termios
CLONE_FS, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x200, 0x20000, 0x10000000, 0x40000000

def child_raw(nr, *args):
    r = in_child(lambda: raw(nr, *args))
    return r.get("ok", r.get("raised"))

def handler(event, context):
    out = {
        "mount": raw(165, b"none", b"/nonexistent-funcd-probe", b"tmpfs", 0, None),
        "umount2": raw(166, b"/nonexistent-funcd-probe", 0),
        "unshare_user": child_raw(272, CLONE_NEWUSER),
        "unshare_net": child_raw(272, CLONE_NEWNET),
        "setns": raw(308, -1, 0),
        "keyctl": raw(250, 0, -3, 0),
        "add_key": child_raw(248, b"user", b"funcd-probe", b"x", 1, -2),
        "bpf": raw(321, 0, None, 0),
        "userfaultfd": child_raw(323, 0o2000000),
        "io_uring_setup": raw(425, 0, None),
        "open_by_handle_at": raw(304, -1, None, 0),
        "perf_event_open": raw(298, None, 0, -1, -1, 0),
        "process_vm_readv": raw(310, os.getpid(), None, 0, None, 0, 0),
        # Flag pairs the kernel itself refuses with EINVAL, so nothing is ever created.
        "clone_newuser": child_raw(56, CLONE_NEWUSER | CLONE_FS, 0, None, None, 0),
        "clone_newns": child_raw(56, CLONE_NEWNS | CLONE_FS, 0, None, None, 0),
        "clone3": raw(435, None, 0),
        "tiocsti": os_errno(lambda: fcntl.ioctl(0, termios.TIOCSTI, b"x")),
        # AF_VSOCK (40) has no network namespace: it reaches past the worker's network.
        "socket_vsock": raw(41, 40, 1, 0),
        "stdin": os.readlink("/proc/self/fd/0"),
    }
    sibling = os.fork()
    if sibling == 0:
        try:
            time.sleep(30)
        finally:
            os._exit(0)
    ctypes.set_errno(0)
    rc = libc.ptrace(ctypes.c_long(16), ctypes.c_long(sibling), None, None)  # PTRACE_ATTACH
    out["ptrace_attach"] = rc if rc == 0 else -ctypes.get_errno()
    os.kill(sibling, signal.SIGKILL)
    os.waitpid(sibling, 0)
    return out
)";

TEST_F(SandboxAttack, PrivilegedSyscallsAreRefused) {
    utsname u{};
    ::uname(&u);
    if (std::string(u.machine) != "x86_64") GTEST_SKIP() << "syscall numbers here are x86_64's, not " << u.machine;
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "syscalls", kSyscallProbe).status, 201);
    auto r = d->invoke("syscalls");
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("mount")) << r.body;

    for (const char* name : {"mount", "umount2", "unshare_user", "unshare_net", "setns", "keyctl", "add_key", "bpf",
                             "userfaultfd", "io_uring_setup", "open_by_handle_at", "perf_event_open",
                             "process_vm_readv", "clone_newuser", "clone_newns", "ptrace_attach"}) {
        EXPECT_EQ(body[name], -EPERM) << name << " returned " << body[name] << " (negative: -errno)";
    }
    EXPECT_EQ(body["clone3"], -ENOSYS) << "clone3 returned " << body["clone3"];
    // The filter matches the ioctl request whatever the descriptor, so EPERM is reachable
    // even though stdin is /dev/null (where the kernel itself would answer ENOTTY).
    EXPECT_EQ(body["tiocsti"], EPERM) << "TIOCSTI on fd 0 (" << body["stdin"] << ") gave " << body["tiocsti"];
    EXPECT_EQ(body["socket_vsock"], -EPERM) << "socket(AF_VSOCK) returned " << body["socket_vsock"];

    expect_still_serving(*d);
}

// The sandbox's /etc/hosts and /etc/hostname are its own: they name nothing of the host.
TEST_F(SandboxAttack, EtcHostsSaysNothingAboutTheHost) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "etchosts", R"(
import socket
def handler(event, context):
    return {"hosts": open("/etc/hosts").read(), "hostname": open("/etc/hostname").read(),
            "uname": socket.gethostname(), "resolves": socket.gethostbyname(socket.gethostname())}
)").status,
              201);
    json body = ok_result(d->invoke("etchosts"));
    EXPECT_EQ(body["hosts"], "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    EXPECT_EQ(body["hostname"], "localhost\n");
    EXPECT_EQ(body["uname"], "localhost");
    EXPECT_EQ(body["resolves"], "127.0.0.1") << "the worker's own name still resolves";
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    if (std::string(host) != "localhost") {
        EXPECT_EQ(body["hosts"].get<std::string>().find(host), std::string::npos) << "the host's name " << host;
    }
    expect_still_serving(*d);
}

// A TCP listener in the test process, on every host address.
struct HostListener {
    int fd = -1;
    unsigned short port = 0;
    HostListener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0)
            throw std::runtime_error("listener: " + std::string(std::strerror(errno)));
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~HostListener() { ::close(fd); }
    // Accepts every pending connection; returns how many there were.
    int accept_pending() {
        int n = 0;
        for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) ::close(c);
        return n;
    }
};

// A Unix socket listening in the test process's (the host's) abstract namespace.
struct AbstractListener {
    int fd = -1;
    std::string name;
    explicit AbstractListener(std::string n) : name(std::move(n)) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path + 1, name.data(), name.size());
        auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 16) != 0)
            throw std::runtime_error("abstract listener: " + std::string(std::strerror(errno)));
    }
    ~AbstractListener() { ::close(fd); }
    int accept_pending() {
        int n = 0;
        for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) ::close(c);
        return n;
    }
};

// A non-loopback IPv4 address of this host, if it has one.
std::optional<std::string> host_address() {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return std::nullopt;
    std::optional<std::string> out;
    for (ifaddrs* i = list; i && !out; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        char buf[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
        out = buf;
    }
    ::freeifaddrs(list);
    return out;
}

const char* kConnectProbe = R"(
def handler(event, context):
    results = {}
    for host, port in event["targets"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((host, port))
            results[f"{host}:{port}"] = "connected"
        except socket.timeout:
            results[f"{host}:{port}"] = "timeout"
        except OSError as e:
            results[f"{host}:{port}"] = e.errno
        finally:
            s.close()
    for name in event.get("abstract", []):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect("\0" + name)
            results["@" + name] = "connected"
        except OSError as e:
            results["@" + name] = e.errno
        finally:
            s.close()
    return {"connect": results, "interfaces": sorted(n for _, n in socket.if_nameindex())}
)";

TEST_F(SandboxAttack, DefaultNetworkCannotReachTheHost) {
    auto d = start();
    HostListener listener;
    json targets = json::array({json::array({"127.0.0.1", d->port()}), json::array({"127.0.0.1", listener.port})});
    auto host_ip = host_address();
    if (host_ip) targets.push_back(json::array({*host_ip, listener.port}));

    // Abstract Unix sockets belong to the network namespace: a host one must be out of reach.
    AbstractListener unix_listener(unique_mark("funcd-probe-"));

    auto dep = deploy_attack(*d, "net", kConnectProbe, {{"timeout_s", 10}});
    ASSERT_EQ(dep.status, 201) << dep.body;
    auto r = d->invoke("net", json{{"targets", targets}, {"abstract", {unix_listener.name}}}.dump());
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("connect")) << r.body;
    for (const auto& [target, outcome] : body["connect"].items()) {
        EXPECT_TRUE(outcome == "timeout" || one_of(outcome, {ECONNREFUSED, ENETUNREACH, EHOSTUNREACH}))
            << "connecting to the host's " << target << " gave " << outcome;
    }
    EXPECT_EQ(body["interfaces"], json::array({"lo"})) << "the function's network has more than its own loopback";
    EXPECT_EQ(listener.accept_pending(), 0) << "the host listener received a connection from the function";
    EXPECT_EQ(unix_listener.accept_pending(), 0) << "the host's abstract socket received a connection";

    expect_still_serving(*d);
}

TEST_F(SandboxAttack, HostNetworkModeReachesTheHost) {
    auto d = start();
    HostListener listener;
    auto dep = deploy_attack(*d, "hostnet", kConnectProbe, {{"timeout_s", 10}, {"network", "host"}});
    if (dep.status == 400 && dep.body.find("network") != std::string::npos)
        GTEST_SKIP() << "this daemon does not take the `network` setting: " << dep.body;
    ASSERT_EQ(dep.status, 201) << dep.body;
    if (!dep.json().contains("network"))
        GTEST_SKIP() << "the deploy response has no `network` field: " << dep.body;
    EXPECT_EQ(dep.json()["network"], "host");

    auto r = d->invoke("hostnet", json{{"targets", json::array({json::array({"127.0.0.1", listener.port})})}}.dump());
    json body = ok_result(r);
    EXPECT_EQ(body["connect"]["127.0.0.1:" + std::to_string(listener.port)], "connected") << r.body;
    EXPECT_TRUE(eventually([&] { return listener.accept_pending() > 0; }, std::chrono::milliseconds(1000)));

    expect_still_serving(*d);
}

const char* kDescriptorProbe = R"(
def handler(event, context):
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink("/proc/self/fd/" + name)
        except OSError as e:
            fds[name] = e.errno
    return fds
)";

TEST_F(SandboxAttack, OnlyStdioTheRuntimeConnectionAndTheTelemetryPipeAreInherited) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "fds", kDescriptorProbe).status, 201);
    auto r = d->invoke("fds");
    json fds = ok_result(r);
    ASSERT_TRUE(fds.is_object()) << r.body;
    EXPECT_EQ(fds["0"], "/dev/null");
    EXPECT_TRUE(fds.contains("1") && fds.contains("2")) << r.body;
    for (const auto& [fd, target] : fds.items()) {
        if (fd == "0" || fd == "1" || fd == "2") continue;
        // The directory listing's own descriptor is closed by the time it is read back.
        if (target == ENOENT) continue;
        // The runtime's telemetry descriptor (_LAMBDA_TELEMETRY_LOG_FD): a pipe to the daemon.
        if (fd == "4" && target.is_string() && target.get<std::string>().rfind("pipe:", 0) == 0) continue;
        EXPECT_TRUE(target.is_string() && target.get<std::string>().rfind("socket:", 0) == 0)
            << "fd " << fd << " -> " << target << " was inherited by the function";
    }
    EXPECT_LE(fds.size(), 8u) << r.body;

    expect_still_serving(*d);
}

}  // namespace
}  // namespace funcd::testing::sandbox
