// Deploy and invoke through the real daemon and real worker processes.
#include <signal.h>

#include <gtest/gtest.h>

#include <future>
#include <set>

#include "daemon_harness.hpp"
#include "funcd/common/base64.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;

// WORKER identifies the worker process (pids repeat across PID namespaces).
const char* kEchoPy = R"(import os, uuid
WORKER = uuid.uuid4().hex
def handler(event, context):
    print("handling", event.get("n"))
    return {"event": event, "worker": WORKER, "request_id": context.aws_request_id,
            "name": context.function_name, "version": context.function_version,
            "memory": context.memory_limit_in_mb, "remaining": context.get_remaining_time_in_millis(),
            "env": os.environ.get("GREETING"), "cwd": os.getcwd()}
)";

TEST(Invoke, PythonColdThenWarm) {
    Daemon d;
    auto dep = d.deploy("echo", {{"runtime", "python3"}, {"handler", "app.handler"}, {"env", {{"GREETING", "hi"}}}},
                        python_zip(kEchoPy));
    ASSERT_EQ(dep.status, 201) << dep.body;
    EXPECT_EQ(dep.json()["version"], 1);
    EXPECT_EQ(dep.json()["runtime"], "python3");
    EXPECT_EQ(dep.json()["memory_mb"], 128);
    EXPECT_EQ(dep.json()["timeout_s"], 3);
    EXPECT_EQ(dep.json()["code_sha256"].get<std::string>().size(), 64u);

    auto first = d.invoke("echo", R"({"n": 1})");
    ASSERT_EQ(first.status, 200) << first.body;
    json r1 = first.json();
    EXPECT_EQ(r1["event"]["n"], 1);
    EXPECT_EQ(r1["request_id"], first.header("x-funcd-request-id"));
    EXPECT_EQ(r1["name"], "echo");
    EXPECT_EQ(r1["version"], "1");
    EXPECT_EQ(r1["memory"], 128);
    EXPECT_EQ(r1["env"], "hi");
    EXPECT_GT(r1["remaining"].get<int>(), 2000);
    EXPECT_LE(r1["remaining"].get<int>(), 3000);
    EXPECT_FALSE(first.header("x-funcd-init-duration-ms").empty()) << "a cold start reports its init duration";
    EXPECT_EQ(first.header("x-funcd-executed-version"), "1");
    EXPECT_TRUE(first.header("x-funcd-function-error").empty());
    EXPECT_FALSE(first.header("x-funcd-duration-ms").empty());
    EXPECT_GE(std::stoi(first.header("x-funcd-billed-duration-ms")), 1);

    auto second = d.invoke("echo", R"({"n": 2})");
    ASSERT_EQ(second.status, 200) << second.body;
    EXPECT_EQ(second.json()["worker"], r1["worker"]) << "the warm worker is reused";
    EXPECT_TRUE(second.header("x-funcd-init-duration-ms").empty()) << "warm invocations report no init";
    EXPECT_NE(second.header("x-funcd-request-id"), first.header("x-funcd-request-id"));

    // Empty body is the event {}.
    auto empty = d.invoke("echo", "");
    ASSERT_EQ(empty.status, 200);
    EXPECT_EQ(empty.json()["event"], json::object());

    // Logs: START/END/REPORT and the function's output tagged with its request id.
    std::string log;
    ASSERT_TRUE(eventually([&] {
        log = read_file(d.data_dir() / "logs" / "echo.log");
        return log.find("REPORT RequestId: " + second.header("x-funcd-request-id")) != std::string::npos;
    })) << log;
    EXPECT_NE(log.find("START RequestId: " + first.header("x-funcd-request-id") + " Version: 1"), std::string::npos);
    EXPECT_NE(log.find("END RequestId: " + first.header("x-funcd-request-id")), std::string::npos);
    EXPECT_NE(log.find(first.header("x-funcd-request-id") + "\thandling 1"), std::string::npos) << log;
    EXPECT_NE(log.find(second.header("x-funcd-request-id") + "\thandling 2"), std::string::npos) << log;
    EXPECT_NE(log.find("Init Duration: "), std::string::npos);
    EXPECT_NE(log.find("Billed Duration: "), std::string::npos);
    EXPECT_NE(log.find("Memory Size: 128 MB\tMax Memory Used: "), std::string::npos);
}

TEST(Invoke, ProvidedRuntimeBothDeployForms) {
    Daemon d;
    // Form (b): the raw zip with settings as query parameters.
    std::string zip = bootstrap_zip(read_file(std::string(FUNCD_SOURCE_DIR) + "/examples/hello-provided/bootstrap"));
    auto dep = d.api("PUT", "/v1/functions/shell?runtime=provided&memory_mb=256&timeout_s=10&env.MODE=test", zip,
                     "application/zip");
    ASSERT_EQ(dep.status, 201) << dep.body;
    EXPECT_EQ(dep.json()["memory_mb"], 256);
    EXPECT_EQ(dep.json()["timeout_s"], 10);
    EXPECT_EQ(dep.json()["env"]["MODE"], "test");
    auto r = d.invoke("shell", R"({"hello": "world"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["echo"]["hello"], "world");

    // The native noop runtime, deployed with the JSON form.
    std::string noop = make_zip({{"bootstrap", {read_file(FUNCD_NOOP_BOOTSTRAP), 0755}}});
    auto dep2 = d.deploy("noop", {{"runtime", "provided"}}, noop);
    ASSERT_EQ(dep2.status, 201) << dep2.body;
    for (int i = 0; i < 20; ++i) {
        auto n = d.invoke("noop", R"({"i": 1})");
        ASSERT_EQ(n.status, 200) << n.body;
        EXPECT_EQ(n.body, "{}");
    }
}

TEST(Invoke, ConcurrentInvocationsRunOnSeparateWorkers) {
    Daemon d;
    ASSERT_EQ(d.deploy("slow", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("import time, uuid\nWORKER = uuid.uuid4().hex\n"
                                  "def handler(e, c):\n    time.sleep(1.0)\n    return WORKER\n"))
                  .status,
              201);
    const int n = 4;
    std::vector<std::future<HttpResult>> calls;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) calls.push_back(std::async(std::launch::async, [&] { return d.invoke("slow"); }));
    std::set<std::string> workers;
    for (auto& c : calls) {
        auto r = c.get();
        ASSERT_EQ(r.status, 200) << r.body;
        workers.insert(r.body);
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(workers.size(), static_cast<std::size_t>(n)) << "each concurrent invocation had its own worker";
    EXPECT_LT(elapsed, std::chrono::milliseconds(n * 1000)) << "they ran in parallel";
    auto info = d.api("GET", "/v1/functions/slow").json();
    EXPECT_EQ(info["instances"]["idle"], n);
    EXPECT_EQ(info["instances"]["busy"], 0);
}

TEST(Invoke, FunctionErrorIsReportedLikeLambda) {
    Daemon d;
    ASSERT_EQ(d.deploy("boom", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("def handler(e, c):\n    raise ValueError('bad input ' + str(e.get('x')))\n"))
                  .status,
              201);
    auto r = d.invoke("boom", R"({"x": 7})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    json body = r.json();
    EXPECT_EQ(body["errorType"], "ValueError");
    EXPECT_EQ(body["errorMessage"], "bad input 7");
    ASSERT_TRUE(body["stackTrace"].is_array());
    EXPECT_FALSE(body["stackTrace"].empty());
    // The worker survives a handled error and serves the next invocation.
    auto again = d.invoke("boom", R"({"x": 8})");
    EXPECT_TRUE(again.header("x-funcd-init-duration-ms").empty());
}

TEST(Invoke, TimeoutKillsTheWorker) {
    Daemon d;
    ASSERT_EQ(d.deploy("sleepy", {{"runtime", "python3"}, {"handler", "app.handler"}, {"timeout_s", 1}},
                       python_zip("import time\ndef handler(e, c):\n    time.sleep(30)\n"))
                  .status,
              201);
    auto start = std::chrono::steady_clock::now();
    auto r = d.invoke("sleepy");
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(r.json()["errorType"], "Sandbox.Timedout");
    EXPECT_EQ(r.json()["errorMessage"], "Task timed out after 1.00 seconds");
    EXPECT_LT(elapsed, std::chrono::seconds(5));
    EXPECT_TRUE(eventually([&] { return children_of(d.pid()).empty(); })) << "the timed-out worker was killed";
    // As on Lambda, the function's log says so on the invocation's own line, before its END.
    const std::string id = r.header("x-funcd-request-id");
    std::string log;
    EXPECT_TRUE(eventually([&] {
        log = read_file(d.data_dir() / "logs" / "sleepy.log");
        return log.find("END RequestId: " + id) != std::string::npos;
    })) << log;
    const auto line = log.find("\t" + id + "\tTask timed out after 1.00 seconds\n");
    EXPECT_NE(line, std::string::npos) << log;
    EXPECT_LT(line, log.find("END RequestId: " + id)) << log;
}

TEST(Invoke, CrashIsAnExitError) {
    Daemon d;
    ASSERT_EQ(d.deploy("crash", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("import os\ndef handler(e, c):\n    os._exit(3)\n"))
                  .status,
              201);
    auto r = d.invoke("crash");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(r.json()["errorType"], "Runtime.ExitError");
    EXPECT_NE(r.json()["errorMessage"].get<std::string>().find("exit status 3"), std::string::npos) << r.body;

    // Killed by a signal.
    ASSERT_EQ(d.deploy("segv", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("import os, signal\ndef handler(e, c):\n    os.kill(os.getpid(), signal.SIGKILL)\n"))
                  .status,
              201);
    auto k = d.invoke("segv");
    EXPECT_EQ(k.json()["errorType"], "Runtime.ExitError");
    EXPECT_NE(k.body.find("signal: KILL"), std::string::npos) << k.body;
    // A crashed worker is never reused: the next invocation cold-starts.
    auto again = d.invoke("crash");
    EXPECT_FALSE(again.header("x-funcd-init-duration-ms").empty());
}

TEST(Invoke, InitErrors) {
    Daemon d({"--init-timeout-ms", "1500"});
    ASSERT_EQ(d.deploy("badimport", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("import does_not_exist\ndef handler(e, c):\n    return 1\n"))
                  .status,
              201);
    auto r = d.invoke("badimport");
    ASSERT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(r.json()["error"]["type"], "Runtime.ImportModuleError");
    EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("does_not_exist"), std::string::npos);

    ASSERT_EQ(d.deploy("nohandler", {{"runtime", "python3"}, {"handler", "app.missing"}},
                       python_zip("def handler(e, c):\n    return 1\n"))
                  .status,
              201);
    auto h = d.invoke("nohandler");
    ASSERT_EQ(h.status, 502) << h.body;
    EXPECT_EQ(h.json()["error"]["type"], "Runtime.HandlerNotFound");

    ASSERT_EQ(d.deploy("exits", {{"runtime", "provided"}}, bootstrap_zip("#!/bin/sh\necho starting\nexit 4\n")).status,
              201);
    auto e = d.invoke("exits");
    ASSERT_EQ(e.status, 502) << e.body;
    EXPECT_EQ(e.json()["error"]["type"], "Runtime.ExitError");
    EXPECT_NE(e.body.find("exit status 4"), std::string::npos);

    ASSERT_EQ(d.deploy("hangs", {{"runtime", "provided"}}, bootstrap_zip("#!/bin/sh\nexec sleep 60\n")).status, 201);
    auto start = std::chrono::steady_clock::now();
    auto t = d.invoke("hangs");
    EXPECT_EQ(t.status, 502) << t.body;
    EXPECT_EQ(t.json()["error"]["type"], "Runtime.InitError");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
    EXPECT_TRUE(eventually([&] { return children_of(d.pid()).empty(); })) << "failed workers are ended";
}

TEST(Invoke, ScaleToZeroAfterKeepAlive) {
    Daemon d;
    ASSERT_EQ(d.deploy("brief", {{"runtime", "python3"}, {"handler", "app.handler"}, {"keep_alive_s", 1}},
                       python_zip(kEchoPy))
                  .status,
              201);
    ASSERT_EQ(d.invoke("brief").status, 200);
    EXPECT_EQ(children_of(d.pid()).size(), 1u);
    EXPECT_TRUE(eventually([&] { return children_of(d.pid()).empty(); }, std::chrono::milliseconds(4000)))
        << "the idle worker is ended after keep_alive_s";
    EXPECT_EQ(d.api("GET", "/v1/functions/brief").json()["instances"]["idle"], 0);
    auto again = d.invoke("brief");
    ASSERT_EQ(again.status, 200);
    EXPECT_FALSE(again.header("x-funcd-init-duration-ms").empty()) << "from zero, the next call cold-starts";
}

TEST(Invoke, RedeployWhileInvoking) {
    Daemon d;
    auto v1 = python_zip("import time\ndef handler(e, c):\n    time.sleep(e.get('sleep', 0))\n    return 'v1'\n");
    auto v2 = python_zip("def handler(e, c):\n    return 'v2'\n");
    ASSERT_EQ(d.deploy("f", {{"runtime", "python3"}, {"handler", "app.handler"}}, v1).status, 201);
    ASSERT_EQ(d.invoke("f").body, "\"v1\"");  // one idle v1 worker
    auto running = std::async(std::launch::async, [&] { return d.invoke("f", R"({"sleep": 1.0})"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto dep = d.deploy("f", {{"runtime", "python3"}, {"handler", "app.handler"}}, v2);
    ASSERT_EQ(dep.status, 200) << dep.body;
    EXPECT_EQ(dep.json()["version"], 2);
    auto now = d.invoke("f");
    EXPECT_EQ(now.body, "\"v2\"");
    EXPECT_EQ(now.header("x-funcd-executed-version"), "2");
    auto old = running.get();
    EXPECT_EQ(old.status, 200);
    EXPECT_EQ(old.body, "\"v1\"") << "the invocation in flight finished on the old version";
    EXPECT_EQ(old.header("x-funcd-executed-version"), "1");
    // The old version's workers are retired: only the v2 worker stays.
    EXPECT_TRUE(eventually([&] { return children_of(d.pid()).size() == 1; }));

    // A failed deploy leaves version 2 serving.
    auto bad = d.deploy("f", {{"runtime", "python3"}, {"handler", "app.handler"}}, "not a zip");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(d.api("GET", "/v1/functions/f").json()["version"], 2);
    EXPECT_EQ(d.invoke("f").body, "\"v2\"");
}

TEST(Invoke, DeleteEndsWorkersAndRemovesCode) {
    Daemon d;
    auto dep = d.deploy("gone", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kEchoPy));
    ASSERT_EQ(dep.status, 201);
    auto code_dir = d.data_dir() / "code" / dep.json()["code_sha256"].get<std::string>();
    EXPECT_TRUE(std::filesystem::exists(code_dir / "app.py"));
    ASSERT_EQ(d.invoke("gone").status, 200);
    auto del = d.api("DELETE", "/v1/functions/gone");
    EXPECT_EQ(del.status, 204);
    EXPECT_EQ(d.api("GET", "/v1/functions/gone").status, 404);
    EXPECT_EQ(d.invoke("gone").status, 404);
    EXPECT_TRUE(eventually([&] { return children_of(d.pid()).empty(); }));
    EXPECT_TRUE(eventually([&] { return !std::filesystem::exists(code_dir); })) << "unused code is removed";
    EXPECT_EQ(d.api("DELETE", "/v1/functions/gone").status, 404);
}

TEST(Invoke, RestartKeepsFunctionsAndUsage) {
    std::filesystem::path data;
    std::string request_id;
    {
        Daemon d;
        d.keep_data_dir();
        data = d.data_dir();
        ASSERT_EQ(d.deploy("keep", {{"runtime", "python3"}, {"handler", "app.handler"}, {"memory_mb", 512}},
                           python_zip(kEchoPy))
                      .status,
                  201);
        auto r = d.invoke("keep");
        ASSERT_EQ(r.status, 200);
        request_id = r.header("x-funcd-request-id");
        // SIGKILL: the usage record must survive the daemon dying right after answering.
        d.stop(SIGKILL);
        EXPECT_TRUE(eventually([&] { return descendants_of(d.pid()).empty(); }));
    }
    Daemon d2({}, data);
    d2.keep_data_dir();
    struct Cleanup {
        std::filesystem::path dir;
        ~Cleanup() { std::filesystem::remove_all(dir); }
    } cleanup{data};
    auto fn = d2.api("GET", "/v1/functions/keep");
    ASSERT_EQ(fn.status, 200);
    EXPECT_EQ(fn.json()["memory_mb"], 512);
    auto r = d2.invoke("keep");
    ASSERT_EQ(r.status, 200) << r.body;
    auto records = d2.api("GET", "/v1/usage/records?function=keep&limit=10").json()["records"];
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[1]["request_id"], request_id);
}

TEST(Invoke, DaemonKilledLeavesNoWorkers) {
    Daemon d;
    ASSERT_EQ(d.deploy("w", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kEchoPy)).status, 201);
    ASSERT_EQ(d.invoke("w").status, 200);
    auto workers = children_of(d.pid());
    ASSERT_EQ(workers.size(), 1u);
    d.stop(SIGKILL);
    EXPECT_TRUE(eventually([&] { return ::kill(workers[0], 0) != 0; })) << "parent-death signal ends the worker";
}

TEST(Invoke, SigtermLetsInFlightInvocationsFinish) {
    Daemon d;
    ASSERT_EQ(d.deploy("slow", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("import time\ndef handler(e, c):\n    time.sleep(1)\n    return 'done'\n"))
                  .status,
              201);
    auto running = std::async(std::launch::async, [&] { return d.invoke("slow"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    pid_t pid = d.pid();
    int status = d.stop(SIGTERM);
    auto r = running.get();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "\"done\"");
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_TRUE(descendants_of(pid).empty());
}

}  // namespace
}  // namespace funcd::testing
