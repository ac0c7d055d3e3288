// Node.js streaming handlers (awslambda.streamifyResponse, awslambda.HttpResponseStream)
// through the real daemon, real sandboxed workers and funcd's Node.js runtime, reached
// through function URLs, routes and /v1 invoke. The runtime's side alone is covered against
// a fake Runtime API (tests/runtime/test_node_bootstrap.py), the daemon's side alone with
// `provided` runtimes (streaming_test.cpp); these check the two together.
//
// Where a test needs to know that bytes reached the client while the function was still
// running, the function waits for a signal that the test gives only once it has those
// bytes: the function (on the host's network) connects to a listener of the test's and
// waits for a byte. No assertion depends on how fast the machine is.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <regex>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "stream_client.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A CommonJS module with two streaming handlers. `handler` does what the event's `mode`
// asks (a function URL's query string, or a /v1 event's fields); `big` streams `mib` MiB of
// numbered 64 KiB blocks, waiting for 'drain' whenever write() says the stream is full, and
// tells the test's listener how many MiB the stream has taken so far.
const char* kStreamingJs = R"JS(const net = require('node:net');

function argsOf(event) {
  if (typeof event.rawQueryString === 'string') return Object.fromEntries(new URLSearchParams(event.rawQueryString));
  return event;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// What the test sends to 127.0.0.1:port once it is ready; 'no signal' after 5 s, so that a
// broken stream fails the test quickly instead of hanging it.
function signal(port) {
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    const timer = setTimeout(() => finish('no signal'), 5000);
    function finish(what) {
      clearTimeout(timer);
      socket.destroy();
      resolve(what);
    }
    socket.on('data', (data) => finish(data.toString()));
    socket.on('error', (error) => finish('no signal: ' + error.message));
  });
}

class BrokeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BrokeError';
  }
}

exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const a = argsOf(event);
  switch (a.mode) {
    case 'signal': {
      responseStream.setContentType('text/plain');
      responseStream.write('first\n');
      const got = await signal(a.port);
      responseStream.end('then ' + got + '\n');
      return;
    }
    case 'linger': {
      // Work left behind after the response: it holds the event loop, not the answer.
      signal(a.port).then((got) => console.log('lingered: ' + got));
      responseStream.end('done\n');
      return;
    }
    case 'lines': {
      responseStream.setContentType('text/plain');
      for (let i = 0; i < Number(a.n); i++) responseStream.write('line ' + i + '\n');
      responseStream.end();
      return;
    }
    case 'prelude': {
      const stream = awslambda.HttpResponseStream.from(responseStream, {
        statusCode: 418,
        headers: { 'content-type': 'text/plain', 'x-brewed': 'tea' },
        cookies: ['a=1; Path=/', 'b=2; HttpOnly'],
      });
      stream.write('short and stout\n');
      await sleep(10);
      stream.end('here is my handle\n');
      return;
    }
    case 'error': {
      responseStream.write('before\n');
      await signal(a.port);
      throw new BrokeError('broke mid-stream');
    }
    case 'early-error':
      throw new BrokeError('broke before any byte');
    case 'late':
      await signal(a.port);
    // falls through: then streams as 'forever'
    case 'forever': {
      for (let i = 0; i < 400; i++) {
        responseStream.write('line ' + i + '\n');
        console.log('wrote ' + i);
        await sleep(50);
      }
      responseStream.end();
      return;
    }
    case 'stall': {
      responseStream.write('line 0\n');
      await sleep(60000);
      responseStream.end();
      return;
    }
  }
  throw new Error('unknown mode ' + a.mode);
});

exports.big = awslambda.streamifyResponse(
  async (event, responseStream) => {
    const a = argsOf(event);
    const progress = net.connect(Number(a.port), '127.0.0.1');
    await new Promise((resolve, reject) => progress.once('connect', resolve).once('error', reject));
    const blocks = Number(a.mib) * 16;
    for (let i = 0; i < blocks; i++) {
      const block = Buffer.alloc(65536, i % 251);
      block.writeUInt32BE(i, 0);
      if (!responseStream.write(block)) await new Promise((resolve) => responseStream.once('drain', resolve));
      if (i % 16 === 15) progress.write((i + 1) / 16 + '\n');
    }
    progress.end();
    responseStream.end();
  },
  { highWaterMark: 16384 },
);
)JS";

std::string node_zip() { return make_zip({{"index.js", {kStreamingJs, 0644}}}); }

// A streaming Node.js function on the host's network (to reach the test's listener).
json streaming_node_settings(json extra = json::object()) {
    json s{{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"url_auth", "none"},
           {"invoke_mode", "RESPONSE_STREAM"}, {"network", "host"}, {"timeout_s", 30}};
    s.update(extra);
    return s;
}

// The test's side of the function's `signal(port)`: a listener on the host's loopback.
class Signal {
public:
    Signal() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 4) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("listen: " + std::string(std::strerror(errno)));
        port_ = ntohs(addr.sin_port);
    }
    ~Signal() { ::close(fd_); }
    unsigned short port() const { return port_; }
    // Waits for the function to connect and sends it `message`; false if it never connected.
    bool give(const std::string& message) {
        const int conn = accept();
        if (conn < 0) return false;
        const bool sent = ::send(conn, message.data(), message.size(), MSG_NOSIGNAL) ==
                          static_cast<ssize_t>(message.size());
        ::close(conn);
        return sent;
    }
    // The function's connection (the caller closes it), or -1 if none came within 10 s.
    int accept() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 10000) <= 0) return -1;
        return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }

private:
    int fd_;
    unsigned short port_ = 0;
};

const std::vector<std::string> kV1Streaming = {"Authorization: Bearer " + Daemon::kToken,
                                               "X-Funcd-Response-Mode: streaming", "Content-Type: application/json"};

TEST(NodeStreaming, ChunksReachTheClientWhileTheHandlerStillRuns) {
    Daemon d;
    ASSERT_EQ(d.deploy("lines", streaming_node_settings(), node_zip()).status, 201);
    Signal go;
    StreamClient c(d.port(), "GET", "/fn/lines?mode=signal&port=" + std::to_string(go.port()));
    EXPECT_EQ(c.status, 200);
    EXPECT_TRUE(c.chunked) << "a streamed answer is sent in chunked transfer coding";
    EXPECT_EQ(c.headers["content-type"], "text/plain") << "responseStream.setContentType's type is the answer's";
    EXPECT_FALSE(c.headers["x-funcd-request-id"].empty());
    // The handler is now waiting for the signal: whatever arrives before it was written
    // before the handler finished.
    const auto first = c.next();
    ASSERT_TRUE(first) << "nothing arrived while the handler waited";
    EXPECT_EQ(first->data, "first\n");
    ASSERT_TRUE(go.give("go")) << "the function never asked for its signal";
    EXPECT_EQ(c.rest(), "then go\n") << "the handler went on only after the client had its first line";
    EXPECT_TRUE(c.complete) << "the stream ends with its terminating chunk";

    // The same through /v1 invoke, asked to stream.
    Signal go_v1;
    StreamClient v1(d.port(), "POST", "/v1/functions/lines/invoke", kV1Streaming,
                    json{{"mode", "signal"}, {"port", go_v1.port()}}.dump());
    EXPECT_EQ(v1.status, 200);
    EXPECT_TRUE(v1.chunked);
    EXPECT_EQ(v1.headers["x-funcd-response-mode"], "streaming");
    const auto v1_first = v1.next();
    ASSERT_TRUE(v1_first);
    EXPECT_EQ(v1_first->data, "first\n");
    ASSERT_TRUE(go_v1.give("on"));
    EXPECT_EQ(v1.rest(), "then on\n");
    EXPECT_TRUE(v1.complete);
}

TEST(NodeStreaming, TheAnswerEndsWithTheStreamWhileTheEventLoopStillHasWork) {
    Daemon d;
    ASSERT_EQ(d.deploy("linger", streaming_node_settings(), node_zip()).status, 201);
    Signal go;
    StreamClient c(d.port(), "GET", "/fn/linger?mode=linger&port=" + std::to_string(go.port()));
    EXPECT_EQ(c.status, 200);
    EXPECT_EQ(c.rest(), "done\n");
    EXPECT_TRUE(c.complete) << "the answer ended with the stream, before the handler's leftover work";
    const std::string id = c.headers["x-funcd-request-id"];
    // Only now does the work the handler left behind get what it waits for.
    ASSERT_TRUE(go.give("go"));
    std::string log;
    EXPECT_TRUE(eventually([&] {
        log = read_file(d.data_dir() / "logs" / "linger.log");
        return log.find("lingered: ") != std::string::npos;
    })) << log;
    EXPECT_NE(log.find("lingered: go"), std::string::npos) << log;
    EXPECT_EQ(usage_record(d, "linger", id)["outcome"], "success");
    // The worker asks for its next event once that work is done, and gets it.
    StreamClient again(d.port(), "GET", "/fn/linger?mode=lines&n=1");
    EXPECT_EQ(again.rest(), "line 0\n");
    EXPECT_TRUE(again.complete);
}

TEST(NodeStreaming, HttpResponseStreamFromSetsStatusHeadersAndCookiesThroughARoute) {
    Daemon d;
    ASSERT_EQ(d.deploy("teapot", streaming_node_settings(), node_zip()).status, 201);
    auto routes = d.api("PUT", "/v1/routes", R"([{"method": "GET", "path": "/tea/{proxy+}", "function": "teapot"}])");
    ASSERT_EQ(routes.status, 200) << routes.body;
    for (const std::string target : {"/api/tea/pot?mode=prelude", "/fn/teapot?mode=prelude"}) {
        StreamClient c(d.port(), "GET", target);
        EXPECT_EQ(c.status, 418) << target;
        EXPECT_TRUE(c.chunked) << target;
        EXPECT_EQ(c.headers["content-type"], "text/plain") << target;
        EXPECT_EQ(c.headers["x-brewed"], "tea") << target;
        EXPECT_EQ(c.set_cookies, (std::vector<std::string>{"a=1; Path=/", "b=2; HttpOnly"})) << target;
        EXPECT_EQ(c.rest(), "short and stout\nhere is my handle\n")
            << target << ": the prelude and its 8 NUL bytes are not part of the body";
        EXPECT_TRUE(c.complete) << target;
    }
}

TEST(NodeStreaming, AnErrorAfterTheFirstBytesCutsTheAnswerShort) {
    Daemon d;
    ASSERT_EQ(d.deploy("broken", streaming_node_settings(), node_zip()).status, 201);
    Signal go;
    StreamClient c(d.port(), "GET", "/fn/broken?mode=error&port=" + std::to_string(go.port()));
    EXPECT_EQ(c.status, 200) << "the head went out before the error";
    const auto first = c.next();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->data, "before\n");
    ASSERT_TRUE(go.give("throw"));
    EXPECT_EQ(c.rest(), "") << "nothing after the error";
    EXPECT_FALSE(c.complete) << "the answer must end without its terminating chunk, so the client sees an error";
    const std::string id = c.headers["x-funcd-request-id"];
    EXPECT_EQ(usage_record(d, "broken", id)["outcome"], "function_error");
    const std::string log = log_after(d, "broken", id);
    EXPECT_TRUE(std::regex_search(log, std::regex("\tERROR\tInvoke Error \t\\{.*\"errorType\":\"BrokeError\"")))
        << log;

    // Through /v1, asked to stream: the same cut.
    Signal go_v1;
    StreamClient v1(d.port(), "POST", "/v1/functions/broken/invoke", kV1Streaming,
                    json{{"mode", "error"}, {"port", go_v1.port()}}.dump());
    EXPECT_EQ(v1.status, 200);
    const auto v1_first = v1.next();
    ASSERT_TRUE(v1_first);
    EXPECT_EQ(v1_first->data, "before\n");
    ASSERT_TRUE(go_v1.give("throw"));
    EXPECT_EQ(v1.rest(), "");
    EXPECT_FALSE(v1.complete);
    EXPECT_EQ(usage_record(d, "broken", v1.headers["x-funcd-request-id"])["outcome"], "function_error");

    // Buffered /v1: the runtime's error trailers become the invocation's error document.
    // (Port 1: nothing listens there, so the function does not wait.)
    auto r = d.invoke("broken", R"({"mode": "error", "port": 1})");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled") << r.body;
    EXPECT_EQ(r.json()["errorType"], "BrokeError") << r.body;
    EXPECT_EQ(r.json()["errorMessage"], "broke mid-stream") << r.body;
    EXPECT_TRUE(r.json()["trace"].is_array()) << r.body;

    // An error before any byte: the function URL's ordinary error answer.
    auto early = http_request(d.port(), "GET", "/fn/broken?mode=early-error");
    EXPECT_EQ(early.status, 502) << early.body;
    EXPECT_EQ(early.json(), json({{"message", "Internal Server Error"}})) << early.body;
    auto early_v1 = d.invoke("broken", R"({"mode": "early-error"})");
    EXPECT_EQ(early_v1.json()["errorType"], "BrokeError") << early_v1.body;
    EXPECT_EQ(early_v1.json()["errorMessage"], "broke before any byte") << early_v1.body;
}

TEST(NodeStreaming, AClientThatHangsUpEndsTheInvocationAndItIsBilled) {
    Daemon d;
    ASSERT_EQ(d.deploy("forever", streaming_node_settings(), node_zip()).status, 201);
    StreamClient c(d.port(), "GET", "/fn/forever?mode=forever");
    ASSERT_EQ(c.status, 200);
    const std::string id = c.headers["x-funcd-request-id"];
    // Five lines, 50 ms apart: the function ran at least 200 ms.
    for (int i = 0; i < 5; ++i) {
        const auto line = c.next();
        ASSERT_TRUE(line);
        EXPECT_EQ(line->data, "line " + std::to_string(i) + "\n");
    }
    c.close();
    // Without the hang-up the function would stream for 20 s: a record within the 5 s that
    // usage_record waits means the hang-up ended it.
    const auto record = usage_record(d, "forever", id);
    ASSERT_FALSE(record.is_null()) << "no usage record for the streamed invocation";
    EXPECT_EQ(record["outcome"], "function_error");
    EXPECT_GE(record["billed_ms"].get<int>(), 200) << "billed for the time it streamed";
    EXPECT_LT(record["billed_ms"].get<int>(), 15000) << "billed past the hang-up";
    const std::string log = log_after(d, "forever", id);
    EXPECT_NE(log.find("CLIENT_DISCONNECTED RequestId: " + id), std::string::npos) << log;
    EXPECT_TRUE(std::regex_search(log, std::regex("REPORT RequestId: " + id + "\tDuration: [0-9.]+ ms\tBilled Duration: " +
                                                  std::to_string(record["billed_ms"].get<int>()) + " ms")))
        << log;
    // The worker was ended, not left streaming to nobody; the next call gets a fresh one.
    EXPECT_TRUE(eventually([&] {
        const json instances = d.api("GET", "/v1/functions/forever").json()["instances"];
        return instances["busy"] == 0 && instances["idle"] == 0;
    })) << d.api("GET", "/v1/functions/forever").body;
    StreamClient again(d.port(), "GET", "/fn/forever?mode=lines&n=2");
    EXPECT_EQ(again.rest(), "line 0\nline 1\n");
    EXPECT_TRUE(again.complete);

    // A client that goes away before the function has written anything: the stream is
    // ended as soon as it starts.
    Signal go;
    const int early = connect_loopback(d.port());
    const std::string request = "GET /fn/forever?mode=late&port=" + std::to_string(go.port()) +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ASSERT_EQ(::send(early, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    const int waiting = go.accept();
    ASSERT_GE(waiting, 0) << "the function never started";
    ::close(early);
    ASSERT_EQ(::send(waiting, "go", 2, MSG_NOSIGNAL), 2);
    ::close(waiting);
    json late;
    EXPECT_TRUE(eventually([&] {
        const json records = d.api("GET", "/v1/usage/records?function=forever").json()["records"];
        for (const auto& r : records)
            if (r["request_id"] != id && r["outcome"] == "function_error") late = r;
        return !late.is_null();
    })) << "the invocation whose client left early still runs";
    EXPECT_TRUE(eventually([&] {
        return read_file(d.data_dir() / "logs" / "forever.log").find(
                   "CLIENT_DISCONNECTED RequestId: " + late.value("request_id", std::string("?"))) != std::string::npos;
    }));
}

TEST(NodeStreaming, ATimeoutMidStreamCutsTheAnswerShort) {
    Daemon d;
    ASSERT_EQ(d.deploy("stall", streaming_node_settings({{"timeout_s", 1}}), node_zip()).status, 201);
    StreamClient c(d.port(), "GET", "/fn/stall?mode=stall");
    EXPECT_EQ(c.status, 200);
    EXPECT_EQ(c.rest(), "line 0\n");
    EXPECT_FALSE(c.complete) << "a timed-out stream must not look complete";
    const std::string id = c.headers["x-funcd-request-id"];
    const auto record = usage_record(d, "stall", id);
    EXPECT_EQ(record["outcome"], "timeout");
    EXPECT_GE(record["billed_ms"].get<int>(), 1000);
    EXPECT_LT(record["billed_ms"].get<int>(), 30000) << "the handler's 60 s sleep did not run out";
    const std::string log = log_after(d, "stall", id);
    EXPECT_TRUE(std::regex_search(log, std::regex("REPORT RequestId: " + id + "\t.*\tStatus: timeout\n"))) << log;
    // The next invocation runs on a fresh worker.
    StreamClient again(d.port(), "GET", "/fn/stall?mode=lines&n=1");
    EXPECT_EQ(again.rest(), "line 0\n");
    EXPECT_TRUE(again.complete);
}

TEST(NodeStreaming, TheSameHandlerCalledBufferedGetsItsWholeBody) {
    Daemon d;
    ASSERT_EQ(d.deploy("whole", streaming_node_settings(), node_zip()).status, 201);
    std::string expected;
    for (int i = 0; i < 300; ++i) expected += "line " + std::to_string(i) + "\n";
    auto r = d.invoke("whole", R"({"mode": "lines", "n": 300})");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.header("x-funcd-function-error").empty()) << r.body;
    EXPECT_EQ(r.header("content-length"), std::to_string(expected.size())) << "one answer with a length";
    EXPECT_FALSE(r.header("x-funcd-billed-duration-ms").empty());
    EXPECT_EQ(r.body, expected);
    // /v1 passes the HTTP prelude through as body bytes.
    auto p = d.invoke("whole", R"({"mode": "prelude"})");
    EXPECT_EQ(p.status, 200);
    const auto nuls = p.body.find(std::string(8, '\0'));
    ASSERT_NE(nuls, std::string::npos) << p.body;
    EXPECT_EQ(json::parse(p.body.substr(0, nuls))["statusCode"], 418);
    EXPECT_EQ(p.body.substr(nuls + 8), "short and stout\nhere is my handle\n");

    // A function URL of a BUFFERED function: one answer, the prelude applied.
    ASSERT_EQ(d.deploy("whole", streaming_node_settings({{"invoke_mode", "BUFFERED"}}), node_zip()).status, 200);
    auto u = http_request(d.port(), "GET", "/fn/whole?mode=prelude");
    EXPECT_EQ(u.status, 418);
    EXPECT_EQ(u.header("x-brewed"), "tea");
    EXPECT_EQ(u.header("content-length"), "34");
    EXPECT_EQ(u.body, "short and stout\nhere is my handle\n");
}

// Reads the progress lines ("<MiB>\n") `fd` receives until none comes for `quiet`, or the
// connection ends; returns the last.
int last_progress(int fd, std::chrono::milliseconds quiet, bool& ended) {
    std::string text;
    char buf[256];
    ended = false;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            ended = true;
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    const auto end = text.find_last_of('\n');
    if (end == std::string::npos) return 0;
    const auto start = text.find_last_of('\n', end - 1);
    return std::stoi(text.substr(start == std::string::npos ? 0 : start + 1, end));
}

TEST(NodeStreaming, AHandlerThatWaitsForDrainIsHeldBackByASlowClient) {
    Daemon d;
    ASSERT_EQ(d.deploy("big", streaming_node_settings({{"handler", "index.big"}}), node_zip()).status, 201);
    constexpr int kMiB = 24;
    Signal listener;
    StreamClient c(d.port(), "GET", "/fn/big?mib=" + std::to_string(kMiB) + "&port=" + std::to_string(listener.port()),
                   {}, {}, 64 * 1024);
    ASSERT_EQ(c.status, 200);
    EXPECT_EQ(c.headers["content-type"], "application/octet-stream");
    const int progress = listener.accept();
    ASSERT_GE(progress, 0) << "the function never reported its progress";
    // The client reads nothing yet. Between the handler and the client there is room for a
    // few MiB (the daemon holds about 1 MiB for a client, plus the sockets' buffers), so a
    // handler that waits for 'drain' stops well before 24 MiB; one whose writes were taken
    // regardless of the client would write them all.
    bool ended = false;
    const int before_reading = last_progress(progress, std::chrono::milliseconds(1000), ended);
    EXPECT_FALSE(ended);
    EXPECT_LT(before_reading, kMiB) << "the handler wrote everything while the client read nothing";
    std::printf("the handler had written %d MiB when the client began to read\n", before_reading);

    std::string body;
    while (auto chunk = c.next()) body += chunk->data;
    EXPECT_TRUE(c.complete);
    ASSERT_EQ(body.size(), static_cast<std::size_t>(kMiB) * 1024 * 1024);
    for (std::size_t i = 0; i < kMiB * 16u; ++i) {
        const auto* block = reinterpret_cast<const unsigned char*>(body.data() + i * 65536);
        const std::uint32_t n = (std::uint32_t{block[0]} << 24) | (std::uint32_t{block[1]} << 16) |
                                (std::uint32_t{block[2]} << 8) | block[3];
        ASSERT_EQ(n, i) << "block " << i << " out of place";
        ASSERT_EQ(block[65535], i % 251) << "block " << i << " corrupted";
    }
    EXPECT_EQ(last_progress(progress, std::chrono::milliseconds(5000), ended), kMiB);
    EXPECT_TRUE(ended);
    ::close(progress);
    EXPECT_EQ(usage_record(d, "big", c.headers["x-funcd-request-id"])["outcome"], "success");
}

TEST(NodeStreaming, TheStreamNodeExampleStreamsItsLines) {
    Daemon d;
    const std::string example = std::string(FUNCD_SOURCE_DIR) + "/examples/stream-node/index.js";
    auto dep = d.deploy("stream-node",
                        {{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"invoke_mode", "RESPONSE_STREAM"},
                         {"timeout_s", 30}},
                        make_zip({{"index.js", {read_file(example), 0644}}}));
    ASSERT_EQ(dep.status, 201) << dep.body;
    StreamClient c(d.port(), "GET", "/fn/stream-node?lines=5&interval_ms=20",
                   {"Authorization: Bearer " + Daemon::kToken});
    EXPECT_EQ(c.status, 200);
    EXPECT_TRUE(c.chunked);
    EXPECT_EQ(c.headers["content-type"], "text/plain; charset=utf-8");
    EXPECT_EQ(c.headers["cache-control"], "no-store");
    const std::string body = c.rest();
    EXPECT_TRUE(c.complete);
    EXPECT_TRUE(std::regex_match(body, std::regex("(line [1-5] of 5 at \\+[0-9]+ ms\n){5}done in [0-9]+ ms, request " +
                                                  c.headers["x-funcd-request-id"] + "\n")))
        << body;
}

}  // namespace
}  // namespace funcd::testing
