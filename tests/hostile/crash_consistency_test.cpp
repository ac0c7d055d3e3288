// SIGKILL at random moments during deploys, asynchronous accepts and invocations, then a
// restart on the same data, and the invariants checked each round:
// - no half-deployed function: every function listed answers, with the code it was given;
// - every event answered 202 is delivered or dead-lettered;
// - every invocation answered 200 is metered exactly once;
// - no worker outlives the daemon that started it.
// FUNCD_CRASH_ROUNDS sets the number of rounds (default 3; the long mode runs 50).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

int rounds() {
    const char* v = std::getenv("FUNCD_CRASH_ROUNDS");
    return v && *v ? std::max(1, std::atoi(v)) : 3;
}

// A function's code says which deploy it came from, so a served function can be checked
// against a deploy that was answered (or at least sent).
std::string versioned_py(const std::string& tag) {
    return "def handler(event, context):\n    return '" + tag + "'\n";
}

// Start time of a process (field 22 of /proc/PID/stat), to tell a pid from its reuse.
std::string start_time(pid_t pid) {
    const std::string text = read_proc_file(pid, "stat");
    const auto close = text.rfind(')');
    if (close == std::string::npos) return {};
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
    }
    return field;
}

struct Ledger {
    std::mutex m;
    std::set<std::string> accepted_events;   // request ids answered 202
    std::set<std::string> answered_invokes;  // request ids answered 200
    std::map<std::string, std::set<std::string>> deployed_tags;  // function -> tags sent (answered or not)
};

// Drives deploys, async accepts and invocations at `d` until `stop`.
void drive(Daemon& d, Ledger& ledger, std::atomic<bool>& stop, int round, int worker) {
    std::mt19937 rng(static_cast<unsigned>(round * 100 + worker));
    int n = 0;
    while (!stop) {
        ++n;
        try {
            switch (rng() % 3) {
                case 0: {
                    const std::string fn = "dep" + std::to_string(rng() % 3);
                    const std::string tag = "r" + std::to_string(round) + "w" + std::to_string(worker) + "n" + std::to_string(n);
                    {
                        std::lock_guard l(ledger.m);
                        ledger.deployed_tags[fn].insert(tag);
                    }
                    d.deploy(fn, python_settings(), python_zip(versioned_py(tag)));
                    break;
                }
                case 1: {
                    auto r = http_request(d.port(), "POST", "/v1/functions/steady/invoke", "{}",
                                          {{"Authorization", "Bearer " + Daemon::kToken},
                                           {"X-Funcd-Invocation-Type", "Event"}});
                    if (r.status == 202) {
                        std::lock_guard l(ledger.m);
                        ledger.accepted_events.insert(r.json()["request_id"].get<std::string>());
                    }
                    break;
                }
                default: {
                    auto r = d.invoke("steady");
                    if (r.status == 200) {
                        std::lock_guard l(ledger.m);
                        ledger.answered_invokes.insert(r.header("x-funcd-request-id"));
                    }
                }
            }
        } catch (const std::exception&) {
            // The daemon was killed mid-request.
        }
    }
}

json all_usage_records(Daemon& d, const std::string& function) {
    return d.api("GET", "/v1/usage/records?limit=1000&function=" + function).json()["records"];
}

// What the daemon restarted after a crash must show of what was answered before it.
void check_promises(Daemon& d, Ledger& ledger) {
    const json listed = d.api("GET", "/v1/functions").json();
    for (const auto& fn : listed["functions"]) {
        const std::string name = fn["name"];
        const auto r = d.invoke(name);
        ASSERT_EQ(r.status, 200) << name << ": " << r.body;
        if (name != "steady") {
            EXPECT_TRUE(ledger.deployed_tags[name].count(r.json().get<std::string>()))
                << name << " serves code nobody deployed: " << r.body;
        }
    }
    ASSERT_TRUE(eventually(
        [&] { return d.api("GET", "/v1/functions/steady").json()["async"]["queue_depth"] == 0; }, 120s))
        << "accepted events were never delivered";
    // Records are newest first and a round makes far fewer than 1000, so the last round's
    // invocations (never retried) and its events' deliveries are all in this window.
    std::map<std::string, int> metered;
    for (const auto& rec : all_usage_records(d, "steady")) ++metered[rec["request_id"].get<std::string>()];
    std::set<std::string> dead;
    const json letters = d.api("GET", "/v1/dead-letters?function=steady&limit=1000").json();
    for (const auto& l : letters["dead_letters"])
        dead.insert(l["id"].get<std::string>());
    for (const auto& id : ledger.accepted_events)
        EXPECT_TRUE(metered.count(id) || dead.count(id)) << "event " << id << " was accepted (202) and then lost";
    for (const auto& id : ledger.answered_invokes)
        EXPECT_EQ(metered[id], 1) << "invocation " << id << " was answered and metered " << metered[id] << " times";
}

TEST(CrashConsistency, SigkillAtRandomMomentsKeepsEveryPromise) {
    const fs::path data = fs::temp_directory_path() / ("funcd-crash-" + std::to_string(::getpid()));
    fs::remove_all(data);
    std::mt19937 rng(20261205);
    {
        Daemon d({}, data);
        d.keep_data_dir();
        ASSERT_EQ(d.deploy("steady", python_settings(), python_zip(versioned_py("steady"))).status, 201);
    }
    const int n = rounds();
    std::size_t events = 0, invokes = 0;
    Ledger ledger;
    for (int round = 0; round <= n; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        Daemon d({}, data);
        d.keep_data_dir();
        if (round > 0) {
            check_promises(d, ledger);
            events += ledger.accepted_events.size();
            invokes += ledger.answered_invokes.size();
            ledger.accepted_events.clear();
            ledger.answered_invokes.clear();
        }
        if (round == n) break;
        std::atomic<bool> stop{false};
        std::vector<std::thread> drivers;
        for (int w = 0; w < 3; ++w) drivers.emplace_back(drive, std::ref(d), std::ref(ledger), std::ref(stop), round, w);
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 2000));
        // Everything the daemon started, to check none of it outlives it.
        std::vector<std::pair<pid_t, std::string>> started;
        for (pid_t p : descendants_of(d.pid())) started.emplace_back(p, start_time(p));
        ASSERT_EQ(d.stop(SIGKILL, 10s) & 0x7f, SIGKILL);
        stop = true;
        for (auto& t : drivers) t.join();
        EXPECT_TRUE(eventually(
            [&] {
                for (const auto& [p, t] : started)
                    if (!t.empty() && start_time(p) == t) return false;
                return true;
            },
            10s))
            << "a worker outlived the daemon that started it";
    }
    std::printf("%d rounds: %zu events accepted, %zu invocations answered before a SIGKILL, all kept\n", n, events,
                invokes);
    EXPECT_GT(invokes, 0u);
    EXPECT_GT(events, 0u);
    std::system(("chmod -R u+w '" + data.string() + "' 2>/dev/null").c_str());
    fs::remove_all(data);
}

}  // namespace
}  // namespace funcd::testing
