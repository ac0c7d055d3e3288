// Node.js functions through the real daemon, real sandboxed workers and funcd's Node.js
// runtime (runtime/nodejs). The runtime's own suite (tests/runtime/test_node_bootstrap.py)
// covers handler lookup and styles exhaustively against a fake Runtime API; these check
// what the daemon adds: how the worker is started (argv, environment, descriptors, heap
// limits), what it reports, and how it treats a worker that fails.
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;

// The host's Node.js version ("20.20.2"), as the daemon's own probe reads it.
std::string host_node_version() {
    std::string out;
    if (FILE* p = ::popen("/usr/bin/node --version 2>/dev/null", "r")) {
        char buf[64];
        while (std::fgets(buf, sizeof buf, p)) out += buf;
        ::pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (out.starts_with('v')) out.erase(0, 1);
    if (out.empty()) throw std::runtime_error("no /usr/bin/node on this host: the Node.js tests need it");
    return out;
}

int host_node_major() { return std::stoi(host_node_version()); }

std::string node_zip(const std::map<std::string, std::string>& files) {
    std::map<std::string, std::pair<std::string, int>> entries;
    for (const auto& [path, text] : files) entries[path] = {text, 0644};
    return make_zip(entries);
}

json node_settings(const std::string& runtime = "nodejs20.x", const std::string& handler = "index.handler") {
    return {{"runtime", runtime}, {"handler", handler}};
}

// Reports everything the daemon gave the worker; WORKER tells processes apart.
const char* kEchoJs = R"(const v8 = require('node:v8');
const WORKER = require('node:crypto').randomUUID();
exports.handler = async (event, context) => ({
  event, worker: WORKER,
  requestId: context.awsRequestId, arn: context.invokedFunctionArn, name: context.functionName,
  version: context.functionVersion, memory: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis(),
  logGroup: context.logGroupName, logStream: context.logStreamName,
  greeting: process.env.GREETING, cwd: process.cwd(), execArgv: process.execArgv, argv1: process.argv[1],
  nodePath: process.env.NODE_PATH, apiFd: process.env.FUNCD_RUNTIME_API_FD ?? null,
  handlerEnv: process.env._HANDLER, taskRoot: process.env.LAMBDA_TASK_ROOT,
  executionEnv: process.env.AWS_EXECUTION_ENV, nodeVersion: process.versions.node,
  heapLimitMb: Math.round(v8.getHeapStatistics().heap_size_limit / 1048576),
});
)";

TEST(NodeRuntime, CommonJsAndEsModuleExamplesRun) {
    Daemon d;
    const std::string examples = std::string(FUNCD_SOURCE_DIR) + "/examples/";
    auto cjs = d.deploy("hello-cjs", node_settings("nodejs20.x"),
                        node_zip({{"index.js", read_file(examples + "hello-node/index.js")}}));
    ASSERT_EQ(cjs.status, 201) << cjs.body;
    EXPECT_EQ(cjs.json()["runtime"], "nodejs20.x");
    EXPECT_EQ(cjs.json()["runtime_version"], "nodejs:" + host_node_version());
    auto esm = d.deploy("hello-esm", node_settings("nodejs18.x"),
                        node_zip({{"index.js", read_file(examples + "hello-node-esm/index.js")},
                                  {"package.json", read_file(examples + "hello-node-esm/package.json")}}));
    ASSERT_EQ(esm.status, 201) << esm.body;

    auto r = d.invoke("hello-cjs", R"({"name": "funcd"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.header("x-funcd-function-error").empty()) << r.body;
    EXPECT_EQ(r.json()["message"], "hello, funcd");
    EXPECT_EQ(r.json()["request_id"], r.header("x-funcd-request-id"));
    EXPECT_FALSE(r.header("x-funcd-init-duration-ms").empty());

    auto e = d.invoke("hello-esm", R"({"name": "esm"})");
    ASSERT_EQ(e.status, 200) << e.body;
    EXPECT_TRUE(e.header("x-funcd-function-error").empty()) << e.body;
    EXPECT_EQ(e.json()["message"], "hello, esm");
    EXPECT_EQ(e.json()["function"], "hello-esm");
    const auto started = e.json()["worker_started_at"];
    auto e2 = d.invoke("hello-esm", R"({})");
    EXPECT_EQ(e2.json()["message"], "hello, world");
    EXPECT_EQ(e2.json()["worker_started_at"], started) << "the top-level await ran once, in the warm worker";
    EXPECT_TRUE(e2.header("x-funcd-init-duration-ms").empty());

    // nodejs18.x runs on the host's Node.js, and says so: in /v1 and on INIT_START.
    auto info = d.api("GET", "/v1/functions/hello-esm");
    ASSERT_EQ(info.status, 200) << info.body;
    EXPECT_EQ(info.json()["runtime"], "nodejs18.x");
    EXPECT_EQ(info.json()["runtime_version"], "nodejs:" + host_node_version());
    const std::string log = log_after(d, "hello-esm", e.header("x-funcd-request-id"));
    EXPECT_TRUE(std::regex_search(log, std::regex("INIT_START Runtime Version: nodejs:" + host_node_version() +
                                                  "\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:"
                                                  "[0-9a-f]{64}\n")))
        << log;
    // console.info: one record with the time, the request id and the level, as the
    // output line of that invocation.
    const std::string id = e.header("x-funcd-request-id");
    EXPECT_TRUE(std::regex_search(log, std::regex("\t" + id + "\tINFO\t[0-9]{4}-[0-9TZ:.-]+\t" + id + "\tINFO\tgreeting esm\n")))
        << log;
}

TEST(NodeRuntime, WorkerGetsLambdasContextEnvironmentAndHeapLimits) {
    Daemon d;
    auto dep = d.deploy("echo",
                        {{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"memory_mb", 256},
                         {"timeout_s", 5}, {"env", {{"GREETING", "hi"}}}},
                        node_zip({{"index.js", kEchoJs}}));
    ASSERT_EQ(dep.status, 201) << dep.body;
    auto first = d.invoke("echo", R"({"n": 1})");
    ASSERT_EQ(first.status, 200) << first.body;
    ASSERT_TRUE(first.header("x-funcd-function-error").empty()) << first.body;
    const json r = first.json();
    EXPECT_EQ(r["event"]["n"], 1);
    EXPECT_EQ(r["requestId"], first.header("x-funcd-request-id"));
    EXPECT_TRUE(std::regex_match(r["arn"].get<std::string>(),
                                 std::regex("arn:aws:lambda:us-east-1:[0-9]{12}:function:echo:1")))
        << r["arn"];
    EXPECT_EQ(r["name"], "echo");
    EXPECT_EQ(r["version"], "1");
    EXPECT_EQ(r["memory"], "256") << "a string, as on Lambda";
    EXPECT_GT(r["remaining"].get<int>(), 3000);
    EXPECT_LE(r["remaining"].get<int>(), 5000);
    EXPECT_EQ(r["logGroup"], "/aws/lambda/echo");
    EXPECT_EQ(r["logStream"], "1/echo");
    EXPECT_EQ(r["greeting"], "hi");
    EXPECT_EQ(r["cwd"], "/var/task");
    EXPECT_EQ(r["argv1"], "/var/runtime/nodejs/bootstrap.js");
    EXPECT_EQ(r["handlerEnv"], "index.handler");
    EXPECT_EQ(r["taskRoot"], "/var/task");
    EXPECT_EQ(r["executionEnv"], "AWS_Lambda_nodejs20.x");
    EXPECT_EQ(r["nodeVersion"], host_node_version());
    EXPECT_EQ(r["nodePath"], "/var/task") << "no layers: the code root only";
    EXPECT_TRUE(r["apiFd"].is_null()) << "the runtime took its descriptor's variable away";
    // 256 MB: semi-space 8 MB, old space 0.8 * 256 - 3 * 8 = 180 MB; V8's limit is both.
    EXPECT_EQ(r["execArgv"], json::array({"--max-old-space-size=180", "--max-semi-space-size=8"}));
    EXPECT_NEAR(r["heapLimitMb"].get<int>(), 204, 2);

    auto second = d.invoke("echo", R"({"n": 2})");
    ASSERT_EQ(second.status, 200) << second.body;
    EXPECT_EQ(second.json()["worker"], r["worker"]) << "the warm worker is reused";
    EXPECT_TRUE(second.header("x-funcd-init-duration-ms").empty());

    // The function's own NODE_OPTIONS and NODE_PATH are left as they are.
    auto own = d.deploy("own-options",
                        {{"runtime", "nodejs"}, {"handler", "index.handler"}, {"memory_mb", 256},
                         {"env", {{"NODE_OPTIONS", "--max-old-space-size=64"}, {"NODE_PATH", "/var/task/lib"}}}},
                        node_zip({{"index.js", kEchoJs}}));
    ASSERT_EQ(own.status, 201) << own.body;
    auto o = d.invoke("own-options");
    ASSERT_EQ(o.status, 200) << o.body;
    EXPECT_EQ(o.json()["execArgv"], json::array());
    EXPECT_EQ(o.json()["nodePath"], "/var/task/lib");
    EXPECT_EQ(o.json()["executionEnv"], "AWS_Lambda_nodejs");
    EXPECT_LT(o.json()["heapLimitMb"].get<int>(), 150) << "V8 took the function's --max-old-space-size=64";
}

TEST(NodeRuntime, HandlerLookupAndStyles) {
    Daemon d;
    // A handler in a subdirectory, reached through properties of the export.
    ASSERT_EQ(d.deploy("nested", node_settings("nodejs20.x", "src/app.api.v1.get"),
                       node_zip({{"src/app.js", "exports.api = { v1: { get: async (e) => ({ got: e.id }) } };\n"}}))
                  .status,
              201);
    auto n = d.invoke("nested", R"({"id": 7})");
    ASSERT_EQ(n.status, 200) << n.body;
    EXPECT_EQ(n.json(), json({{"got", 7}}));

    // An .mjs module, and a package from the function's node_modules as the handler's module.
    ASSERT_EQ(d.deploy("mjs", node_settings("nodejs20.x", "handler.run"),
                       node_zip({{"handler.mjs", "import { double } from 'doubler';\n"
                                                 "export const run = async (e) => double(e.n);\n"},
                                 {"node_modules/doubler/package.json", R"({"type": "module", "exports": "./i.js"})"},
                                 {"node_modules/doubler/i.js", "export const double = (n) => n * 2;\n"}}))
                  .status,
              201);
    auto m = d.invoke("mjs", R"({"n": 21})");
    ASSERT_EQ(m.status, 200) << m.body;
    EXPECT_EQ(m.body, "42");

    // Callbacks: by default the answer waits for the event loop to empty (the timer the
    // handler left), with callbackWaitsForEmptyEventLoop = false it goes at once.
    ASSERT_EQ(d.deploy("callback", node_settings("nodejs20.x", "index.handler"),
                       node_zip({{"index.js", "let fired = 0;\n"
                                              "exports.handler = (e, ctx, cb) => {\n"
                                              "  if (e.early) ctx.callbackWaitsForEmptyEventLoop = false;\n"
                                              "  setTimeout(() => { fired += 1; }, 1000);\n"
                                              "  cb(null, { fired });\n"
                                              "};\n"}}))
                  .status,
              201);
    auto waits = d.invoke("callback", R"({})");
    ASSERT_EQ(waits.status, 200) << waits.body;
    EXPECT_EQ(waits.json()["fired"], 0);
    EXPECT_GE(std::stoi(waits.header("x-funcd-duration-ms")), 1000) << "the answer waited for the timer";
    auto early = d.invoke("callback", R"({"early": true})");
    ASSERT_EQ(early.status, 200) << early.body;
    EXPECT_EQ(early.json()["fired"], 1) << "the first invocation's timer ran before its answer";
    EXPECT_LT(std::stoi(early.header("x-funcd-duration-ms")), 900) << "this one did not wait for its timer";
}

TEST(NodeRuntime, InitErrorsAreReportedAsPythonsAre) {
    Daemon d;
    struct Case {
        std::string name, handler, type, message_part;
        std::map<std::string, std::string> files;
    };
    const std::vector<Case> cases = {
        {"no-module", "missing.handler", "Runtime.ImportModuleError", "Cannot find module 'missing'",
         {{"index.js", "exports.handler = async () => 1;\n"}}},
        {"bad-require", "index.handler", "Runtime.ImportModuleError", "Cannot find module 'does-not-exist'",
         {{"index.js", "require('does-not-exist');\nexports.handler = async () => 1;\n"}}},
        {"no-handler", "index.nope", "Runtime.HandlerNotFound", "index.nope is undefined or not exported",
         {{"index.js", "exports.handler = async () => 1;\n"}}},
        {"syntax", "index.handler", "Runtime.UserCodeSyntaxError", "SyntaxError",
         {{"index.js", "exports.handler = async () => {\n"}}},
    };
    for (const auto& c : cases) {
        ASSERT_EQ(d.deploy(c.name, node_settings("nodejs20.x", c.handler), node_zip(c.files)).status, 201) << c.name;
        auto r = d.invoke(c.name);
        ASSERT_EQ(r.status, 502) << c.name << ": " << r.body;
        EXPECT_EQ(r.json()["error"]["type"], c.type) << c.name << ": " << r.body;
        EXPECT_EQ(r.json()["errorType"], c.type) << c.name << ": " << r.body;
        EXPECT_NE(r.json()["error"]["message"].get<std::string>().find(c.message_part), std::string::npos)
            << c.name << ": " << r.body;
        // Written in batches: wait for the daemon's own line about the failure.
        std::string log;
        EXPECT_TRUE(eventually([&] {
            log = function_log(d, c.name);
            return log.find("INIT_ERROR " + c.type) != std::string::npos;
        })) << c.name << ": " << log;
        EXPECT_NE(log.find("INIT_START Runtime Version: nodejs:"), std::string::npos) << log;
        // The runtime's record, before any event (request id `-` and its level for funcd, `undefined`
        // for the runtime).
        EXPECT_TRUE(std::regex_search(
            log, std::regex(R"(\t-\tERROR\t[0-9]{4}-[0-9TZ:.-]+\tundefined\tERROR\tUncaught Exception \t\{.*"errorType":")" +
                            c.type + "\"")))
            << c.name << ": " << log;
    }
    EXPECT_TRUE(eventually([&] { return children_of(d.pid()).empty(); })) << "failed workers are ended";
}

TEST(NodeRuntime, ErrorsTimeoutsAndUncaughtExceptions) {
    Daemon d;
    ASSERT_EQ(d.deploy("fails", node_settings(),
                       node_zip({{"index.js", "const WORKER = Math.random();\n"
                                              "exports.handler = async (e) => {\n"
                                              "  if (e.later) { setTimeout(() => { throw new TypeError('late'); }, 10);"
                                              " return new Promise(() => {}); }\n"
                                              "  if (e.fail) throw new RangeError('bad input ' + e.fail);\n"
                                              "  return WORKER;\n"
                                              "};\n"}}))
                  .status,
              201);
    auto ok = d.invoke("fails", R"({})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    const std::string worker = ok.body;

    // A thrown error is the function's error; the worker stays.
    auto handled = d.invoke("fails", R"({"fail": 3})");
    ASSERT_EQ(handled.status, 200) << handled.body;
    EXPECT_EQ(handled.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(handled.json()["errorType"], "RangeError");
    EXPECT_EQ(handled.json()["errorMessage"], "bad input 3");
    EXPECT_TRUE(handled.json()["trace"].is_array()) << handled.body;
    EXPECT_EQ(d.invoke("fails", R"({})").body, worker) << "a handled error keeps the worker";

    // An exception nothing catches fails the invocation and ends the worker.
    auto uncaught = d.invoke("fails", R"({"later": true})");
    ASSERT_EQ(uncaught.status, 200) << uncaught.body;
    EXPECT_EQ(uncaught.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(uncaught.json()["errorType"], "TypeError") << uncaught.body;
    EXPECT_EQ(uncaught.json()["errorMessage"], "late") << uncaught.body;
    auto after = d.invoke("fails", R"({})");
    ASSERT_EQ(after.status, 200) << after.body;
    EXPECT_NE(after.body, worker) << "a new worker";
    EXPECT_FALSE(after.header("x-funcd-init-duration-ms").empty());
    const std::string log = log_after(d, "fails", after.header("x-funcd-request-id"));
    EXPECT_TRUE(std::regex_search(log, std::regex("\t" + uncaught.header("x-funcd-request-id") +
                                                  "\tERROR\tUncaught Exception \t\\{")))
        << log;

    // A timeout ends the worker too.
    ASSERT_EQ(d.deploy("sleepy", {{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"timeout_s", 1}},
                       node_zip({{"index.js", "exports.handler = () => new Promise((r) => setTimeout(r, 30000));\n"}}))
                  .status,
              201);
    const auto start = std::chrono::steady_clock::now();
    auto t = d.invoke("sleepy");
    ASSERT_EQ(t.status, 200) << t.body;
    EXPECT_EQ(t.json()["errorType"], "Sandbox.Timedout");
    EXPECT_EQ(t.json()["errorMessage"], "Task timed out after 1.00 seconds");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_TRUE(eventually([&] { return d.api("GET", "/v1/functions/sleepy").json()["instances"]["idle"] == 0; }));
}

TEST(NodeRuntime, MemoryPastTheHeapLimitFailsTheInvocationAndReplacesTheWorker) {
    Daemon d;
    // Live objects past V8's limit (0.8 * 256 MB): V8 stops the process with its
    // "JavaScript heap out of memory" before the cgroup's 256 MB limit is reached.
    ASSERT_EQ(d.deploy("hog", {{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"memory_mb", 256},
                               {"timeout_s", 20}},
                       node_zip({{"index.js", "const WORKER = Math.random();\n"
                                              "exports.handler = async (e) => {\n"
                                              "  if (!e.hog) return WORKER;\n"
                                              "  const keep = [];\n"
                                              "  for (;;) keep.push(new Array(100000).fill(keep.length));\n"
                                              "};\n"}}))
                  .status,
              201);
    const std::string worker = d.invoke("hog", R"({})").body;
    auto r = d.invoke("hog", R"({"hog": true})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(r.json()["errorType"], "Runtime.ExitError") << r.body;
    const std::string log = log_after(d, "hog", r.header("x-funcd-request-id"));
    EXPECT_NE(log.find("JavaScript heap out of memory"), std::string::npos)
        << "V8's own limit, not the cgroup's kill:\n" << log;
    auto after = d.invoke("hog", R"({})");
    ASSERT_EQ(after.status, 200) << after.body;
    EXPECT_NE(after.body, worker);
    EXPECT_FALSE(after.header("x-funcd-init-duration-ms").empty()) << "a new worker";
}

TEST(NodeRuntime, NewerMajorThanTheHostsIsRefusedAtDeploy) {
    Daemon d;
    const std::string version = host_node_version();
    int refused = 0;
    for (int major : {18, 20, 22, 24}) {
        const std::string id = "nodejs" + std::to_string(major) + ".x";
        auto r = d.deploy("v" + std::to_string(major), node_settings(id), node_zip({{"index.js", kEchoJs}}));
        if (major <= host_node_major()) {
            EXPECT_EQ(r.status, 201) << id << ": " << r.body;
            continue;
        }
        ++refused;
        EXPECT_EQ(r.status, 400) << id << ": " << r.body;
        const std::string message = r.json()["error"]["message"];
        EXPECT_NE(message.find("runtime " + id + " asks for Node.js " + std::to_string(major) +
                               ", but this host runs Node.js " + version),
                  std::string::npos)
            << message;
        EXPECT_EQ(d.api("GET", "/v1/functions/v" + std::to_string(major)).status, 404) << "nothing was stored";
    }
    EXPECT_GT(refused, 0) << "this host's Node.js " << version << " is newer than every nodejs identifier";
}

TEST(NodeRuntime, WithoutAUsableNodeNodeFunctionsAreRefused) {
    Daemon d({"--node", "/nonexistent/node"});
    auto r = d.deploy("f", node_settings("nodejs"), node_zip({{"index.js", kEchoJs}}));
    ASSERT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.json()["error"]["message"].get<std::string>().find(
                  "runtime nodejs needs Node.js, and this host has none that funcd could run (/nonexistent/node)"),
              std::string::npos)
        << r.body;
    EXPECT_EQ(d.deploy("py", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("def handler(e, c):\n    return 1\n"))
                  .status,
              201);
}

}  // namespace
}  // namespace funcd::testing
