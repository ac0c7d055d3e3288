// The native half of a runtime template (include/funcd/sandbox/runtime_template.hpp): a
// shared library the template's interpreter loads and calls once. The call serves the
// daemon's fork requests (template_protocol.hpp) for as long as the template lives and
// returns only in a forked runtime, already inside its own sandbox, with the environment
// the daemon sent it. Whatever the interpreter holds at that moment (its runtime, imported
// modules) is what every runtime starts from; nothing of a function reaches the template.
#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "funcd/sandbox/sandbox_child.hpp"
#include "funcd/sandbox/sandbox_init.hpp"
#include "funcd/sandbox/sync_channel.hpp"
#include "funcd/sandbox/template_entry.hpp"
#include "funcd/sandbox/template_protocol.hpp"

namespace {

using nlohmann::json;
using namespace funcd;

struct Setup {
    SeccompPolicy seccomp;
    pid_t daemon = 0;
    UniqueFd init;
    std::vector<UniqueFd> home;  // v1 `tasks` files of the template's own cgroups
};

struct Placement {
    int from;
    int to;
};

// Overwrites what a request said before its memory is freed: the next runtime forked
// from this process must not find another function's paths in its heap.
void scrub(json& j) {
    if (j.is_string()) {
        auto& s = j.get_ref<std::string&>();
        std::fill(s.begin(), s.end(), '\0');
    } else if (j.is_structured()) {
        for (auto& item : j) scrub(item);
    }
}

void scrub(ChildPlan& p) {
    auto wipe = [](std::string& s) { std::fill(s.begin(), s.end(), '\0'); };
    wipe(p.code_dir);
    wipe(p.runtime_dir);
    for (auto& s : p.bind_dirs) wipe(s);
    wipe(p.root.new_root);
    for (auto& op : p.root.ops) {
        wipe(op.target);
        wipe(op.source);
        wipe(op.data);
        wipe(op.inside);
    }
}

int write_zero(int fd) noexcept {
    // Writing 0 to a v1 `tasks` file moves the writing thread.
    return ::pwrite(fd, "0", 1, 0) == 1 ? 0 : errno;
}

// In the sandbox's first process, before anything else: the descriptors go to the numbers
// the plan names (staged above all of them first, so no move overwrites another).
int place(const std::vector<Placement>& placements, int stage_base) noexcept {
    int staged[kTemplateMessageMaxFds + 1];
    for (std::size_t i = 0; i < placements.size(); ++i) {
        staged[i] = ::fcntl(placements[i].from, F_DUPFD_CLOEXEC, stage_base);
        if (staged[i] < 0) return errno;
    }
    for (std::size_t i = 0; i < placements.size(); ++i)
        if (::dup3(staged[i], placements[i].to, O_CLOEXEC) < 0) return errno;
    return 0;
}

void reply(int control, const json& body) {
    if (int err = send_template_message(control, body.dump(), {}); err != 0) ::_exit(0);  // the daemon is gone
}

void reply_error(int control, const std::string& what, int err) {
    reply(control, json{{"error", what}, {"errno", err}});
}

// How long a fork request waits for the template's other threads to be asleep: they only
// wake for work, and none is given them while the template serves (a few ms at most, for
// a wakeup already under way).
constexpr int kQuietWaitMs = 50;

// Whether every thread of this process but the calling one is asleep ('S' in its stat).
// A clone keeps only the calling thread; one that was running could have held a lock the
// copy needs (malloc's, stdio's) and would never release it there. Python's template has
// no other thread; Node.js's has V8's platform threads, waiting for tasks that, with
// --single-threaded and no JavaScript running, never come.
bool other_threads_asleep() {
    DIR* dir = ::opendir("/proc/self/task");
    if (!dir) return false;
    const pid_t self = static_cast<pid_t>(::syscall(SYS_gettid));
    bool asleep = true;
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
        const std::string path = std::string("/proc/self/task/") + e->d_name + "/stat";
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;  // it ended
        char buf[512];
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        // "tid (comm) S ...": the state follows the last ')' (comm may hold one).
        const char* paren = std::strrchr(buf, ')');
        if (!paren || paren[1] != ' ' || paren[2] != 'S') {
            asleep = false;
            break;
        }
    }
    ::closedir(dir);
    return asleep;
}

// Receives the runtime's environment on the sync socket (sent after the go byte), as
// a NUL-separated block the caller owns (malloc).
int receive_environment(int sync, char** out, std::size_t* len) noexcept {
    char* buf = static_cast<char*>(std::malloc(kTemplateMessageMax));
    if (!buf) return ENOMEM;
    ssize_t n;
    do {
        n = ::recv(sync, buf, kTemplateMessageMax, MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || n == 0 || static_cast<std::size_t>(n) > kTemplateMessageMax) {
        const int err = n < 0 ? errno : (n == 0 ? ECANCELED : EMSGSIZE);
        std::free(buf);
        return err;
    }
    *out = buf;
    *len = static_cast<std::size_t>(n);
    return 0;
}

// Returns the clone's pid in the template, and only in the runtime returns 0 (the
// sandbox's first process never returns from here).
long fork_worker(Setup& setup, TemplateMessage& msg, int control, char** env_out, std::size_t* env_len) {
    json request = json::parse(msg.body, nullptr, false);
    std::fill(msg.body.begin(), msg.body.end(), '\0');
    if (request.is_discarded() || !request.is_object()) {
        reply_error(control, "malformed fork request", EINVAL);
        return -1;
    }
    ChildPlan plan;
    std::vector<Placement> placements;
    int cgroup_dir = -1;
    std::vector<int> cgroup_tasks;
    try {
        plan = decode_child_plan(request.at("plan"), &setup.seccomp);
        const auto targets = request.at("targets").get<std::vector<int>>();
        if (targets.size() != msg.fds.size()) throw std::runtime_error("targets do not match the descriptors");
        for (std::size_t i = 0; i < targets.size(); ++i)
            if (targets[i] >= 0) placements.push_back({msg.fds[i].get(), targets[i]});
        placements.push_back({setup.init.get(), plan.init});
        const int dir = request.at("cgroup_dir").get<int>();
        if (dir >= static_cast<int>(msg.fds.size())) throw std::runtime_error("cgroup_dir");
        if (dir >= 0) cgroup_dir = msg.fds[static_cast<std::size_t>(dir)].get();
        for (int i : request.at("cgroup_tasks").get<std::vector<int>>()) {
            if (i < 0 || i >= static_cast<int>(msg.fds.size())) throw std::runtime_error("cgroup_tasks");
            cgroup_tasks.push_back(msg.fds[static_cast<std::size_t>(i)].get());
        }
    } catch (const std::exception& e) {
        scrub(request);
        reply_error(control, std::string("malformed fork request: ") + e.what(), EINVAL);
        return -1;
    }
    scrub(request);
    int stage_base = 3;
    for (const Placement& p : placements) stage_base = std::max({stage_base, p.from + 1, p.to + 1});

    bool quiet = other_threads_asleep();
    for (int waited = 0; !quiet && waited < kQuietWaitMs; ++waited) {
        ::usleep(1000);
        quiet = other_threads_asleep();
    }
    if (!quiet) {
        scrub(plan);
        reply_error(control, "a thread of the template is running", EBUSY);
        return -1;
    }
    // On v1 this thread steps into the worker's cgroups for the clone (no cgroup move of
    // the new process afterwards, which waits for an RCU grace period).
    for (int fd : cgroup_tasks) {
        if (int err = write_zero(fd)) {
            for (const UniqueFd& home : setup.home) write_zero(home.get());
            scrub(plan);
            reply_error(control, "entering the worker's cgroup", err);
            return -1;
        }
    }
    // CLONE_PARENT: the sandbox's first process is the daemon's child, as one the daemon
    // clones itself is: the daemon reaps it, and its parent-death signal follows the
    // daemon's thread that started this template. clone3 wants exit_signal 0 with it.
    std::uint64_t flags = kSandboxNamespaceFlags | CLONE_PARENT;
    if (plan.private_network) flags |= CLONE_NEWNET;
    long ret = -1;
    if (cgroup_dir >= 0) {
        clone_args args{};
        args.flags = flags | CLONE_INTO_CGROUP;
        args.cgroup = static_cast<std::uint64_t>(cgroup_dir);
        ret = ::syscall(SYS_clone3, &args, sizeof args);
    } else {
        ret = ::syscall(SYS_clone, static_cast<unsigned long>(flags), nullptr, nullptr, nullptr, 0);
    }
    const int clone_errno = errno;
    if (ret == 0) {
        // The sandbox's first process.
        if (int err = place(placements, stage_base); err != 0) {
            child_report_failure(msg.fds[0].get(), "template descriptors", nullptr, err);
            ::_exit(kSandboxStartFailed);
        }
        run_sandbox_child(plan);  // returns only in the forked runtime
        if (int err = receive_environment(plan.sync, env_out, env_len); err != 0) {
            child_report_failure(plan.sync, "environment", nullptr, err);
            ::_exit(kSandboxStartFailed);
        }
        ::close(plan.sync);  // with the init's exec'd away, the daemon reads end-of-file
        return 0;
    }
    for (const UniqueFd& home : setup.home) write_zero(home.get());
    scrub(plan);
    if (ret < 0) {
        reply_error(control, "clone", clone_errno);
        return -1;
    }
    reply(control, json{{"pid", ret}});
    return ret;
}

Setup receive_setup(int control) {
    TemplateMessage msg = receive_template_message(control);
    if (msg.closed || msg.error) ::_exit(0);
    json j = json::parse(msg.body, nullptr, false);
    if (j.is_discarded() || msg.fds.empty()) ::_exit(kSandboxStartFailed);
    Setup setup;
    try {
        setup.seccomp = decode_seccomp(j.at("seccomp"));
        setup.daemon = j.at("daemon").get<pid_t>();
        for (int i : j.at("home").get<std::vector<int>>()) {
            if (i <= 0 || i >= static_cast<int>(msg.fds.size())) ::_exit(kSandboxStartFailed);
            setup.home.push_back(std::move(msg.fds[static_cast<std::size_t>(i)]));
        }
    } catch (const std::exception&) {
        ::_exit(kSandboxStartFailed);
    }
    setup.init = std::move(msg.fds[0]);
    return setup;
}

}  // namespace

extern "C" int funcd_template_serve(int control, char** env, std::size_t* env_len) {
    // The template ends with the daemon's thread that started it (as workers do), and if
    // that happened already, now.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) ::_exit(kSandboxStartFailed);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    Setup setup = receive_setup(control);
    if (::getppid() != setup.daemon) ::_exit(0);
    // Fork requests leave nothing behind in the template: a fork request's descriptors are
    // closed when `msg` goes.
    for (;;) {
        TemplateMessage msg = receive_template_message(control);
        if (msg.closed) ::_exit(0);
        if (msg.error) {
            reply_error(control, "receiving the fork request", msg.error);
            continue;
        }
        if (msg.fds.empty()) {
            reply_error(control, "fork request without descriptors", EINVAL);
            continue;
        }
        if (fork_worker(setup, msg, control, env, env_len) == 0) {
            // The runtime: these numbers were the template's. The sandbox's first step
            // closed them, and some now name the runtime's own descriptors.
            for (UniqueFd& fd : msg.fds) fd.release();
            for (UniqueFd& fd : setup.home) fd.release();
            setup.init.release();
            return 0;
        }
    }
}
