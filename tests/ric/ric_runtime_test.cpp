// AWS's Node.js runtime interface client (npm `aws-lambda-ric` 3.3.0, unmodified) as the
// runtime of a `provided.al2023` function: the zip's `bootstrap` starts it with the host's
// node, exactly as a custom runtime on Lambda does, and it talks to funcd's Runtime API over
// TCP (AWS_LAMBDA_RUNTIME_API) through its native client (aws-lambda-cpp and curl), and
// over Node's http for streamed responses. The same code is also deployed as `nodejs20.x`,
// run by funcd's own runtime, and each case must end the same way both times.
//
// The client's native addon is built by `scripts/setup --ric` into tests/ric/node_modules
// (the cache: minutes to build, once). Without it these tests fail; they never skip.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <stdexcept>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kRicPackage = fs::path(FUNCD_SOURCE_DIR) / "tests/ric/node_modules/aws-lambda-ric";

// The files the client runs with: its entry point, its bundled JavaScript and the addon.
// The rest of its node_modules (node-gyp, node-addon-api and theirs: 1,750 files) is only
// for building the addon; zipped along, the unpacking at each deploy made the suite take
// 49 s instead of 13.
const std::vector<std::string> kRicRuntimeFiles = {"package.json", "bin", "dist"};

// The function's `bootstrap`: the client's own entry point, which takes the handler string
// as its argument and the working directory as the code root.
const char* kBootstrap = R"(#!/bin/sh
cd "$LAMBDA_TASK_ROOT"
exec node "$LAMBDA_TASK_ROOT/node_modules/aws-lambda-ric/bin/index.mjs" "$_HANDLER"
)";

// WORKER tells processes apart; `runtime` tells the two runtimes apart in the answers.
const char* kHandlerJs = R"(const WORKER = require('node:crypto').randomUUID();
exports.handler = async (event, context) => {
  console.log('event', JSON.stringify(event));
  if (event.fail) throw new RangeError('bad input ' + event.fail);
  if (event.sleep_ms) await new Promise((r) => setTimeout(r, event.sleep_ms));
  return {
    event, worker: WORKER,
    requestId: context.awsRequestId, arn: context.invokedFunctionArn, name: context.functionName,
    version: context.functionVersion, memory: context.memoryLimitInMB,
    remaining: context.getRemainingTimeInMillis(),
    logGroup: context.logGroupName, logStream: context.logStreamName,
    runtime: process.argv[1].includes('aws-lambda-ric') ? 'aws-lambda-ric' : 'funcd',
  };
};
)";

// Fails (throws) when `scripts/setup --ric` has not built the client.
void require_built_ric() {
    const fs::path addon = kRicPackage / "dist/rapid-client.node";
    std::error_code ec;
    if (!fs::is_regular_file(addon, ec))
        throw std::runtime_error("aws-lambda-ric is not built: " + addon.string() +
                                 " is missing; run scripts/setup --ric (it runs npm ci in tests/ric)");
}

// A zip of `bootstrap`, index.js and the client's runtime files under node_modules/, built
// from the files on disk (the addon is binary).
std::string ric_zip(const std::string& handler_js) {
    require_built_ric();
    std::string tmpl = (fs::temp_directory_path() / "funcd-ric-zip-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    const fs::path dir = tmpl;
    const fs::path src = dir / "src";
    fs::create_directories(src / "node_modules/aws-lambda-ric");
    for (const auto& name : kRicRuntimeFiles)
        fs::copy(kRicPackage / name, src / "node_modules/aws-lambda-ric" / name, fs::copy_options::recursive);
    {
        std::ofstream(src / "bootstrap", std::ios::binary) << kBootstrap;
        std::ofstream(src / "index.js", std::ios::binary) << handler_js;
    }
    fs::permissions(src / "bootstrap", static_cast<fs::perms>(0755));
    const std::string cmd = "cd '" + src.string() + "' && zip -qr -X '" + (dir / "out.zip").string() + "' .";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("zip failed");
    std::string zip = read_file(dir / "out.zip");
    fs::remove_all(dir);
    return zip;
}

// The payload of a complete chunked body (how the writes were split into chunks is
// funcd's business); "<incomplete>" when the terminating chunk is missing.
std::string dechunk(const std::string& body) {
    std::string out;
    for (std::size_t at = 0;;) {
        const auto eol = body.find("\r\n", at);
        if (eol == std::string::npos) return "<incomplete>";
        const std::size_t size = std::stoul(body.substr(at, eol - at), nullptr, 16);
        if (size == 0) return body.compare(eol, 4, "\r\n\r\n") == 0 ? out : "<incomplete>";
        out += body.substr(eol + 2, size);
        at = eol + 2 + size + 2;
    }
}

// The same zip twice: `ric` run by the client through its bootstrap, `own` by funcd's runtime.
struct Pair {
    std::string ric, own;
};

Pair deploy_both(Daemon& d, const std::string& base, const std::string& zip, json settings = json::object()) {
    if (!settings.contains("handler")) settings["handler"] = "index.handler";
    json ric = settings, own = settings;
    ric["runtime"] = "provided.al2023";
    own["runtime"] = "nodejs20.x";
    Pair p{base + "-ric", base + "-own"};
    auto r = d.deploy(p.ric, ric, zip);
    EXPECT_EQ(r.status, 201) << r.body;
    auto o = d.deploy(p.own, own, zip);
    EXPECT_EQ(o.status, 201) << o.body;
    return p;
}

// One daemon and one zip for the suite: starting the sanitized daemon is most of a test's
// time, and each test deploys functions of its own names.
class RicRuntime : public ::testing::Test {
protected:
    static void TearDownTestSuite() {
        daemon_.reset();
        zip_.clear();
    }
    void SetUp() override {
        ASSERT_NO_THROW(require_built_ric());
        if (!daemon_) daemon_ = std::make_unique<Daemon>();
        if (zip_.empty()) zip_ = ric_zip(kHandlerJs);
    }
    Daemon& daemon() { return *daemon_; }
    const std::string& zip() const { return zip_; }
    // No worker of `name` left, idle or busy.
    bool no_instances(const std::string& name) {
        const json i = daemon().api("GET", "/v1/functions/" + name).json()["instances"];
        return i["idle"] == 0 && i["busy"] == 0;
    }

private:
    inline static std::unique_ptr<Daemon> daemon_;
    inline static std::string zip_;
};

TEST_F(RicRuntime, AnswersWithTheHandlersResultAndLambdasContext) {
    Daemon& d = daemon();
    const Pair f = deploy_both(d, "hello", zip(), {{"memory_mb", 256}, {"timeout_s", 10}});
    for (const std::string& name : {f.ric, f.own}) {
        SCOPED_TRACE(name);
        auto first = d.invoke(name, R"({"n": 1})");
        ASSERT_EQ(first.status, 200) << first.body;
        EXPECT_TRUE(first.header("x-funcd-function-error").empty()) << first.body;
        EXPECT_FALSE(first.header("x-funcd-init-duration-ms").empty()) << "a cold start";
        const json r = first.json();
        EXPECT_EQ(r["runtime"], name == f.ric ? "aws-lambda-ric" : "funcd");
        EXPECT_EQ(r["event"], json({{"n", 1}}));
        EXPECT_EQ(r["requestId"], first.header("x-funcd-request-id"));
        EXPECT_TRUE(std::regex_match(r["arn"].get<std::string>(),
                                     std::regex("arn:aws:lambda:us-east-1:[0-9]{12}:function:" + name + ":1")))
            << r["arn"];
        EXPECT_EQ(r["name"], name);
        EXPECT_EQ(r["version"], "1");
        EXPECT_EQ(r["memory"], "256");
        EXPECT_GT(r["remaining"].get<int>(), 5000);
        EXPECT_LE(r["remaining"].get<int>(), 10000);
        EXPECT_EQ(r["logGroup"], "/aws/lambda/" + name);
        EXPECT_EQ(r["logStream"], "1/" + name);

        // The warm worker answers the next one.
        auto second = d.invoke(name, R"({"n": 2})");
        ASSERT_EQ(second.status, 200) << second.body;
        EXPECT_EQ(second.json()["event"]["n"], 2);
        EXPECT_EQ(second.json()["worker"], r["worker"]) << "the warm worker is reused";
        EXPECT_TRUE(second.header("x-funcd-init-duration-ms").empty());

        // console.log is one record per call, with the time, the request id and the level,
        // which funcd files under that invocation with the level as the line's tag.
        const std::string id = second.header("x-funcd-request-id");
        const std::string log = log_after(d, name, id);
        EXPECT_TRUE(std::regex_search(
            log, std::regex("\t" + id + "\tINFO\t[0-9]{4}-[0-9TZ:.-]+\t" + id + "\tINFO\tevent \\{\"n\":2\\}\n")))
            << log;
        EXPECT_NE(log.find("REPORT RequestId: " + id + "\tDuration: "), std::string::npos) << log;
    }
    // The client says what it runs, before the first event.
    EXPECT_NE(function_log(d, f.ric).find("Executing 'index.handler' in function directory '/var/task'"),
              std::string::npos)
        << function_log(d, f.ric);
}

TEST_F(RicRuntime, JsonLogsAndAMultiLineRecordStayOneRecordLikeFuncdsRuntime) {
    // With LoggingConfig JSON the client gets AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL
    // and writes its records framed to _LAMBDA_TELEMETRY_LOG_FD: each is one line of the log.
    const std::string js = R"(exports.handler = async () => {
  console.debug('below the level');
  console.log('first line\nsecond line');
  console.error(new Error('with a stack'));
  return 'ok';
};
)";
    Daemon& d = daemon();
    const Pair f = deploy_both(d, "jsonlog", ric_zip(js), {{"log_format", "JSON"}, {"application_log_level", "INFO"}});
    for (const std::string& name : {f.ric, f.own}) {
        SCOPED_TRACE(name);
        auto r = d.invoke(name, "{}");
        ASSERT_EQ(r.status, 200) << r.body;
        const std::string id = r.header("x-funcd-request-id");
        std::vector<json> records;
        ASSERT_TRUE(eventually([&] {
            records.clear();
            const std::string log = function_log(d, name);
            bool reported = false;
            std::size_t at = 0;
            while (at < log.size()) {
                std::size_t end = log.find('\n', at);
                if (end == std::string::npos) end = log.size();
                const std::string line = log.substr(at, end - at);
                at = end + 1;
                const auto brace = line.find('{');
                if (brace == std::string::npos) continue;
                const json j = json::parse(line.substr(brace), nullptr, false);
                if (!j.is_object()) continue;
                if (j.value("requestId", "") == id) records.push_back(j);
                if (j.value("type", "") == "platform.report" && j["record"].value("requestId", "") == id)
                    reported = true;
            }
            return reported;
        }));
        ASSERT_EQ(records.size(), 2u) << function_log(d, name);
        EXPECT_EQ(records[0]["level"], "INFO");
        EXPECT_EQ(records[0]["message"], "first line\nsecond line");
        EXPECT_EQ(records[1]["level"], "ERROR");
        EXPECT_EQ(records[1]["message"]["errorMessage"], "with a stack");
        EXPECT_GE(records[1]["message"]["stackTrace"].size(), 2u);
        EXPECT_EQ(function_log(d, name).find("below the level"), std::string::npos);
    }
}

TEST_F(RicRuntime, AThrownErrorIsTheFunctionsErrorAndKeepsTheWorker) {
    Daemon& d = daemon();
    const Pair f = deploy_both(d, "fails", zip());
    json documents[2];
    int i = 0;
    for (const std::string& name : {f.ric, f.own}) {
        SCOPED_TRACE(name);
        auto ok = d.invoke(name, R"({})");
        ASSERT_EQ(ok.status, 200) << ok.body;
        auto r = d.invoke(name, R"({"fail": 3})");
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
        const json e = r.json();
        EXPECT_EQ(e["errorType"], "RangeError") << r.body;
        EXPECT_EQ(e["errorMessage"], "bad input 3") << r.body;
        ASSERT_TRUE(e["trace"].is_array()) << r.body;
        ASSERT_FALSE(e["trace"].empty()) << r.body;
        EXPECT_EQ(e["trace"][0], "RangeError: bad input 3") << r.body;
        documents[i++] = e;

        // Logged as the runtime's `Invoke Error` record at ERROR, under that invocation.
        const std::string id = r.header("x-funcd-request-id");
        const std::string log = log_after(d, name, id);
        EXPECT_TRUE(std::regex_search(
            log, std::regex("\t" + id + "\tERROR\tInvoke Error \t\\{.*\"errorType\":\"RangeError\"")))
            << log;

        auto after = d.invoke(name, R"({})");
        ASSERT_EQ(after.status, 200) << after.body;
        EXPECT_EQ(after.json()["worker"], ok.json()["worker"]) << "a handled error keeps the worker";
    }
    // The same document from both runtimes; only the stack's file paths differ.
    EXPECT_EQ(documents[0].size(), documents[1].size()) << documents[0] << "\n" << documents[1];
    for (auto& doc : documents) doc.erase("trace");
    EXPECT_EQ(documents[0], documents[1]);
}

TEST_F(RicRuntime, AHandlerThatCannotLoadIsAnInitError) {
    Daemon& d = daemon();
    const Pair f = deploy_both(d, "missing", zip(), {{"handler", "missing.handler"}});
    for (const std::string& name : {f.ric, f.own}) {
        SCOPED_TRACE(name);
        auto r = d.invoke(name);
        ASSERT_EQ(r.status, 502) << r.body;
        EXPECT_EQ(r.json()["errorType"], "Runtime.ImportModuleError") << r.body;
        EXPECT_TRUE(r.json()["errorMessage"].get<std::string>().starts_with("Error: Cannot find module 'missing'"))
            << r.body;
        // Posted to /runtime/init/error, and logged by the runtime before any event.
        std::string log;
        EXPECT_TRUE(eventually([&] {
            log = function_log(d, name);
            return log.find("INIT_ERROR Runtime.ImportModuleError {") != std::string::npos;
        })) << log;
        EXPECT_TRUE(std::regex_search(
            log, std::regex(R"(\tundefined\tERROR\tUncaught Exception \t\{"errorType":"Runtime.ImportModuleError")")))
            << log;
        EXPECT_TRUE(eventually([&] { return no_instances(name); })) << "the failed worker is ended";
    }
}

TEST_F(RicRuntime, ATimeoutEndsTheWorkerAndTheNextInvocationGetsAFreshOne) {
    Daemon& d = daemon();
    const Pair f = deploy_both(d, "sleepy", zip(), {{"timeout_s", 1}});
    for (const std::string& name : {f.ric, f.own}) {
        SCOPED_TRACE(name);
        auto warm = d.invoke(name, R"({})");
        ASSERT_EQ(warm.status, 200) << warm.body;
        const auto start = std::chrono::steady_clock::now();
        auto t = d.invoke(name, R"({"sleep_ms": 30000})");
        ASSERT_EQ(t.status, 200) << t.body;
        EXPECT_EQ(t.header("x-funcd-function-error"), "Unhandled");
        EXPECT_EQ(t.json()["errorType"], "Sandbox.Timedout") << t.body;
        EXPECT_EQ(t.json()["errorMessage"], "Task timed out after 1.00 seconds") << t.body;
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
        const std::string id = t.header("x-funcd-request-id");
        const std::string log = log_after(d, name, id);
        EXPECT_TRUE(std::regex_search(log, std::regex("REPORT RequestId: " + id + "\t[^\n]*\tStatus: timeout")))
            << log;
        EXPECT_TRUE(eventually([&] { return no_instances(name); })) << "the timed-out worker is ended";

        auto after = d.invoke(name, R"({"n": 3})");
        ASSERT_EQ(after.status, 200) << after.body;
        EXPECT_TRUE(after.header("x-funcd-function-error").empty()) << after.body;
        EXPECT_EQ(after.json()["event"]["n"], 3);
        EXPECT_NE(after.json()["worker"], warm.json()["worker"]) << "a new worker";
        EXPECT_FALSE(after.header("x-funcd-init-duration-ms").empty()) << "a cold start";
    }
}

TEST_F(RicRuntime, AStreamedResponseArrivesAsWithFunctionsRuntime) {
    Daemon& d = daemon();
    // The client posts a streamed response itself, over Node's http (chunked, with an error
    // in the trailers), not through its native client.
    const char* js = R"(exports.handler = awslambda.streamifyResponse(async (event, stream) => {
  stream.setContentType('text/plain');
  stream.write('one ');
  await new Promise((r) => setTimeout(r, 50));
  if (event.fail) throw new TypeError('mid-stream ' + event.fail);
  stream.write('two');
  stream.end();
});
)";
    const Pair f = deploy_both(d, "stream", ric_zip(js));
    for (const std::string& name : {f.ric, f.own}) {
        SCOPED_TRACE(name);
        // Taken whole by a caller that does not stream.
        auto whole = d.invoke(name, R"({})");
        ASSERT_EQ(whole.status, 200) << whole.body;
        EXPECT_TRUE(whole.header("x-funcd-function-error").empty()) << whole.body;
        EXPECT_EQ(whole.body, "one two");

        // Relayed chunk by chunk to one that does.
        auto streamed = http_request(d.port(), "POST", "/v1/functions/" + name + "/invoke", "{}",
                                     {{"Authorization", "Bearer " + Daemon::kToken},
                                      {"X-Funcd-Response-Mode", "streaming"}});
        ASSERT_EQ(streamed.status, 200) << streamed.body;
        EXPECT_EQ(streamed.header("transfer-encoding"), "chunked");
        EXPECT_EQ(dechunk(streamed.body), "one two") << streamed.body;

        // An error after the first byte: the trailers make it the function's error.
        auto failed = d.invoke(name, R"({"fail": 1})");
        ASSERT_EQ(failed.status, 200) << failed.body;
        EXPECT_EQ(failed.header("x-funcd-function-error"), "Unhandled");
        EXPECT_EQ(failed.json()["errorType"], "TypeError") << failed.body;
        EXPECT_EQ(failed.json()["errorMessage"], "mid-stream 1") << failed.body;
    }
}

}  // namespace
}  // namespace funcd::testing
