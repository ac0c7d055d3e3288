#include "funcd/pool/worker_pool.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "io_thread.hpp"
#include "raw_http_client.hpp"
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "funcd/dispatch/invocation.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/sandbox/launcher.hpp"
#include "funcd/sandbox/process_launcher.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using funcd::FunctionConfig;
using funcd::FunctionPtr;
using funcd::FunctionVersion;
using funcd::Invocation;
using funcd::InvocationPtr;
using funcd::InvocationResult;
using funcd::LaunchedWorker;
using funcd::LogDirectory;
using funcd::Outcome;
using funcd::PoolEnvironment;
using funcd::SandboxLauncher;
using funcd::SandboxPaths;
using funcd::UniqueFd;
using funcd::Worker;
using funcd::WorkerPool;
using funcd::WorkerResources;
using funcd::WorkerSpec;

// Longest any single wait in these tests may take before it counts as a hang.
constexpr auto kPatience = 5s;
// What the fake reports as a worker's peak memory unless a test sets another: 48 MiB, so
// REPORT shows "48 MB".
constexpr std::uint64_t kPeakMemory = 48ull << 20;
constexpr std::uint64_t kPoolTestMiB = 1ull << 20;

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// A pidfd becomes readable when its process has exited, whether or not it was reaped yet.
bool exited_within(int pidfd, std::chrono::milliseconds wait) {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
}

class FakeResources final : public WorkerResources {
public:
    FakeResources(UniqueFd pidfd, std::shared_ptr<std::atomic<int>> kills,
                  std::shared_ptr<std::promise<std::thread::id>> dropped_on,
                  std::shared_ptr<std::atomic<std::uint64_t>> peak)
        : pidfd_(std::move(pidfd)), kills_(std::move(kills)), dropped_on_(std::move(dropped_on)), peak_(std::move(peak)) {}
    ~FakeResources() override { dropped_on_->set_value(std::this_thread::get_id()); }
    // Signalling through a pidfd cannot hit an unrelated process that reused the pid.
    void kill_all() override {
        ++*kills_;
        pidfd_send_signal(pidfd_.get(), SIGKILL);
    }
    std::optional<std::uint64_t> peak_memory_bytes() override { return peak_->load(); }

private:
    UniqueFd pidfd_;
    std::shared_ptr<std::atomic<int>> kills_;
    std::shared_ptr<std::promise<std::thread::id>> dropped_on_;
    std::shared_ptr<std::atomic<std::uint64_t>> peak_;
};

// One worker the fake started; the test plays its runtime.
struct Launch {
    WorkerSpec spec;
    pid_t pid = -1;
    UniqueFd pidfd;   // the test's own handle on the child, independent of the worker's
    UniqueFd output;  // write end of the pipe the worker reads as the process's output
    unsigned short port = 0;
    std::shared_ptr<std::atomic<int>> kills = std::make_shared<std::atomic<int>>(0);
    // What the worker's resources report as its peak memory: the test makes it grow.
    std::shared_ptr<std::atomic<std::uint64_t>> peak = std::make_shared<std::atomic<std::uint64_t>>(kPeakMemory);
    // The thread that dropped the worker's resources.
    std::shared_ptr<std::promise<std::thread::id>> dropped_on = std::make_shared<std::promise<std::thread::id>>();
    std::shared_future<std::thread::id> dropped = dropped_on->get_future().share();

    void print(std::string_view text) const {
        ASSERT_EQ(::write(output.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
    }
    void kill() const { ASSERT_EQ(pidfd_send_signal(pidfd.get(), SIGKILL), 0); }
    bool exited_within(std::chrono::milliseconds wait) const { return ::exited_within(pidfd.get(), wait); }
};

// Starts an idle child process per worker instead of a runtime: the pool sees a real
// process with a real exit, while the runtime's side of the Runtime API is the test.
class FakeLauncher final : public SandboxLauncher {
public:
    ~FakeLauncher() override {
        for (auto& l : launches_) {
            pidfd_send_signal(l->pidfd.get(), SIGKILL);
            siginfo_t info{};
            // Fails with ECHILD when the worker already reaped it.
            ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(l->pidfd.get()), &info, WEXITED);
        }
    }

    SandboxPaths paths_for(const fs::path&, const fs::path&, const fs::path&) const override {
        return {"/var/task", "/opt/funcd-runtime"};
    }

    LaunchedWorker launch(const WorkerSpec& spec) override {
        meet_the_others();
        std::lock_guard lock(mutex_);
        ++attempts_;
        if (fail_launches_) throw std::system_error(EAGAIN, std::generic_category(), "fork");

        auto record = std::make_unique<Launch>();
        record->spec = spec;
        LaunchedWorker out;
        out.runtime_api_listener = funcd::listen_loopback_ephemeral();
        record->port = funcd::local_port(out.runtime_api_listener.get());
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        out.output.reset(fds[0]);
        record->output.reset(fds[1]);

        const std::optional<int> exit_status = exit_status_;
        const pid_t pid = ::fork();
        if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
        if (pid == 0) {
            // The io thread forks and outlives every worker of a test; if the test binary
            // dies, its children go with it.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::close_range(3, ~0U, 0);
            if (exit_status) ::_exit(*exit_status);
            for (;;) ::pause();
        }
        record->pid = pid;
        out.pid = pid;
        out.pidfd.reset(pidfd_open(pid));
        record->pidfd.reset(::fcntl(out.pidfd.get(), F_DUPFD_CLOEXEC, 0));
        out.resources =
            std::make_unique<FakeResources>(UniqueFd(::fcntl(out.pidfd.get(), F_DUPFD_CLOEXEC, 0)), record->kills,
                                            record->dropped_on, record->peak);
        launches_.push_back(std::move(record));
        return out;
    }

    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return launches_.size();
    }
    int attempts() const {
        std::lock_guard lock(mutex_);
        return attempts_;
    }
    // Records are never removed, so the reference stays valid for the test.
    const Launch& at(std::size_t i) const {
        std::lock_guard lock(mutex_);
        if (i >= launches_.size()) throw std::out_of_range("no launch #" + std::to_string(i));
        return *launches_[i];
    }
    void fail_launches(bool fail) {
        std::lock_guard lock(mutex_);
        fail_launches_ = fail;
    }
    // Children of later launches exit at once with this status.
    void exit_at_once(int status) {
        std::lock_guard lock(mutex_);
        exit_status_ = status;
    }
    // Each launch waits until `n` launches are in progress at once, and fails if that
    // does not happen within kPatience: launches made one after another fail.
    void rendezvous(int n) {
        std::lock_guard lock(rendezvous_mutex_);
        rendezvous_ = n;
    }

private:
    void meet_the_others() {
        std::unique_lock lock(rendezvous_mutex_);
        if (rendezvous_ == 0) return;
        ++arrived_;
        rendezvous_cv_.notify_all();
        if (!rendezvous_cv_.wait_for(lock, kPatience, [this] { return arrived_ >= rendezvous_; }))
            throw std::system_error(ETIMEDOUT, std::generic_category(), "launch waited alone");
    }

    std::mutex rendezvous_mutex_;
    std::condition_variable rendezvous_cv_;
    int rendezvous_ = 0;
    int arrived_ = 0;

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Launch>> launches_;
    int attempts_ = 0;
    bool fail_launches_ = false;
    std::optional<int> exit_status_;
};

// A blocking client on a plain socket: the worker's runtime.
class RuntimeClient : public funcd::testing::RawHttpClient {
public:
    using RawHttpClient::RawHttpClient;

    void send_next() { send("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); }

    Response next() {
        send_next();
        return read_response();
    }

    Response post(std::string_view path, std::string_view body, std::string_view extra_headers = {}) {
        send_post(path, body, extra_headers);
        return read_response();
    }

    Response respond(const std::string& request_id, std::string_view body) {
        return post("/2018-06-01/runtime/invocation/" + request_id + "/response", body);
    }
};

// An invocation as the dispatcher would hand it over, with its result observable from
// the test thread.
struct Submitted {
    std::string request_id;
    std::future<InvocationResult> result;
    std::shared_ptr<std::atomic<int>> done_calls = std::make_shared<std::atomic<int>>(0);

    bool finished() const { return result.wait_for(0s) == std::future_status::ready; }

    InvocationResult wait(std::chrono::milliseconds patience = kPatience) {
        if (result.wait_for(patience) != std::future_status::ready)
            throw std::runtime_error("invocation " + request_id + " did not complete");
        return result.get();
    }
};

nlohmann::json json_of(const std::string& body) { return nlohmann::json::parse(body); }

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class WorkerPoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-pool-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        fs::create_directories(dir_ / "code");
        fs::create_directories(dir_ / "runtime");
        io_thread_ = std::thread([this] { io_.run(); });
        on_io([this] {
            logs_ = std::make_unique<LogDirectory>(io_, dir_ / "logs", output_limits());
            return 0;
        });
        env_ = std::make_unique<PoolEnvironment>(
            PoolEnvironment{io_, launcher_, *logs_, dir_ / "runtime", funcd::RuntimeCatalog({"/usr/bin/python3", ""}), 5000ms});
    }

    // The output limits of the fixture's logs (tests of output bounds shrink them).
    virtual funcd::OutputLimits output_limits() const { return {}; }

    void TearDown() override {
        if (pool_) {
            on_io([this] {
                pool_->kill_all();
                return 0;
            });
            if (wait_until([this] { return pool_->live() == 0; })) {
                on_io([this] {
                    pool_.reset();
                    return 0;
                });
            } else {
                // Destroying a pool with live workers would leave them a dangling owner.
                ADD_FAILURE() << "workers still live at teardown";
                pool_.release();
            }
        }
        on_io([this] {
            logs_.reset();
            return 0;
        });
        work_.reset();
        io_.stop();
        io_thread_.join();
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    // Runs `f` on the io thread, which owns the pool, and returns its result.
    template <class F>
    auto on_io(F f) -> decltype(f()) {
        return funcd::testing::run_on(io_, std::move(f));
    }

    // Polls `pred` on the io thread until it holds.
    template <class F>
    bool wait_until(F pred, std::chrono::milliseconds patience = kPatience) {
        return funcd::testing::poll_on(io_, std::move(pred), patience, 2ms);
    }

    static FunctionConfig config() {
        FunctionConfig c;
        c.name = "echo";
        c.runtime = funcd::Runtime::provided;
        c.handler = "bootstrap";
        c.memory_mb = 128;
        c.timeout_s = 3;
        c.keep_alive_s = 600;
        return c;
    }

    void start_pool(FunctionConfig c = config(), std::chrono::milliseconds init_timeout = 5000ms) {
        auto fn = std::make_shared<FunctionVersion>();
        fn->config = std::move(c);
        fn->version = 7;
        fn->code_sha256 = "0123abcd";
        fn->code_dir = dir_ / "code";
        fn_ = fn;
        env_->init_timeout = init_timeout;
        on_io([this] {
            pool_ = std::make_unique<WorkerPool>(*env_, fn_, [this](WorkerPool&) { ++drained_; });
            return 0;
        });
    }

    Submitted submit(std::string request_id, std::string payload = R"({"n":1})", bool capture_log = false) {
        auto inv = std::make_shared<Invocation>();
        inv->capture_log = capture_log;
        inv->request_id = request_id;
        inv->trace_id = "Root=1-5f84c7a9-" + request_id;
        inv->payload = std::make_shared<const std::string>(std::move(payload));
        inv->function = fn_;
        inv->received = std::chrono::steady_clock::now();
        Submitted s;
        s.request_id = request_id;
        auto promise = std::make_shared<std::promise<InvocationResult>>();
        s.result = promise->get_future();
        inv->done = [promise, calls = s.done_calls](InvocationResult r) {
            // A second call is counted, not delivered: tests assert there is none.
            if (calls->fetch_add(1) == 0) promise->set_value(std::move(r));
        };
        on_io([this, inv]() mutable {
            pool_->submit(inv);
            return 0;
        });
        return s;
    }

    std::size_t idle() { return on_io([this] { return pool_->idle(); }); }
    std::size_t busy() { return on_io([this] { return pool_->busy(); }); }
    std::size_t live() { return on_io([this] { return pool_->live(); }); }
    // Ends every worker, then lets the pool go on without launch threads: dead workers'
    // resources are dropped there, so the threads must outlive the last worker.
    void stop_launch_threads(net::thread_pool& threads) {
        on_io([this] {
            pool_->kill_all();
            return 0;
        });
        ASSERT_TRUE(live_drops_to(0));
        on_io([this] {
            env_->launch_threads = nullptr;
            return 0;
        });
        threads.join();
    }

    bool live_drops_to(std::size_t n) {
        return wait_until([this, n] { return pool_->live() == n; });
    }

    // The runtime asks for its first event, takes it and answers it.
    void serve(RuntimeClient& rt, Submitted& s, std::string_view answer = R"({"ok":true})") {
        const auto event = rt.next();
        ASSERT_EQ(event.result_int(), 200);
        ASSERT_EQ(event["Lambda-Runtime-Aws-Request-Id"], s.request_id);
        ASSERT_EQ(rt.respond(s.request_id, answer).result_int(), 202);
        const auto r = s.wait();
        ASSERT_EQ(r.outcome, Outcome::success);
    }

    std::string log_text() {
        on_io([this] {
            logs_->flush_all();
            return 0;
        });
        return read_file(dir_ / "logs" / "echo.log");
    }

    fs::path dir_;
    net::io_context io_;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
    std::thread io_thread_;
    FakeLauncher launcher_;
    std::unique_ptr<LogDirectory> logs_;
    std::unique_ptr<PoolEnvironment> env_;
    FunctionPtr fn_;
    std::unique_ptr<WorkerPool> pool_;
    std::atomic<int> drained_{0};
};

std::int64_t epoch_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST_F(WorkerPoolTest, ColdStartLaunchesAWorkerThatGetsTheEventAtItsFirstNext) {
    auto c = config();
    c.memory_mb = 256;
    start_pool(c);
    auto s = submit("req-cold", R"({"n":42})");

    ASSERT_EQ(launcher_.count(), 1u);
    const Launch& l = launcher_.at(0);
    EXPECT_EQ(l.spec.function_name, "echo");
    EXPECT_EQ(l.spec.version, 7);
    EXPECT_EQ(l.spec.memory_mb, 256);
    EXPECT_EQ(l.spec.code_dir, dir_ / "code");
    EXPECT_EQ(l.spec.argv, std::vector<std::string>{"/var/task/bootstrap"});
    auto has_env = [&](const std::string& kv) {
        return std::find(l.spec.env.begin(), l.spec.env.end(), kv) != l.spec.env.end();
    };
    EXPECT_TRUE(has_env("_HANDLER=bootstrap"));
    EXPECT_TRUE(has_env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256"));
    EXPECT_TRUE(has_env("LAMBDA_TASK_ROOT=/var/task"));
    EXPECT_EQ(busy(), 1u);
    EXPECT_EQ(idle(), 0u);

    RuntimeClient rt(l.port);
    // Time spent before the first /next is the worker's initialisation.
    std::this_thread::sleep_for(50ms);
    const auto before = epoch_ms_now();
    const auto event = rt.next();
    const auto after = epoch_ms_now();
    ASSERT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-cold");
    EXPECT_EQ(event["Lambda-Runtime-Trace-Id"], "Root=1-5f84c7a9-req-cold");
    EXPECT_EQ(event["Lambda-Runtime-Invoked-Function-Arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo:7");
    EXPECT_EQ(event.body(), R"({"n":42})");
    const auto deadline = std::stoll(std::string(event["Lambda-Runtime-Deadline-Ms"]));
    EXPECT_GE(deadline, before + 3000);
    EXPECT_LE(deadline, after + 3000);
    EXPECT_FALSE(s.finished());

    std::this_thread::sleep_for(30ms);
    const auto reply = rt.respond("req-cold", R"({"answer":42})");
    EXPECT_EQ(reply.result_int(), 202);
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_EQ(r.body, R"({"answer":42})");
    EXPECT_EQ(r.error_type, "");
    EXPECT_EQ(r.version, 7);
    ASSERT_TRUE(r.init_duration_us.has_value());
    EXPECT_GE(*r.init_duration_us, 50'000);
    EXPECT_LT(*r.init_duration_us, 5'000'000);
    EXPECT_GE(r.duration_us, 30'000);
    EXPECT_LT(r.duration_us, 5'000'000);
    EXPECT_EQ(r.max_memory_used_bytes, kPeakMemory);
    EXPECT_EQ(s.done_calls->load(), 1);

    EXPECT_EQ(idle(), 1u);
    EXPECT_EQ(busy(), 0u);
    EXPECT_EQ(live(), 1u);
    EXPECT_EQ(launcher_.count(), 1u);
    EXPECT_FALSE(l.exited_within(0ms));
}

TEST_F(WorkerPoolTest, EachLiveWorkerIsInExactlyOneState) {
    start_pool(config());
    auto states = [this] { return on_io([this] { return pool_->states(); }); };
    auto s = submit("req-states", "{}");
    ASSERT_EQ(launcher_.count(), 1u);
    auto st = states();
    EXPECT_EQ(st.starting, 1u) << "launched, its invocation waiting for the runtime's first next";
    EXPECT_EQ(st.busy + st.idle + st.provisioned, 0u);

    RuntimeClient rt(launcher_.at(0).port);
    ASSERT_EQ(rt.next().result_int(), 200);
    st = states();
    EXPECT_EQ(st.busy, 1u);
    EXPECT_EQ(st.starting + st.idle + st.provisioned, 0u);

    ASSERT_EQ(rt.respond("req-states", "{}").result_int(), 202);
    s.wait();
    st = states();
    EXPECT_EQ(st.idle, 1u);
    EXPECT_EQ(st.starting + st.busy + st.provisioned, 0u);
}

TEST_F(WorkerPoolTest, ColdStartsOfABurstAreLaunchedInParallel) {
    net::thread_pool launch_threads(4);
    env_->launch_threads = &launch_threads;
    launcher_.rendezvous(4);
    start_pool();
    std::vector<Submitted> calls;
    for (int i = 0; i < 4; ++i) calls.push_back(submit("req-" + std::to_string(i)));
    // Every launch returned only once all four were in progress together.
    ASSERT_TRUE(wait_until([this] { return launcher_.count() == 4; }));
    for (std::size_t i = 0; i < 4; ++i) {
        RuntimeClient rt(launcher_.at(i).port);
        const auto event = rt.next();
        ASSERT_EQ(event.result_int(), 200);
        ASSERT_EQ(rt.respond(std::string(event["Lambda-Runtime-Aws-Request-Id"]), "{}").result_int(), 202);
    }
    for (auto& c : calls) {
        const auto r = c.wait();
        EXPECT_EQ(r.outcome, Outcome::success) << r.body;
        EXPECT_TRUE(r.init_duration_us.has_value());
    }
    EXPECT_EQ(launcher_.attempts(), 4);
    stop_launch_threads(launch_threads);
}

TEST_F(WorkerPoolTest, ADeadWorkersResourcesAreDroppedOffTheLoop) {
    net::thread_pool launch_threads(2);
    env_->launch_threads = &launch_threads;
    start_pool();
    auto call = submit("req-1");
    ASSERT_TRUE(wait_until([this] { return launcher_.count() == 1; }));
    const auto loop_thread = on_io([] { return std::this_thread::get_id(); });

    launcher_.at(0).kill();
    EXPECT_EQ(call.wait().outcome, Outcome::init_error);
    const auto& dropped = launcher_.at(0).dropped;
    ASSERT_EQ(dropped.wait_for(kPatience), std::future_status::ready);
    EXPECT_NE(dropped.get(), loop_thread) << "removing a cgroup may wait; the loop must not";
    EXPECT_GE(launcher_.at(0).kills->load(), 1) << "the loop still signalled the kill";
    stop_launch_threads(launch_threads);
}

TEST_F(WorkerPoolTest, MemoryBudgetRefusesAWorkerThatDoesNotFitUntilOneEnds) {
    funcd::MemoryBudget budget(256);
    env_->memory = &budget;
    start_pool();  // 128 MB workers
    auto a = submit("req-a");
    auto b = submit("req-b");
    EXPECT_EQ(budget.used_mb(), 256);

    auto third = std::make_shared<Invocation>();
    third->request_id = "req-c";
    third->function = fn_;
    third->payload = std::make_shared<const std::string>("{}");
    third->done = [](InvocationResult) { ADD_FAILURE() << "a refused invocation must not be answered"; };
    EXPECT_EQ(on_io([&] { return pool_->submit(third); }), WorkerPool::Submit::no_memory);
    EXPECT_NE(third, nullptr) << "the caller keeps a refused invocation";
    EXPECT_EQ(launcher_.count(), 2u);

    launcher_.at(0).kill();
    EXPECT_EQ(a.wait().outcome, Outcome::init_error) << "it died before its runtime asked for work";
    ASSERT_TRUE(live_drops_to(1));
    EXPECT_EQ(budget.used_mb(), 128) << "an ended worker gives its memory back";
    auto c = submit("req-c2");
    EXPECT_EQ(launcher_.count(), 3u);
    EXPECT_EQ(budget.used_mb(), 256);
    on_io([this] {
        pool_->kill_all();
        return 0;
    });
    b.wait();
    c.wait();
    ASSERT_TRUE(live_drops_to(0));
    EXPECT_EQ(budget.used_mb(), 0);
    env_->memory = nullptr;
}

// Observed admission (the daemon's when its workers' memory is fenced): a worker is charged
// what its function's workers were seen to use, refreshed after each of its invocations.
class ObservedAdmissionTest : public WorkerPoolTest {
protected:
    void use_budget(std::int64_t limit_mb) {
        budget_.emplace(limit_mb, funcd::MemoryAdmission::observed);
        env_->memory = &*budget_;
    }
    void TearDown() override {
        if (pool_) {
            on_io([this] {
                pool_->kill_all();
                return 0;
            });
            EXPECT_TRUE(live_drops_to(0));
            EXPECT_EQ(used(), 0) << "every ended worker gave back what it was charged";
        }
        WorkerPoolTest::TearDown();
    }
    std::int64_t used() {
        return on_io([this] { return budget_->used_mb(); });
    }
    // Waits until the budget counts `mb` (a charge is refreshed on the loop once the
    // invocation's answer is out).
    bool used_becomes(std::int64_t mb) {
        return wait_until([this, mb] { return budget_->used_mb() == mb; });
    }
    std::int64_t seen(std::int64_t peak_mb) const { return peak_mb + funcd::kObservedHeadroomMb; }

    std::optional<funcd::MemoryBudget> budget_;
};

TEST_F(ObservedAdmissionTest, ANewWorkerIsChargedTheInitialEstimateThenWhatItWasSeenToUse) {
    use_budget(1000);
    start_pool();  // a `provided` function of 128 MB
    auto a = submit("req-a");
    EXPECT_EQ(used(), funcd::kInitialWorkerEstimateMb) << "no worker of the function was seen yet";

    launcher_.at(0).peak->store(20 * kPoolTestMiB);
    RuntimeClient rt0(launcher_.at(0).port);
    serve(rt0, a);
    EXPECT_TRUE(used_becomes(seen(20))) << "charged what it was seen to use once its invocation ended: " << used();

    // Two at once: the idle worker takes one, a new worker the other, charged what the
    // function's workers were seen to use rather than memory_mb.
    auto b = submit("req-b");
    auto c = submit("req-c");
    ASSERT_EQ(launcher_.count(), 2u);
    EXPECT_EQ(used(), 2 * seen(20));
    EXPECT_EQ(on_io([this] { return pool_->charged_mb(); }), 2 * seen(20));

    launcher_.at(1).peak->store(10 * kPoolTestMiB);
    RuntimeClient rt1(launcher_.at(1).port);
    serve(rt1, c);
    serve(rt0, b);
    EXPECT_TRUE(used_becomes(seen(20) + seen(10))) << "each live worker is charged its own peak: " << used();
    EXPECT_EQ(on_io([this] { return pool_->memory_estimate().new_worker_mb(); }), seen(20))
        << "a new worker: the highest peak seen";
}

TEST_F(ObservedAdmissionTest, AWorkerThatGrowsIsChargedMoreButNeverMoreThanMemoryMb) {
    use_budget(1000);
    start_pool();
    auto a = submit("req-a");
    launcher_.at(0).peak->store(20 * kPoolTestMiB);
    RuntimeClient rt0(launcher_.at(0).port);
    serve(rt0, a);
    ASSERT_TRUE(used_becomes(seen(20))) << used();

    // Its next invocation takes it to 60 MB: re-charged when it ends.
    auto b = submit("req-b");
    launcher_.at(0).peak->store(60 * kPoolTestMiB);
    serve(rt0, b);
    EXPECT_TRUE(used_becomes(seen(60))) << used();

    // The function's next worker is charged as much.
    auto c = submit("req-c");  // the idle worker
    auto d = submit("req-d");  // a new one
    ASSERT_EQ(launcher_.count(), 2u);
    EXPECT_EQ(used(), 2 * seen(60));

    // Past memory_mb (its cgroup's limit would have stopped it there): memory_mb.
    launcher_.at(0).peak->store(300 * kPoolTestMiB);
    serve(rt0, c);
    EXPECT_TRUE(used_becomes(128 + seen(60))) << used();
    EXPECT_EQ(on_io([this] { return pool_->memory_estimate().new_worker_mb(); }), 128);

    RuntimeClient rt1(launcher_.at(1).port);
    launcher_.at(1).peak->store(30 * kPoolTestMiB);
    serve(rt1, d);
    EXPECT_TRUE(used_becomes(128 + seen(30))) << used();
}

TEST_F(ObservedAdmissionTest, ABudgetFilledByWhatWorkersUseRefusesANewWorker) {
    use_budget(100);
    start_pool();
    auto a = submit("req-a");
    launcher_.at(0).peak->store(40 * kPoolTestMiB);
    RuntimeClient rt0(launcher_.at(0).port);
    serve(rt0, a);
    ASSERT_TRUE(used_becomes(seen(40))) << used();

    auto b = submit("req-b");  // the idle worker
    auto c = submit("req-c");  // a new one, charged 48
    ASSERT_EQ(launcher_.count(), 2u);
    EXPECT_EQ(used(), 2 * seen(40));

    // Both busy: a third worker (48 more) does not fit in 100.
    auto third = std::make_shared<Invocation>();
    third->request_id = "req-third";
    third->function = fn_;
    third->payload = std::make_shared<const std::string>("{}");
    third->done = [](InvocationResult) { ADD_FAILURE() << "a refused invocation must not be answered"; };
    EXPECT_EQ(on_io([&] { return pool_->submit(third); }), WorkerPool::Submit::no_memory);
    EXPECT_EQ(launcher_.count(), 2u);

    // b's worker grew to 70 MB: the memory is in use, so it is charged even past the limit...
    launcher_.at(0).peak->store(70 * kPoolTestMiB);
    serve(rt0, b);
    EXPECT_TRUE(used_becomes(seen(70) + seen(40))) << used();
    EXPECT_GT(used(), 100);
    // ...and while it is, no new worker fits however little its function was seen to use.
    auto d = submit("req-d");  // the idle worker
    third->done = [](InvocationResult) {};
    EXPECT_EQ(on_io([&] { return pool_->submit(third); }), WorkerPool::Submit::no_memory);

    RuntimeClient rt1(launcher_.at(1).port);
    serve(rt1, c);
    serve(rt0, d);
}

TEST_F(ObservedAdmissionTest, AWorkerStartedAheadOfDemandIsChargedWhatItsInitTook) {
    use_budget(1000);
    auto c = config();
    c.concurrency.provisioned = 1;
    start_pool(c);
    on_io([this] {
        pool_->ensure_provisioned();
        return 0;
    });
    ASSERT_EQ(launcher_.count(), 1u);
    EXPECT_EQ(used(), funcd::kInitialWorkerEstimateMb);
    launcher_.at(0).peak->store(15 * kPoolTestMiB);
    RuntimeClient rt(launcher_.at(0).port);
    rt.send_next();
    ASSERT_TRUE(wait_until([this] { return pool_->provisioned().ready == 1; }));
    EXPECT_TRUE(used_becomes(seen(15))) << used();
}

TEST_F(WorkerPoolTest, ProvisionedWorkersStartAheadServeWithoutInitAndAreNeverReaped) {
    auto c = config();
    c.concurrency.provisioned = 2;
    c.keep_alive_s = 1;
    start_pool(c);
    on_io([this] {
        pool_->ensure_provisioned();
        return 0;
    });
    ASSERT_EQ(launcher_.count(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& env = launcher_.at(i).spec.env;
        EXPECT_NE(std::find(env.begin(), env.end(), "AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency"),
                  env.end());
    }
    EXPECT_EQ(on_io([this] { return pool_->provisioned().ready; }), 0u);
    RuntimeClient rt0(launcher_.at(0).port), rt1(launcher_.at(1).port);
    rt0.send_next();
    rt1.send_next();
    ASSERT_TRUE(wait_until([this] { return pool_->provisioned().ready == 2; }));
    EXPECT_EQ(idle(), 2u);

    // Long past the keep-alive: provisioned workers stay; a second ensure starts no more.
    on_io([this] {
        pool_->tick(Worker::Clock::now() + 1h);
        return 0;
    });
    EXPECT_EQ(idle(), 2u);
    EXPECT_EQ(launcher_.count(), 2u);

    auto s = submit("req-1");
    EXPECT_EQ(launcher_.count(), 2u) << "served by a provisioned worker";
    // LIFO: the worker that became idle last takes it.
    RuntimeClient& rt = rt1;
    const auto event = rt.read_response();
    ASSERT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-1");
    ASSERT_EQ(rt.respond("req-1", "{}").result_int(), 202);
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_FALSE(r.init_duration_us.has_value()) << "its init was not on this invocation's path";

    // Lowered to 0: idle provisioned workers end.
    auto lowered = std::make_shared<FunctionVersion>(*fn_);
    lowered->config.concurrency.provisioned = 0;
    on_io([this, lowered] {
        pool_->update_function(lowered);
        return 0;
    });
    EXPECT_TRUE(live_drops_to(0));
}

// Predicts the next invocation an hour after the function goes idle.
class HourlyPolicy final : public funcd::KeepAlivePolicy {
public:
    void on_arrival(Clock::time_point) override { ++arrivals; }
    funcd::KeepAliveDecision on_idle(Clock::time_point) override {
        ++idles;
        return {std::chrono::minutes(59), std::chrono::minutes(2), true, funcd::KeepAliveReason::histogram};
    }
    int arrivals = 0;
    int idles = 0;
};

TEST_F(WorkerPoolTest, PrewarmWindowUnloadsAtOnceAndLoadsAWorkerBeforeThePredictedArrival) {
    HourlyPolicy* policy = nullptr;
    env_->keep_alive_policy = [&policy](const FunctionConfig&) {
        auto p = std::make_unique<HourlyPolicy>();
        policy = p.get();
        return p;
    };
    start_pool();
    auto first = submit("req-1");
    RuntimeClient rt(launcher_.at(0).port);
    serve(rt, first);
    // Idle with an arrival predicted in an hour: the worker is not kept meanwhile.
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_EQ(on_io([&] { return policy->idles; }), 1);

    on_io([this] {
        pool_->tick(Worker::Clock::now() + 30min);
        return 0;
    });
    EXPECT_EQ(launcher_.count(), 1u) << "not yet";
    on_io([this] {
        pool_->tick(Worker::Clock::now() + 59min);
        return 0;
    });
    ASSERT_EQ(launcher_.count(), 2u) << "pre-warmed";
    RuntimeClient warm(launcher_.at(1).port);
    warm.send_next();
    ASSERT_TRUE(wait_until([this] { return pool_->idle() == 1; }));
    EXPECT_EQ(on_io([&] { return policy->idles; }), 1) << "a pre-warmed worker's init is not the function going idle";

    auto second = submit("req-2");
    EXPECT_EQ(launcher_.count(), 2u);
    const auto event = warm.read_response();
    ASSERT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-2");
    ASSERT_EQ(warm.respond("req-2", "{}").result_int(), 202);
    const auto r = second.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_FALSE(r.init_duration_us.has_value()) << "its init happened before the invocation arrived";
    EXPECT_EQ(on_io([&] { return policy->arrivals; }), 2);
}

TEST_F(WorkerPoolTest, WarmWorkerWithParkedNextTakesTheNextInvocationWithoutALaunch) {
    start_pool();
    auto first = submit("req-1");
    RuntimeClient rt(launcher_.at(0).port);
    serve(rt, first);

    rt.send_next();
    // An idle worker's /next stays parked until there is work.
    EXPECT_TRUE(rt.silent_for(100ms));
    auto second = submit("req-2", R"({"n":2})");
    EXPECT_EQ(launcher_.count(), 1u);
    const auto event = rt.read_response();
    ASSERT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-2");
    EXPECT_EQ(event.body(), R"({"n":2})");
    EXPECT_EQ(busy(), 1u);
    EXPECT_EQ(idle(), 0u);

    ASSERT_EQ(rt.respond("req-2", "2").result_int(), 202);
    const auto r = second.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_EQ(r.body, "2");
    EXPECT_FALSE(r.init_duration_us.has_value());
    EXPECT_EQ(idle(), 1u);
    EXPECT_EQ(launcher_.count(), 1u);
}

TEST_F(WorkerPoolTest, InvocationAssignedBeforeTheRuntimeAsksIsDeliveredAtItsNextNext) {
    start_pool();
    auto first = submit("req-1");
    RuntimeClient rt(launcher_.at(0).port);
    serve(rt, first);

    // The runtime has answered but not yet asked again.
    auto second = submit("req-2");
    EXPECT_EQ(launcher_.count(), 1u);
    EXPECT_EQ(busy(), 1u);
    const auto event = rt.next();
    ASSERT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-2");
    ASSERT_EQ(rt.respond("req-2", "ok").result_int(), 202);
    EXPECT_EQ(second.wait().outcome, Outcome::success);
}

TEST_F(WorkerPoolTest, ConcurrentInvocationsWithNoIdleWorkerLaunchOneWorkerEach) {
    start_pool();
    auto a = submit("req-a");
    auto b = submit("req-b");
    ASSERT_EQ(launcher_.count(), 2u);
    EXPECT_EQ(busy(), 2u);
    EXPECT_EQ(live(), 2u);

    RuntimeClient rt_a(launcher_.at(0).port);
    RuntimeClient rt_b(launcher_.at(1).port);
    const auto event_b = rt_b.next();
    const auto event_a = rt_a.next();
    EXPECT_EQ(event_a["Lambda-Runtime-Aws-Request-Id"], "req-a");
    EXPECT_EQ(event_b["Lambda-Runtime-Aws-Request-Id"], "req-b");

    ASSERT_EQ(rt_b.respond("req-b", "b").result_int(), 202);
    EXPECT_EQ(b.wait().body, "b");
    EXPECT_FALSE(a.finished());
    EXPECT_EQ(idle(), 1u);
    EXPECT_EQ(busy(), 1u);
    ASSERT_EQ(rt_a.respond("req-a", "a").result_int(), 202);
    EXPECT_EQ(a.wait().body, "a");
    EXPECT_EQ(idle(), 2u);
    EXPECT_EQ(launcher_.count(), 2u);
}

TEST_F(WorkerPoolTest, ResponseForAnotherRequestIdIsRejectedAndLeavesTheInvocationRunning) {
    start_pool();
    auto s = submit("req-1");
    RuntimeClient rt(launcher_.at(0).port);
    ASSERT_EQ(rt.next().result_int(), 200);

    const auto wrong = rt.respond("req-other", "nope");
    EXPECT_EQ(wrong.result_int(), 400);
    EXPECT_EQ(json_of(wrong.body()).value("errorType", ""), "InvalidRequestID");
    EXPECT_FALSE(s.finished());
    EXPECT_EQ(busy(), 1u);

    ASSERT_EQ(rt.respond("req-1", "yes").result_int(), 202);
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_EQ(r.body, "yes");

    // A second answer for the finished invocation has nothing to attach to.
    const auto again = rt.respond("req-1", "again");
    EXPECT_EQ(again.result_int(), 403);
    EXPECT_EQ(s.done_calls->load(), 1);
}

TEST_F(WorkerPoolTest, ResponseBeforeTheEventWasDeliveredIsRejected) {
    start_pool();
    auto s = submit("req-1");
    RuntimeClient rt(launcher_.at(0).port);

    const auto early = rt.respond("req-1", "too soon");
    EXPECT_EQ(early.result_int(), 403);
    EXPECT_EQ(json_of(early.body()).value("errorType", ""), "InvalidStateTransition");
    EXPECT_FALSE(s.finished());

    const auto event = rt.next();
    ASSERT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-1");
    ASSERT_EQ(rt.respond("req-1", "in time").result_int(), 202);
    EXPECT_EQ(s.wait().body, "in time");
}

TEST_F(WorkerPoolTest, FunctionErrorCompletesTheInvocationAndKeepsTheWorker) {
    start_pool();
    auto s = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);

    const std::string doc = R"({"errorMessage":"x","errorType":"ValueError"})";
    const auto reply = rt.post("/2018-06-01/runtime/invocation/req-1/error", doc,
                               "Lambda-Runtime-Function-Error-Type: Unhandled\r\n");
    EXPECT_EQ(reply.result_int(), 202);
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::function_error);
    EXPECT_EQ(r.error_type, "ValueError");
    EXPECT_EQ(r.body, doc);
    EXPECT_EQ(idle(), 1u);
    EXPECT_EQ(live(), 1u);
    EXPECT_FALSE(l.exited_within(50ms));

    // A body that is not an error document is wrapped in one, typed by the header.
    auto second = submit("req-2");
    ASSERT_EQ(rt.next().result_int(), 200);
    ASSERT_EQ(rt.post("/2018-06-01/runtime/invocation/req-2/error", "plain words",
                      "Lambda-Runtime-Function-Error-Type: Runtime.Custom\r\n")
                  .result_int(),
              202);
    const auto r2 = second.wait();
    EXPECT_EQ(r2.outcome, Outcome::function_error);
    EXPECT_EQ(r2.error_type, "Runtime.Custom");
    EXPECT_EQ(json_of(r2.body).value("errorType", ""), "Runtime.Custom");
    EXPECT_EQ(json_of(r2.body).value("errorMessage", ""), "plain words");
    EXPECT_EQ(idle(), 1u);
    EXPECT_EQ(launcher_.count(), 1u);
}

TEST_F(WorkerPoolTest, InvocationPastItsTimeoutFailsAndTheWorkerIsKilled) {
    auto c = config();
    c.timeout_s = 1;
    start_pool(c);
    auto s = submit("req-slow");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);

    const auto r = s.wait(3000ms);
    EXPECT_EQ(r.outcome, Outcome::timeout);
    EXPECT_EQ(r.error_type, "Sandbox.Timedout");
    const auto doc = json_of(r.body);
    EXPECT_EQ(doc.value("errorType", ""), "Sandbox.Timedout");
    EXPECT_EQ(doc.value("errorMessage", ""), "Task timed out after 1.00 seconds");
    EXPECT_GE(r.duration_us, 1'000'000);
    EXPECT_GE(l.kills->load(), 1);
    EXPECT_TRUE(l.exited_within(2000ms));
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_EQ(idle(), 0u);
    EXPECT_EQ(s.done_calls->load(), 1);
    EXPECT_NE(log_text().find("REPORT RequestId: req-slow\t"), std::string::npos);
    EXPECT_NE(log_text().find("\tStatus: timeout"), std::string::npos);
}

TEST_F(WorkerPoolTest, InvocationAssignedToAWorkerThatExitsBeforeAskingRunsOnANewWorker) {
    start_pool();
    auto first = submit("req-1");
    {
        RuntimeClient rt(launcher_.at(0).port);
        serve(rt, first);
    }
    // Answered, not yet asked again: the next invocation waits for this worker...
    auto second = submit("req-2");
    EXPECT_EQ(launcher_.count(), 1u);
    // ...which ends instead (as the Node.js runtime does after an uncaught exception). The
    // event never reached it: a new worker runs it.
    launcher_.at(0).kill();
    ASSERT_TRUE(wait_until([this] { return launcher_.count() == 2u; }));
    RuntimeClient rt(launcher_.at(1).port);
    const auto event = rt.next();
    ASSERT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-2");
    ASSERT_EQ(rt.respond("req-2", "ok").result_int(), 202);
    const auto r = second.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_TRUE(r.init_duration_us.has_value()) << "a cold start, reported as one";
}

TEST_F(WorkerPoolTest, WorkerExitingDuringAnInvocationFailsItWithExitError) {
    start_pool();
    auto s = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);

    l.kill();
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::exit_error);
    EXPECT_EQ(r.error_type, "Runtime.ExitError");
    EXPECT_NE(r.body.find("Runtime.ExitError"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("signal: KILL"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("req-1"), std::string::npos) << r.body;
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_EQ(idle(), 0u);
}

TEST_F(WorkerPoolTest, WorkerExitingBeforeItsFirstNextFailsTheInvocationAsInitError) {
    start_pool();
    auto s = submit("req-1");
    launcher_.at(0).kill();
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::init_error);
    EXPECT_EQ(r.error_type, "Runtime.ExitError");
    EXPECT_NE(r.body.find("signal: KILL"), std::string::npos) << r.body;
    EXPECT_EQ(r.duration_us, 0);
    EXPECT_TRUE(r.init_duration_us.has_value());
    EXPECT_TRUE(live_drops_to(0));
}

TEST_F(WorkerPoolTest, EntryPointThatCannotRunIsReportedAsInvalidEntrypoint) {
    launcher_.exit_at_once(127);
    start_pool();
    auto s = submit("req-1");
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::init_error);
    EXPECT_EQ(r.error_type, "Runtime.InvalidEntrypoint");
    EXPECT_NE(r.body.find("exit status 127"), std::string::npos) << r.body;
    EXPECT_TRUE(live_drops_to(0));
}

TEST_F(WorkerPoolTest, RuntimeThatNeverAsksForWorkFailsWithInitErrorAfterTheInitTimeout) {
    start_pool(config(), 200ms);
    const auto submitted = std::chrono::steady_clock::now();
    auto s = submit("req-1");
    const Launch& l = launcher_.at(0);
    const auto r = s.wait(3000ms);
    EXPECT_GE(std::chrono::steady_clock::now() - submitted, 200ms);
    EXPECT_EQ(r.outcome, Outcome::init_error);
    EXPECT_EQ(r.error_type, "Runtime.InitError");
    EXPECT_EQ(json_of(r.body).value("errorType", ""), "Runtime.InitError");
    EXPECT_TRUE(l.exited_within(2000ms));
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_NE(log_text().find("INIT_TIMEOUT"), std::string::npos);
}

TEST_F(WorkerPoolTest, InitErrorPostFailsTheInvocationWithThePostedTypeAndKillsTheWorker) {
    start_pool();
    auto s = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    const std::string doc = R"({"errorMessage":"missing setting","errorType":"Config.Missing"})";
    rt.send("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Lambda-Runtime-Function-Error-Type: Runtime.Unknown\r\nContent-Length: " +
            std::to_string(doc.size()) + "\r\n\r\n" + doc);

    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::init_error);
    EXPECT_EQ(r.error_type, "Config.Missing");
    EXPECT_EQ(r.body, doc);
    EXPECT_GE(l.kills->load(), 1);
    EXPECT_TRUE(l.exited_within(2000ms));
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_EQ(s.done_calls->load(), 1);
    EXPECT_NE(log_text().find("INIT_ERROR Config.Missing"), std::string::npos);
}

TEST_F(WorkerPoolTest, InitErrorAfterInitialisationIsRejected) {
    start_pool();
    auto s = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);

    const auto late = rt.post("/2018-06-01/runtime/init/error", R"({"errorMessage":"late","errorType":"X"})");
    EXPECT_EQ(late.result_int(), 403);
    EXPECT_FALSE(s.finished());
    EXPECT_FALSE(l.exited_within(50ms));
    ASSERT_EQ(rt.respond("req-1", "fine").result_int(), 202);
    EXPECT_EQ(s.wait().outcome, Outcome::success);
}

TEST_F(WorkerPoolTest, IdleWorkerPastItsKeepAliveIsReaped) {
    auto c = config();
    c.keep_alive_s = 1;
    start_pool(c);
    auto s = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    serve(rt, s);
    rt.send_next();

    on_io([this] {
        pool_->reap_idle(Worker::Clock::now());
        return 0;
    });
    EXPECT_EQ(idle(), 1u);
    EXPECT_FALSE(l.exited_within(50ms));

    on_io([this] {
        pool_->reap_idle(Worker::Clock::now() + 2s);
        return 0;
    });
    EXPECT_EQ(idle(), 0u);
    EXPECT_TRUE(l.exited_within(2000ms));
    EXPECT_TRUE(live_drops_to(0));

    // With nothing warm, the next invocation starts a new worker.
    auto again = submit("req-2");
    EXPECT_EQ(launcher_.count(), 2u);
    RuntimeClient rt2(launcher_.at(1).port);
    serve(rt2, again);
}

class WorkerPoolTwoIdleTest : public WorkerPoolTest {
protected:
    // Two idle workers: #0 finished first, #1 `gap` later; both runtimes wait on /next.
    void make_two_idle(std::chrono::milliseconds gap) {
        auto a = submit("req-a");
        auto b = submit("req-b");
        ASSERT_EQ(launcher_.count(), 2u);
        rt0_.emplace(launcher_.at(0).port);
        rt1_.emplace(launcher_.at(1).port);
        serve(*rt0_, a);
        std::this_thread::sleep_for(gap);
        serve(*rt1_, b);
        rt0_->send_next();
        rt1_->send_next();
        ASSERT_EQ(idle(), 2u);
    }

    std::optional<RuntimeClient> rt0_, rt1_;
};

TEST_F(WorkerPoolTwoIdleTest, MostRecentlyUsedIdleWorkerServesFirst) {
    start_pool();
    make_two_idle(0ms);
    auto s = submit("req-c");
    const auto event = rt1_->read_response();
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-c");
    EXPECT_TRUE(rt0_->silent_for(100ms));
    EXPECT_EQ(launcher_.count(), 2u);
    EXPECT_EQ(idle(), 1u);
    ASSERT_EQ(rt1_->respond("req-c", "c").result_int(), 202);
    EXPECT_EQ(s.wait().outcome, Outcome::success);
}

TEST_F(WorkerPoolTwoIdleTest, ReapingEndsOnlyWorkersIdleLongerThanTheKeepAlive) {
    auto c = config();
    c.keep_alive_s = 1;
    start_pool(c);
    make_two_idle(300ms);
    // Seen 850 ms from now, #0 (idle ~300 ms longer) is past the 1 s keep-alive and #1 is ~150 ms short of it.
    on_io([this] {
        pool_->reap_idle(Worker::Clock::now() + 850ms);
        return 0;
    });
    EXPECT_EQ(idle(), 1u);
    EXPECT_TRUE(launcher_.at(0).exited_within(2000ms));
    EXPECT_FALSE(launcher_.at(1).exited_within(0ms));
    EXPECT_TRUE(live_drops_to(1));

    auto s = submit("req-c");
    EXPECT_EQ(launcher_.count(), 2u);
    const auto event = rt1_->read_response();
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-c");
}

TEST_F(WorkerPoolTest, RetireEndsIdleWorkersAtOnceAndBusyOnesAfterTheirInvocation) {
    start_pool();
    auto a = submit("req-a");
    auto b = submit("req-b");
    ASSERT_EQ(launcher_.count(), 2u);
    const Launch& idle_worker = launcher_.at(0);
    const Launch& busy_worker = launcher_.at(1);
    RuntimeClient rt0(idle_worker.port);
    RuntimeClient rt1(busy_worker.port);
    serve(rt0, a);
    rt0.send_next();
    ASSERT_EQ(rt1.next().result_int(), 200);
    ASSERT_EQ(idle(), 1u);
    ASSERT_EQ(busy(), 1u);

    on_io([this] {
        pool_->retire();
        return 0;
    });
    EXPECT_TRUE(on_io([this] { return pool_->retired(); }));
    EXPECT_EQ(idle(), 0u);
    EXPECT_TRUE(idle_worker.exited_within(2000ms));
    EXPECT_TRUE(live_drops_to(1));
    EXPECT_FALSE(busy_worker.exited_within(0ms));
    EXPECT_EQ(drained_.load(), 0);

    ASSERT_EQ(rt1.respond("req-b", "last").result_int(), 202);
    const auto r = b.wait();
    EXPECT_EQ(r.outcome, Outcome::success);
    EXPECT_EQ(r.body, "last");
    EXPECT_EQ(idle(), 0u);
    EXPECT_TRUE(busy_worker.exited_within(2000ms));
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_EQ(drained_.load(), 1);
}

TEST_F(WorkerPoolTest, RetiringAPoolWithoutWorkersReportsItDrainedAtOnce) {
    start_pool();
    on_io([this] {
        pool_->retire();
        return 0;
    });
    EXPECT_EQ(drained_.load(), 1);
}

TEST_F(WorkerPoolTest, KillAllFailsTheInvocationInFlightAsExitError) {
    start_pool();
    auto s = submit("req-1");
    RuntimeClient rt(launcher_.at(0).port);
    ASSERT_EQ(rt.next().result_int(), 200);
    on_io([this] {
        pool_->kill_all();
        return 0;
    });
    const auto r = s.wait();
    EXPECT_EQ(r.outcome, Outcome::exit_error);
    EXPECT_NE(r.body.find("signal: KILL"), std::string::npos) << r.body;
    EXPECT_TRUE(live_drops_to(0));
}

TEST_F(WorkerPoolTest, KillAllStartsNoWorkerForAnInvocationWhoseWorkerHadNotAskedYet) {
    start_pool();
    auto first = submit("req-1");
    {
        RuntimeClient rt(launcher_.at(0).port);
        serve(rt, first);
    }
    // Assigned to the worker, not yet delivered: a worker dying now would normally hand the
    // invocation to a new one. At shutdown nothing new may start, or the pool never empties.
    auto second = submit("req-2");
    on_io([this] {
        pool_->kill_all();
        return 0;
    });
    const auto r = second.wait();
    EXPECT_EQ(r.outcome, Outcome::init_error);
    EXPECT_EQ(r.error_type, "Runtime.ExitError");
    EXPECT_TRUE(live_drops_to(0));
    EXPECT_EQ(launcher_.count(), 1u) << "a worker was started after kill_all";
}

TEST_F(WorkerPoolTest, LaunchFailureFailsTheInvocationAsInitError) {
    launcher_.fail_launches(true);
    start_pool();
    auto s = submit("req-1");
    const auto r = s.wait();
    EXPECT_EQ(launcher_.attempts(), 1);
    EXPECT_EQ(r.outcome, Outcome::init_error);
    EXPECT_EQ(r.error_type, "Runtime.InitError");
    EXPECT_NE(r.body.find("could not start the function's runtime"), std::string::npos) << r.body;
    EXPECT_EQ(r.version, 7);
    EXPECT_EQ(live(), 0u);
    EXPECT_EQ(idle(), 0u);
}

// The dispatcher hands the pool its only reference to an invocation and reads the
// invocation from its `done`: a launch that fails at once must answer while the
// invocation is still alive (AddressSanitizer reports the read otherwise).
TEST_F(WorkerPoolTest, ALaunchFailingAtOnceAnswersWhileTheInvocationIsAlive) {
    launcher_.fail_launches(true);
    start_pool();
    const std::string seen = on_io([this] {
        std::string request_id;
        auto inv = std::make_shared<Invocation>();
        inv->request_id = "req-only-ref";
        inv->payload = std::make_shared<const std::string>("{}");
        inv->function = fn_;
        inv->received = std::chrono::steady_clock::now();
        inv->done = [raw = inv.get(), &request_id](InvocationResult) { request_id = raw->request_id; };
        pool_->submit(inv);
        return request_id;
    });
    EXPECT_EQ(seen, "req-only-ref");
    EXPECT_EQ(live(), 0u);
}

TEST_F(WorkerPoolTest, EventIsKeptForTheNextRequestWhenTheParkedRuntimeHungUp) {
    start_pool();
    auto first = submit("req-1");
    const Launch& l = launcher_.at(0);
    {
        RuntimeClient rt(l.port);
        serve(rt, first);
        rt.send_next();
        EXPECT_TRUE(rt.silent_for(50ms));
    }
    auto second = submit("req-2");
    EXPECT_EQ(launcher_.count(), 1u);
    RuntimeClient again(l.port);
    const auto event = again.next();
    ASSERT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "req-2");
    ASSERT_EQ(again.respond("req-2", "ok").result_int(), 202);
    EXPECT_EQ(second.wait().outcome, Outcome::success);
}

TEST_F(WorkerPoolTest, LogHasPlatformLinesAndOutputTaggedWithTheRequestItWasPrintedDuring) {
    start_pool();
    auto s = submit("req-log");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);

    l.print("booting\n");
    // Initialisation output must be logged before the event exists to be untagged.
    ASSERT_TRUE(wait_until([this] {
        logs_->flush_all();
        return read_file(dir_ / "logs" / "echo.log").find("booting") != std::string::npos;
    }));
    ASSERT_EQ(rt.next().result_int(), 200);
    l.print("hello from handler\n");
    ASSERT_EQ(rt.respond("req-log", "{}").result_int(), 202);
    ASSERT_EQ(s.wait().outcome, Outcome::success);

    const std::string log = log_text();
    const auto booting = log.find("\t-\tbooting\n");
    const auto start = log.find("\tSTART RequestId: req-log Version: 7\n");
    const auto hello = log.find("\treq-log\thello from handler\n");
    const auto end = log.find("\tEND RequestId: req-log\n");
    const auto report = log.find("\tREPORT RequestId: req-log\tDuration: ");
    ASSERT_NE(booting, std::string::npos) << log;
    ASSERT_NE(start, std::string::npos) << log;
    ASSERT_NE(hello, std::string::npos) << log;
    ASSERT_NE(end, std::string::npos) << log;
    ASSERT_NE(report, std::string::npos) << log;
    EXPECT_LT(booting, start);
    EXPECT_LT(start, hello);
    EXPECT_LT(hello, end);
    EXPECT_LT(end, report);
    const std::string report_line = log.substr(report, log.find('\n', report) - report);
    EXPECT_NE(report_line.find("\tMemory Size: 128 MB\tMax Memory Used: 48 MB\tInit Duration: "), std::string::npos)
        << report_line;

    // A warm invocation's REPORT has no init duration.
    auto warm = submit("req-warm");
    ASSERT_EQ(rt.next().result_int(), 200);
    ASSERT_EQ(rt.respond("req-warm", "{}").result_int(), 202);
    ASSERT_EQ(warm.wait().outcome, Outcome::success);
    const std::string later = log_text();
    const auto warm_report = later.find("\tREPORT RequestId: req-warm\t");
    ASSERT_NE(warm_report, std::string::npos) << later;
    const std::string warm_line = later.substr(warm_report, later.find('\n', warm_report) - warm_report);
    EXPECT_EQ(warm_line.find("Init Duration"), std::string::npos) << warm_line;
}

TEST_F(WorkerPoolTest, OutputOfManySlicesPrintedBeforeTheAnswerIsAllTaggedWithItsInvocation) {
    start_pool();
    auto s = submit("req-long");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);
    // Several pipes' worth: the write blocks until the worker has read all but the last
    // pipeful, in slices, turn by turn; the answer comes after the last byte was written.
    std::string out;
    for (int i = 0; i < 4000; ++i) out += fmt::format("line {:05}\n", i);
    l.print(out);
    ASSERT_EQ(rt.respond("req-long", "{}").result_int(), 202);
    ASSERT_EQ(s.wait().outcome, Outcome::success);
    const std::string log = log_text();
    for (int i : {0, 1999, 3999}) EXPECT_NE(log.find(fmt::format("\treq-long\tline {:05}\n", i)), std::string::npos) << i;
    EXPECT_EQ(log.find("\t-\tline "), std::string::npos) << "every line is tagged";
    EXPECT_LT(log.find("line 03999"), log.find("\tEND RequestId: req-long\n"));
}

std::size_t pipe_bytes(int fd) {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t count_of(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

// Output bounds shrunk to a few lines: ten 100-byte lines per invocation and between two.
class WorkerOutputTest : public WorkerPoolTest {
protected:
    funcd::OutputLimits output_limits() const override {
        funcd::OutputLimits limits;
        limits.invocation_bytes = 1000;
        limits.idle_bytes = 1050;  // ten lines, and the eleventh is dropped
        return limits;
    }

    // A line of 100 bytes, its newline included.
    static std::string line100(std::string_view tag, int i) {
        std::string line = fmt::format("{} {:04} ", tag, i);
        line.resize(99, '.');
        return line + "\n";
    }

    // Whether the loop runs a handler posted now within `patience`.
    bool loop_answers_within(std::chrono::milliseconds patience) {
        auto ran = std::make_shared<std::promise<void>>();
        auto done = ran->get_future();
        net::post(io_, [ran] { ran->set_value(); });
        return done.wait_for(patience) == std::future_status::ready;
    }

    std::uint64_t dropped_bytes() {
        return on_io([this] { return logs_->dropped_bytes("echo"); });
    }
};

TEST_F(WorkerOutputTest, AnInvocationsOutputOverItsBudgetIsDroppedAndSaidInOneLineBeforeItsEnd) {
    start_pool();
    auto s = submit("req-big", "{}", /*capture_log=*/true);
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);
    std::string out;
    for (int i = 0; i < 30; ++i) out += line100("inv", i);
    l.print(out);
    ASSERT_EQ(rt.respond("req-big", "{}").result_int(), 202);
    const auto r = s.wait();
    ASSERT_EQ(r.outcome, Outcome::success);

    const std::string log = log_text();
    // Ten lines fill the 1000 bytes; the twenty after them are dropped.
    EXPECT_NE(log.find("\treq-big\tinv 0009 "), std::string::npos) << log;
    EXPECT_EQ(log.find("inv 0010 "), std::string::npos);
    const std::string marker =
        "LOGS_DROPPED RequestId: req-big\tDropped: 2000 bytes, 20 lines\tReason: the invocation printed more than "
        "1000 bytes (output.invocation_bytes)";
    const auto dropped = log.find("\t" + marker + "\n");
    const auto end = log.find("\tEND RequestId: req-big\n");
    ASSERT_NE(dropped, std::string::npos) << log;
    ASSERT_NE(end, std::string::npos) << log;
    EXPECT_LT(log.find("inv 0009 "), dropped);
    EXPECT_LT(dropped, end);
    EXPECT_EQ(count_of(log, "LOGS_DROPPED"), 1u);
    EXPECT_EQ(dropped_bytes(), 2000u);
    // The caller's log tail says the same, in the same place.
    EXPECT_NE(r.log_tail.find(marker + "\nEND RequestId: req-big\nREPORT RequestId: req-big\t"), std::string::npos)
        << r.log_tail;
    EXPECT_EQ(r.log_tail.find("inv 0010 "), std::string::npos);

    // The next invocation has a budget of its own.
    auto next = submit("req-small");
    ASSERT_EQ(rt.next().result_int(), 200);
    l.print(line100("again", 0));
    ASSERT_EQ(rt.respond("req-small", "{}").result_int(), 202);
    ASSERT_EQ(next.wait().outcome, Outcome::success);
    const std::string later = log_text();
    EXPECT_NE(later.find("\treq-small\tagain 0000 "), std::string::npos) << later;
    EXPECT_EQ(count_of(later, "LOGS_DROPPED"), 1u);
    EXPECT_EQ(dropped_bytes(), 2000u);
}

TEST_F(WorkerOutputTest, OutputBetweenInvocationsOverItsBudgetStaysInThePipeUntilTheNextInvocation) {
    start_pool();
    auto first = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    serve(rt, first);

    // Something the handler left running prints on. Ten lines fit in the 1000 bytes
    // allowed between invocations and the eleventh goes over; once the worker has read it,
    // its output is no longer read, the pipe fills and the writer is made to wait.
    const int fd = l.output.get();
    ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    std::uint64_t written = 0;
    int lines = 0;
    auto write_line = [&] {
        const std::string line = line100("idle", lines);
        const ssize_t n = ::write(fd, line.data(), line.size());  // all or nothing: shorter than PIPE_BUF
        if (n == 100) {
            written += 100;
            ++lines;
        }
        return n;
    };
    for (int i = 0; i < 11; ++i) ASSERT_EQ(write_line(), 100);
    ASSERT_TRUE(wait_until([&] { return pipe_bytes(fd) == 0; })) << "the worker reads what fits and the line over it";
    bool full = false;
    const auto give_up = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < give_up) {
        const ssize_t n = write_line();
        if (n < 0 && errno == EAGAIN) {
            full = true;
            break;
        }
        ASSERT_EQ(n, 100);
    }
    ASSERT_TRUE(full) << "the worker kept reading: " << written << " bytes taken";
    const std::size_t held = pipe_bytes(fd);
    EXPECT_GT(held, 32u * 1024);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(pipe_bytes(fd), held) << "nothing reads the pipe while the worker is idle over its budget";

    // The next invocation: the output flows again and the invocation runs.
    auto second = submit("req-2");
    ASSERT_EQ(rt.next().result_int(), 200);
    ASSERT_EQ(rt.respond("req-2", "{}").result_int(), 202);
    ASSERT_EQ(second.wait().outcome, Outcome::success);
    EXPECT_EQ(pipe_bytes(fd), 0u) << "all read by the time the invocation completed";

    const std::string log = log_text();
    const auto idle_marker = log.find("\tLOGS_DROPPED Dropped: ");
    const auto start = log.find("\tSTART RequestId: req-2 ");
    ASSERT_NE(idle_marker, std::string::npos) << log;
    ASSERT_NE(start, std::string::npos) << log;
    EXPECT_LT(idle_marker, start);
    EXPECT_NE(log.find("\t-\tidle 0009 "), std::string::npos) << log;
    // Every byte written is either in the log (ten lines between the invocations, and up
    // to ten more if the reading resumed after req-2 started) or counted as dropped.
    const std::size_t logged = count_of(log, "\tidle ");
    EXPECT_GE(logged, 10u);
    EXPECT_LE(logged, 20u);
    EXPECT_EQ(dropped_bytes(), written - 100 * logged);
}

TEST_F(WorkerOutputTest, AWriterKeepingThePipeFullNeitherHoldsTheLoopNorKeepsTheInvocationFromCompleting) {
    start_pool();
    auto first = submit("req-1");
    const Launch& l = launcher_.at(0);
    RuntimeClient rt(l.port);
    ASSERT_EQ(rt.next().result_int(), 200);

    // A process the handler started: prints as fast as the pipe takes it until the test ends.
    const int fd = l.output.get();
    ASSERT_EQ(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> flooded{0};
    std::thread writer([&] {
        std::string block;
        for (int i = 0; i < 40; ++i) block += line100("bg", i);  // 4000 bytes: one atomic write
        while (!stop) {
            const ssize_t n = ::write(fd, block.data(), block.size());
            if (n > 0) {
                flooded += static_cast<std::uint64_t>(n);
                continue;
            }
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 10);
        }
    });
    struct StopWriter {
        std::atomic<bool>& stop;
        std::thread& writer;
        ~StopWriter() {
            stop = true;
            writer.join();
        }
    } stop_writer{stop, writer};

    for (int i = 0; i < 20; ++i) ASSERT_TRUE(loop_answers_within(kPatience)) << "the loop is held";
    // Answered while the pipe is kept full: the invocation completes (the answer is only
    // acknowledged once the worker has completed it).
    ASSERT_EQ(rt.respond("req-1", "{}").result_int(), 202);
    ASSERT_EQ(first.wait().outcome, Outcome::success);
    ASSERT_TRUE(loop_answers_within(kPatience));

    // Idle over its budget: the writer now waits on a full pipe instead of the daemon
    // reading (and dropping) without end.
    // A full pipe alone does not show it: the daemon may still be reading its last slices
    // of the budget. Stopped is a pipe the writer made no progress on for 100 ms. (How many
    // bytes make it full varies: the kernel fills it by pages, and a 4000-byte write that
    // does not fit in what is left waits, so it can stop short of 60 KiB.)
    const auto give_up = std::chrono::steady_clock::now() + kPatience;
    for (;;) {
        const auto seen = flooded.load();
        std::this_thread::sleep_for(100ms);
        if (flooded.load() == seen && pipe_bytes(fd) > 32u * 1024) break;
        ASSERT_LT(std::chrono::steady_clock::now(), give_up)
            << "the daemon kept reading an idle worker's output past its budget (written " << flooded.load()
            << " bytes, " << pipe_bytes(fd) << " in the pipe)";
    }
    const auto before = flooded.load();
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(flooded.load(), before);

    // The worker's next invocation runs with the writer still going.
    auto second = submit("req-2");
    ASSERT_EQ(rt.next().result_int(), 200);
    ASSERT_EQ(rt.respond("req-2", "{}").result_int(), 202);
    EXPECT_EQ(second.wait().outcome, Outcome::success);
    EXPECT_GT(dropped_bytes(), 0u);
}

}  // namespace
