#pragma once
// Shared pieces of the sandbox attack suite: a fixture that starts the real daemon (sandbox
// on, as by default) with a benign function deployed, a check that the daemon still serves
// that function normally after an attack, Python code every attacking function shares, and
// a way to find (and clean up) processes an attack left behind, wherever they ended up in
// the host's process tree.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon_harness.hpp"

namespace funcd::testing::sandbox {

using nlohmann::json;

inline constexpr const char* kBenignPy = R"(import os
def handler(event, context):
    return {"echo": event, "name": context.function_name}
)";

// Prepended to every attacking function's app.py.
inline constexpr const char* kPrelude = R"(import ctypes, errno, json, os, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def mark(name):
    """Sets this process's comm (PR_SET_NAME) so the host can find it whatever its pid."""
    libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)

def os_errno(fn):
    """None when fn() succeeded, else the errno of the OSError it raised."""
    try:
        fn()
        return None
    except OSError as e:
        return e.errno

def raw(nr, *args):
    """A raw system call: its result when it succeeded, else -errno."""
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *conv)
    return r if r >= 0 else -ctypes.get_errno()

def in_child(fn):
    """Runs fn in a forked child, so whatever it changes stays there; returns its result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                out = json.dumps({"ok": fn()})
            except BaseException as e:
                out = json.dumps({"raised": repr(e)})
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data or b'{"raised": "the child died"}')
)";

inline std::string attack_py(const std::string& body) { return python_zip(std::string(kPrelude) + "\n" + body); }

// A comm name (at most 15 characters) unique to this run, for marking attack processes.
inline std::string unique_mark(const std::string& prefix) {
    static std::mt19937 rng{std::random_device{}()};
    return prefix + std::to_string(100000 + rng() % 900000);
}

// Host pids whose comm is exactly `comm` (zombies included: they still hold a pid).
// The start of /proc/<pid>/<file>, or "" when the process is gone. A plain read: the
// process may exit between open and read (ESRCH), which std::ifstream reports by throwing.
inline std::string proc_text(const std::string& pid, const char* file) {
    std::string text;
    const int fd = ::open(("/proc/" + pid + "/" + file).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if (n > 0) text.assign(buf, static_cast<std::size_t>(n));
    return text;
}

inline std::vector<pid_t> pids_with_comm(const std::string& comm) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        char* end;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        std::string name = proc_text(e->d_name, "comm");
        if (!name.empty() && name.back() == '\n') name.pop_back();
        if (name == comm) out.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(d);
    return out;
}

// Live (non-zombie) host pids with this comm.
inline std::vector<pid_t> live_pids_with_comm(const std::string& comm) {
    std::vector<pid_t> out;
    for (pid_t pid : pids_with_comm(comm)) {
        const std::string stat = proc_text(std::to_string(pid), "stat");
        auto close = stat.rfind(')');
        if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z') continue;
        if (!stat.empty()) out.push_back(pid);
    }
    return out;
}

// Kills whatever an attack left behind when the test ends, pass or fail, so one failing
// test does not leave hundreds of sleepers to the next.
struct MarkedProcessReaper {
    std::string comm;
    ~MarkedProcessReaper() {
        for (int round = 0; round < 3; ++round) {
            auto left = live_pids_with_comm(comm);
            if (left.empty()) break;
            for (pid_t pid : left) {
                ::kill(pid, SIGKILL);
                ::kill(pid, SIGCONT);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
};

class SandboxAttack : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "the sandbox attack suite needs root (uid 0)";
    }

    // Starts funcd (sandbox on: the default) and deploys the benign function "benign".
    std::unique_ptr<Daemon> start(std::vector<std::string> extra_args = {}) {
        auto d = std::make_unique<Daemon>(std::move(extra_args));
        auto dep = d->deploy("benign", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kBenignPy));
        EXPECT_EQ(dep.status, 201) << dep.body;
        benign_sha_ = dep.status == 201 ? dep.json().value("code_sha256", "") : "";
        auto r = d->invoke("benign", R"({"warm": true})");
        EXPECT_EQ(r.status, 200) << r.body;
        auto before = descendants_of(d->pid());
        baseline_ = std::set<pid_t>(before.begin(), before.end());
        return d;
    }

    // Deploys an attacking Python function; `settings` adds to runtime/handler.
    static HttpResult deploy_attack(Daemon& d, const std::string& name, const std::string& body,
                                    json settings = json::object()) {
        settings["runtime"] = "python3";
        settings["handler"] = "app.handler";
        return d.deploy(name, settings, attack_py(body));
    }

    // The daemon is alive and serves the benign function exactly as before.
    static void expect_still_serving(Daemon& d) {
        ASSERT_TRUE(d.running());
        EXPECT_EQ(::kill(d.pid(), 0), 0) << "the daemon process is gone";
        auto health = http_request(d.port(), "GET", "/healthz");
        EXPECT_EQ(health.status, 200) << health.body;
        static int n = 0;
        ++n;
        auto r = d.invoke("benign", R"({"after_attack": )" + std::to_string(n) + "}");
        ASSERT_EQ(r.status, 200) << r.body << "\n" << d.log();
        EXPECT_TRUE(r.header("x-funcd-function-error").empty()) << r.body;
        auto body = r.json();
        EXPECT_EQ(body["echo"]["after_attack"], n) << r.body;
        EXPECT_EQ(body["name"], "benign");
    }

    // True when every process under the daemon was already there before the attack (the
    // benign function's worker): nothing the attack started is left.
    bool nothing_left_but_baseline(Daemon& d) const {
        for (pid_t pid : descendants_of(d.pid()))
            if (!baseline_.count(pid)) return false;
        return true;
    }
    std::string leftover_report(Daemon& d) const {
        std::string out;
        for (pid_t pid : descendants_of(d.pid())) {
            if (baseline_.count(pid)) continue;
            std::string comm = proc_text(std::to_string(pid), "comm");
            if (!comm.empty() && comm.back() == '\n') comm.pop_back();
            out += " " + std::to_string(pid) + "(" + comm + ")";
        }
        return out.empty() ? "none" : out;
    }

    std::string benign_sha_;
    std::set<pid_t> baseline_;
};

// The (single) invocation result as JSON, failing the test with the body when it is not
// a successful function result.
inline json ok_result(const HttpResult& r) {
    ::testing::Test::RecordProperty("observed", r.body);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.header("x-funcd-function-error").empty()) << "the probe itself failed: " << r.body;
    try {
        return r.json();
    } catch (const std::exception&) {
        ADD_FAILURE() << "not JSON: " << r.body;
        return json::object();
    }
}

}  // namespace funcd::testing::sandbox
