// Lambda's response streaming through the real daemon and real workers: a `provided`
// function whose bootstrap (Python, stdlib only) speaks the Runtime API's streaming mode
// itself, reached through a function URL, /v1 invoke and buffered callers.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "stream_client.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A custom runtime that streams. What it does is chosen by the event: `mode` and its
// arguments, from the query string of a function URL's event or from a /v1 event's fields.
// Every line it streams carries the wall-clock time it was written (microseconds), so the
// caller can tell when it was produced.
const char* kStreamingBootstrap = R"PY(#!/usr/bin/python3
import base64, http.client, json, os, socket, sys, time, urllib.parse

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.split(":")

def stream(request_id, content_type="text/plain"):
    s = socket.create_connection((HOST, int(PORT)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(("POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
               "Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: %s\r\n"
               "Transfer-Encoding: chunked\r\n"
               "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
               % (request_id, API, content_type)).encode())
    return s

def chunk(s, data):
    if isinstance(data, str):
        data = data.encode()
    s.sendall(b"%x\r\n" % len(data) + data + b"\r\n")

def line(s, i):
    chunk(s, "line %d t=%d\n" % (i, int(time.time() * 1e6)))

def finish(s, error_type=None, error=None):
    if error_type:
        body = base64.b64encode(json.dumps(error).encode()).decode()
        s.sendall(("0\r\nLambda-Runtime-Function-Error-Type: %s\r\nLambda-Runtime-Function-Error-Body: %s\r\n\r\n"
                   % (error_type, body)).encode())
    else:
        s.sendall(b"0\r\n\r\n")
    reply = s.recv(4096)
    s.close()

def args_of(event):
    if "rawQueryString" in event:
        return {k: v[0] for k, v in urllib.parse.parse_qs(event["rawQueryString"]).items()}
    return {k: str(v) for k, v in event.items()}

while True:
    conn = http.client.HTTPConnection(HOST, int(PORT))
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    res = conn.getresponse()
    request_id = res.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(res.read() or b"{}")
    conn.close()
    a = args_of(event)
    mode = a.get("mode", "lines")
    if mode == "lines":
        s = stream(request_id)
        n, pause = int(a.get("n", "3")), float(a.get("pause", "0.5"))
        for i in range(n):
            if i:
                time.sleep(pause)
            line(s, i)
        finish(s)
    elif mode == "prelude":
        s = stream(request_id, "application/vnd.awslambda.http-integration-response")
        meta = json.dumps({"statusCode": 201, "headers": {"content-type": "text/plain", "x-streamed": "yes"},
                           "cookies": ["a=1; Path=/", "b=2"]}).encode() + b"\0" * 8
        # The prelude split inside its delimiter, as a runtime's writes may split it.
        chunk(s, meta[:-3])
        time.sleep(0.05)
        chunk(s, meta[-3:] + b"first\n")
        time.sleep(0.05)
        chunk(s, "second\n")
        finish(s)
    elif mode == "error":
        s = stream(request_id)
        line(s, 0)
        time.sleep(0.1)
        finish(s, "Function.Broke", {"errorType": "Function.Broke", "errorMessage": "broke mid-stream"})
    elif mode == "sleep":
        s = stream(request_id)
        line(s, 0)
        time.sleep(60)
        finish(s)
    elif mode == "forever":
        s = stream(request_id)
        for i in range(400):
            line(s, i)
            sys.stdout.write("wrote %d\n" % i)
            sys.stdout.flush()
            time.sleep(0.05)
        finish(s)
    elif mode == "big":
        s = stream(request_id, "application/octet-stream")
        block = b"x" * 65536
        for i in range(int(a.get("mib", "100")) * 16):
            chunk(s, block)
        finish(s)
)PY";

json streaming_settings(json extra = json::object()) {
    json s{{"runtime", "provided"}, {"url_auth", "none"}, {"invoke_mode", "RESPONSE_STREAM"}, {"timeout_s", 30}};
    s.update(extra);
    return s;
}

TEST(Streaming, FunctionUrlChunksArriveWhileTheFunctionStillRuns) {
    Daemon d;
    ASSERT_EQ(d.deploy("lines", streaming_settings(), bootstrap_zip(kStreamingBootstrap)).status, 201);
    StreamClient c(d.port(), "GET", "/fn/lines?mode=lines&n=3&pause=0.7");
    EXPECT_EQ(c.status, 200);
    EXPECT_TRUE(c.chunked) << "a streamed answer is sent in chunked transfer coding";
    EXPECT_EQ(c.headers["content-type"], "text/plain") << "the runtime's content type is the answer's";
    EXPECT_FALSE(c.headers["x-funcd-request-id"].empty());
    std::vector<StreamClient::Chunk> chunks;
    while (auto ch = c.next()) chunks.push_back(*ch);
    ASSERT_TRUE(c.complete) << "the stream ends with its terminating chunk";
    ASSERT_EQ(chunks.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(chunks[i].data.rfind("line " + std::to_string(i), 0), 0u);
    // The function pauses 0.7 s between lines: each line arrives well before the next is written.
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(chunks[2].at - chunks[0].at);
    EXPECT_GE(gap.count(), 1200) << "the first line arrived only with the last: the answer was buffered";
}

TEST(Streaming, ThePreludeSetsStatusHeadersAndCookies) {
    Daemon d;
    ASSERT_EQ(d.deploy("prelude", streaming_settings(), bootstrap_zip(kStreamingBootstrap)).status, 201);
    StreamClient c(d.port(), "GET", "/fn/prelude?mode=prelude");
    EXPECT_EQ(c.status, 201);
    EXPECT_EQ(c.headers["content-type"], "text/plain");
    EXPECT_EQ(c.headers["x-streamed"], "yes");
    EXPECT_EQ(c.set_cookies, (std::vector<std::string>{"a=1; Path=/", "b=2"}));
    EXPECT_EQ(c.rest(), "first\nsecond\n") << "the prelude and its 8 NUL bytes are not part of the body";
    EXPECT_TRUE(c.complete);
}

TEST(Streaming, AnErrorAfterTheFirstByteCutsTheAnswerShort) {
    Daemon d;
    ASSERT_EQ(d.deploy("broken", streaming_settings(), bootstrap_zip(kStreamingBootstrap)).status, 201);
    StreamClient c(d.port(), "GET", "/fn/broken?mode=error");
    EXPECT_EQ(c.status, 200);
    const std::string body = c.rest();
    EXPECT_EQ(body.rfind("line 0", 0), 0u) << body;
    EXPECT_FALSE(c.complete) << "the answer must end without its terminating chunk, so the client sees an error";
    const auto record = usage_record(d, "broken", c.headers["x-funcd-request-id"]);
    EXPECT_EQ(record["outcome"], "function_error");
}

TEST(Streaming, ATimeoutMidStreamCutsTheAnswerShort) {
    Daemon d;
    ASSERT_EQ(d.deploy("sleepy", streaming_settings({{"timeout_s", 2}}), bootstrap_zip(kStreamingBootstrap)).status, 201);
    const auto start = Clock::now();
    StreamClient c(d.port(), "GET", "/fn/sleepy?mode=sleep");
    EXPECT_EQ(c.status, 200);
    const std::string body = c.rest();
    EXPECT_EQ(body.rfind("line 0", 0), 0u) << body;
    EXPECT_FALSE(c.complete);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(15)) << "the timeout ended the stream";
    const auto record = usage_record(d, "sleepy", c.headers["x-funcd-request-id"]);
    EXPECT_EQ(record["outcome"], "timeout");
    EXPECT_GE(record["billed_ms"].get<int>(), 2000);
}

TEST(Streaming, AClientThatHangsUpEndsTheInvocationAndItIsBilled) {
    Daemon d;
    ASSERT_EQ(d.deploy("forever", streaming_settings(), bootstrap_zip(kStreamingBootstrap)).status, 201);
    StreamClient c(d.port(), "GET", "/fn/forever?mode=forever");
    ASSERT_EQ(c.status, 200);
    const std::string request_id = c.headers["x-funcd-request-id"];
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.next());
    const auto hung_up = Clock::now();
    c.close();
    // Without the hang-up the function would stream for 20 s.
    const auto record = usage_record(d, "forever", request_id);
    ASSERT_FALSE(record.is_null()) << "no usage record for the streamed invocation";
    EXPECT_LT(Clock::now() - hung_up, std::chrono::seconds(5));
    EXPECT_GE(record["billed_ms"].get<int>(), 200) << "billed for the time it streamed";
    EXPECT_LT(record["billed_ms"].get<int>(), 10000);
    EXPECT_EQ(record["outcome"], "function_error");
    // The worker was ended: its log stops, and the next call gets a fresh one that works.
    EXPECT_TRUE(eventually([&] { return d.api("GET", "/v1/functions/forever").json()["instances"]["busy"] == 0; }));
    StreamClient again(d.port(), "GET", "/fn/forever?mode=lines&n=1");
    EXPECT_EQ(again.rest().rfind("line 0", 0), 0u);
}

TEST(Streaming, ASlowReaderHoldsTheFunctionBackInsteadOfTheDaemonsMemory) {
    const auto no_quarantine = without_asan_quarantine();
    Daemon d;
    ASSERT_EQ(d.deploy("big", streaming_settings({{"timeout_s", 120}}), bootstrap_zip(kStreamingBootstrap)).status, 201);
    // Warm the worker, so its start is not in the measurement.
    { StreamClient warm(d.port(), "GET", "/fn/big?mode=big&mib=1"); warm.rest(); }
    const long before = rss_kib(d.pid());
    StreamClient c(d.port(), "GET", "/fn/big?mode=big&mib=100", {}, {}, 64 * 1024);
    ASSERT_EQ(c.status, 200);
    std::size_t total = 0;
    long peak = before;
    int reads = 0;
    // About 20 MB/s: far slower than the function writes.
    while (std::size_t n = c.drain_some(64 * 1024)) {
        total += n;
        if (++reads % 16 == 0) {
            peak = std::max(peak, rss_kib(d.pid()));
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (total >= 100u * 1024 * 1024) break;
    }
    EXPECT_GE(total, 100u * 1024 * 1024);
    // The stream holds about 1 MiB for its caller (runtime_api.stream_buffer_bytes); allocator
    // and sanitizer noise aside, nothing near the 100 MiB streamed.
    std::printf("daemon RSS grew by %ld KiB while streaming 100 MiB\n", peak - before);
    EXPECT_LT(peak - before, 32 * 1024) << "the daemon's RSS grew by " << (peak - before) << " KiB";
}

TEST(Streaming, V1InvokeStreamsWhenAskedAndBuffersOtherwise) {
    Daemon d;
    ASSERT_EQ(d.deploy("v1", streaming_settings(), bootstrap_zip(kStreamingBootstrap)).status, 201);
    StreamClient c(d.port(), "POST", "/v1/functions/v1/invoke",
                   {"Authorization: Bearer " + Daemon::kToken, "X-Funcd-Response-Mode: streaming",
                    "Content-Type: application/json"},
                   R"({"mode": "lines", "n": 2, "pause": 0.6})");
    EXPECT_EQ(c.status, 200);
    EXPECT_TRUE(c.chunked);
    EXPECT_FALSE(c.headers["x-funcd-executed-version"].empty());
    const auto first = c.next();
    ASSERT_TRUE(first);
    const auto second = c.next();
    ASSERT_TRUE(second);
    EXPECT_GE(std::chrono::duration_cast<std::chrono::milliseconds>(second->at - first->at).count(), 400);
    EXPECT_FALSE(c.next());
    EXPECT_TRUE(c.complete);

    // Without the header: the whole body at once, with a length.
    auto r = d.invoke("v1", R"({"mode": "lines", "n": 2, "pause": 0.1})");
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.header("content-length").empty());
    EXPECT_EQ(r.body.rfind("line 0", 0), 0u);
    EXPECT_NE(r.body.find("line 1"), std::string::npos);

    // A mid-stream error, buffered: the function's error, as for any invocation.
    r = d.invoke("v1", R"({"mode": "error"})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(r.json()["errorType"], "Function.Broke");

    auto bad = http_request(d.port(), "POST", "/v1/functions/v1/invoke", "{}",
                            {{"Authorization", "Bearer " + Daemon::kToken}, {"X-Funcd-Response-Mode", "sideways"}});
    EXPECT_EQ(bad.status, 400);
}

TEST(Streaming, ABufferedFunctionUrlGetsTheWholeStreamWithItsPrelude) {
    Daemon d;
    ASSERT_EQ(d.deploy("whole", streaming_settings({{"invoke_mode", "BUFFERED"}}), bootstrap_zip(kStreamingBootstrap)).status,
              201);
    auto r = http_request(d.port(), "GET", "/fn/whole?mode=prelude");
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.header("x-streamed"), "yes");
    EXPECT_EQ(r.body, "first\nsecond\n");
    EXPECT_FALSE(r.header("content-length").empty()) << "buffered: one answer with a length";
    EXPECT_EQ(d.api("GET", "/v1/functions/whole").json()["invoke_mode"], "BUFFERED");
    auto bad = d.deploy("whole", streaming_settings({{"invoke_mode", "STREAMING"}}), bootstrap_zip(kStreamingBootstrap));
    EXPECT_EQ(bad.status, 400);
}

}  // namespace
}  // namespace funcd::testing
