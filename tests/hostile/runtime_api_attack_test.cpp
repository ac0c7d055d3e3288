// Hostile runtimes and neighbours against the Runtime API, in the real daemon with the
// sandbox on: a function that floods its own Runtime API with connections and half-sent
// bodies, one that leaves requests unfinished or trickles them, and processes on the
// host's network -- a plain local process and another function -- that try to take a
// host-network function's events. The daemon's memory stays bounded, every attack is cut
// off, and the other functions keep being served.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <future>
#include <iostream>
#include <optional>
#include <string>

#include "../sandbox/sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

// Opens `connections` connections to its own Runtime API, each declaring a body of
// `declared` bytes and sending all of it but the last byte, and keeps those the daemon did
// not close (in HELD, across invocations). Says what happened to each.
const char* kFloodPy = R"(
HELD = []

def classify(s):
    s.setblocking(False)
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return "open"
    except OSError:
        return "reset"
    finally:
        s.setblocking(True)
    if not data:
        return "closed"
    return "answered " + data.split(b"\r\n", 1)[0].decode(errors="replace")

def handler(event, context):
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    if event.get("check"):
        outcomes = {}
        for s in HELD:
            c = classify(s)
            outcomes[c] = outcomes.get(c, 0) + 1
        return {"held": len(HELD), "outcomes": outcomes}
    size = event["declared"]
    head = ("POST /2018-06-01/runtime/invocation/flood/response HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: %d\r\n\r\n" % size).encode()
    chunk = b"x" * (1 << 20)
    outcomes = {}
    for i in range(event["connections"]):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, int(port)))
            s.sendall(head)
            left = size - 1
            while left > 0:
                n = min(left, len(chunk))
                s.sendall(chunk[:n])
                left -= n
            c = classify(s)
        except socket.timeout:
            c = "send timed out"
        except OSError as e:
            c = "send failed"
        outcomes[c] = outcomes.get(c, 0) + 1
        if c == "open":
            HELD.append(s)
        else:
            s.close()
    return {"held": len(HELD), "outcomes": outcomes}
)";

TEST_F(SandboxAttack, RuntimeApiConnectionFloodFromInsideIsBounded) {
    const auto no_quarantine = without_asan_quarantine();
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "flood", kFloodPy, {{"timeout_s", 120}, {"memory_mb", 256}}).status, 201);
    // Warm: the flood's own worker is up before the baseline is taken.
    ok_result(d->invoke("flood", R"({"check": true})"));
    const long before = rss_kib(d->pid());
    ASSERT_GT(before, 0);

    // 64 connections each sending 6 MiB less one byte: unbounded, the daemon would buffer
    // (or reserve) all of it, ~384 MiB.
    auto r = d->invoke("flood", R"({"connections": 64, "declared": 6291456})");
    json body = ok_result(r);
    const long after = rss_kib(d->pid());
    RecordProperty("rss_before_kib", std::to_string(before));
    RecordProperty("rss_after_kib", std::to_string(after));
    std::cerr << "daemon RSS " << before / 1024 << " MiB -> " << after / 1024 << " MiB; flood: " << body.dump()
              << "\n";
    // One worker's Runtime API holds at most its body budget (7 MiB) and per-connection
    // read buffers; the sanitizer's quarantine of freed memory adds a little.
    EXPECT_LT(after - before, 64 * 1024) << "the daemon grew by " << (after - before) / 1024 << " MiB: " << r.body;

    // The flooding function itself still works (its runtime's own connection is kept), and
    // so does everything else. Of its connections, at most the cap (8, the runtime's own
    // among them) are left open: the rest were answered 429 or closed.
    json check = ok_result(d->invoke("flood", R"({"check": true})"));
    EXPECT_LE(check["outcomes"].value("open", 0), 7) << check.dump();
    expect_still_serving(*d);
}

// Leaves requests unfinished: half a head, a body declared and barely begun, and one
// request trickled a byte at a time from a thread, each on its own connection. A later
// invocation reports which of them the daemon has closed.
const char* kSlowPy = R"(
import threading
HELD = []
TRICKLE = {"error": None, "sent": 0}

def trickle(s):
    try:
        s.sendall(b"POST /2018-06-01/runtime/invocation/slow/response HTTP/1.1\r\nHost: x\r\n")
        while True:
            s.sendall(b"X")
            TRICKLE["sent"] += 1
            time.sleep(0.2)
    except OSError as e:
        TRICKLE["error"] = e.errno or str(e)

def closed(s):
    p = __import__("select").poll()
    p.register(s, 1)
    if not p.poll(0):
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True

def handler(event, context):
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    if event.get("check"):
        return {"closed": [closed(s) for s in HELD], "trickle": TRICKLE}
    for head in [b"POST /2018-06-01/runtime/invocation/slow/respo",
                 b"POST /2018-06-01/runtime/invocation/slow/response HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 1048576\r\n\r\n" + b"y" * 1024]:
        s = socket.create_connection((host, int(port)))
        s.sendall(head)
        HELD.append(s)
    t = socket.create_connection((host, int(port)))
    HELD.append(t)
    threading.Thread(target=trickle, args=(t,), daemon=True).start()
    return {"started": len(HELD)}
)";

TEST_F(SandboxAttack, UnfinishedRuntimeApiRequestsAreCutAtTheirDeadline) {
    // A whole request must arrive within 1.5 s of its first byte (the default is a minute).
    auto d = start({"--limit", "runtime_api.request_deadline_ms=1500"});
    ASSERT_EQ(deploy_attack(*d, "slow", kSlowPy, {{"timeout_s", 30}}).status, 201);
    json started = ok_result(d->invoke("slow"));
    EXPECT_EQ(started["started"], 3) << started.dump();

    // Past the deadline (and with the trickle still going: a byte every 0.2 s keeps a
    // per-read timeout from ever firing), every one of them is closed.
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    json check = ok_result(d->invoke("slow", R"({"check": true})"));
    EXPECT_EQ(check["closed"], json::array({true, true, true})) << check.dump();
    // It was a trickle: several reads, each well within the deadline, before the cut.
    EXPECT_GE(check["trickle"]["sent"].get<int>(), 3) << check.dump();
    expect_still_serving(*d);
}

// A host-network function: answers with its Runtime API's address.
const char* kVictimPy = R"(
def handler(event, context):
    return {"api": os.environ["AWS_LAMBDA_RUNTIME_API"], "event": event, "request_id": context.aws_request_id}
)";

// A host-network function that tries to take another function's event: it parks a `next` on
// the address it is given and reports what came back.
const char* kThiefPy = R"(
def handler(event, context):
    host, port = event["api"].rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=event["wait"])
    except OSError as e:
        return {"outcome": "connect failed", "errno": e.errno}
    try:
        s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(65536)
        if not data:
            return {"outcome": "closed"}
        return {"outcome": "answered", "data": data.decode(errors="replace")}
    except socket.timeout:
        return {"outcome": "timeout"}
    except OSError as e:
        return {"outcome": "reset", "errno": e.errno}
)";

// What the host-network victim's runtime listens on, from its own answer.
std::pair<std::string, unsigned short> victim_address(Daemon& d) {
    json first = ok_result(d.invoke("victim", R"({"n": 0})"));
    const std::string api = first.value("api", "");
    const auto colon = api.rfind(':');
    if (colon == std::string::npos) return {"", 0};
    return {api.substr(0, colon), static_cast<unsigned short>(std::stoi(api.substr(colon + 1)))};
}

TEST_F(SandboxAttack, ALocalProcessCannotTakeAHostNetworkFunctionsEvents) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "victim", kVictimPy, {{"network", "host"}, {"timeout_s", 3}}).status, 201);
    const auto [host, port] = victim_address(*d);
    ASSERT_EQ(host, "127.0.0.1");
    ASSERT_GT(port, 0);

    // A plain process on the host (this test, as root) parks a `next` on that port...
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    const std::string next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
    ::send(fd, next.data(), next.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));

    // ...while the function is invoked: the event goes to the function, not to it.
    auto call = std::async(std::launch::async, [&] { return d->invoke("victim", R"({"n": 1, "secret": "s3"})"); });
    pollfd p{fd, POLLIN, 0};
    std::string got;
    if (::poll(&p, 1, 4000) > 0) {
        char buf[4096];
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    EXPECT_TRUE(got.empty()) << "a process outside the function was answered:\n" << got;
    json r = ok_result(call.get());
    EXPECT_EQ(r["event"]["secret"], "s3") << r.dump();
    expect_still_serving(*d);
}

TEST_F(SandboxAttack, AnotherHostNetworkFunctionCannotTakeItsEvents) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "victim", kVictimPy, {{"network", "host"}, {"timeout_s", 3}}).status, 201);
    ASSERT_EQ(deploy_attack(*d, "thief", kThiefPy, {{"network", "host"}, {"timeout_s", 20}}).status, 201);
    const auto [host, port] = victim_address(*d);
    ASSERT_GT(port, 0);

    // The thief parks a `next` on the victim's Runtime API (given time to start and
    // connect), then the victim is invoked.
    const std::string api = host + ":" + std::to_string(port);
    auto theft = std::async(std::launch::async,
                            [&] { return d->invoke("thief", json{{"api", api}, {"wait", 8}}.dump()); });
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    json victim = ok_result(d->invoke("victim", R"({"n": 2, "secret": "s4"})"));
    EXPECT_EQ(victim["event"]["secret"], "s4") << victim.dump();

    json thief = ok_result(theft.get());
    EXPECT_TRUE(thief["outcome"] == "closed" || thief["outcome"] == "reset") << thief.dump();
    EXPECT_EQ(thief.dump().find("s4"), std::string::npos) << thief.dump();
    expect_still_serving(*d);
}

TEST_F(SandboxAttack, AHostNetworkRuntimeSpeakingTcpIsServed) {
    // Unmodified runtimes know only AWS_LAMBDA_RUNTIME_API=host:port: a curl loop (a
    // connection per request) and a native client with one kept-alive connection.
    auto d = start();
    std::ifstream script(std::string(FUNCD_SOURCE_DIR) + "/examples/hello-provided/bootstrap");
    const std::string curl_bootstrap((std::istreambuf_iterator<char>(script)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(curl_bootstrap.empty());
    ASSERT_EQ(d->deploy("curl", {{"runtime", "provided"}, {"network", "host"}, {"timeout_s", 10}},
                        bootstrap_zip(curl_bootstrap))
                  .status,
              201);
    ASSERT_EQ(d->deploy("native",
                        {{"runtime", "provided"}, {"network", "host"}, {"env", {{"NOOP_TCP", "1"}, {"NOOP_ECHO", "1"}}}},
                        make_zip({{"bootstrap", {read_file(FUNCD_NOOP_BOOTSTRAP), 0755}}}))
                  .status,
              201);
    for (int i = 0; i < 3; ++i) {
        auto curl = d->invoke("curl", R"({"i": )" + std::to_string(i) + "}");
        EXPECT_EQ(curl.status, 200) << curl.body << "\n" << d->log();
        EXPECT_EQ(json::parse(curl.body)["echo"]["i"], i) << curl.body;
        auto native = d->invoke("native", R"({"i": )" + std::to_string(i) + "}");
        EXPECT_EQ(native.status, 200) << native.body;
        EXPECT_TRUE(native.header("x-funcd-function-error").empty()) << native.body;
    }
}

}  // namespace
}  // namespace funcd::testing::sandbox
