// Log formats through the real daemon and real workers: LoggingConfig JSON makes funcd's
// Python and Node.js runtimes write Lambda's JSON records and funcd write its platform.*
// records; levels are filtered; the runtime's telemetry descriptor keeps a multi-line record
// (a traceback) one record; a custom runtime's frames are read as AWS's clients write them,
// and a malformed stream is said once and dropped while the function keeps working.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "funcd/logs/log_line.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// One line of a function's log file: its time, the request id of the function's own
// records (none for funcd's), and the message.
struct LogLine {
    std::string time;
    std::optional<std::string> request_id;
    std::string message;
};

std::vector<LogLine> log_lines(const std::string& text) {
    std::vector<LogLine> out;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        const auto parsed = parse_log_line(line);
        if (!parsed) {
            out.push_back({line, std::nullopt, ""});
            continue;
        }
        LogLine l{std::string(parsed->stamp), std::nullopt, parsed->message()};
        if (parsed->stream == LogStream::function) l.request_id = std::string(parsed->request_id);
        out.push_back(std::move(l));
    }
    return out;
}

// The log once funcd's platform.report of `request_id` is in it.
std::string log_with_report(const Daemon& d, const std::string& function, const std::string& request_id) {
    std::string text;
    eventually([&] {
        text = function_log(d, function);
        for (const auto& l : log_lines(text)) {
            if (!l.message.starts_with("{")) continue;
            const json j = json::parse(l.message, nullptr, false);
            if (j.is_object() && j.value("type", "") == "platform.report" &&
                j["record"].value("requestId", "") == request_id)
                return true;
        }
        return false;
    });
    return text;
}

// Every line of a JSON-format function's log, parsed: each must be one JSON object.
std::vector<std::pair<LogLine, json>> json_records(const std::string& text) {
    std::vector<std::pair<LogLine, json>> out;
    for (auto& l : log_lines(text)) {
        json j = json::parse(l.message, nullptr, false);
        EXPECT_TRUE(j.is_object()) << "not a JSON record: " << l.message;
        if (j.is_object()) out.emplace_back(std::move(l), std::move(j));
    }
    return out;
}

std::vector<json> platform_records(const std::vector<std::pair<LogLine, json>>& all, const std::string& type) {
    std::vector<json> out;
    for (const auto& [line, j] : all)
        if (!line.request_id && j.value("type", "") == type) out.push_back(j);
    return out;
}

std::vector<json> function_records(const std::vector<std::pair<LogLine, json>>& all, const std::string& request_id) {
    std::vector<json> out;
    for (const auto& [line, j] : all)
        if (line.request_id == request_id) out.push_back(j);
    return out;
}

const char* kPython = R"(import logging
logger = logging.getLogger()

def handler(event, context):
    logger.debug("hidden debug")
    logger.info("hello %s", "world")
    logger.warning("careful")
    if event.get("fail"):
        def inner():
            raise ValueError("multi\nline")
        inner()
    return {"ok": True}
)";

TEST(LogFormat, PythonJsonRecordsAndPlatformRecordsHaveLambdasShapes) {
    Daemon d;
    ASSERT_EQ(d.deploy("pj",
                       {{"runtime", "python3"}, {"handler", "app.handler"}, {"log_format", "JSON"},
                        {"application_log_level", "INFO"}},
                       python_zip(kPython))
                  .status,
              201);
    auto r = d.invoke("pj", "{}");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string id = r.header("x-funcd-request-id");
    auto all = json_records(log_with_report(d, "pj", id));

    const auto mine = function_records(all, id);
    ASSERT_EQ(mine.size(), 2u) << "DEBUG is below INFO";
    EXPECT_EQ(mine[0]["level"], "INFO");
    EXPECT_EQ(mine[0]["message"], "hello world");
    EXPECT_EQ(mine[0]["logger"], "root");
    EXPECT_EQ(mine[0]["requestId"], id);
    EXPECT_TRUE(mine[0]["timestamp"].is_string());
    EXPECT_EQ(mine[1]["level"], "WARNING");
    EXPECT_EQ(mine[1]["message"], "careful");

    const auto init = platform_records(all, "platform.initStart");
    ASSERT_EQ(init.size(), 1u);
    EXPECT_EQ(init[0]["record"]["functionName"], "pj");
    EXPECT_EQ(init[0]["record"]["initializationType"], "on-demand");
    const auto start = platform_records(all, "platform.start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_EQ(start[0]["record"]["requestId"], id);
    EXPECT_EQ(start[0]["record"]["version"], "1");
    EXPECT_EQ(start[0]["record"]["tracing"]["type"], "X-Amzn-Trace-Id");
    const auto report = platform_records(all, "platform.report");
    ASSERT_EQ(report.size(), 1u);
    const json& rec = report[0]["record"];
    EXPECT_EQ(rec["requestId"], id);
    EXPECT_EQ(rec["status"], "success");
    EXPECT_EQ(rec["metrics"]["memorySizeMB"], 128);
    EXPECT_GT(rec["metrics"]["durationMs"].get<double>(), 0.0);
    EXPECT_GE(rec["metrics"]["billedDurationMs"].get<double>(), rec["metrics"]["durationMs"].get<double>());
    EXPECT_GT(rec["metrics"]["maxMemoryUsedMB"].get<int>(), 0);
    EXPECT_GT(rec["metrics"]["initDurationMs"].get<double>(), 0.0) << "a cold start";
    EXPECT_EQ(rec["tracing"]["value"].get<std::string>().substr(0, 7), "Root=1-");
    // runtimeDone (END's place) is DEBUG: not at the default system level INFO.
    EXPECT_TRUE(platform_records(all, "platform.runtimeDone").empty());
    EXPECT_EQ(function_log(d, "pj").find("START RequestId"), std::string::npos);

    // A raised error: one record with its traceback, and the report says so.
    auto failed = d.invoke("pj", R"({"fail": true})");
    ASSERT_EQ(failed.status, 200) << failed.body;
    const std::string failed_id = failed.header("x-funcd-request-id");
    all = json_records(log_with_report(d, "pj", failed_id));
    const auto errors = function_records(all, failed_id);
    ASSERT_EQ(errors.size(), 3u);
    const json& error = errors[2];
    EXPECT_EQ(error["level"], "ERROR");
    EXPECT_EQ(error["errorType"], "ValueError");
    EXPECT_EQ(error["errorMessage"], "multi\nline");
    EXPECT_EQ(error["requestId"], failed_id);
    ASSERT_TRUE(error["stackTrace"].is_array());
    EXPECT_GE(error["stackTrace"].size(), 2u);
    for (const auto& rep : platform_records(all, "platform.report")) {
        if (rep["record"]["requestId"] != failed_id) continue;
        EXPECT_EQ(rep["record"]["status"], "error");
        EXPECT_EQ(rep["record"]["errorType"], "ValueError");
        EXPECT_FALSE(rep["record"]["metrics"].contains("initDurationMs")) << "warm";
    }
}

TEST(LogFormat, TextStaysAsItWasAndATracebackIsOneLine) {
    Daemon d;
    ASSERT_EQ(d.deploy("pt", {{"runtime", "python3"}, {"handler", "app.handler"}}, python_zip(kPython)).status, 201);
    auto r = d.invoke("pt", R"({"fail": true})");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string id = r.header("x-funcd-request-id");
    const std::string text = log_after(d, "pt", id);
    EXPECT_NE(text.find("\tSTART RequestId: " + id + " Version: 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\tEND RequestId: " + id + "\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\tREPORT RequestId: " + id + "\tDuration: "), std::string::npos) << text;
    EXPECT_EQ(text.find("{\"time\""), std::string::npos) << text;
    int error_lines = 0;
    for (const auto& l : log_lines(text)) {
        EXPECT_FALSE(l.message.starts_with("Traceback")) << "the traceback was cut into lines:\n" << text;
        EXPECT_FALSE(l.message.starts_with("  File ")) << text;
        if (l.message.starts_with("[ERROR] ValueError: multi")) {
            ++error_lines;
            EXPECT_EQ(l.request_id, id);
            EXPECT_NE(l.message.find("\nTraceback (most recent call last):\n"), std::string::npos) << l.message;
            EXPECT_NE(l.message.find("inner()"), std::string::npos) << l.message;
        }
    }
    EXPECT_EQ(error_lines, 1) << text;
}

const char* kNode = R"(exports.handler = async (event) => {
  console.debug('hidden debug');
  console.log('two\nlines');
  console.warn({ answer: 42 });
  console.error(new Error('logged'));
  if (event.fail) {
    const e = new TypeError('thrown');
    throw e;
  }
  return 'ok';
};
)";

TEST(LogFormat, NodeJsonRecordsAndAThrownErrorIsOneRecord) {
    Daemon d;
    ASSERT_EQ(d.deploy("nj",
                       {{"runtime", "nodejs18.x"}, {"handler", "index.handler"}, {"log_format", "JSON"},
                        {"application_log_level", "INFO"}, {"system_log_level", "DEBUG"}},
                       make_zip({{"index.js", {kNode, 0644}}}))
                  .status,
              201);
    auto r = d.invoke("nj", R"({"fail": true})");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string id = r.header("x-funcd-request-id");
    const auto all = json_records(log_with_report(d, "nj", id));
    const auto mine = function_records(all, id);
    ASSERT_EQ(mine.size(), 4u);
    for (const auto& m : mine) {
        EXPECT_EQ(m["requestId"], id);
        EXPECT_TRUE(m["timestamp"].is_string());
    }
    EXPECT_EQ(mine[0]["level"], "INFO");
    EXPECT_EQ(mine[0]["message"], "two\nlines");
    EXPECT_EQ(mine[1]["level"], "WARN");
    EXPECT_EQ(mine[1]["message"], (json{{"answer", 42}}));
    EXPECT_EQ(mine[2]["level"], "ERROR");
    EXPECT_EQ(mine[2]["message"]["errorType"], "Error");
    EXPECT_EQ(mine[2]["message"]["errorMessage"], "logged");
    EXPECT_TRUE(mine[2]["message"]["stackTrace"].is_array());
    // The thrown error, as the runtime reports it: one record with the whole stack.
    EXPECT_EQ(mine[3]["level"], "ERROR");
    EXPECT_EQ(mine[3]["message"]["errorType"], "TypeError");
    EXPECT_EQ(mine[3]["message"]["errorMessage"], "thrown");
    ASSERT_TRUE(mine[3]["message"]["stackTrace"].is_array());
    EXPECT_GE(mine[3]["message"]["stackTrace"].size(), 2u);
    // With system_log_level DEBUG, runtimeDone is there too, saying how it ended.
    const auto done = platform_records(all, "platform.runtimeDone");
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0]["record"]["requestId"], id);
    EXPECT_EQ(done[0]["record"]["status"], "error");
}

// A custom runtime writing frames itself, as aws-lambda-ric does, to the descriptor the
// sandbox gives it: DEBUG, INFO with two lines, a JSON ERROR; garbage when asked.
const char* kFramingBootstrap = R"(#!/usr/bin/python3
import http.client, json, os, struct, time
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
fd_text = os.environ.get("_LAMBDA_TELEMETRY_LOG_FD")
fd = int(fd_text)
def frame(form, level, text):
    body = text.encode()
    os.write(fd, struct.pack(">IIq", 0xA55A0000 | form | level << 2, len(body), int(time.time() * 1e6)) + body)
conn = http.client.HTTPConnection(api)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read() or b"{}")
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    if event.get("garbage"):
        os.write(fd, b"this is not a frame\n")
    if event.get("big"):
        frame(3, 3, "x" * event["big"])
    frame(3, 2, "debug record\n")
    frame(3, 3, "info record\nsecond line\n")
    frame(2, 5, json.dumps({"level": "ERROR", "message": "json record"}))
    print("plain line", flush=True)
    conn.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response", json.dumps({"fd": fd_text}))
    conn.getresponse().read()
)";

TEST(LogFormat, ACustomRuntimesFramesAreRecordsAndGarbageIsSaidOnce) {
    Daemon d;
    ASSERT_EQ(d.deploy("framed", {{"runtime", "provided"}, {"log_format", "JSON"}},
                       bootstrap_zip(kFramingBootstrap))
                  .status,
              201);
    auto r = d.invoke("framed", "{}");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["fd"], "4") << "the sandbox's fixed telemetry descriptor";
    const std::string id = r.header("x-funcd-request-id");
    std::vector<LogLine> mine;
    for (auto& l : log_lines(log_with_report(d, "framed", id)))
        if (l.request_id == id) mine.push_back(l);
    // DEBUG is below the default INFO and dropped by the daemon; the rest in arrival order
    // per pipe (frames and stdout are two pipes).
    std::vector<std::string> messages;
    for (const auto& l : mine) messages.push_back(l.message);
    EXPECT_EQ(std::count(messages.begin(), messages.end(), "debug record"), 0);
    EXPECT_EQ(std::count(messages.begin(), messages.end(), "info record\nsecond line"), 1)
        << ::testing::PrintToString(messages);
    EXPECT_EQ(std::count(messages.begin(), messages.end(), R"({"level": "ERROR", "message": "json record"})"), 1);
    EXPECT_EQ(std::count(messages.begin(), messages.end(), "plain line"), 1) << "bare stdout as before";

    // Garbage: said once, the rest of the descriptor dropped, the function still answers.
    for (int i = 0; i < 2; ++i) {
        auto g = d.invoke("framed", R"({"garbage": true})");
        ASSERT_EQ(g.status, 200) << g.body;
        log_with_report(d, "framed", g.header("x-funcd-request-id"));
    }
    const std::string text = function_log(d, "framed");
    int notices = 0;
    for (const auto& l : log_lines(text)) {
        const json j = json::parse(l.message, nullptr, false);
        if (j.is_object() && j.value("type", "") == "platform.notice") {
            ++notices;
            EXPECT_EQ(j["record"]["event"], "TELEMETRY_MALFORMED");
        }
    }
    EXPECT_EQ(notices, 1) << text;
    // After it only stdout is logged.
    EXPECT_EQ(text.rfind("info record"), text.find("info record")) << text;
}

TEST(LogFormat, ALongRecordIsLoggedInPiecesWithinTheInvocationsBudget) {
    // Pieces of 1 KiB, 8 KiB an invocation: a 20,000-byte record is 20 pieces, of which
    // the first 7 fit (each with its line end); the rest is dropped and said.
    Daemon d({"--limit", "output.telemetry_record_bytes=1024", "--limit", "output.invocation_bytes=8192"});
    ASSERT_EQ(d.deploy("big", {{"runtime", "provided"}}, bootstrap_zip(kFramingBootstrap)).status, 201);
    auto r = d.invoke("big", R"({"big": 20000})");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string id = r.header("x-funcd-request-id");
    const std::string text = log_after(d, "big", id);
    int pieces = 0;
    for (const auto& l : log_lines(text)) {
        if (l.request_id != id || l.message.empty() || l.message[0] != 'x') continue;
        ++pieces;
        EXPECT_EQ(l.message, std::string(1024, 'x'));
    }
    EXPECT_EQ(pieces, 7) << text;
    EXPECT_NE(text.find("LOGS_DROPPED RequestId: " + id), std::string::npos) << text;
    // The worker is fine and the stream in step: the next invocation's records are whole.
    auto next = d.invoke("big", "{}");
    ASSERT_EQ(next.status, 200) << next.body;
    const std::string after = log_after(d, "big", next.header("x-funcd-request-id"));
    const auto after_lines = log_lines(after);
    const auto whole = std::count_if(after_lines.begin(), after_lines.end(), [&](const LogLine& l) {
        return l.request_id == next.header("x-funcd-request-id") && l.message == "info record\nsecond line";
    });
    EXPECT_EQ(whole, 1) << after;
}

}  // namespace
}  // namespace funcd::testing
