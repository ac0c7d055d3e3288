#include "funcd/sandbox/namespace_launcher.hpp"
#include "funcd/sandbox/process_memory.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <initializer_list>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <system_error>

#include "funcd/common/syscall_error.hpp"
#include "funcd/sandbox/capabilities.hpp"
#include "funcd/sandbox/fd_placement.hpp"
#include "funcd/sandbox/mounts.hpp"
#include "funcd/sandbox/network.hpp"
#include "funcd/sandbox/process_launcher.hpp"
#include "funcd/sandbox/rlimits.hpp"
#include "funcd/sandbox/sandbox_child.hpp"
#include "funcd/sandbox/sandbox_init.hpp"
#include "funcd/sandbox/sync_channel.hpp"
#include "funcd/sandbox/template_protocol.hpp"
#include "funcd/sandbox/uid_pool.hpp"
#include "funcd/sandbox/user_namespace.hpp"

namespace funcd {
namespace {

namespace fs = std::filesystem;

// How long the parent waits for the child's next report (the listener, a failure, or
// exec). A child normally gets from clone to exec in a few milliseconds of CPU; the bound
// only exists so a stuck child cannot hold a launcher thread for good. It is that large
// for bursts: with hundreds of runtimes initialising at once on a 2-vCPU host, the
// scheduler stretches a child's few milliseconds by the length of its run queue (a
// quarter second measured with 8 launcher threads while the host was otherwise busy).
constexpr int kChildReportTimeoutMs = 5000;
// Lambda's function user.
constexpr const char* kInsideUserName = "sbx_user1051";
constexpr int kOverflowId = 65534;  // nobody/nogroup, what unmapped ids show up as

using Clock = std::chrono::steady_clock;

std::chrono::microseconds micros(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

// Moves `fd` off kTelemetryLogFd: the child puts the telemetry pipe there after stdio, so
// a descriptor it still needs after that step must have another number.
UniqueFd off_telemetry_fd(UniqueFd fd, const char* what) {
    if (fd.get() != kTelemetryLogFd) return fd;
    UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, kTelemetryLogFd + 1));
    if (!moved) throw_syscall_error("sandbox", errno, std::string("fcntl(F_DUPFD_CLOEXEC) for ") + what);
    return moved;
}

// The lowest descriptor number above stdio that none of `taken` has: where the child puts
// the runtime's Runtime API connection (ChildPlan::runtime_api_fd). `taken` holds every
// descriptor the child still uses after that step, so it overwrites nothing it needs.
int lowest_free_fd(std::initializer_list<int> taken) {
    int n = 3;
    while (std::find(taken.begin(), taken.end(), n) != taken.end()) ++n;
    return n;
}

// ---------------------------------------------------------------------------------------
// The parent.

class SandboxResources final : public WorkerResources {
public:
    SandboxResources(pid_t pid, UniqueFd pidfd, std::unique_ptr<WorkerCgroup> cgroup, UidLease uid)
        : pid_(pid), pidfd_(std::move(pidfd)), cgroup_(std::move(cgroup)), uid_(std::move(uid)), status_(pid) {}

    ~SandboxResources() override {
        kill_all();
        // The cgroup goes first (its destructor kills what is left and removes it),
        // the uid last: a uid is handed to the next worker only once nothing runs as it.
        cgroup_.reset();
        uid_.reset();
    }

    void signal_kill() override {
        // The worker is PID 1 of its namespace: when it dies the kernel kills every
        // other process in the namespace. Signalled through its pidfd, so a pid reused
        // after the worker was reaped is never hit.
        if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
            spdlog::warn("sandbox: pidfd_send_signal(worker {}, SIGKILL) failed: {} (errno {})", pid_,
                         std::strerror(errno), errno);
    }

    void kill_all() override {
        signal_kill();
        // The cgroup's own kill waits (1 ms steps) until it lists nothing.
        if (cgroup_) {
            try {
                cgroup_->kill_all();
            } catch (const std::exception& e) {
                spdlog::warn("sandbox: killing the cgroup of worker {} failed: {}", pid_, e.what());
            }
        }
    }

    std::optional<std::uint64_t> peak_memory_bytes() override {
        if (cgroup_) {
            if (auto peak = cgroup_->peak_memory_bytes()) return peak;
        }
        return status_.read();
    }

    bool out_of_memory() override { return cgroup_ && cgroup_->oom_killed(); }

private:
    pid_t pid_;
    UniqueFd pidfd_;
    std::unique_ptr<WorkerCgroup> cgroup_;
    UidLease uid_;
    ProcessPeakMemory status_;  // PID 1's peak: the fallback when there is no cgroup to ask
};

std::string passwd_text(const SandboxOptions& o) {
    return "root:x:0:0:root:/root:/sbin/nologin\n" + std::string(kInsideUserName) + ":x:" +
           std::to_string(o.inside_uid) + ":" + std::to_string(o.inside_gid) + "::/tmp:/sbin/nologin\n" +
           "nobody:x:" + std::to_string(kOverflowId) + ":" + std::to_string(kOverflowId) +
           ":nobody:/nonexistent:/sbin/nologin\n";
}

std::string group_text(const SandboxOptions& o) {
    return "root:x:0:\n" + std::string(kInsideUserName) + ":x:" + std::to_string(o.inside_gid) + ":\n" +
           "nogroup:x:" + std::to_string(kOverflowId) + ":\n";
}

fs::path default_root_mount_point(bool privileged) {
    if (privileged) return "/run/funcd/sandbox-root";
    std::error_code ec;
    fs::path tmp = fs::temp_directory_path(ec);
    if (ec) tmp = "/tmp";
    return tmp / ("funcd-sandbox-root-" + std::to_string(::geteuid()));
}

// The mount point must exist on the host (a tmp cleaner may have removed it) and be
// ours: a directory another user planted there, or a symlink, would let them choose
// where the worker's root lands.
void ensure_mount_point(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        if (errno != ENOENT) throw_syscall_error("sandbox", errno, "mkdir " + dir.string());
        std::error_code ec;
        fs::create_directories(dir.parent_path(), ec);
        if (ec) throw_syscall_error("sandbox", ec.value(), "mkdir " + dir.parent_path().string());
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw_syscall_error("sandbox", errno, "mkdir " + dir.string());
    }
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0) throw_syscall_error("sandbox", errno, "lstat " + dir.string());
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
        spdlog::error("sandbox: {} is not a directory owned by uid {}", dir.string(), ::geteuid());
        throw std::system_error(EPERM, std::generic_category(), "sandbox root mount point " + dir.string());
    }
}

// memfd_create's "this one may be executed" (linux/memfd.h, 6.3+). Without it a kernel
// with vm.memfd_noexec=1 makes the memfd non-executable; older kernels refuse the flag.
constexpr unsigned kMemfdExec = 0x0010U;
constexpr unsigned kMemfdFlags = MFD_CLOEXEC | MFD_ALLOW_SEALING;

// funcd-init as a read-only descriptor to execveat: a sealed memfd holding a copy of the
// program (one copy per daemon, its pages shared by every sandbox; /proc/1/exe then reads
// "/memfd:funcd-init (deleted)", no host path). Where the host forbids executable memfds
// (vm.memfd_noexec=2), the file itself, opened read-only.
UniqueFd load_init(const fs::path& program) {
    UniqueFd file(::open(program.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) throw_syscall_error("sandbox", errno, "open " + program.string());
    file = above_stdio(std::move(file), kSandboxInitName);
    UniqueFd memfd(::memfd_create(kSandboxInitName, kMemfdFlags | kMemfdExec));
    if (!memfd && errno == EINVAL) memfd.reset(::memfd_create(kSandboxInitName, kMemfdFlags));
    if (!memfd) {
        spdlog::warn("sandbox: memfd_create for {} failed: {} (errno {}); sandboxes exec {} itself",
                     kSandboxInitName, std::strerror(errno), errno, program.string());
        return file;
    }
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(file.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_syscall_error("sandbox", errno, "read " + program.string());
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            const ssize_t w = ::write(memfd.get(), buf + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0)
                throw_syscall_error("sandbox", w < 0 ? errno : EIO, "write to the memfd of " + program.string());
            done += w;
        }
    }
    if (::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
        throw_syscall_error("sandbox", errno, "sealing the memfd of " + program.string());
    // A read-only descriptor of the same file: exec refuses a file someone holds open for
    // writing (ETXTBSY), and the memfd itself is.
    const std::string self = "/proc/self/fd/" + std::to_string(memfd.get());
    UniqueFd readonly(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
    if (!readonly) throw_syscall_error("sandbox", errno, "reopening the memfd of " + program.string());
    return above_stdio(std::move(readonly), kSandboxInitName);
}

// SIGKILLs and reaps a child that will not become a worker.
void discard_child(pid_t pid, int pidfd) {
    if (::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
        spdlog::error("sandbox: pidfd_send_signal({}, SIGKILL) failed: {} (errno {})", pid, std::strerror(errno),
                      errno);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

}  // namespace

SandboxOptions SandboxOptions::for_daemon(pid_t pid) {
    // 4096 blocks of 65,536 uids above 100,000 (the usual range of subordinate ids
    // starts at 100,000): up to 268,535,807, well inside 32-bit uids.
    constexpr uid_t kFirstUid = 100000;
    constexpr uid_t kBlockSize = 65536;
    constexpr uid_t kBlocks = 4096;
    SandboxOptions o;
    o.uid_base = kFirstUid + (static_cast<uid_t>(pid) % kBlocks) * kBlockSize;
    o.uid_slots = 50000;
    return o;
}

NamespaceLauncher::NamespaceLauncher(SandboxOptions options, std::unique_ptr<CgroupManager> cgroups,
                                     SeccompPolicy seccomp)
    : options_(std::move(options)),
      cgroups_(std::move(cgroups)),
      seccomp_(std::move(seccomp)),
      uids_(std::make_shared<UidPool>(options_.uid_base, options_.uid_slots)),
      privileged_(::geteuid() == 0),
      last_cap_(last_capability()) {
    root_mount_point_ =
        options_.root_mount_point.empty() ? default_root_mount_point(privileged_) : options_.root_mount_point;
    std::string looked;
    const fs::path init = find_sandbox_init(options_.init_program, &looked);
    if (init.empty()) {
        spdlog::error("sandbox: {} not found (looked at {})", kSandboxInitName, looked);
        throw std::runtime_error(std::string("sandbox: ") + kSandboxInitName + " not found (looked at " + looked + ")");
    }
    init_ = off_telemetry_fd(load_init(init), "funcd-init");
    spdlog::debug("sandbox: PID 1 of every sandbox is {}", init.string());
    if (options_.runtime_templates && !options_.runtime_dir.empty()) {
        const fs::path module =
            options_.template_module.empty() ? init.parent_path() / kTemplateModuleName : options_.template_module;
        if (::access(module.c_str(), R_OK) == 0) {
            const std::string inside = paths_for({}, options_.runtime_dir, {}).runtime_root;
            templates_ = std::make_unique<RuntimeTemplates>(TemplateFiles{module, options_.runtime_dir, inside}, seccomp_,
                                                            init_.get(), cgroups_.get());
        } else {
            spdlog::warn("sandbox: runtime templates off: {} not found", module.string());
        }
    }
    if (!cgroups_)
        unenforced_.push_back("no writable cgroup hierarchy: memory_mb, the pids limit and CPU weight are not enforced");
    if (!privileged_)
        unenforced_.push_back(
            "not root: every worker runs as the daemon's uid (no per-worker uid, no RLIMIT_NPROC) and keeps its "
            "supplementary groups");
}

NamespaceLauncher::~NamespaceLauncher() = default;

bool NamespaceLauncher::hold_template(const TemplateKey& key) {
    if (!templates_) return false;
    templates_->hold(key);
    return true;
}

void NamespaceLauncher::release_template(const TemplateKey& key) {
    if (templates_) templates_->release(key);
}

std::vector<std::pair<std::string, pid_t>> NamespaceLauncher::templates() const {
    return templates_ ? templates_->list() : std::vector<std::pair<std::string, pid_t>>{};
}

SandboxPaths NamespaceLauncher::paths_for(const std::filesystem::path&, const std::filesystem::path&,
                                          const std::filesystem::path&) const {
    // /opt exists in every sandbox, empty without layers, as on Lambda.
    return {"/var/task", "/var/runtime", "/opt"};
}

LaunchedWorker NamespaceLauncher::launch(const WorkerSpec& spec) {
    const auto started = Clock::now();
    if (spec.argv.empty()) throw std::system_error(EINVAL, std::generic_category(), "sandbox: empty argv");
    ensure_mount_point(root_mount_point_);

    // Host ids: a uid of our own per worker when we may map any uid, else our own.
    IdMapping ids;
    ids.inside_uid = options_.inside_uid;
    ids.inside_gid = options_.inside_gid;
    ids.privileged = privileged_;
    UidLease lease;
    if (spec.host_identity && privileged_) {
        // An output directory's owner: what the worker writes there must be theirs.
        ids.host_uid = spec.host_identity->first;
        ids.host_gid = spec.host_identity->second;
    } else if (privileged_) {
        auto uid = uids_->acquire();
        if (!uid) {
            spdlog::error("sandbox: all {} worker uids from {} are in use", options_.uid_slots, options_.uid_base);
            throw std::system_error(EAGAIN, std::generic_category(), "sandbox: no free worker uid");
        }
        lease = UidLease(uids_, *uid);
        ids.host_uid = *uid;
        ids.host_gid = static_cast<gid_t>(*uid);
    } else {
        ids.host_uid = ::geteuid();
        ids.host_gid = ::getegid();
    }

    // The cgroup exists before the child does, so a failure here costs no process.
    std::unique_ptr<WorkerCgroup> cgroup;
    if (cgroups_) {
        CgroupLimits limits;
        limits.memory_mb = spec.memory_mb;
        limits.memory_bytes = static_cast<std::uint64_t>(std::max(spec.memory_mb, 1)) << 20;
        // The daemon's pid keeps the names of two daemons on one host (or a restarted one
        // and its predecessor's leftovers) apart: the cgroup parent is shared.
        const std::string id = worker_cgroup_id(::getpid(), spec.function_name, spec.version,
                                                next_worker_.fetch_add(1, std::memory_order_relaxed));
        try {
            cgroup = cgroups_->create(id, limits);
        } catch (const std::exception& e) {
            spdlog::error("sandbox: creating cgroup {} for {} failed: {}", id, spec.function_name, e.what());
            throw;
        }
    }

    // Descriptors. All close-on-exec, and all above the standard ones, which the child
    // replaces late. Children cloned meanwhile by other threads get copies of them all;
    // each child's first step closes every copy it does not own (step_daemon_descriptors).
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        throw_syscall_error("sandbox", errno, "socketpair");
    UniqueFd parent_end(pair[0]), child_end(pair[1]);
    parent_end = above_stdio(std::move(parent_end), "the sync socket");
    child_end = off_telemetry_fd(above_stdio(std::move(child_end), "the sync socket"), "the sync socket");
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_syscall_error("sandbox", errno, "pipe2");
    UniqueFd out_read(pipe_fds[0]), out_write(pipe_fds[1]);
    out_write = above_stdio(std::move(out_write), "the output pipe");
    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!dev_null) throw_syscall_error("sandbox", errno, "open /dev/null");
    dev_null = above_stdio(std::move(dev_null), "/dev/null");
    int telemetry_fds[2];
    if (::pipe2(telemetry_fds, O_CLOEXEC) != 0) throw_syscall_error("sandbox", errno, "pipe2 (telemetry)");
    UniqueFd telemetry_read(telemetry_fds[0]), telemetry_write(telemetry_fds[1]);
    telemetry_write = above_stdio(std::move(telemetry_write), "the telemetry pipe");

    UniqueFd listener;
    std::string api_env;
    if (spec.host_network) {
        listener = listen_loopback_ephemeral();
        api_env = "AWS_LAMBDA_RUNTIME_API=127.0.0.1:" + std::to_string(local_port(listener.get()));
    } else {
        api_env = std::string("AWS_LAMBDA_RUNTIME_API=") + kRuntimeApiAddress;
    }

    int api_pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, api_pair) != 0)
        throw_syscall_error("sandbox", errno, "socketpair");
    UniqueFd api_ours(api_pair[0]), api_theirs(api_pair[1]);
    api_theirs = off_telemetry_fd(above_stdio(std::move(api_theirs), "the runtime's Runtime API connection"),
                                  "the runtime's Runtime API connection");

    // Everything the child reads, built now: after clone it may not allocate.
    ChildPlan plan;
    plan.runtime_api = api_theirs.get();
    plan.sync = child_end.get();
    plan.dev_null = dev_null.get();
    plan.output = out_write.get();
    plan.telemetry = telemetry_write.get();
    int status_fds[2];
    if (::pipe2(status_fds, O_CLOEXEC) != 0) throw_syscall_error("sandbox", errno, "pipe2 (exit status)");
    UniqueFd status_read(status_fds[0]), status_write(status_fds[1]);
    status_write = off_telemetry_fd(above_stdio(std::move(status_write), "the exit status pipe"), "the exit status pipe");
    // Non-blocking for the reader: an init that was killed writes nothing, and a reader
    // on the event loop must then get EAGAIN, not wait for the last writer to go.
    if (::fcntl(status_read.get(), F_SETFL, O_NONBLOCK) != 0)
        throw_syscall_error("sandbox", errno, "fcntl(O_NONBLOCK) (exit status)");
    plan.exit_status = status_write.get();
    plan.private_network = !spec.host_network;
    // Two descriptor numbers the child replaces with the directories it binds.
    UniqueFd code_slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!code_slot) throw_syscall_error("sandbox", errno, "open /dev/null");
    code_slot = above_stdio(std::move(code_slot), "/dev/null");
    UniqueFd runtime_slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!runtime_slot) throw_syscall_error("sandbox", errno, "open /dev/null");
    runtime_slot = above_stdio(std::move(runtime_slot), "/dev/null");
    // Two for the detached /tmp and /dev/shm the child makes (mounts.hpp).
    UniqueFd tmp_slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!tmp_slot) throw_syscall_error("sandbox", errno, "open /dev/null");
    tmp_slot = above_stdio(std::move(tmp_slot), "/dev/null");
    UniqueFd shm_slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!shm_slot) throw_syscall_error("sandbox", errno, "open /dev/null");
    shm_slot = above_stdio(std::move(shm_slot), "/dev/null");
    // One more slot per extra bind.
    std::vector<UniqueFd> bind_slots;
    std::vector<std::string> bind_dirs;
    for (const auto& b : spec.binds) {
        UniqueFd slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!slot) throw_syscall_error("sandbox", errno, "open /dev/null");
        bind_slots.push_back(above_stdio(std::move(slot), "/dev/null"));
        bind_dirs.push_back(b.host.string());
    }
    // The layers' view is opened like the extra binds, into the last slot.
    if (!spec.opt_dir.empty()) {
        UniqueFd slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!slot) throw_syscall_error("sandbox", errno, "open /dev/null");
        bind_slots.push_back(above_stdio(std::move(slot), "/dev/null"));
        bind_dirs.push_back(spec.opt_dir.string());
    }
    plan.init = init_.get();
    plan.own = {child_end.get(), dev_null.get(), out_write.get(), telemetry_write.get(), status_write.get(), code_slot.get(),
                runtime_slot.get(), api_theirs.get(), init_.get(), tmp_slot.get(), shm_slot.get()};
    for (const auto& slot : bind_slots) plan.own.push_back(slot.get());
    std::sort(plan.own.begin(), plan.own.end());
    plan.code_dir = spec.code_dir.string();
    plan.runtime_dir = spec.runtime_dir.string();
    plan.code_slot = code_slot.get();
    plan.runtime_slot = runtime_slot.get();
    for (std::size_t i = 0; i < bind_slots.size(); ++i) {
        plan.bind_dirs.push_back(bind_dirs[i]);
        plan.bind_slots.push_back(bind_slots[i].get());
    }
    RootSpec root{root_mount_point_, spec.code_dir, spec.runtime_dir, code_slot.get(), runtime_slot.get(),
                  spec.ephemeral_storage_mb, tmp_slot.get(), shm_slot.get(), passwd_text(options_),
                  group_text(options_)};
    for (std::size_t i = 0; i < spec.binds.size(); ++i)
        root.binds.push_back({spec.binds[i].host, spec.binds[i].inside, spec.binds[i].writable, bind_slots[i].get()});
    if (!spec.opt_dir.empty()) {
        root.opt_dir = spec.opt_dir;
        root.opt_fd = bind_slots.back().get();
    }
    plan.root = plan_root(root);
    plan.rlimits = plan_rlimits(spec.ephemeral_storage_mb, privileged_);
    plan.ids = ids;
    plan.last_cap = last_cap_;
    plan.seccomp = &seccomp_;
    plan.env = spec.env;
    plan.env.push_back(api_env);
    plan.runtime_api_fd = lowest_free_fd({kTelemetryLogFd, plan.sync, plan.exit_status, plan.init});
    plan.env.push_back(std::string(kRuntimeApiFdVariable) + "=" + std::to_string(plan.runtime_api_fd));
    plan.env.push_back(std::string(kTelemetryFdVariable) + "=" + std::to_string(kTelemetryLogFd));
    // funcd-init <sync> <exit-status> <runtime-api> <program> [arguments...]
    plan.init_args = {kSandboxInitName, std::to_string(child_end.get()), std::to_string(status_write.get()),
                      std::to_string(plan.runtime_api_fd)};
    for (auto& a : plan.init_args) plan.argv.push_back(a.data());
    for (const auto& a : spec.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
    plan.argv.push_back(nullptr);
    for (auto& e : plan.env) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);
    const auto prepared = Clock::now();

    // From a template when the spec names one that can be had (runtime_template.hpp);
    // otherwise, and whenever the template fails, the daemon clones the child itself.
    long ret = -1;
    int pidfd_raw = -1;
    bool placed = false;  // already in its cgroup
    bool forked = false;  // by a template
    std::unique_ptr<CgroupThreadStay> stay;
    const auto cloning = Clock::now();
    if (spec.from_template && templates_) {
        std::string why;
        if (auto from = templates_->get(*spec.from_template, &why)) {
            plan.finish = ChildFinish::fork_runtime;
            // The sync socket first: the template reports a failure to place the others on it.
            const int fds[] = {child_end.get(),       dev_null.get(),     out_write.get(),
                               telemetry_write.get(), status_write.get(), api_theirs.get()};
            try {
                const TemplateFork f = from->fork_sandbox(plan, fds, cgroup.get());
                pidfd_raw = static_cast<int>(::syscall(SYS_pidfd_open, f.pid, 0));
                if (pidfd_raw < 0) {
                    const int err = errno;
                    ::kill(f.pid, SIGKILL);  // our child, not yet reaped: the pid is still its own
                    ::waitpid(f.pid, nullptr, 0);
                    throw_syscall_error("sandbox", err, "pidfd_open of a template's clone");
                }
                ret = f.pid;
                placed = f.in_cgroup;
                forked = true;
            } catch (const std::exception& e) {
                spdlog::warn("sandbox: {} starts without its template: {}", spec.function_name, e.what());
                plan.finish = ChildFinish::exec_init;
            }
        } else {
            spdlog::debug("sandbox: {} starts without a template: {}", spec.function_name, why);
        }
    }
    if (!forked) {
        // The child is born in its cgroup where the kernel allows it: moving a process later
        // waits for an RCU grace period (the kernel's threadgroup lock), milliseconds on an
        // idle host and the largest part of a cold start. On v2 clone3 takes a cgroup
        // directory fd (CLONE_INTO_CGROUP); on v1 this thread steps into the cgroup for the
        // clone and out again (enter_calling_thread), which the kernel does without that lock.
        if (cgroup && cgroup->clone_into_fd() < 0) stay = cgroup->enter_calling_thread();

        // A raw clone, not fork(): fork cannot create namespaces, and unshare(CLONE_NEWUSER)
        // refuses a multi-threaded caller. With a null stack the child continues on a copy
        // of this stack, like after fork -- but without glibc's fork handlers, so it must
        // not touch anything libc-internal (malloc, stdio, locks) before exec. Another thread
        // may hold any of those locks right now.
        std::uint64_t flags = kSandboxNamespaceFlags | CLONE_PIDFD;
        if (!spec.host_network) flags |= CLONE_NEWNET;
        if (cgroup && cgroup->clone_into_fd() >= 0) {
            clone_args args{};
            args.flags = flags | CLONE_INTO_CGROUP;
            args.pidfd = reinterpret_cast<std::uintptr_t>(&pidfd_raw);
            args.exit_signal = SIGCHLD;
            args.cgroup = static_cast<std::uint64_t>(cgroup->clone_into_fd());
            ret = ::syscall(SYS_clone3, &args, sizeof args);
            if (ret == 0) {
                run_sandbox_child(plan);  // exec_init: returns only by exiting
                ::_exit(kSandboxStartFailed);
            }
            if (ret > 0) placed = true;
            // Older kernels (ENOSYS, E2BIG) and seccomp profiles that hide clone3: fall back.
            if (ret < 0 && errno != ENOSYS && errno != E2BIG && errno != EPERM)
                throw_syscall_error("sandbox", errno, "clone3 (namespaces for " + spec.function_name + ")");
        }
        if (ret < 0) {
            ret = ::syscall(SYS_clone, static_cast<unsigned long>(flags) | SIGCHLD, nullptr, &pidfd_raw, nullptr, 0);
            if (ret == 0) {
                run_sandbox_child(plan);  // exec_init: returns only by exiting
                ::_exit(kSandboxStartFailed);
            }
            if (ret < 0) throw_syscall_error("sandbox", errno, "clone (namespaces for " + spec.function_name + ")");
            placed = stay != nullptr;
        }
    }
    const auto cloned = Clock::now();
    const bool moved = cgroup && !placed;
    const auto pid = static_cast<pid_t>(ret);
    UniqueFd pidfd(pidfd_raw);
    child_end.reset();
    out_write.reset();
    dev_null.reset();

    auto fail = [&](int err, const std::string& what) -> void {
        spdlog::error("sandbox: worker {} of {}: {} failed: {} (errno {})", pid, spec.function_name, what,
                      std::strerror(err), err);
        discard_child(pid, pidfd.get());
        throw std::system_error(err, std::generic_category(), what);
    };

    // Out again at once: while this thread is inside, the worker's cgroup lists the daemon.
    if (stay && !stay->leave()) fail(EBUSY, "sandbox: leaving the cgroup of the new worker");
    // The child waits for the go byte, so nothing it does runs unmapped or uncontained.
    try {
        write_id_maps(pid, ids);
        if (moved) cgroup->add(pid);
    } catch (...) {
        discard_child(pid, pidfd.get());
        throw;
    }
    const auto placed_at = Clock::now();
    if (int err = parent_send_go(parent_end.get())) fail(err, "sandbox step 'sync' (send go)");
    // A runtime forked from a template gets its environment only now, from us: the
    // template never holds a function's variables.
    if (forked) {
        if (int err = send_template_message(parent_end.get(), encode_environment(plan.env), {}))
            fail(err, "sandbox: sending the environment");
    }

    for (;;) {
        auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
        ChildReport report =
            parent_receive(parent_end.get(), std::max<int>(0, kChildReportTimeoutMs - static_cast<int>(elapsed.count())));
        if (report.kind == ChildReport::Kind::fd) {
            if (listener) fail(EPROTO, "sandbox: unexpected second descriptor from the child");
            listener = std::move(report.fd);
            continue;
        }
        if (report.kind == ChildReport::Kind::failure) fail(report.error, "sandbox step '" + report.step + "'");
        if (report.kind == ChildReport::Kind::timeout)
            fail(ETIMEDOUT, "sandbox: waiting for the child (" + std::to_string(kChildReportTimeoutMs) + " ms)");
        if (report.kind == ChildReport::Kind::io_error) fail(report.error, "sandbox: reading the sync socket");
        // End-of-file: the child's end closed at exec. Without a listener it died first.
        if (!listener) fail(EPROTO, "sandbox: child ended before handing over the Runtime API socket");
        break;
    }

    UniqueFd resources_pidfd(::fcntl(pidfd.get(), F_DUPFD_CLOEXEC, 0));
    if (!resources_pidfd) fail(errno, "fcntl(F_DUPFD_CLOEXEC) of the pidfd");

    LaunchedWorker out;
    out.pid = pid;
    out.pidfd = std::move(pidfd);
    out.output = std::move(out_read);
    out.telemetry = std::move(telemetry_read);
    status_write.reset();
    out.exit_status = std::move(status_read);
    out.runtime_api_listener = std::move(listener);
    // A host-network worker's listener is on the host's loopback, where any local process
    // can connect. Every socket a worker's process creates belongs to the worker's host
    // uid (its own, from the uid pool), which no process outside the worker has: the
    // endpoint serves only connections from sockets of that uid.
    if (spec.host_network) out.runtime_api_peer_uid = ids.host_uid;
    out.runtime_api_connection = std::move(api_ours);
    out.resources = std::make_unique<SandboxResources>(pid, std::move(resources_pidfd), std::move(cgroup),
                                                       std::move(lease));
    const auto done = Clock::now();
    out.timings.prepare = micros(prepared - started);
    out.timings.spawn = micros(cloned - cloning);
    out.timings.place = micros(cloning - prepared) + micros(placed_at - cloned);
    out.timings.child = micros(done - placed_at);
    out.timings.total = micros(done - started);
    spdlog::debug("sandbox: {} worker pid {} exec'd after {} us (prepare {}, clone {}, ids and cgroup {}{}, child {})",
                  spec.function_name, pid, out.timings.total.count(), out.timings.prepare.count(),
                  out.timings.spawn.count(), out.timings.place.count(),
                  moved ? " with a cgroup move" : "", out.timings.child.count());
    return out;
}

bool NamespaceLauncher::supported(std::string* why) {
    // Probe with the same clone the launcher uses: user namespaces can be disabled
    // (user.max_user_namespaces = 0), forbidden to unprivileged users, or blocked by a
    // container runtime's seccomp profile, and each shows up as a clone error.
    unsigned long flags = kSandboxNamespaceFlags | CLONE_NEWNET | SIGCHLD;
    long ret = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0);
    if (ret == 0) ::_exit(0);
    if (ret < 0) {
        int err = errno;
        if (why) *why = std::string("clone with new user/pid/mount/net/ipc/uts/cgroup namespaces: ") + std::strerror(err);
        return false;
    }
    int status = 0;
    while (::waitpid(static_cast<pid_t>(ret), &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (why) *why = "the namespace probe child did not exit cleanly";
        return false;
    }
    return true;
}

}  // namespace funcd
