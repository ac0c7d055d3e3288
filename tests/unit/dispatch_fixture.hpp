#pragma once
// What the dispatcher's and the async invoker's tests share: the daemon's parts wired as
// run_daemon wires them (registry, code store, pools, usage store, event store,
// dispatcher, async invoker) over a scratch directory, with real but unsandboxed workers
// (ProcessLauncher). Every function runs one `provided` runtime: a small Python script
// speaking the Lambda Runtime API over HTTP. The event says what it does ("gate": wait
// until that file exists; "sleep_ms"; "spike_mb": take that much memory for a moment;
// "fail": answer with an error), and each attempt it
// runs leaves marks (its start and its end, on CLOCK_MONOTONIC) in a directory the test
// reads: nothing in the invoke path is mocked, and tests wait on states, not on time.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/dispatch/sqlite_event_store.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/pool/memory_budget.hpp"
#include "funcd/pool/pool_manager.hpp"
#include "funcd/registry/record_changes.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/state/sqlite_function_store.hpp"
#include "funcd/sandbox/process_launcher.hpp"
#include "io_thread.hpp"
#include "zip_builder.hpp"

namespace funcd::dispatch_testing {

namespace fs = std::filesystem;
namespace net = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

// Longest any single wait may take before it counts as a hang. Generous: the machine the
// suite runs on is shared, and a cold start runs a Python interpreter.
constexpr auto kPatience = 20s;
// How long a test watches for something that must not happen (a delivery past a cap).
// Long enough that what a broken limit lets through shows up on a loaded machine (a
// delivery over the loop and a warm worker takes milliseconds), short enough to keep tests fast.
constexpr auto kQuietPeriod = 500ms;

// The runtime every test function runs. System Python, isolated (-I) and without site
// packages (-S), stdlib only. Marks are written under a temporary name and renamed, so the
// test never reads half a mark.
inline constexpr const char* kBootstrap = R"(#!/usr/bin/python3 -IS
import http.client, json, os, time

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
marks = os.environ["MARKS_DIR"]
gen = os.environ.get("GEN", "")
function = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
base = "/2018-06-01/runtime/invocation/"
conn = http.client.HTTPConnection(api)
count = 0

def mark(name, doc):
    tmp = os.path.join(marks, "." + name)
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, os.path.join(marks, name))

def post(path, doc):
    conn.request("POST", base + path, body=json.dumps(doc), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()

while True:
    conn.request("GET", base + "next")
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(1)
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        event = {}
    count += 1
    name = "%s.%d.%d" % (rid, os.getpid(), count)
    mark(name + ".start", {"rid": rid, "function": function, "gen": gen, "tag": event.get("tag", ""),
                           "pid": os.getpid(), "ns": time.monotonic_ns()})
    if event.get("spike_mb"):
        block = b"x" * (event["spike_mb"] << 20)
        del block
    gate = event.get("gate")
    while gate and not os.path.exists(gate):
        time.sleep(0.005)
    if event.get("sleep_ms"):
        time.sleep(event["sleep_ms"] / 1000.0)
    mark(name + ".end", {"ns": time.monotonic_ns()})
    if event.get("fail"):
        post(rid + "/error", {"errorMessage": "asked to fail", "errorType": "TestFailure"})
    else:
        post(rid + "/response", {"ok": True, "tag": event.get("tag", "")})
)";

// One attempt a worker ran.
struct Mark {
    std::string request_id;
    std::string function;
    std::string gen;  // the function's GEN variable: which deployment ran it
    std::string tag;  // the event's "tag"
    std::int64_t start_ns = 0;
    std::optional<std::int64_t> end_ns;  // unset while it runs
};

// How a test function is deployed.
struct FunctionSettings {
    std::optional<int> reserved;
    int memory_mb = 128;
    int timeout_s = 30;
    std::string gen = "1";
};

// What the event asks the runtime to do.
struct EventSpec {
    std::string tag;
    std::string gate;  // name of a gate (see DispatchFixture::open_gate); empty: none
    int sleep_ms = 0;
    int spike_mb = 0;  // touched and let go: the worker's peak, not what it keeps
    bool fail = false;
};

// How the parts are built; each test shrinks what it exercises.
struct FixtureOptions {
    int max_concurrency = 20;
    std::chrono::milliseconds queue_wait{100};
    std::optional<std::int64_t> memory_budget_mb;  // unset: no budget
    MemoryAdmission admission = MemoryAdmission::declared;
    AsyncLimits async;
    MeteringLimits metering;
};

// An invocation started through the dispatcher, its answer observable from the test thread.
struct Call {
    std::shared_future<InvocationResult> result;
    std::string request_id;
    // The answer came before invoke() returned (a throttle that did not wait).
    bool answered_at_once = false;

    bool done() const { return result.wait_for(0s) == std::future_status::ready; }
    InvocationResult wait(std::chrono::milliseconds patience = kPatience) const {
        if (result.wait_for(patience) != std::future_status::ready)
            throw std::runtime_error("invocation " + request_id + " was not answered");
        return result.get();
    }
};

// An event submitted to the async invoker.
struct Submission {
    std::shared_future<AcceptResult> accepted;
    AcceptResult wait() const {
        if (accepted.wait_for(kPatience) != std::future_status::ready)
            throw std::runtime_error("submit was not answered");
        return accepted.get();
    }
};

class DispatchFixture : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-dispatch-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        for (const char* d : {"code", "runtime", "marks", "gates", "usage.journal"}) fs::create_directories(dir_ / d);
        zip_ = funcd::testing::ZipBuilder().file("bootstrap", kBootstrap, 0755).build();
        io_thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        if (started_) shut_down();
        work_.reset();
        io_.stop();
        io_thread_.join();
        std::error_code ec;
        // Stored code is read-only.
        for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            if (it->is_directory()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(dir_, ec);
    }

    // Builds the parts as run_daemon does (daemon.cpp), smaller.
    void start(FixtureOptions o = {}) {
        options_ = o;
        blocking_ = std::make_unique<net::thread_pool>(2);
        cipher_ = std::make_unique<EnvCipher>(EnvCipher::load(dir_ / "env.keys"));
        code_ = std::make_unique<CodeStore>(dir_ / "code");
        views_ = std::make_unique<LayerViews>(dir_ / "opt", *code_);
        function_store_ = std::make_unique<SqliteFunctionStore>(dir_ / "funcd.db");
        registry_ = std::make_unique<Registry>(*function_store_, *code_, *views_, o.max_concurrency, *cipher_);
        // Its own database file, so a test can lock it without stopping the registry's or
        // the event store's writes.
        usage_ = std::make_unique<UsageStore>(dir_ / "usage.db", dir_ / "usage.journal", UsageStoreOptions{o.metering, {}});
        events_ = std::make_unique<SqliteEventStore>(dir_ / "funcd.db");
        if (o.memory_budget_mb) memory_ = std::make_unique<MemoryBudget>(*o.memory_budget_mb, o.admission);
        on_io([this, o] {
            logs_ = std::make_unique<LogDirectory>(io_, dir_ / "logs");
            env_ = std::make_unique<PoolEnvironment>(PoolEnvironment{
                io_, launcher_, *logs_, dir_ / "runtime", RuntimeCatalog({"/usr/bin/python3", ""}), 15'000ms});
            env_->memory = memory_.get();
            pools_ = std::make_unique<PoolManager>(*env_);
            dispatcher_ = std::make_unique<Dispatcher>(io_, *registry_, *pools_, *usage_,
                                                       DispatchOptions{o.max_concurrency, o.queue_wait, true});
            env_->on_worker_available = [this] { dispatcher_->capacity_freed(); };
            if (memory_) memory_->on_release([this] { dispatcher_->capacity_freed(); });
            invoker_ = std::make_unique<AsyncInvoker>(io_, *blocking_, *events_, *dispatcher_, *registry_,
                                                      "arn:aws:lambda:us-east-1:000000000000:function:", o.async);
            invoker_->start();
            return 0;
        });
        started_ = true;
    }

    // The daemon's graceful stop, then the parts go in the reverse order of their making.
    void shut_down() {
        started_ = false;
        open_all_gates();
        on_io([this] {
            invoker_->stop();
            dispatcher_->stop_accepting();
            pools_->kill_all();
            return 0;
        });
        const bool quiet = wait_until([this] { return pools_->live_workers() == 0 && dispatcher_->in_flight() == 0; });
        EXPECT_TRUE(quiet) << "workers or invocations still live at teardown";
        // The store's work (and what it posts back to the loop) finishes before its users go.
        blocking_->join();
        on_io([this, quiet] {
            // Nothing may call into the dispatcher once it is gone.
            env_->on_worker_available = nullptr;
            if (memory_) memory_->on_release(nullptr);
            invoker_.reset();
            dispatcher_.reset();
            // Destroying pools with live workers would leave the workers a dangling owner.
            if (quiet) pools_.reset();
            else (void)pools_.release();
            env_.reset();
            logs_.reset();
            return 0;
        });
        blocking_.reset();
        usage_->stop();
        usage_.reset();
        events_.reset();
        registry_.reset();
        views_.reset();
        code_.reset();
    }

    // The daemon stopped and started again over the same data.
    void restart() {
        shut_down();
        start(options_);
    }

    // Runs `f` on the loop, which owns the parts, and returns its result.
    template <class F>
    auto on_io(F f) -> decltype(f()) {
        return funcd::testing::run_on(io_, std::move(f));
    }

    // Polls `pred` on the loop until it holds.
    template <class F>
    bool wait_until(F pred, std::chrono::milliseconds patience = kPatience) {
        return funcd::testing::poll_on(io_, std::move(pred), patience, 5ms);
    }

    // Polls `pred` on the test thread.
    template <class F>
    static bool eventually(F pred, std::chrono::milliseconds patience = kPatience) {
        const auto give_up = std::chrono::steady_clock::now() + patience;
        while (!pred()) {
            if (std::chrono::steady_clock::now() > give_up) return false;
            std::this_thread::sleep_for(5ms);
        }
        return true;
    }

    // Creates (or replaces) `name` as the /v1 API does, then tells the pools and the
    // dispatcher, as FunctionChanges::changed does.
    FunctionRecordPtr deploy(const std::string& name, FunctionSettings s = {}) {
        FunctionConfig c;
        c.name = name;
        c.runtime = Runtime::provided;
        c.handler = "bootstrap";
        c.memory_mb = s.memory_mb;
        c.timeout_s = s.timeout_s;
        c.keep_alive_s = 600;
        c.env = {{"MARKS_DIR", (dir_ / "marks").string()}, {"GEN", s.gen}};
        c.concurrency.reserved = s.reserved;
        auto record = registry_->update(name, [&](RecordChange& change) {
            StoredCode code = change.put_code(zip_);
            set_latest(change, c, &code, CodeCheck::entry_point);
            change.record->reserved_concurrency = s.reserved;
        });
        on_io([this, record] {
            pools_->sync(record->name, record->all_versions());
            dispatcher_->reservations_changed();
            return 0;
        });
        return record;
    }

    // Deletes `name` as the /v1 API does, then what FunctionChanges::deleted and
    // EventApi::function_deleted do.
    void remove(const std::string& name) {
        registry_->update(name, [](RecordChange& change) { change.record.reset(); });
        on_io([this, name] {
            pools_->retire_function(name);
            invoker_->function_deleted(name);
            net::post(*blocking_, [this, name] { events_->drop_function(name); });
            dispatcher_->reservations_changed();
            return 0;
        });
    }

    std::string payload(const EventSpec& e) const {
        json j = json::object();
        if (!e.tag.empty()) j["tag"] = e.tag;
        if (!e.gate.empty()) j["gate"] = (dir_ / "gates" / e.gate).string();
        if (e.sleep_ms) j["sleep_ms"] = e.sleep_ms;
        if (e.spike_mb) j["spike_mb"] = e.spike_mb;
        if (e.fail) j["fail"] = true;
        return j.dump();
    }

    // What /v1's synchronous invoke does: admission, then the dispatcher.
    Call invoke(const std::string& name, const EventSpec& e = {}) {
        auto promise = std::make_shared<std::promise<InvocationResult>>();
        Call call;
        call.result = promise->get_future().share();
        call.request_id = new_uuid();
        const std::string body = payload(e);
        on_io([&, promise] {
            FunctionPtr fn = dispatcher_->admit(name);
            dispatcher_->invoke(
                fn, body, [promise](const Invocation&, InvocationResult r) { promise->set_value(std::move(r)); },
                call.request_id);
            call.answered_at_once = call.done();
            return 0;
        });
        return call;
    }

    Submission submit(const std::string& target, const EventSpec& e = {}) {
        auto promise = std::make_shared<std::promise<AcceptResult>>();
        Submission s{promise->get_future().share()};
        const std::string body = payload(e);
        on_io([&, promise] {
            invoker_->submit(target, body, "api", [promise](const AcceptResult& r) { promise->set_value(r); });
            return 0;
        });
        return s;
    }

    // A gate is a file: events that name it wait until it exists.
    void open_gate(const std::string& gate) { std::ofstream(dir_ / "gates" / gate).put('\n'); }
    void open_all_gates() {
        for (const char* g : {"a", "b", "c", "d", "old", "new"}) open_gate(g);
    }

    // Every attempt run so far, by start time.
    std::vector<Mark> marks() const {
        std::map<std::string, Mark> by_name;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir_ / "marks", ec)) {
            const std::string file = entry.path().filename().string();
            if (file.starts_with(".")) continue;
            const bool start = file.ends_with(".start");
            const std::string name = file.substr(0, file.rfind('.'));
            std::ifstream in(entry.path());
            json j = json::parse(in, nullptr, false);
            if (j.is_discarded()) continue;
            Mark& m = by_name[name];
            if (start) {
                m.request_id = j.value("rid", "");
                m.function = j.value("function", "");
                m.gen = j.value("gen", "");
                m.tag = j.value("tag", "");
                m.start_ns = j.value("ns", std::int64_t{0});
            } else {
                m.end_ns = j.value("ns", std::int64_t{0});
            }
        }
        std::vector<Mark> out;
        for (auto& [name, m] : by_name)
            if (m.start_ns != 0) out.push_back(m);
        std::sort(out.begin(), out.end(), [](const Mark& a, const Mark& b) { return a.start_ns < b.start_ns; });
        return out;
    }

    std::vector<Mark> marks_of(const std::string& function) const {
        auto all = marks();
        std::erase_if(all, [&](const Mark& m) { return m.function != function; });
        return all;
    }

    std::vector<Mark> marks_tagged(const std::string& tag) const {
        auto all = marks();
        std::erase_if(all, [&](const Mark& m) { return m.tag != tag; });
        return all;
    }

    std::size_t started(const std::string& function) const { return marks_of(function).size(); }

    // Attempts of `function` started and not yet finished.
    std::size_t running_now(const std::string& function) const {
        auto m = marks_of(function);
        return static_cast<std::size_t>(std::count_if(m.begin(), m.end(), [](const Mark& x) { return !x.end_ns; }));
    }

    // The most attempts of the marks' function that ever ran at once: a worker writes its
    // end mark before it answers, and the next attempt can only start after that answer,
    // so the intervals overlap exactly where attempts ran at the same time.
    static std::size_t most_at_once(const std::vector<Mark>& marks) {
        std::vector<std::pair<std::int64_t, int>> edges;
        for (const auto& m : marks) {
            edges.emplace_back(m.start_ns, +1);
            edges.emplace_back(m.end_ns.value_or(INT64_MAX), -1);
        }
        // At equal times an end comes before a start (-1 < +1).
        std::sort(edges.begin(), edges.end());
        int now = 0, most = 0;
        for (const auto& [t, d] : edges) most = std::max(most, now += d);
        return static_cast<std::size_t>(most);
    }

    std::vector<UsageRecord> usage_of(const std::string& function) {
        usage_->flush();
        return usage_->records(function, 1000);
    }

    fs::path dir_;
    net::io_context io_;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
    std::thread io_thread_;
    // As run_daemon's: the event store is reached through it.
    std::unique_ptr<net::thread_pool> blocking_;
    ProcessLauncher launcher_;
    std::string zip_;
    FixtureOptions options_;
    bool started_ = false;

    std::unique_ptr<EnvCipher> cipher_;
    std::unique_ptr<CodeStore> code_;
    std::unique_ptr<LayerViews> views_;
    std::unique_ptr<SqliteFunctionStore> function_store_;
    std::unique_ptr<Registry> registry_;
    std::unique_ptr<UsageStore> usage_;
    std::unique_ptr<SqliteEventStore> events_;
    std::unique_ptr<MemoryBudget> memory_;
    std::unique_ptr<LogDirectory> logs_;
    std::unique_ptr<PoolEnvironment> env_;
    std::unique_ptr<PoolManager> pools_;
    std::unique_ptr<Dispatcher> dispatcher_;
    std::unique_ptr<AsyncInvoker> invoker_;
};

}  // namespace funcd::dispatch_testing
