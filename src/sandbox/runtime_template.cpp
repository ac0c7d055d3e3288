#include "funcd/sandbox/runtime_template.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "funcd/common/syscall_error.hpp"
#include "funcd/sandbox/template_protocol.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using TemplateClock = std::chrono::steady_clock;

// A template's own cgroup: the interpreter, funcd's runtime and any preloaded modules
// (numpy and Pillow together take about 60 MB); it never runs a function's code.
constexpr int kTemplateMemoryMb = 512;
constexpr std::uint64_t kTemplatePidsMax = 16;
// How long the first fork request may wait for its reply: the template's interpreter
// starts and imports the runtime (and the preloaded modules) before it reads it. Python
// with funcd's runtime takes ~20 ms; numpy, a few hundred ms on a loaded host.
constexpr int kFirstReplyTimeoutMs = 15000;
// Later replies: one clone of the template, well under a millisecond, stretched by a
// busy host's run queue (as kChildReportTimeoutMs in namespace_launcher.cpp).
constexpr int kReplyTimeoutMs = 5000;
// After a template failed to start, launches start plainly for this long before the next try.
constexpr auto kTemplateRetryPause = std::chrono::seconds(30);
// The descriptor number the template finds its end of the control socket at.
constexpr int kControlFd = 3;

std::int64_t mtime_ns(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

std::string TemplateKey::id() const {
    std::string id = (runtime == TemplateRuntime::node ? "node:" : "python:") + interpreter;
    for (const std::string& f : flags) id += " " + f;
    if (preload.empty()) return id;
    id += "+";
    for (std::size_t i = 0; i < preload.size(); ++i) id += (i ? "," : "") + preload[i];
    return id;
}

RuntimeTemplate::RuntimeTemplate(const TemplateKey& key, const TemplateFiles& files, const SeccompPolicy& seccomp,
                                 int init, CgroupManager* cgroups, const std::string& cgroup_id)
    : key_(key) {
    struct stat st{};
    if (::stat(key.interpreter.c_str(), &st) != 0) throw_syscall_error("template", errno, "stat " + key.interpreter);
    interpreter_ = {st.st_dev, st.st_ino, mtime_ns(st)};

    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        throw_syscall_error("template", errno, "socketpair");
    control_.reset(pair[0]);
    UniqueFd theirs(pair[1]);

    if (cgroups) {
        CgroupLimits limits;
        limits.memory_mb = kTemplateMemoryMb;
        limits.memory_bytes = static_cast<std::uint64_t>(kTemplateMemoryMb) << 20;
        limits.pids_max = kTemplatePidsMax;
        cgroup_ = cgroups->create(cgroup_id, limits);
    }

    // The interpreter with a worker's flags, then its runtime's template script.
    std::vector<std::string> args{key.interpreter};
    args.insert(args.end(), key.flags.begin(), key.flags.end());
    if (key.runtime == TemplateRuntime::node) {
        // V8 gives none of its work to other threads: a clone of the template's thread
        // takes no other (template_server.cpp), so none may hold a lock it needs, or owe
        // it a task. Node's platform threads then never run anything (docs/security.md).
        args.push_back("--single-threaded");
        args.push_back((files.runtime_dir / "nodejs" / "template.js").string());
        args.push_back(files.module.string());
        args.push_back(std::to_string(kControlFd));
        args.push_back(files.sandbox_runtime_dir);
    } else {
        args.push_back((files.runtime_dir / "python" / "funcd_template.py").string());
        args.push_back(files.module.string());
        args.push_back(std::to_string(kControlFd));
    }
    args.insert(args.end(), key.preload.begin(), key.preload.end());
    // The environment a worker's interpreter starts with, as far as it shapes the start:
    // the locale (stdio's encoding) and the time zone. The worker's own replaces it.
    std::vector<std::string> env{"LANG=C.UTF-8", "TZ=:UTC", "PATH=/usr/local/bin:/usr/bin:/bin"};
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), kControlFd);  // stderr stays the daemon's
    posix_spawn_file_actions_addclosefrom_np(&actions, kControlFd + 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    // Born in its cgroup where v1 allows it (see WorkerCgroup::enter_calling_thread).
    std::unique_ptr<CgroupThreadStay> stay;
    if (cgroup_) stay = cgroup_->enter_calling_thread();
    const int err = ::posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), envp.data());
    if (stay) stay->leave();
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) throw_syscall_error("template", err, "posix_spawn " + key.interpreter);
    // Our child, not reaped before we wait for it: the pid cannot have been reused.
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    if (!pidfd_) {
        const int e = errno;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        throw_syscall_error("template", e, "pidfd_open");
    }
    try {
        if (cgroup_ && !stay) cgroup_->add(pid_);
        std::vector<int> fds{init};
        json home = json::array();
        std::vector<UniqueFd> entries = cgroup_ ? cgroup_->open_thread_entries() : std::vector<UniqueFd>{};
        for (const UniqueFd& e : entries) {
            home.push_back(fds.size());
            fds.push_back(e.get());
        }
        const json setup{{"seccomp", encode_seccomp(seccomp)}, {"daemon", ::getpid()}, {"home", home}};
        if (int e = send_template_message(control_.get(), setup.dump(), fds); e != 0)
            throw_syscall_error("template", e, "sending the setup");
    } catch (...) {
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
        ::waitpid(pid_, nullptr, 0);
        throw;
    }
    spdlog::info("template: started {} (pid {})", key_.id(), pid_);
}

RuntimeTemplate::~RuntimeTemplate() {
    if (pid_ <= 0) return;
    control_.reset();  // it exits on its own at end-of-file; the kill makes sure
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
        spdlog::warn("template: pidfd_send_signal({}, SIGKILL) failed: {} (errno {})", pid_, std::strerror(errno),
                     errno);
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0 &&
           errno == EINTR) {
    }
    cgroup_.reset();
    spdlog::info("template: ended {} (pid {})", key_.id(), pid_);
}

bool RuntimeTemplate::usable(std::string* why) const {
    pollfd p{pidfd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
        if (why) *why = "the template process (pid " + std::to_string(pid_) + ") ended";
        return false;
    }
    struct stat st{};
    if (::stat(key_.interpreter.c_str(), &st) != 0 || st.st_dev != interpreter_.dev || st.st_ino != interpreter_.ino ||
        mtime_ns(st) != interpreter_.mtime_ns) {
        if (why) *why = key_.interpreter + " changed on disk since the template started";
        return false;
    }
    return true;
}

TemplateFork RuntimeTemplate::fork_sandbox(const ChildPlan& plan, std::span<const int> placed, WorkerCgroup* cgroup) {
    std::vector<int> fds(placed.begin(), placed.end());
    json targets = fds;  // each at its own number in the clone
    int cgroup_dir = -1;
    json cgroup_tasks = json::array();
    std::vector<UniqueFd> entries;
    if (cgroup && cgroup->clone_into_fd() >= 0) {
        cgroup_dir = static_cast<int>(fds.size());
        fds.push_back(cgroup->clone_into_fd());
        targets.push_back(-1);
    } else if (cgroup) {
        entries = cgroup->open_thread_entries();
        for (const UniqueFd& e : entries) {
            cgroup_tasks.push_back(fds.size());
            fds.push_back(e.get());
            targets.push_back(-1);
        }
    }
    const json request{{"plan", encode_child_plan(plan)},
                       {"targets", targets},
                       {"cgroup_dir", cgroup_dir},
                       {"cgroup_tasks", cgroup_tasks}};
    const std::string body = request.dump();

    std::lock_guard lock(request_);
    if (int err = send_template_message(control_.get(), body, fds); err != 0)
        throw_syscall_error("template", err, "sending a fork request to " + key_.id());
    const int timeout = answered_ ? kReplyTimeoutMs : kFirstReplyTimeoutMs;
    pollfd p{control_.get(), POLLIN, 0};
    int ready;
    do {
        ready = ::poll(&p, 1, timeout);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) throw_syscall_error("template", errno, "poll");
    if (ready == 0) {
        // Its answer may still come; a template that is this late is not used again.
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
        throw std::system_error(ETIMEDOUT, std::generic_category(),
                                "template " + key_.id() + ": no answer in " + std::to_string(timeout) + " ms");
    }
    TemplateMessage reply = receive_template_message(control_.get());
    if (reply.closed)
        throw std::system_error(ECONNRESET, std::generic_category(),
                                "template " + key_.id() + " ended" + (answered_ ? "" : " before it could serve"));
    if (reply.error) throw_syscall_error("template", reply.error, "reading the reply of " + key_.id());
    answered_ = true;
    const json j = json::parse(reply.body, nullptr, false);
    if (j.is_object() && j.contains("pid") && j["pid"].is_number_integer())
        return TemplateFork{j["pid"].get<pid_t>(), cgroup_dir >= 0 || !entries.empty()};
    const int err = j.is_object() && j.contains("errno") && j["errno"].is_number_integer() ? j["errno"].get<int>() : EPROTO;
    const std::string what = j.is_object() && j.contains("error") && j["error"].is_string()
                                 ? j["error"].get<std::string>()
                                 : std::string("an unreadable reply");
    throw std::system_error(err, std::generic_category(), "template " + key_.id() + ": " + what);
}

RuntimeTemplates::RuntimeTemplates(TemplateFiles files, const SeccompPolicy& seccomp, int init, CgroupManager* cgroups)
    : files_(std::move(files)), seccomp_(seccomp), init_(init), cgroups_(cgroups) {}

RuntimeTemplates::~RuntimeTemplates() = default;

std::shared_ptr<RuntimeTemplate> RuntimeTemplates::get(const TemplateKey& key, std::string* why) {
    const std::string id = key.id();
    std::shared_ptr<RuntimeTemplate> ended;  // destroyed (killed, reaped) outside the lock
    {
        std::lock_guard lock(mutex_);
        Entry& e = entries_[id];
        std::string reason;
        if (e.running && e.running->usable(&reason)) return e.running;
        if (e.running) {
            spdlog::warn("template: {} is not usable ({}); starting a new one", id, reason);
            ended = std::move(e.running);
        }
        if (TemplateClock::now() < e.retry_after) {
            if (why) *why = e.last_failure;
            return nullptr;
        }
    }
    ended.reset();
    std::lock_guard starting(start_);
    {
        std::lock_guard lock(mutex_);
        Entry& e = entries_[id];
        if (e.running) return e.running;  // another launch started it meanwhile
    }
    try {
        auto t = std::make_shared<RuntimeTemplate>(key, files_, seccomp_, init_, cgroups_,
                                                   worker_cgroup_id(::getpid(), "template", 0, started_++));
        std::lock_guard lock(mutex_);
        Entry& e = entries_[id];
        e.running = t;
        e.last_failure.clear();
        return t;
    } catch (const std::exception& ex) {
        std::lock_guard lock(mutex_);
        Entry& e = entries_[id];
        e.last_failure = std::string("starting template ") + id + " failed: " + ex.what();
        e.retry_after = TemplateClock::now() + kTemplateRetryPause;
        spdlog::warn("template: {}; workers start without it for {} s", e.last_failure, kTemplateRetryPause.count());
        if (why) *why = e.last_failure;
        return nullptr;
    }
}

void RuntimeTemplates::hold(const TemplateKey& key) {
    std::lock_guard lock(mutex_);
    ++entries_[key.id()].holds;
}

void RuntimeTemplates::release(const TemplateKey& key) {
    std::shared_ptr<RuntimeTemplate> ended;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(key.id());
        if (it == entries_.end() || --it->second.holds > 0) return;
        ended = std::move(it->second.running);
        entries_.erase(it);
    }
    // No function uses it any more. Workers already forked from it live on: they are the
    // daemon's children, not the template's.
}

std::vector<std::pair<std::string, pid_t>> RuntimeTemplates::list() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, pid_t>> out;
    for (const auto& [id, e] : entries_)
        if (e.running) out.emplace_back(id, e.running->pid());
    return out;
}

}  // namespace funcd
