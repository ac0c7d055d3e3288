#include "funcd/sandbox/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

#include "funcd/common/syscall_error.hpp"
#include "funcd/common/text.hpp"
#include "funcd/common/unique_fd.hpp"

namespace funcd {
namespace {

// Lambda allocates CPU in proportion to memory and gives one full vCPU at 1769 MB.
constexpr std::uint64_t kMemoryMbPerVcpu = 1769;
// cgroup v2 cpu.weight: default 100, kernel range [1, 10000] (Documentation/admin-guide/cgroup-v2.rst).
constexpr std::uint64_t kCpuWeightDefault = 100;
constexpr std::uint64_t kCpuWeightMin = 1;
constexpr std::uint64_t kCpuWeightMax = 10000;
// cgroup v1 cpu.shares: default 1024, kernel range [2, 262144] (MIN_SHARES/MAX_SHARES in kernel/sched).
constexpr std::uint64_t kCpuSharesDefault = 1024;
constexpr std::uint64_t kCpuSharesMin = 2;
constexpr std::uint64_t kCpuSharesMax = 262144;

// A SIGKILLed process stays in cgroup.procs until it has finished exiting (freeing a large
// address space takes a while), and rmdir fails with EBUSY until then: both are retried.
constexpr int kKillRounds = 100;
constexpr int kRmdirAttempts = 100;
constexpr auto kRetryPause = std::chrono::milliseconds(1);

// A daemon's own cgroup, when it fences its workers' memory: this and its pid.
constexpr std::string_view kDaemonCgroupPrefix = "daemon-";

// Only the daemon (root) writes to worker cgroups; anyone may read their statistics.
constexpr mode_t kDirMode = 0755;

// ---- Small file helpers: cgroup files are tiny, read and written in one go. ----

// Returns 0 or errno. A cgroup write is a single write(): the kernel parses each write
// on its own, so a split write would be two (wrong) commands.
int write_file(const std::string& path, std::string_view data) noexcept {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int err = 0;
    ssize_t n;
    do {
        n = ::write(fd, data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        err = errno;
    else if (static_cast<std::size_t>(n) != data.size())
        err = EIO;
    ::close(fd);
    return err;
}

// The whole file, or nullopt with *err set.
std::optional<std::string> read_file(const std::string& path, int* err) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *err = errno;
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
    s = trim_view(s);
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// The value of `key` in a flat keyed file ("key value" per line: memory.events, memory.oom_control).
std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
    while (!text.empty()) {
        std::size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ')
            return parse_u64(line.substr(key.size() + 1));
        if (eol == std::string_view::npos) break;
        text.remove_prefix(eol + 1);
    }
    return std::nullopt;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    while (true) {
        std::size_t i = s.find(sep);
        if (i != 0 && !s.empty()) parts.push_back(s.substr(0, i));
        if (i == std::string_view::npos) break;
        s.remove_prefix(i + 1);
    }
    return parts;
}

bool contains(const std::vector<std::string_view>& v, std::string_view x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

// Creates `dir`; true when it now exists (created, or already there) and is writable.
bool make_dir(const std::string& dir, bool* existed = nullptr) {
    if (::mkdir(dir.c_str(), kDirMode) == 0) {
        if (existed) *existed = false;
        return true;
    }
    int e = errno;
    if (e == EEXIST) {
        if (existed) *existed = true;
        if (::access(dir.c_str(), W_OK) == 0) return true;
        e = errno;
        spdlog::info("cgroup: {} exists but is not writable: {} (errno {})", dir, std::strerror(e), e);
        return false;
    }
    spdlog::info("cgroup: mkdir {} failed: {} (errno {})", dir, std::strerror(e), e);
    return false;
}

void remove_dir(const std::string& dir) {
    int e = 0;
    for (int attempt = 0; attempt < kRmdirAttempts; ++attempt) {
        if (::rmdir(dir.c_str()) == 0) return;
        e = errno;
        if (e == ENOENT) return;
        if (e != EBUSY) break;
        std::this_thread::sleep_for(kRetryPause);
    }
    spdlog::warn("cgroup: rmdir {} failed: {} (errno {}); leaving it behind", dir, std::strerror(e), e);
}

std::vector<pid_t> read_pids(const std::string& procs_file, bool* ok) {
    std::vector<pid_t> pids;
    int err = 0;
    auto text = read_file(procs_file, &err);
    *ok = text.has_value();
    if (!text) {
        if (err != ENOENT)
            spdlog::warn("cgroup: reading {} failed: {} (errno {})", procs_file, std::strerror(err), err);
        return pids;
    }
    for (std::string_view line : split(*text, '\n'))
        if (auto v = parse_u64(line)) pids.push_back(static_cast<pid_t>(*v));
    return pids;
}

// SIGKILLs what cgroup.procs lists until it lists nothing: a process may fork between the
// read and the kill, so one pass is not enough. Stopped processes need no resume: SIGKILL
// is acted on by a stopped task. (Without cgroup.kill or a freezer a pid listed here can in
// principle exit and be reused before the kill; the window is microseconds.)
void kill_listed(const std::string& procs_file) {
    const pid_t self = ::getpid();
    for (int round = 0; round < kKillRounds; ++round) {
        bool ok = false;
        std::vector<pid_t> pids = read_pids(procs_file, &ok);
        if (!ok || pids.empty()) return;
        for (pid_t pid : pids) {
            // On v1 a daemon thread inside a worker's cgroup (enter_calling_thread) lists
            // the daemon itself. The stay ends before any kill, but if it could not, the
            // cost must be a cgroup left behind, not the daemon.
            if (pid == self) {
                spdlog::error("cgroup: {} lists the daemon itself (pid {}); not killing it", procs_file, pid);
                continue;
            }
            if (::kill(pid, SIGKILL) != 0 && errno != ESRCH) {
                int e = errno;
                spdlog::warn("cgroup: kill({}, SIGKILL) from {} failed: {} (errno {})", pid, procs_file,
                             std::strerror(e), e);
            }
        }
        if (pids.size() == 1 && pids[0] == self) return;
        std::this_thread::sleep_for(kRetryPause);
    }
    spdlog::warn("cgroup: {} still lists processes after {} kill rounds", procs_file, kKillRounds);
}

// ---- /proc/self/mountinfo ----

struct Mount {
    std::string root;         // path inside the filesystem that is mounted
    std::string mount_point;  // where
    std::string fstype;
    std::string super_options;
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
            out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::vector<Mount> cgroup_mounts() {
    std::vector<Mount> mounts;
    int err = 0;
    auto text = read_file("/proc/self/mountinfo", &err);
    if (!text) {
        spdlog::warn("cgroup: reading /proc/self/mountinfo failed: {} (errno {})", std::strerror(err), err);
        return mounts;
    }
    for (std::string_view line : split(*text, '\n')) {
        // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
        std::vector<std::string_view> f = split(line, ' ');
        auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
        if (f.size() < 5 || dash == f.end() || f.end() - dash < 4) continue;
        std::string_view fstype = dash[1];
        if (fstype != "cgroup" && fstype != "cgroup2") continue;
        mounts.push_back(Mount{unescape(f[3]), unescape(f[4]), std::string(fstype), std::string(dash[3])});
    }
    return mounts;
}

// ---- leftovers of daemons that are gone ----

// True when no process has this pid (a pid reused since the daemon died counts as alive:
// its leftovers wait for a later start rather than risk another daemon's workers).
bool pid_gone(pid_t pid) { return pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH; }

// The cgroups under `parent` whose name `owner` maps to a daemon pid that is gone.
template <class Owner>
std::vector<std::string> dead_daemons_entries(const std::string& parent, Owner owner) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
        if (!entry.is_directory(ec)) continue;
        const std::string name = entry.path().filename().string();
        if (auto pid = owner(name); pid && pid_gone(*pid)) out.push_back(name);
    }
    if (ec) spdlog::warn("cgroup: listing {} failed: {} (errno {})", parent, ec.message(), ec.value());
    return out;
}

// The worker cgroups under `parent` whose daemon is gone.
std::vector<std::string> dead_daemons_cgroups(const std::string& parent) {
    return dead_daemons_entries(parent, [](std::string_view name) { return worker_cgroup_owner(name); });
}

// The daemon cgroups (see fence_memory) under `parent` whose daemon is gone.
std::vector<std::string> dead_daemons_groups(const std::string& parent) {
    return dead_daemons_entries(parent, [](std::string_view name) { return daemon_cgroup_owner(name); });
}

// The child cgroups of `dir`, as paths.
std::vector<std::string> child_cgroups(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        if (entry.is_directory(ec)) out.push_back(entry.path().string());
    if (ec && ec.value() != ENOENT)
        spdlog::warn("cgroup: listing {} failed: {} (errno {})", dir, ec.message(), ec.value());
    return out;
}

// Kills what runs in each child cgroup of `dir` and removes it. Workers' cgroups have no
// children of their own (the sandbox mounts no cgroup filesystem). Returns how many went.
std::size_t remove_child_cgroups(const std::string& dir) {
    std::size_t removed = 0;
    for (const std::string& child : child_cgroups(dir)) {
        kill_listed(child + "/cgroup.procs");
        remove_dir(child);
        if (::access(child.c_str(), F_OK) != 0) ++removed;
    }
    return removed;
}

// Creates a daemon's own cgroup; 0 or errno. *existed: it was there already.
int make_daemon_dir(const std::string& dir, bool* existed) {
    *existed = false;
    if (::mkdir(dir.c_str(), kDirMode) == 0) return 0;
    const int e = errno;
    if (e != EEXIST) return e;
    *existed = true;
    return 0;
}

// ---- cgroup v2 ----

// Writes one limit. A required one that fails is an error; an optional one may be
// missing on this kernel (ENOENT: e.g. no swap accounting) or refused, which is logged.
void set_limit(const std::string& dir, const char* file, const std::string& value, bool required) {
    std::string path = dir + "/" + file;
    int e = write_file(path, value);
    if (e == 0) return;
    if (required) throw_syscall_error("cgroup", e, "writing " + value + " to " + path);
    if (e == ENOENT)
        spdlog::debug("cgroup: {} not available; not set", path);
    else
        spdlog::warn("cgroup: writing {} to {} failed: {} (errno {})", value, path, std::strerror(e), e);
}

class CgroupV2 final : public WorkerCgroup {
public:
    explicit CgroupV2(std::string dir) : dir_(std::move(dir)) {}

    ~CgroupV2() override {
        if (created_) {
            kill_all();
            fd_.reset();
            remove_dir(dir_);
        }
    }

    void create(const CgroupLimits& limits, bool cpu) {
        bool existed = false;
        if (::mkdir(dir_.c_str(), kDirMode) != 0) {
            int e = errno;
            if (e != EEXIST) throw_syscall_error("cgroup", e, "mkdir " + dir_);
            existed = true;
        }
        created_ = true;
        if (existed) {
            spdlog::warn("cgroup: {} already existed (left by an earlier run?); reusing it", dir_);
            kill_all();
        }
        set("memory.max", std::to_string(limits.memory_bytes), true);
        // Only present when swap is accounted; without it there is nothing to switch off.
        set("memory.swap.max", "0", false);
        // On OOM the whole worker goes, not one process of it: a runtime missing a child
        // (or the child missing its runtime) would only fail later in stranger ways.
        set("memory.oom.group", "1", false);
        set("pids.max", std::to_string(limits.pids_max), true);
        // Weight, not cpu.max: a hard quota throttles a burst for the rest of each period,
        // which shows up as tail latency even on an idle host.
        if (cpu) set("cpu.weight", std::to_string(cpu_weight_v2(limits.memory_mb)), false);
        fd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd_) {
            int e = errno;
            spdlog::warn("cgroup: open {} failed: {} (errno {}); no CLONE_INTO_CGROUP", dir_, std::strerror(e), e);
        }
    }

    void add(pid_t pid) override {
        if (int e = write_file(dir_ + "/cgroup.procs", std::to_string(pid)); e != 0)
            throw_syscall_error("cgroup", e, "moving pid " + std::to_string(pid) + " into " + dir_);
    }

    void kill_all() override {
        if (!has_kill_.load(std::memory_order_relaxed)) {
            kill_listed(dir_ + "/cgroup.procs");
            return;
        }
        // cgroup.kill (5.14+) kills every process atomically with respect to forks.
        int e = write_file(dir_ + "/cgroup.kill", "1");
        if (e == 0) return;
        if (e == ENOENT) {
            has_kill_.store(false, std::memory_order_relaxed);
        } else {
            spdlog::warn("cgroup: writing {}/cgroup.kill failed: {} (errno {})", dir_, std::strerror(e), e);
        }
        kill_listed(dir_ + "/cgroup.procs");
    }

    std::optional<std::uint64_t> peak_memory_bytes() override {
        int err = 0;
        if (has_peak_.load(std::memory_order_relaxed)) {
            // memory.peak: 5.19+.
            if (auto t = read_file(dir_ + "/memory.peak", &err)) return parse_u64(*t);
            if (err != ENOENT) {
                spdlog::warn("cgroup: reading {}/memory.peak failed: {} (errno {})", dir_, std::strerror(err), err);
                return std::nullopt;
            }
            has_peak_.store(false, std::memory_order_relaxed);
        }
        // Older kernels only tell the current use: keep the highest we have seen.
        auto t = read_file(dir_ + "/memory.current", &err);
        if (!t) {
            spdlog::warn("cgroup: reading {}/memory.current failed: {} (errno {})", dir_, std::strerror(err), err);
            std::uint64_t seen = seen_max_.load(std::memory_order_relaxed);
            return seen ? std::optional(seen) : std::nullopt;
        }
        std::uint64_t now = parse_u64(*t).value_or(0);
        std::uint64_t seen = seen_max_.load(std::memory_order_relaxed);
        while (now > seen && !seen_max_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
        }
        return std::max(seen, now);
    }

    bool oom_killed() override {
        int err = 0;
        auto t = read_file(dir_ + "/memory.events", &err);
        if (!t) {
            spdlog::warn("cgroup: reading {}/memory.events failed: {} (errno {})", dir_, std::strerror(err), err);
            return false;
        }
        return keyed_value(*t, "oom_kill").value_or(0) > 0;
    }

    int clone_into_fd() const override { return fd_.get(); }
    std::vector<std::filesystem::path> directories() const override { return {dir_}; }

private:
    void set(const char* file, const std::string& value, bool required) {
        set_limit(dir_, file, value, required);
    }

    std::string dir_;
    UniqueFd fd_;
    bool created_ = false;
    // Probed on first use and remembered; the pool may read usage from another thread
    // than the one that kills.
    std::atomic<bool> has_kill_{true};
    std::atomic<bool> has_peak_{true};
    std::atomic<std::uint64_t> seen_max_{0};
};

// Makes memory, pids (and cpu when offered) available to the children of `dir`; defined below.
bool enable_controllers(const std::string& dir, bool* cpu);

class CgroupV2Manager final : public CgroupManager {
public:
    CgroupV2Manager(std::string parent, bool cpu) : parent_(std::move(parent)), workers_(parent_), cpu_(cpu) {}

    ~CgroupV2Manager() override {
        // Every worker's cgroup is gone by now (each worker's resources remove theirs).
        if (fence_) remove_dir(workers_);
    }

    std::unique_ptr<WorkerCgroup> create(const std::string& id, const CgroupLimits& limits) override {
        auto cg = std::make_unique<CgroupV2>(workers_ + "/" + id);
        cg->create(limits, cpu_);  // on a throw, cg's destructor removes what was made
        return cg;
    }

    std::string describe() const override {
        return "cgroup v2 at " + workers_ + (cpu_ ? " (memory, pids, cpu)" : " (memory, pids)") +
               (fence_ ? ", workers' memory fenced at " + std::to_string(*fence_ >> 20) + " MB" : "");
    }

    bool fence_memory(std::uint64_t memory_bytes) override {
        const std::string dir = parent_ + "/" + daemon_cgroup_name(::getpid());
        const std::string limit = std::to_string(memory_bytes);
        if (fence_) {
            if (int e = write_file(dir + "/memory.max", limit); e != 0) {
                spdlog::warn("cgroup: changing the workers' memory fence: writing {} to {}/memory.max failed: {} "
                             "(errno {})",
                             limit, dir, std::strerror(e), e);
                return false;
            }
            fence_ = memory_bytes;
            return true;
        }
        bool existed = false;
        if (int e = make_daemon_dir(dir, &existed); e != 0) {
            spdlog::warn("cgroup: cannot fence the workers' memory: mkdir {} failed: {} (errno {})", dir,
                         std::strerror(e), e);
            return false;
        }
        // Left by an earlier daemon that had this pid: its workers are not ours.
        if (existed) {
            spdlog::warn("cgroup: {} already existed (left by an earlier daemon with this pid?); emptying it", dir);
            if (write_file(dir + "/cgroup.kill", "1") != 0) kill_listed(dir + "/cgroup.procs");
            remove_child_cgroups(dir);
        }
        bool cpu = false;
        if (!enable_controllers(dir, &cpu)) {
            spdlog::warn("cgroup: cannot fence the workers' memory: the memory and pids controllers cannot be "
                         "handed to the children of {} (the cgroup lines above say why)",
                         dir);
            remove_dir(dir);
            return false;
        }
        if (int e = write_file(dir + "/memory.max", limit); e != 0) {
            spdlog::warn("cgroup: cannot fence the workers' memory: writing {} to {}/memory.max failed: {} (errno {})",
                         limit, dir, std::strerror(e), e);
            remove_dir(dir);
            return false;
        }
        workers_ = dir;
        cpu_ = cpu_ && cpu;
        fence_ = memory_bytes;
        return true;
    }

    std::optional<std::uint64_t> memory_fence() const override { return fence_; }

    std::size_t remove_dead_daemons_cgroups() override {
        std::size_t removed = 0;
        for (const std::string& id : dead_daemons_cgroups(parent_)) {
            const std::string dir = parent_ + "/" + id;
            if (write_file(dir + "/cgroup.kill", "1") != 0) kill_listed(dir + "/cgroup.procs");
            remove_dir(dir);
            if (::access(dir.c_str(), F_OK) != 0) ++removed;
        }
        for (const std::string& name : dead_daemons_groups(parent_)) {
            const std::string dir = parent_ + "/" + name;
            // cgroup.kill reaches the whole subtree at once (5.14+); older kernels kill
            // each worker's cgroup on its own.
            write_file(dir + "/cgroup.kill", "1");
            removed += remove_child_cgroups(dir);
            remove_dir(dir);
        }
        return removed;
    }

    static std::unique_ptr<CgroupManager> detect(const std::vector<Mount>& mounts, const std::string& name);

private:
    std::string parent_;   // funcd's cgroup
    std::string workers_;  // where workers' cgroups are made: parent_, or the daemon's own in it
    bool cpu_;
    std::optional<std::uint64_t> fence_;
};

std::vector<std::string_view> words(const std::optional<std::string>& text) {
    if (!text) return {};
    std::vector<std::string_view> out;
    for (std::string_view line : split(*text, '\n'))
        for (std::string_view w : split(line, ' ')) out.push_back(w);
    return out;
}

// Makes memory, pids (and cpu when offered) available to the children of `dir`. Writes
// only what is missing: a cgroup that holds processes refuses subtree_control writes
// ("no internal processes"), but one that already delegates them is usable as is.
bool enable_controllers(const std::string& dir, bool* cpu) {
    int err = 0;
    auto available_text = read_file(dir + "/cgroup.controllers", &err);
    if (!available_text) {
        spdlog::info("cgroup: reading {}/cgroup.controllers failed: {} (errno {})", dir, std::strerror(err), err);
        return false;
    }
    auto available = words(available_text);
    auto enabled_text = read_file(dir + "/cgroup.subtree_control", &err);
    if (!enabled_text)
        spdlog::info("cgroup: reading {}/cgroup.subtree_control failed: {} (errno {})", dir, std::strerror(err), err);
    auto enabled = words(enabled_text);
    *cpu = contains(available, "cpu");
    for (std::string_view c : {std::string_view("memory"), std::string_view("pids"), std::string_view("cpu")}) {
        bool needed = c != "cpu";
        if (!contains(available, c)) {
            if (needed) {
                spdlog::info("cgroup: {} has no {} controller (has: {})", dir, c, trim_view(*available_text));
                return false;
            }
            continue;
        }
        if (contains(enabled, c)) continue;
        std::string path = dir + "/cgroup.subtree_control";
        if (int e = write_file(path, "+" + std::string(c)); e != 0) {
            spdlog::info("cgroup: enabling {} in {} failed: {} (errno {})", c, path, std::strerror(e), e);
            if (needed) return false;
            *cpu = false;
        }
    }
    return true;
}

std::unique_ptr<CgroupManager> CgroupV2Manager::detect(const std::vector<Mount>& mounts, const std::string& name) {
    // The unified hierarchy: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified in hybrid mode.
    const Mount* mount = nullptr;
    for (const Mount& m : mounts) {
        if (m.fstype != "cgroup2") continue;
        if (!mount || m.mount_point == "/sys/fs/cgroup") mount = &m;
    }
    if (!mount) {
        spdlog::debug("cgroup: no cgroup2 mount");
        return nullptr;
    }
    int err = 0;
    auto root_controllers = read_file(mount->mount_point + "/cgroup.controllers", &err);
    if (!root_controllers) {
        spdlog::info("cgroup: reading {}/cgroup.controllers failed: {} (errno {})", mount->mount_point,
                     std::strerror(err), err);
        return nullptr;
    }
    auto have = words(root_controllers);
    if (!contains(have, "memory") || !contains(have, "pids")) {
        std::string_view listed = trim_view(*root_controllers);
        spdlog::info("cgroup: cgroup2 at {} lacks the memory or pids controller (has: {}); trying v1",
                     mount->mount_point, listed.empty() ? "none" : listed);
        return nullptr;
    }

    // Our own cgroup, relative to the mount's root ("0::/system.slice/funcd.service").
    std::string own = "/";
    if (auto self = read_file("/proc/self/cgroup", &err)) {
        for (std::string_view line : split(*self, '\n'))
            if (line.substr(0, 3) == "0::") own = std::string(line.substr(3));
    } else {
        spdlog::warn("cgroup: reading /proc/self/cgroup failed: {} (errno {})", std::strerror(err), err);
    }
    if (mount->root != "/" && own.rfind(mount->root, 0) == 0) own = own.substr(mount->root.size());
    if (own.empty() || own[0] != '/') own = "/" + own;

    // Workers cannot live below our own cgroup: it holds the daemon, and a cgroup with
    // processes cannot hand controllers to children. Its parent is an inner node (or the
    // root, which is exempt), so funcd's cgroup goes beside ours; the root is the fallback.
    std::vector<std::string> bases;
    if (own != "/") bases.push_back(std::filesystem::path(own).parent_path().string());
    bases.push_back("/");
    for (const std::string& base : bases) {
        std::string base_dir = mount->mount_point + (base == "/" ? "" : base);
        bool cpu = false;
        if (!enable_controllers(base_dir, &cpu)) continue;
        std::string parent = base_dir + "/" + name;
        if (!make_dir(parent)) continue;
        bool parent_cpu = false;
        if (!enable_controllers(parent, &parent_cpu)) continue;
        auto manager = std::make_unique<CgroupV2Manager>(parent, cpu && parent_cpu);
        spdlog::info("cgroup: using {}", manager->describe());
        return manager;
    }
    spdlog::info("cgroup: no writable place for funcd's cgroup under {}", mount->mount_point);
    return nullptr;
}

// ---- cgroup v1 ----

// One v1 hierarchy funcd uses.
struct V1Hierarchy {
    std::string controller;  // names the hierarchy in /proc/<pid>/cgroup ("memory", "pids", "cpu")
    std::string mount_point;
    std::string mount_root;  // the part of the hierarchy the mount shows ("/" unless a subtree)
};

// Where the calling thread is in `h`, as a directory under its mount point; empty when its
// cgroup is not under the mount (logged).
std::string own_thread_cgroup(const std::string& self_cgroup, const V1Hierarchy& h) {
    // "4:memory:/system.slice/funcd.service", "1:cpu,cpuacct:/": id, controllers, path.
    for (std::string_view line : split(self_cgroup, '\n')) {
        const std::size_t first = line.find(':');
        const std::size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
        if (second == std::string_view::npos) continue;
        if (!contains(split(line.substr(first + 1, second - first - 1), ','), h.controller)) continue;
        std::string path(line.substr(second + 1));
        if (h.mount_root != "/") {
            if (path.rfind(h.mount_root, 0) != 0) break;
            path = path.substr(h.mount_root.size());
        }
        return h.mount_point + (path == "/" ? "" : path);
    }
    spdlog::warn("cgroup: the calling thread's {} cgroup is not under {}", h.controller, h.mount_point);
    return {};
}

// Moving a thread group between cgroups takes the kernel's global threadgroup lock for
// writing, which waits for an RCU grace period (7-15 ms measured on an idle 2-vCPU VM;
// back-to-back moves within a grace period are cheap). Moving only the calling thread
// ("0" written to `tasks`) skips that lock (cgroup_procs_write_start: a single thread
// migrating itself cannot exit or exec meanwhile) and costs ~30 us; a process the thread
// clones then inherits the thread's cgroups.
class V1ThreadStay final : public CgroupThreadStay {
public:
    struct Move {
        std::string worker_tasks;  // the worker cgroup's tasks file in one hierarchy
        std::string home_tasks;    // where the thread was
        std::string root_tasks;    // the hierarchy's root: the way out if home is gone
    };

    explicit V1ThreadStay(std::vector<Move> moves) : moves_(std::move(moves)), tid_(::gettid()) {}
    ~V1ThreadStay() override { leave(); }

    // Enters every hierarchy; false (and back home) when one refuses.
    bool enter() {
        for (const Move& m : moves_) {
            if (int e = write_file(m.worker_tasks, "0"); e != 0) {
                spdlog::warn("cgroup: moving thread {} into {} failed: {} (errno {}); moving the worker instead",
                             tid_, m.worker_tasks, std::strerror(e), e);
                leave();
                return false;
            }
            ++entered_;
        }
        return true;
    }

    bool leave() noexcept override {
        // "0" is whoever writes: on another thread, name the one that entered (slower,
        // as it takes the global lock, but it moves the right thread).
        const bool same_thread = ::gettid() == tid_;
        char tid_text[16] = "0";
        if (!same_thread) {
            auto [end, ec] = std::to_chars(tid_text, tid_text + sizeof tid_text - 1, tid_);
            *end = '\0';
        }
        bool ok = true;
        for (; entered_ > 0; --entered_) {
            const Move& m = moves_[entered_ - 1];
            const int e = write_file(m.home_tasks, tid_text);
            if (e == 0) continue;
            const int e_root = write_file(m.root_tasks, tid_text);
            if (e_root == 0) {
                spdlog::error("cgroup: moving thread {} back to {} failed: {} (errno {}); moved it to {} instead",
                              tid_, m.home_tasks, std::strerror(e), e, m.root_tasks);
                continue;
            }
            spdlog::critical("cgroup: thread {} cannot leave {}: {} failed: {} (errno {}), {} failed: {} (errno {})",
                             tid_, m.worker_tasks, m.home_tasks, std::strerror(e), e, m.root_tasks,
                             std::strerror(e_root), e_root);
            ok = false;
        }
        return ok;
    }

private:
    std::vector<Move> moves_;
    pid_t tid_;
    std::size_t entered_ = 0;  // moves_[0, entered_) are done
};

class CgroupV1 final : public WorkerCgroup {
public:
    // One directory per hierarchy used (memory, pids, and cpu when there is one);
    // hierarchies mounted together share a directory.
    explicit CgroupV1(std::vector<std::pair<std::string, const V1Hierarchy*>> places)
        : places_(std::move(places)), memory_(places_.front().first) {}

    ~CgroupV1() override {
        if (dirs_.empty()) return;
        kill_all();
        for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) remove_dir(*it);
    }

    void create(const CgroupLimits& limits) {
        bool any_existed = false;
        for (const auto& [dir, hierarchy] : places_) {
            if (std::find(dirs_.begin(), dirs_.end(), dir) != dirs_.end()) continue;
            if (::mkdir(dir.c_str(), kDirMode) != 0) {
                int e = errno;
                if (e != EEXIST) throw_syscall_error("cgroup", e, "mkdir " + dir);
                any_existed = true;
            }
            dirs_.push_back(dir);
            hierarchies_.push_back(hierarchy);
        }
        if (any_existed) {
            spdlog::warn("cgroup: {} already existed (left by an earlier run?); reusing it", memory_);
            kill_all();
        }
        const std::string& pids = places_[1].first;
        std::string bytes = std::to_string(limits.memory_bytes);
        set_limit(memory_, "memory.limit_in_bytes", bytes, true);
        // memory+swap at the same figure means no swap at all. The file only exists with
        // swap accounting; it has to come after limit_in_bytes, which may not exceed it.
        set_limit(memory_, "memory.memsw.limit_in_bytes", bytes, false);
        set_limit(memory_, "memory.swappiness", "0", false);
        // Kernel socket buffers: v2 charges them to memory.max, v1 keeps them apart and
        // does not count them at all until this limit is set (31 loopback connections
        // with full, unread buffers pinned 320 MB at memory_mb 128 without it). Written
        // before any process is in the cgroup: only sockets created afterwards are charged.
        // The same figure as the memory limit: together, a worker holds at most twice
        // memory_mb, never an unbounded amount.
        set_limit(memory_, "memory.kmem.tcp.limit_in_bytes", bytes, false);
        set_limit(pids, "pids.max", std::to_string(limits.pids_max), true);
        // cpu.shares, not cfs_quota_us: a hard quota throttles a burst for the rest of the
        // period, which shows up as tail latency even on an idle host.
        if (places_.size() > 2)
            set_limit(places_[2].first, "cpu.shares", std::to_string(cpu_shares_v1(limits.memory_mb)), false);
    }

    void add(pid_t pid) override {
        std::string value = std::to_string(pid);
        for (const std::string& dir : dirs_)
            if (int e = write_file(dir + "/cgroup.procs", value); e != 0)
                throw_syscall_error("cgroup", e, "moving pid " + value + " into " + dir);
    }

    std::unique_ptr<CgroupThreadStay> enter_calling_thread() override {
        int err = 0;
        auto self = read_file("/proc/thread-self/cgroup", &err);
        if (!self) {
            spdlog::warn("cgroup: reading /proc/thread-self/cgroup failed: {} (errno {})", std::strerror(err), err);
            return nullptr;
        }
        std::vector<V1ThreadStay::Move> moves;
        for (std::size_t i = 0; i < dirs_.size(); ++i) {
            std::string home = own_thread_cgroup(*self, *hierarchies_[i]);
            if (home.empty()) return nullptr;
            moves.push_back({dirs_[i] + "/tasks", home + "/tasks", hierarchies_[i]->mount_point + "/tasks"});
        }
        auto stay = std::make_unique<V1ThreadStay>(std::move(moves));
        if (!stay->enter()) return nullptr;
        return stay;
    }

    std::vector<UniqueFd> open_thread_entries() const override {
        std::vector<UniqueFd> entries;
        for (const std::string& dir : dirs_) {
            const std::string tasks = dir + "/tasks";
            UniqueFd fd(::open(tasks.c_str(), O_WRONLY | O_CLOEXEC));
            if (!fd) {
                spdlog::warn("cgroup: open {} failed: {} (errno {})", tasks, std::strerror(errno), errno);
                return {};
            }
            entries.push_back(std::move(fd));
        }
        return entries;
    }

    void kill_all() override {
        // Every process of the worker is in the memory hierarchy (add() writes it first).
        if (!dirs_.empty()) kill_listed(memory_ + "/cgroup.procs");
    }

    std::optional<std::uint64_t> peak_memory_bytes() override {
        // Read after every invocation: the file stays open and pread(0) regenerates it,
        // which saves an open and a close on the invoke path.
        if (!peak_fd_) {
            const std::string path = memory_ + "/memory.max_usage_in_bytes";
            peak_fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!peak_fd_) {
                spdlog::warn("cgroup: open {} failed: {} (errno {})", path, std::strerror(errno), errno);
                return std::nullopt;
            }
        }
        char buf[64];
        const ssize_t n = ::pread(peak_fd_.get(), buf, sizeof buf, 0);
        if (n <= 0) {
            spdlog::warn("cgroup: reading {}/memory.max_usage_in_bytes failed: {} (errno {})", memory_,
                         std::strerror(errno), errno);
            return std::nullopt;
        }
        return parse_u64(std::string_view(buf, static_cast<std::size_t>(n)));
    }

    bool oom_killed() override {
        int err = 0;
        auto t = read_file(memory_ + "/memory.oom_control", &err);
        if (!t) {
            spdlog::warn("cgroup: reading {}/memory.oom_control failed: {} (errno {})", memory_, std::strerror(err),
                         err);
            return false;
        }
        // The oom_kill counter exists since 4.13; older kernels cannot tell.
        return keyed_value(*t, "oom_kill").value_or(0) > 0;
    }

    std::vector<std::filesystem::path> directories() const override {
        return {dirs_.begin(), dirs_.end()};
    }

private:
    funcd::UniqueFd peak_fd_;  // memory.max_usage_in_bytes, opened on first use

    // memory, pids, then cpu if any: the worker's directory and its hierarchy.
    std::vector<std::pair<std::string, const V1Hierarchy*>> places_;
    std::string memory_;
    std::vector<std::string> dirs_;                 // created (or found), in creation order
    std::vector<const V1Hierarchy*> hierarchies_;   // the hierarchy of each of dirs_
};

class CgroupV1Manager final : public CgroupManager {
public:
    // memory, pids, then cpu if there is one; `name` is funcd's cgroup in each.
    CgroupV1Manager(std::vector<V1Hierarchy> hierarchies, std::string name)
        : hierarchies_(std::move(hierarchies)), name_(std::move(name)) {}

    ~CgroupV1Manager() override {
        // Every worker's cgroup is gone by now (each worker's resources remove theirs).
        if (fence_)
            for (const std::string& dir : group_dirs()) remove_dir(dir);
    }

    std::unique_ptr<WorkerCgroup> create(const std::string& id, const CgroupLimits& limits) override {
        std::vector<std::pair<std::string, const V1Hierarchy*>> places;
        for (const V1Hierarchy& h : hierarchies_) places.emplace_back(place(h) + "/" + id, &h);
        auto cg = std::make_unique<CgroupV1>(std::move(places));
        cg->create(limits);  // on a throw, cg's destructor removes what was made
        return cg;
    }

    std::string describe() const override {
        return "cgroup v1 (memory at " + place(hierarchies_[0]) + ", pids at " + place(hierarchies_[1]) +
               (hierarchies_.size() > 2 ? ", cpu at " + place(hierarchies_[2]) + ")" : ", no cpu controller)") +
               (fence_ ? ", workers' memory fenced at " + std::to_string(*fence_ >> 20) + " MB" : "");
    }

    bool fence_memory(std::uint64_t memory_bytes) override {
        const std::string memory = top(hierarchies_[0]) + "/" + daemon_cgroup_name(::getpid());
        if (fence_) {
            if (!limit_group(memory, memory_bytes, "changing the workers' memory fence")) return false;
            fence_ = memory_bytes;
            return true;
        }
        group_ = daemon_cgroup_name(::getpid());
        std::vector<std::string> made;
        auto undo = [&] {
            for (auto it = made.rbegin(); it != made.rend(); ++it) remove_dir(*it);
            group_.clear();
        };
        for (const std::string& dir : group_dirs()) {
            bool existed = false;
            if (int e = make_daemon_dir(dir, &existed); e != 0) {
                spdlog::warn("cgroup: cannot fence the workers' memory: mkdir {} failed: {} (errno {})", dir,
                             std::strerror(e), e);
                undo();
                return false;
            }
            made.push_back(dir);
            // Left by an earlier daemon that had this pid: its workers are not ours.
            if (existed) {
                spdlog::warn("cgroup: {} already existed (left by an earlier daemon with this pid?); emptying it",
                             dir);
                remove_child_cgroups(dir);
            }
        }
        // The limit of a v1 cgroup covers its children only with use_hierarchy, which every
        // kernel since 5.11 has always on (a kernel without the file has nothing else);
        // older ones take it in a cgroup without children.
        int err = 0;
        auto hierarchical = read_file(memory + "/memory.use_hierarchy", &err);
        if (!hierarchical && err == ENOENT) hierarchical = "1";
        if (!hierarchical) {
            spdlog::warn("cgroup: cannot fence the workers' memory: reading {}/memory.use_hierarchy failed: {} "
                         "(errno {})",
                         memory, std::strerror(err), err);
            undo();
            return false;
        }
        if (trim_view(*hierarchical) != "1") {
            if (int e = write_file(memory + "/memory.use_hierarchy", "1"); e != 0) {
                spdlog::warn("cgroup: cannot fence the workers' memory: {}/memory.use_hierarchy is {} and writing 1 "
                             "failed: {} (errno {}); a limit there would not cover the workers",
                             memory, trim_view(*hierarchical), std::strerror(e), e);
                undo();
                return false;
            }
        }
        if (!limit_group(memory, memory_bytes, "cannot fence the workers' memory")) {
            undo();
            return false;
        }
        fence_ = memory_bytes;
        return true;
    }

    std::optional<std::uint64_t> memory_fence() const override { return fence_; }

    std::size_t remove_dead_daemons_cgroups() override {
        // The memory hierarchy lists every process of a worker (CgroupV1::add writes it
        // first); a hierarchy mounted with another shares its directories.
        std::size_t removed = 0;
        for (const std::string& id : dead_daemons_cgroups(top(hierarchies_[0]))) {
            kill_listed(top(hierarchies_[0]) + "/" + id + "/cgroup.procs");
            for (auto it = hierarchies_.rbegin(); it != hierarchies_.rend(); ++it) remove_dir(top(*it) + "/" + id);
            if (::access((top(hierarchies_[0]) + "/" + id).c_str(), F_OK) != 0) ++removed;
        }
        // A hierarchy may hold leftovers the memory one lost (an interrupted removal).
        for (std::size_t i = 1; i < hierarchies_.size(); ++i)
            for (const std::string& id : dead_daemons_cgroups(top(hierarchies_[i]))) {
                kill_listed(top(hierarchies_[i]) + "/" + id + "/cgroup.procs");
                remove_dir(top(hierarchies_[i]) + "/" + id);
            }
        // Daemon cgroups: their workers first (killed through the memory hierarchy, which
        // comes first), then the daemon's cgroup itself, in every hierarchy.
        for (std::size_t i = 0; i < hierarchies_.size(); ++i)
            for (const std::string& name : dead_daemons_groups(top(hierarchies_[i]))) {
                const std::string dir = top(hierarchies_[i]) + "/" + name;
                const std::size_t n = remove_child_cgroups(dir);
                if (i == 0) removed += n;
                remove_dir(dir);
            }
        return removed;
    }

    static std::unique_ptr<CgroupManager> detect(const std::vector<Mount>& mounts, const std::string& name) {
        const Mount *memory = nullptr, *pids = nullptr, *cpu = nullptr;
        for (const Mount& m : mounts) {
            if (m.fstype != "cgroup") continue;
            auto opts = split(m.super_options, ',');
            if (!memory && contains(opts, "memory")) memory = &m;
            if (!pids && contains(opts, "pids")) pids = &m;
            if (!cpu && contains(opts, "cpu")) cpu = &m;
        }
        if (!memory || !pids) {
            spdlog::info("cgroup: no v1 {} hierarchy mounted", !memory ? "memory" : "pids");
            return nullptr;
        }
        auto hierarchy = [](const Mount& m, const char* controller) {
            return V1Hierarchy{controller, m.mount_point, m.root};
        };
        std::vector<V1Hierarchy> hierarchies = {hierarchy(*memory, "memory"), hierarchy(*pids, "pids")};
        const std::string memory_dir = memory->mount_point + "/" + name, pids_dir = pids->mount_point + "/" + name;
        if (!make_dir(memory_dir) || (pids_dir != memory_dir && !make_dir(pids_dir))) return nullptr;
        if (cpu) {
            const std::string cpu_dir = cpu->mount_point + "/" + name;
            if (cpu_dir != memory_dir && cpu_dir != pids_dir && !make_dir(cpu_dir))
                spdlog::info("cgroup: CPU weights are not applied ({} not usable)", cpu_dir);
            else
                hierarchies.push_back(hierarchy(*cpu, "cpu"));
        } else {
            spdlog::info("cgroup: no v1 cpu hierarchy mounted; CPU weights are not applied");
        }
        auto manager = std::make_unique<CgroupV1Manager>(std::move(hierarchies), name);
        spdlog::info("cgroup: using {}", manager->describe());
        return manager;
    }

private:
    // funcd's cgroup in `h`.
    std::string top(const V1Hierarchy& h) const { return h.mount_point + "/" + name_; }
    // Where workers' cgroups are made in `h`: funcd's cgroup, or the daemon's own in it.
    std::string place(const V1Hierarchy& h) const { return top(h) + (group_.empty() ? "" : "/" + group_); }
    // The daemon's own cgroup in each hierarchy, once each (hierarchies mounted together
    // share a directory).
    std::vector<std::string> group_dirs() const {
        std::vector<std::string> dirs;
        for (const V1Hierarchy& h : hierarchies_)
            if (std::find(dirs.begin(), dirs.end(), place(h)) == dirs.end()) dirs.push_back(place(h));
        return dirs;
    }
    // Writes the fence's limit to the daemon's cgroup in the memory hierarchy. False,
    // logged with `context`, when the limit itself is refused.
    static bool limit_group(const std::string& memory, std::uint64_t bytes, const char* context) {
        const std::string limit = std::to_string(bytes);
        int e = write_file(memory + "/memory.limit_in_bytes", limit);
        // A limit may not exceed memory+swap's: a raised fence raises that one first.
        if (e == EINVAL && write_file(memory + "/memory.memsw.limit_in_bytes", limit) == 0)
            e = write_file(memory + "/memory.limit_in_bytes", limit);
        if (e != 0) {
            spdlog::warn("cgroup: {}: writing {} to {}/memory.limit_in_bytes failed: {} (errno {})", context, limit,
                         memory, std::strerror(e), e);
            return false;
        }
        // memory+swap at the same figure: no swap for the workers as a whole either (the
        // file only exists with swap accounting, and may not be below limit_in_bytes). Their
        // socket buffers, which v1 counts apart, get the same bound together as each
        // worker's get alone.
        set_limit(memory, "memory.memsw.limit_in_bytes", limit, false);
        set_limit(memory, "memory.kmem.tcp.limit_in_bytes", limit, false);
        return true;
    }

    std::vector<V1Hierarchy> hierarchies_;
    std::string name_;
    std::string group_;  // the daemon's own cgroup's name once fenced; empty: none
    std::optional<std::uint64_t> fence_;
};

bool valid_name(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

}  // namespace

std::unique_ptr<CgroupManager> CgroupManager::detect(const std::string& name) {
    if (!valid_name(name)) {
        spdlog::error("cgroup: invalid cgroup name '{}'", name);
        return nullptr;
    }
    std::vector<Mount> mounts = cgroup_mounts();
    if (auto v2 = CgroupV2Manager::detect(mounts, name)) return v2;
    if (auto v1 = CgroupV1Manager::detect(mounts, name)) return v1;
    spdlog::warn("cgroup: no writable cgroup hierarchy with memory and pids controllers{}; "
                 "workers run without memory, process and CPU limits",
                 ::geteuid() == 0 ? "" : " (not running as root)");
    return nullptr;
}

std::string worker_cgroup_id(pid_t daemon, const std::string& function, std::int64_t version, std::uint64_t n) {
    return std::to_string(daemon) + "-" + function + "-" + std::to_string(version) + "-" + std::to_string(n);
}

std::optional<pid_t> worker_cgroup_owner(std::string_view id) {
    const std::size_t dash = id.find('-');
    if (dash == 0 || dash == std::string_view::npos) return std::nullopt;
    pid_t pid = 0;
    auto [p, ec] = std::from_chars(id.data(), id.data() + dash, pid);
    if (ec != std::errc{} || p != id.data() + dash || pid <= 0) return std::nullopt;
    return pid;
}

std::string daemon_cgroup_name(pid_t daemon) { return std::string(kDaemonCgroupPrefix) + std::to_string(daemon); }

std::optional<pid_t> daemon_cgroup_owner(std::string_view name) {
    if (name.substr(0, kDaemonCgroupPrefix.size()) != kDaemonCgroupPrefix) return std::nullopt;
    name.remove_prefix(kDaemonCgroupPrefix.size());
    pid_t pid = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc{} || p != name.data() + name.size() || pid <= 0) return std::nullopt;
    return pid;
}

std::uint64_t cpu_weight_v2(int memory_mb) {
    std::uint64_t mb = memory_mb > 0 ? static_cast<std::uint64_t>(memory_mb) : 0;
    return std::clamp(kCpuWeightDefault * mb / kMemoryMbPerVcpu, kCpuWeightMin, kCpuWeightMax);
}

std::uint64_t cpu_shares_v1(int memory_mb) {
    std::uint64_t mb = memory_mb > 0 ? static_cast<std::uint64_t>(memory_mb) : 0;
    return std::clamp(kCpuSharesDefault * mb / kMemoryMbPerVcpu, kCpuSharesMin, kCpuSharesMax);
}

}  // namespace funcd
