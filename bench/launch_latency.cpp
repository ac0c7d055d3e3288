// How long SandboxLauncher::launch() blocks the thread that calls it, when a burst of
// cold starts is spread over 1, 2, 4 and 8 launcher threads. Each round launches RUNS
// workers of the noop `provided` runtime and keeps them all alive until the round ends
// (a burst: nothing is reused), then kills them. Per round it prints the distribution
// of launch()'s blocking time, its parts (LaunchTimings), the round's wall time and
// launch rate, and the time from launch() being called to the runtime's first
// GET /next arriving on its Runtime API socket (read by a separate thread, as the event
// loop would). A last round launches one worker at a time on an idle host.
//
// Needs root for the sandbox (per-worker uids, cgroups); `--process` measures the
// unsandboxed launcher instead.
//
//   launch-latency [--runs N] [--threads 1,2,4,8] [--idle-runs N] [--bootstrap PATH]
//                  [--process] [--no-cgroup] [--host-network]
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "funcd/sandbox/cgroup.hpp"
#include "funcd/sandbox/namespace_launcher.hpp"
#include "funcd/sandbox/process_launcher.hpp"
#include "funcd/sandbox/seccomp_policy.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A runtime that has not asked for its first event by then is counted as failed.
constexpr auto kFirstNextTimeout = std::chrono::seconds(10);
// Between rounds, so that one round's teardown (cgroup removal, namespace cleanup in
// kernel workers) does not land in the next one's figures.
constexpr auto kSettle = std::chrono::milliseconds(500);
// Between launches of the idle round: long enough for the kernel's RCU-synchronised
// cgroup lock to go back to its idle state, as it is for a lone cold start.
constexpr auto kIdleGap = std::chrono::milliseconds(100);

struct Options {
    int runs = 200;
    std::vector<int> threads = {1, 2, 4, 8};
    int idle_runs = 50;
    fs::path bootstrap;
    bool process = false;
    bool cgroup = true;
    bool host_network = false;
};

// The host's load, printed with the figures: other work on a small host moves them a lot.
std::string load_average() {
    char buf[128] = {};
    FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return "?";
    const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
    std::fclose(f);
    std::string s = ok ? buf : "?";
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

double ms(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000.0; }

struct Distribution {
    std::vector<double> values;  // milliseconds
    double at(double q) const {
        if (values.empty()) return 0;
        auto sorted = values;
        std::sort(sorted.begin(), sorted.end());
        auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
        return sorted[std::min(i, sorted.size() - 1)];
    }
};

// Accepts each worker's first Runtime API connection and notes when its first request
// (GET /next) arrives, as the daemon's event loop would.
class FirstNextWatcher {
public:
    FirstNextWatcher() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!epoll_) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
        thread_ = std::thread([this] { run(); });
    }
    ~FirstNextWatcher() {
        stop_ = true;
        thread_.join();
    }

    void watch(int listener, Clock::time_point called) {
        std::lock_guard lock(mutex_);
        const int id = next_id_++;
        entries_[id] = Entry{listener, funcd::UniqueFd(), called, std::nullopt};
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<std::uint64_t>(id) << 1;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener, &ev) != 0)
            spdlog::error("bench: epoll_ctl(listener) failed: {} (errno {})", std::strerror(errno), errno);
    }

    // Waits until every watched worker asked for its first event, or the timeout passed.
    // Returns the times (ms) and the count of workers that never asked.
    std::pair<Distribution, int> collect() {
        const auto deadline = Clock::now() + kFirstNextTimeout;
        for (;;) {
            {
                std::lock_guard lock(mutex_);
                bool all = std::all_of(entries_.begin(), entries_.end(), [](auto& e) { return e.second.first_next; });
                if (all || Clock::now() > deadline) {
                    Distribution d;
                    int missing = 0;
                    for (auto& [id, e] : entries_) {
                        if (e.first_next) d.values.push_back(ms(*e.first_next));
                        else ++missing;
                        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.listener, nullptr);
                    }
                    entries_.clear();
                    return {d, missing};
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }

private:
    struct Entry {
        int listener;
        funcd::UniqueFd conn;
        Clock::time_point called;
        std::optional<std::chrono::microseconds> first_next;
    };

    void run() {
        epoll_event events[64];
        while (!stop_) {
            int n = ::epoll_wait(epoll_.get(), events, 64, 20);
            if (n < 0 && errno != EINTR) {
                spdlog::error("bench: epoll_wait failed: {} (errno {})", std::strerror(errno), errno);
                return;
            }
            const auto now = Clock::now();
            std::lock_guard lock(mutex_);
            for (int i = 0; i < n; ++i) {
                const int id = static_cast<int>(events[i].data.u64 >> 1);
                const bool is_conn = events[i].data.u64 & 1;
                auto it = entries_.find(id);
                if (it == entries_.end()) continue;
                Entry& e = it->second;
                if (!is_conn) {
                    funcd::UniqueFd conn(::accept4(e.listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
                    if (!conn) continue;
                    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.listener, nullptr);
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u64 = (static_cast<std::uint64_t>(id) << 1) | 1;
                    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn.get(), &ev);
                    e.conn = std::move(conn);
                    continue;
                }
                char buf[512];
                ssize_t got = ::recv(e.conn.get(), buf, sizeof buf - 1, 0);
                if (got <= 0) continue;
                buf[got] = '\0';
                if (std::strstr(buf, "/runtime/invocation/next") && !e.first_next)
                    e.first_next = std::chrono::duration_cast<std::chrono::microseconds>(now - e.called);
                ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, e.conn.get(), nullptr);
            }
        }
    }

    funcd::UniqueFd epoll_;
    std::mutex mutex_;
    std::map<int, Entry> entries_;
    int next_id_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

void kill_and_reap(std::vector<funcd::LaunchedWorker>& workers) {
    for (auto& w : workers)
        if (w.resources) w.resources->kill_all();
    for (auto& w : workers) {
        siginfo_t info{};
        ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(w.pidfd.get()), &info, WEXITED);
    }
    workers.clear();  // removes the cgroups, returns the uids
}

struct RoundResult {
    Distribution blocking, prepare, spawn, place, child, first_next;
    double wall_ms = 0;
    int errors = 0;
    int missing_next = 0;
};

RoundResult round(funcd::SandboxLauncher& launcher, const funcd::WorkerSpec& spec, int runs, int threads,
                  std::chrono::milliseconds gap) {
    RoundResult r;
    FirstNextWatcher watcher;
    std::mutex mutex;
    std::vector<funcd::LaunchedWorker> workers;
    std::atomic<int> next{0};
    std::atomic<int> errors{0};
    std::atomic<int> finished{0};
    std::atomic<bool> release{false};
    const auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&] {
            while (next.fetch_add(1) < runs) {
                const auto called = Clock::now();
                try {
                    funcd::LaunchedWorker w = launcher.launch(spec);
                    const auto returned = Clock::now();
                    watcher.watch(w.runtime_api_listener.get(), called);
                    std::lock_guard lock(mutex);
                    r.blocking.values.push_back(
                        ms(std::chrono::duration_cast<std::chrono::microseconds>(returned - called)));
                    r.prepare.values.push_back(ms(w.timings.prepare));
                    r.spawn.values.push_back(ms(w.timings.spawn));
                    r.place.values.push_back(ms(w.timings.place));
                    r.child.values.push_back(ms(w.timings.child));
                    workers.push_back(std::move(w));
                } catch (const std::exception& e) {
                    ++errors;
                    spdlog::error("bench: launch failed: {}", e.what());
                }
                if (gap.count() > 0) std::this_thread::sleep_for(gap);
            }
            // A worker dies with the thread that launched it (its parent-death signal):
            // stay until the round is measured.
            ++finished;
            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
    }
    while (finished < threads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    r.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    auto [first_next, missing] = watcher.collect();
    r.first_next = std::move(first_next);
    r.missing_next = missing;
    r.errors = errors;
    kill_and_reap(workers);
    release = true;
    for (auto& t : pool) t.join();
    return r;
}

void print_header() {
    std::printf("%-9s %5s %4s %9s | %-31s | %-39s | %-21s\n", "round", "runs", "err", "launch/s",
                "launch() blocking ms p50/p99/max", "parts p50 ms: prepare/clone/place/child", "to first /next p50/p99");
}

void print(const char* name, int runs, const RoundResult& r) {
    std::printf("%-9s %5d %4d %9.0f | %9.2f %9.2f %9.2f   | %8.2f %8.2f %8.2f %8.2f    | %9.2f %9.2f\n", name, runs,
                r.errors + r.missing_next, runs / (r.wall_ms / 1000.0), r.blocking.at(0.5), r.blocking.at(0.99),
                r.blocking.at(1.0), r.prepare.at(0.5), r.spawn.at(0.5), r.place.at(0.5), r.child.at(0.5),
                r.first_next.at(0.5), r.first_next.at(0.99));
    std::fflush(stdout);
}

std::vector<int> parse_list(const char* s) {
    std::vector<int> out;
    for (const char* p = s; *p;) {
        out.push_back(std::atoi(p));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--runs") o.runs = std::atoi(value());
        else if (a == "--threads") o.threads = parse_list(value());
        else if (a == "--idle-runs") o.idle_runs = std::atoi(value());
        else if (a == "--bootstrap") o.bootstrap = value();
        else if (a == "--process") o.process = true;
        else if (a == "--no-cgroup") o.cgroup = false;
        else if (a == "--host-network") o.host_network = true;
        else {
            std::fprintf(stderr,
                         "usage: %s [--runs N] [--threads 1,2,4,8] [--idle-runs N] [--bootstrap PATH] [--process] "
                         "[--no-cgroup] [--host-network]\n",
                         argv[0]);
            return 2;
        }
    }
    spdlog::set_level(spdlog::level::warn);
    if (o.bootstrap.empty()) {
        // The build tree: bench/launch-latency next to examples/noop-provided/noop-bootstrap.
        std::error_code ec;
        o.bootstrap = fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "examples" /
                      "noop-provided" / "noop-bootstrap";
    }
    if (!fs::exists(o.bootstrap)) {
        std::fprintf(stderr, "no bootstrap at %s (build noop-bootstrap, or pass --bootstrap)\n", o.bootstrap.c_str());
        return 1;
    }
    if (!o.process && ::geteuid() != 0) {
        std::fprintf(stderr, "the sandbox needs root here (per-worker uids, cgroups); or pass --process\n");
        return 1;
    }

    const fs::path dir = fs::temp_directory_path() / ("funcd-launch-latency-" + std::to_string(::getpid()));
    fs::create_directories(dir / "code");
    fs::create_directories(dir / "runtime");
    fs::create_directories(dir / "root");
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    fs::copy_file(o.bootstrap, dir / "code" / "bootstrap");
    fs::permissions(dir / "code" / "bootstrap", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                                    fs::perms::others_read | fs::perms::others_exec);

    const std::string cgroup_name = "funcd-launch-latency-" + std::to_string(::getpid());
    std::unique_ptr<funcd::SandboxLauncher> launcher;
    std::string what;
    if (o.process) {
        launcher = std::make_unique<funcd::ProcessLauncher>();
        what = "ProcessLauncher (no sandbox)";
    } else {
        std::string why;
        if (!funcd::NamespaceLauncher::supported(&why)) {
            std::fprintf(stderr, "namespaces unavailable: %s\n", why.c_str());
            return 1;
        }
        funcd::SandboxOptions options = funcd::SandboxOptions::for_daemon(::getpid());
        options.root_mount_point = dir / "root";
        auto cgroups = o.cgroup ? funcd::CgroupManager::detect(cgroup_name) : nullptr;
        what = "NamespaceLauncher, " + (cgroups ? cgroups->describe() : std::string("no cgroups")) +
               (o.host_network ? ", host network" : ", private network");
        launcher = std::make_unique<funcd::NamespaceLauncher>(options, std::move(cgroups),
                                                              funcd::SeccompPolicy::build());
    }

    funcd::WorkerSpec spec;
    spec.function_name = "noop";
    spec.version = 1;
    spec.memory_mb = 128;
    spec.code_dir = dir / "code";
    spec.runtime_dir = dir / "runtime";
    spec.argv = {launcher->paths_for(spec.code_dir, spec.runtime_dir, {}).task_root + "/bootstrap"};
    spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
    spec.ephemeral_storage_mb = 16;
    spec.host_network = o.host_network;

    std::printf("%s; %u CPUs; load average %s; bootstrap %s\n", what.c_str(), std::thread::hardware_concurrency(),
                load_average().c_str(), o.bootstrap.c_str());
    print_header();
    int failures = 0;
    for (int threads : o.threads) {
        std::this_thread::sleep_for(kSettle);
        RoundResult r = round(*launcher, spec, o.runs, threads, std::chrono::milliseconds(0));
        failures += r.errors + r.missing_next;
        print((std::to_string(threads) + " thr").c_str(), o.runs, r);
    }
    if (o.idle_runs > 0) {
        std::this_thread::sleep_for(kSettle);
        RoundResult r = round(*launcher, spec, o.idle_runs, 1, kIdleGap);
        failures += r.errors + r.missing_next;
        print("idle", o.idle_runs, r);
    }

    std::printf("load average after: %s\n", load_average().c_str());
    launcher.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu",
                             "/sys/fs/cgroup/unified"})
        fs::remove(fs::path(root) / cgroup_name, ec);
    return failures == 0 ? 0 : 1;
}
