#include "funcd/runtime_api/runtime_api_endpoint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "raw_http_client.hpp"
#include <nlohmann/json.hpp>

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using funcd::EventDelivery;
using funcd::NextWaiter;
using funcd::RuntimeApiEndpoint;
using funcd::RuntimeApiHandler;
using funcd::RuntimeApiLimits;
using funcd::RuntimeReply;
using funcd::UniqueFd;

// A blocking client on a plain socket, standing in for a runtime.
class RuntimeClient : public funcd::testing::RawHttpClient {
public:
    using RawHttpClient::RawHttpClient;
    void post(std::string_view path, std::string_view body, std::string_view extra_headers = {}) {
        send_post(path, body, extra_headers);
    }
};

struct Call {
    std::string kind, request_id, error_type, body, content_type;
};

class FakeWorker : public RuntimeApiHandler {
public:
    void on_next(std::shared_ptr<NextWaiter> waiter) override {
        if (deliver_at_once) {
            last_deliver_result = waiter->deliver(*deliver_at_once);
            return;
        }
        std::lock_guard lock(mutex);
        waiters.push_back(std::move(waiter));
    }
    RuntimeReply on_response(std::string_view id, std::string body, std::string_view content_type) override {
        record({"response", std::string(id), {}, std::move(body), std::string(content_type)});
        return {202, R"({"status":"OK"})"};
    }
    std::shared_ptr<funcd::ResponseStream> on_response_stream(std::string_view id,
                                                              std::string_view content_type) override {
        record({"stream", std::string(id), {}, {}, std::string(content_type)});
        if (!stream_high_water) return nullptr;
        stream = std::make_shared<funcd::ResponseStream>(stream_high_water, std::string(content_type));
        return stream;
    }
    RuntimeReply on_stream_end(std::string_view id, std::string_view type, std::string error_body) override {
        record({"stream_end", std::string(id), std::string(type), std::move(error_body)});
        return {202, R"({"status":"OK"})"};
    }
    void on_stream_broken(std::string_view id) override { record({"stream_broken", std::string(id), {}, {}}); }
    RuntimeReply on_error(std::string_view id, std::string_view type, std::string body) override {
        record({"error", std::string(id), std::string(type), std::move(body)});
        return {202, R"({"status":"OK"})"};
    }
    RuntimeReply on_init_error(std::string_view type, std::string body) override {
        record({"init_error", {}, std::string(type), std::move(body)});
        if (on_init_error_hook) on_init_error_hook();
        return {202, R"({"status":"OK"})"};
    }

    std::vector<Call> calls_snapshot() {
        std::lock_guard lock(mutex);
        return calls;
    }
    std::size_t waiter_count() {
        std::lock_guard lock(mutex);
        return waiters.size();
    }

    std::mutex mutex;
    std::vector<Call> calls;
    std::vector<std::shared_ptr<NextWaiter>> waiters;
    std::optional<EventDelivery> deliver_at_once;
    bool last_deliver_result = false;
    std::function<void()> on_init_error_hook;
    // Non-zero: streamed responses are taken, into `stream` (used on the io thread only).
    std::size_t stream_high_water = 0;
    std::shared_ptr<funcd::ResponseStream> stream;

private:
    void record(Call call) {
        std::lock_guard lock(mutex);
        calls.push_back(std::move(call));
    }
};

EventDelivery sample_event();

class RuntimeApiEndpointTest : public ::testing::Test {
protected:
    // Runs `f` on the io thread and returns its result.
    template <class F>
    auto on_io(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        net::post(io_, [&task] { task(); });
        return result.get();
    }

    void SetUp() override {
        open_endpoint(RuntimeApiLimits{});
        thread_ = std::thread([this] { io_.run(); });
    }

    // A fresh endpoint with these limits (and peer check) on a new port, replacing the
    // running one. Called on the test thread: the endpoint is built on the io thread.
    void reopen(const RuntimeApiLimits& limits, std::optional<uid_t> peer_uid = std::nullopt) {
        on_io([&] {
            endpoint_.reset();
            open_endpoint(limits, peer_uid);
            return true;
        });
    }

    void open_endpoint(const RuntimeApiLimits& limits, std::optional<uid_t> peer_uid = std::nullopt) {
        UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ASSERT_EQ(::listen(listener.get(), 16), 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        // The runtime's own connection too, as a launcher hands the endpoint one.
        int pair[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        own_connection_.reset(pair[1]);
        endpoint_ = std::make_unique<RuntimeApiEndpoint>(io_, limits, std::move(listener), worker_,
                                                         UniqueFd(pair[0]), peer_uid);
    }

    funcd::RuntimeApiUsage usage() {
        return on_io([this] { return endpoint_->usage(); });
    }

    // Waits until the endpoint holds `n` connections (accepting is asynchronous).
    void wait_for_connections(std::size_t n) {
        for (int i = 0; i < 5000 && usage().connections != n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ASSERT_EQ(usage().connections, n);
    }

    void TearDown() override {
        on_io([this] {
            endpoint_.reset();
            worker_.reset();
        });
        work_.reset();
        io_.stop();
        thread_.join();
    }

    void wait_for_waiters(std::size_t n) {
        for (int i = 0; i < 5000 && worker_->waiter_count() < n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ASSERT_EQ(worker_->waiter_count(), n);
    }

    static constexpr const char* kNext = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // The head and body of the answer to sample_event(), without the request that follows.
    static constexpr const char* kSampleResponse =
        "POST /2018-06-01/runtime/invocation/8f5a1c1e-0000-4000-8000-000000000001/response HTTP/1.1\r\n"
        "Host: h\r\nContent-Length: 2\r\n\r\n{}";

    // The runtime asks for work and gets the first event (waiters[0]).
    void take_first_event(RuntimeClient& runtime) {
        runtime.send(kNext);
        wait_for_waiters(1);
        EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
        ASSERT_EQ(runtime.read_response().result_int(), 200);
    }

    net::io_context io_;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
    std::thread thread_;
    std::shared_ptr<FakeWorker> worker_ = std::make_shared<FakeWorker>();
    std::unique_ptr<RuntimeApiEndpoint> endpoint_;
    unsigned short port_ = 0;
    UniqueFd own_connection_;  // the runtime's end of its own AF_UNIX connection
};

EventDelivery sample_event() {
    EventDelivery event;
    event.request_id = "8f5a1c1e-0000-4000-8000-000000000001";
    event.deadline_ms = 1700000000123;
    event.function_arn = "arn:aws:lambda:local:000000000000:function:echo";
    event.trace_id = "Root=1-00000000-000000000000000000000001;Sampled=0";
    event.payload = std::make_shared<const std::string>(R"({"hello":"world"})");
    return event;
}

nlohmann::json json_of(const std::string& body) { return nlohmann::json::parse(body); }

TEST_F(RuntimeApiEndpointTest, NextIsParkedUntilAnEventIsDelivered) {
    RuntimeClient runtime(port_);
    runtime.send(kNext);
    wait_for_waiters(1);
    EXPECT_TRUE(runtime.silent_for(std::chrono::milliseconds(50)));

    EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res["Lambda-Runtime-Aws-Request-Id"], "8f5a1c1e-0000-4000-8000-000000000001");
    EXPECT_EQ(res["Lambda-Runtime-Deadline-Ms"], "1700000000123");
    EXPECT_EQ(res["Lambda-Runtime-Invoked-Function-Arn"], "arn:aws:lambda:local:000000000000:function:echo");
    EXPECT_EQ(res["Lambda-Runtime-Trace-Id"], "Root=1-00000000-000000000000000000000001;Sampled=0");
    EXPECT_EQ(res["Content-Type"], "application/json");
    EXPECT_EQ(res.body(), R"({"hello":"world"})");
    EXPECT_TRUE(res.keep_alive());

    // A waiter answers once; the connection then serves the runtime's next request.
    EXPECT_FALSE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    runtime.post("/2018-06-01/runtime/invocation/8f5a1c1e-0000-4000-8000-000000000001/response", "{}");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
}

TEST_F(RuntimeApiEndpointTest, DeliverFromInsideOnNextIsWritten) {
    worker_->deliver_at_once = sample_event();
    RuntimeClient runtime(port_);
    runtime.send(kNext);
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), R"({"hello":"world"})");
    EXPECT_TRUE(on_io([&] { return worker_->last_deliver_result; }));
}

TEST_F(RuntimeApiEndpointTest, ResponseReachesTheWorker) {
    RuntimeClient runtime(port_);
    runtime.post("/2018-06-01/runtime/invocation/req-1/response", R"({"result":1})");
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 202);
    EXPECT_EQ(res.body(), R"({"status":"OK"})");
    EXPECT_EQ(res["Content-Type"], "application/json");
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].kind, "response");
    EXPECT_EQ(calls[0].request_id, "req-1");
    EXPECT_EQ(calls[0].body, R"({"result":1})");
}

TEST_F(RuntimeApiEndpointTest, InvocationErrorCarriesTheErrorTypeHeader) {
    RuntimeClient runtime(port_);
    runtime.post("/2018-06-01/runtime/invocation/req-2/error?ignored=1", R"({"errorMessage":"boom"})",
                 "Lambda-Runtime-Function-Error-Type: Runtime.Unhandled\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].kind, "error");
    EXPECT_EQ(calls[0].request_id, "req-2");
    EXPECT_EQ(calls[0].error_type, "Runtime.Unhandled");
    EXPECT_EQ(calls[0].body, R"({"errorMessage":"boom"})");
}

TEST_F(RuntimeApiEndpointTest, InitErrorReachesTheWorker) {
    RuntimeClient runtime(port_);
    runtime.post("/2018-06-01/runtime/init/error", R"({"errorMessage":"no handler"})",
                 "Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].kind, "init_error");
    EXPECT_EQ(calls[0].error_type, "Runtime.ImportModuleError");
    EXPECT_EQ(calls[0].body, R"({"errorMessage":"no handler"})");
}

TEST_F(RuntimeApiEndpointTest, UnknownPathAndWrongMethodAreRefused) {
    RuntimeClient runtime(port_);
    runtime.send("GET /2018-06-01/runtime/nope HTTP/1.1\r\nHost: h\r\n\r\n");
    auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 404);
    EXPECT_EQ(json_of(res.body())["errorType"], "InvalidRequest");
    EXPECT_EQ(json_of(res.body())["errorMessage"], "unknown Runtime API path /2018-06-01/runtime/nope");

    // A path with bytes that are not UTF-8 is quoted with U+FFFD in their place: the answer is
    // still JSON, and the endpoint goes on serving (building it threw out of the event loop).
    runtime.send("GET /2018-06-01/runtime/caf\xE9 HTTP/1.1\r\nHost: h\r\n\r\n");
    res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 404);
    EXPECT_EQ(json_of(res.body())["errorMessage"], "unknown Runtime API path /2018-06-01/runtime/caf\xEF\xBF\xBD");

    runtime.send("GET /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: h\r\n\r\n");
    res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 405);
    EXPECT_EQ(json_of(res.body())["errorType"], "InvalidRequest");
    EXPECT_TRUE(worker_->calls_snapshot().empty());
}

TEST_F(RuntimeApiEndpointTest, OversizedResponseFailsTheInvocation) {
    RuntimeClient runtime(port_);
    runtime.send("POST /2018-06-01/runtime/invocation/req-3/response HTTP/1.1\r\nHost: h\r\n"
                 "Content-Length: 6291457\r\n\r\n");
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_EQ(json_of(res.body())["errorType"], "RequestEntityTooLarge");
    EXPECT_TRUE(runtime.closed_by_server());

    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].kind, "error");
    EXPECT_EQ(calls[0].request_id, "req-3");
    EXPECT_EQ(calls[0].error_type, "Function.ResponseSizeTooLarge");
    const auto body = json_of(calls[0].body);
    EXPECT_EQ(body["errorType"], "Function.ResponseSizeTooLarge");
    EXPECT_EQ(body["errorMessage"],
              "Response payload size exceeded maximum allowed payload size (6291456 bytes).");
}

TEST_F(RuntimeApiEndpointTest, OversizedChunkedResponseIsCaughtWhileReading) {
    RuntimeClient runtime(port_);
    const std::string chunk(1024 * 1024, 'x');
    std::string request = "POST /2018-06-01/runtime/invocation/req-4/response HTTP/1.1\r\nHost: h\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 7; ++i) request += "100000\r\n" + chunk + "\r\n";
    request += "0\r\n\r\n";
    runtime.send(request);
    EXPECT_EQ(runtime.read_response().result_int(), 413);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].request_id, "req-4");
    EXPECT_EQ(calls[0].error_type, "Function.ResponseSizeTooLarge");
}

TEST_F(RuntimeApiEndpointTest, PayloadAtTheLimitIsAccepted) {
    RuntimeClient runtime(port_);
    runtime.post("/2018-06-01/runtime/invocation/req-5/response", std::string(6291456, 'y'),
                 "Expect: 100-continue\r\n");
    auto res = runtime.read_response();
    if (res.result_int() == 100) res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].body.size(), 6291456u);
}

TEST_F(RuntimeApiEndpointTest, RequestSentAheadOfTheEventIsServedAfterIt) {
    RuntimeClient runtime(port_);
    runtime.send(std::string(kNext) +
                 "POST /2018-06-01/runtime/invocation/req-ahead/response HTTP/1.1\r\nHost: h\r\n"
                 "Content-Length: 2\r\n\r\n{}");
    wait_for_waiters(1);
    EXPECT_TRUE(worker_->calls_snapshot().empty());  // nothing past the parked `next` is handled yet

    EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    EXPECT_EQ(runtime.read_response().result_int(), 200);
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].request_id, "req-ahead");
}

TEST_F(RuntimeApiEndpointTest, ServesTheRuntimesOwnUnixConnection) {
    RuntimeClient runtime(RuntimeClient::Adopt{}, own_connection_.release());
    runtime.send(kNext);
    wait_for_waiters(1);
    EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    const auto event = runtime.read_response();
    EXPECT_EQ(event.result_int(), 200);
    EXPECT_EQ(event["Lambda-Runtime-Aws-Request-Id"], "8f5a1c1e-0000-4000-8000-000000000001");
    EXPECT_EQ(event.body(), R"({"hello":"world"})");
    runtime.post("/2018-06-01/runtime/invocation/8f5a1c1e-0000-4000-8000-000000000001/response", R"({"ok":1})");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].body, R"({"ok":1})");

    on_io([&] {
        endpoint_->close();
        return true;
    });
    EXPECT_TRUE(runtime.closed_by_server());
}

TEST_F(RuntimeApiEndpointTest, DeliverOverTheUnixConnectionFailsOnceTheRuntimeHasGone) {
    {
        RuntimeClient runtime(RuntimeClient::Adopt{}, own_connection_.release());
        runtime.send(kNext);
        wait_for_waiters(1);
    }  // the runtime hangs up while its `next` is parked
    // Whether the loop has seen the hang-up yet or not, the event is not taken.
    EXPECT_FALSE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
}

TEST_F(RuntimeApiEndpointTest, AnswerToAPipelinedResponseGoesOutWithTheNextEvent) {
    RuntimeClient runtime(port_);
    take_first_event(runtime);

    // The response and the next `next` in one write, as a pipelining runtime sends them.
    runtime.send(std::string(kSampleResponse) + kNext);
    wait_for_waiters(2);
    EXPECT_EQ(worker_->calls_snapshot().size(), 1u);  // the response is handled at once
    EXPECT_TRUE(runtime.silent_for(std::chrono::milliseconds(100)));  // its answer is held

    EXPECT_TRUE(on_io([&] { return worker_->waiters[1]->deliver(sample_event()); }));
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto event = runtime.read_response();
    EXPECT_EQ(event.result_int(), 200);
    EXPECT_EQ(event.body(), R"({"hello":"world"})");
}

TEST_F(RuntimeApiEndpointTest, AnswerIsNotHeldForBytesThatAreNotANext) {
    RuntimeClient runtime(port_);
    take_first_event(runtime);

    // A stray CRLF after the body, as some clients send: the runtime waits for its 202.
    runtime.send(std::string(kSampleResponse) + "\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
}

TEST_F(RuntimeApiEndpointTest, PipelinedRequestsOtherThanNextGetTheirAnswersInOrder) {
    RuntimeClient runtime(port_);
    take_first_event(runtime);

    runtime.send(std::string(kSampleResponse) + "GET /2018-06-01/runtime/nowhere HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    EXPECT_EQ(runtime.read_response().result_int(), 404);
}

TEST_F(RuntimeApiEndpointTest, ManyEventsOnOneConnection) {
    RuntimeClient runtime(port_);
    for (std::size_t i = 0; i < 50; ++i) {
        runtime.send(kNext);
        wait_for_waiters(i + 1);
        EXPECT_TRUE(on_io([&] { return worker_->waiters[i]->deliver(sample_event()); }));
        ASSERT_EQ(runtime.read_response().body(), R"({"hello":"world"})");
        runtime.post("/2018-06-01/runtime/invocation/8f5a1c1e-0000-4000-8000-000000000001/response", "{}");
        ASSERT_EQ(runtime.read_response().result_int(), 202);
    }
    EXPECT_EQ(worker_->calls_snapshot().size(), 50u);
}

TEST_F(RuntimeApiEndpointTest, DeliverFailsOnceTheRuntimeHasGone) {
    {
        RuntimeClient runtime(port_);
        runtime.send(kNext);
        wait_for_waiters(1);
    }
    EXPECT_FALSE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
}

TEST_F(RuntimeApiEndpointTest, GoneWorkerGets500) {
    const std::weak_ptr<FakeWorker> weak = worker_;
    on_io([&] { worker_.reset(); });
    ASSERT_TRUE(weak.expired());
    RuntimeClient runtime(port_);
    runtime.post("/2018-06-01/runtime/invocation/req-1/response", "{}");
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 500);
    EXPECT_EQ(json_of(res.body())["errorType"], "ServiceException");
    EXPECT_EQ(json_of(res.body())["errorMessage"], "worker is shutting down");
    EXPECT_TRUE(runtime.closed_by_server());
}

TEST_F(RuntimeApiEndpointTest, EndpointMayBeDestroyedFromInsideAHandler) {
    worker_->on_init_error_hook = [this] { endpoint_.reset(); };
    RuntimeClient parked(port_);
    parked.send(kNext);
    wait_for_waiters(1);

    RuntimeClient runtime(port_);
    runtime.post("/2018-06-01/runtime/init/error", "{}", "Lambda-Runtime-Function-Error-Type: Runtime.Exit\r\n");
    EXPECT_TRUE(runtime.closed_by_server());
    EXPECT_TRUE(parked.closed_by_server());
    EXPECT_FALSE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    EXPECT_THROW(RuntimeClient{port_}, std::runtime_error);
}

TEST_F(RuntimeApiEndpointTest, CloseEndsEveryConnection) {
    RuntimeClient parked(port_);
    parked.send(kNext);
    wait_for_waiters(1);
    RuntimeClient idle(port_);
    idle.post("/2018-06-01/runtime/invocation/req-1/response", "{}");
    EXPECT_EQ(idle.read_response().result_int(), 202);

    on_io([&] { endpoint_->close(); });
    EXPECT_TRUE(parked.closed_by_server());
    EXPECT_TRUE(idle.closed_by_server());
    EXPECT_FALSE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
}

}  // namespace

namespace {

// A request head declaring a body of `length` bytes for the response to `id`.
std::string response_head(std::string_view id, std::size_t length) {
    return "POST /2018-06-01/runtime/invocation/" + std::string(id) + "/response HTTP/1.1\r\nHost: h\r\n"
           "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

// A connected client whose socket was created by host uid `uid` (the test runs as root:
// the socket's owner is the thread's fsuid at socket()), as a worker's process's would be.
int socket_owned_by(uid_t uid, unsigned short port) {
    ::setfsuid(uid);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::setfsuid(0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("connect failed");
    }
    return fd;
}

TEST_F(RuntimeApiEndpointTest, ConnectionsBeyondTheCapAreAnswered429AndClosedAtOnce) {
    RuntimeApiLimits limits;
    limits.max_connections_per_worker = 3;  // the runtime's own AF_UNIX connection and two more
    reopen(limits);
    wait_for_connections(1);

    // A runtime parks its `next` on one connection and reports an error on a second one,
    // as AWS's runtime clients may: both are within the cap and served.
    RuntimeClient runtime(port_);
    runtime.send(kNext);
    wait_for_waiters(1);
    RuntimeClient errors(port_);
    errors.post("/2018-06-01/runtime/init/error", "{}", "Lambda-Runtime-Function-Error-Type: Runtime.X\r\n");
    EXPECT_EQ(errors.read_response().result_int(), 202);
    wait_for_connections(3);

    // One more is answered at once, without its request being read, and closed.
    RuntimeClient extra(port_);
    const auto refused = extra.read_response();
    EXPECT_EQ(refused.result_int(), 429);
    EXPECT_EQ(json_of(refused.body())["errorType"], "TooManyRequestsException");
    EXPECT_FALSE(refused.keep_alive());
    EXPECT_TRUE(extra.closed_by_server());
    EXPECT_EQ(usage().connections, 3u);

    // The connections within the cap go on working.
    EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    EXPECT_EQ(runtime.read_response().result_int(), 200);

    // Once one closes, a new one is served again.
    errors.close();
    wait_for_connections(2);
    RuntimeClient again(port_);
    again.post("/2018-06-01/runtime/invocation/req-9/response", "{}");
    EXPECT_EQ(again.read_response().result_int(), 202);
}

TEST_F(RuntimeApiEndpointTest, ARequestMustBeWholeWithinTheDeadlineHoweverItTrickles) {
    RuntimeApiLimits limits;
    limits.request_deadline = std::chrono::milliseconds(300);
    reopen(limits);

    // A byte every 50 ms: each read comes well within the deadline, the whole never does.
    RuntimeClient slow(port_);
    const std::string request = response_head("req-slow", 100) + std::string(100, 'x');
    bool closed = false;
    for (std::size_t i = 0; i < request.size() && !closed; ++i) {
        try {
            slow.send(std::string_view(request).substr(i, 1));
        } catch (const std::runtime_error&) {
            closed = true;  // the server closed and the peer reset
        }
        // Readable before any answer is due: the server's end of stream.
        if (!closed) closed = !slow.silent_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(closed) << "a request trickled over " << request.size() * 50 << " ms was still being read";
    EXPECT_TRUE(slow.closed_by_server());
    EXPECT_TRUE(worker_->calls_snapshot().empty());
}

TEST_F(RuntimeApiEndpointTest, TheDeadlineDoesNotApplyBetweenRequests) {
    RuntimeApiLimits limits;
    limits.request_deadline = std::chrono::milliseconds(200);
    reopen(limits);
    // A parked `next` waits for its event for as long as it takes, and an idle
    // connection between requests is not closed.
    RuntimeClient runtime(port_);
    runtime.send(kNext);
    wait_for_waiters(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    EXPECT_EQ(runtime.read_response().result_int(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    runtime.post("/2018-06-01/runtime/invocation/req-late/response", "{}");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
}

TEST_F(RuntimeApiEndpointTest, ADeclaredBodyIsNotAllocatedBeforeItArrives) {
    RuntimeClient runtime(port_);
    // A hundred bytes (more than a string holds without allocating) of a declared 6 MiB.
    runtime.send(response_head("req-big", 6291456) + std::string(100, 'z'));
    // Wait until they are in the body.
    for (int i = 0; i < 5000 && usage().body_bytes == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto held = usage().body_bytes;
    EXPECT_GT(held, 0u);
    EXPECT_LE(held, 64u * 1024) << "a body declared at 6 MiB with 100 bytes sent holds " << held << " bytes";

    // The rest arrives and the whole body reaches the worker; nothing stays allocated.
    runtime.send(std::string(6291456 - 100, 'z'));
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].body.size(), 6291456u);
    EXPECT_EQ(usage().body_bytes, 0u);
}

TEST_F(RuntimeApiEndpointTest, AWorkersConnectionsShareOneBodyBudget) {
    RuntimeApiLimits limits;
    limits.max_body_bytes_per_worker = 1024 * 1024;
    reopen(limits);

    // One large body on its way...
    RuntimeClient first(port_);
    first.send(response_head("req-a", 900 * 1024) + std::string(800 * 1024, 'a'));
    for (int i = 0; i < 5000 && usage().body_bytes < 800 * 1024; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_GE(usage().body_bytes, 800u * 1024);

    // ...leaves no room for a second one at the same time: refused, not buffered.
    RuntimeClient second(port_);
    second.send(response_head("req-b", 600 * 1024) + std::string(300 * 1024, 'b'));
    const auto refused = second.read_response();
    EXPECT_EQ(refused.result_int(), 429);
    EXPECT_EQ(json_of(refused.body())["errorType"], "TooManyRequestsException");
    EXPECT_LE(usage().body_bytes, limits.max_body_bytes_per_worker);

    // The first completes; then there is room again.
    first.send(std::string(100 * 1024, 'a'));
    EXPECT_EQ(first.read_response().result_int(), 202);
    RuntimeClient third(port_);
    third.post("/2018-06-01/runtime/invocation/req-c/response", std::string(600 * 1024, 'c'));
    EXPECT_EQ(third.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].request_id, "req-a");
    EXPECT_EQ(calls[0].body.size(), 900u * 1024);
    EXPECT_EQ(calls[1].request_id, "req-c");
}

TEST_F(RuntimeApiEndpointTest, ATcpConnectionFromAnotherUsersSocketIsClosedUnread) {
    ASSERT_EQ(::geteuid(), 0u) << "creating a socket as another uid needs root";
    constexpr uid_t kWorkerUid = 4242;
    reopen(RuntimeApiLimits{}, kWorkerUid);

    // The test's own socket (uid 0) is not the worker's: closed before a byte is read.
    RuntimeClient stranger(port_);
    stranger.send(kNext);
    EXPECT_TRUE(stranger.closed_by_server());
    EXPECT_EQ(worker_->waiter_count(), 0u);

    // Nor may a stranger post an answer.
    RuntimeClient forger(RuntimeClient::Adopt{}, socket_owned_by(kWorkerUid + 1, port_));
    forger.post("/2018-06-01/runtime/invocation/req-1/response", R"({"forged":true})");
    EXPECT_TRUE(forger.closed_by_server());
    EXPECT_TRUE(worker_->calls_snapshot().empty());

    // A socket of the worker's uid is served.
    RuntimeClient runtime(RuntimeClient::Adopt{}, socket_owned_by(kWorkerUid, port_));
    runtime.send(kNext);
    wait_for_waiters(1);
    EXPECT_TRUE(on_io([&] { return worker_->waiters[0]->deliver(sample_event()); }));
    EXPECT_EQ(runtime.read_response().result_int(), 200);

    // The runtime's own AF_UNIX connection needs no check: only the runtime holds it.
    RuntimeClient own(RuntimeClient::Adopt{}, own_connection_.release());
    own.post("/2018-06-01/runtime/init/error", "{}");
    EXPECT_EQ(own.read_response().result_int(), 202);
}

}  // namespace

namespace {

// The head of a streamed response, as AWS documents it for custom runtimes.
std::string streamed_head(std::string_view id, std::string_view content_type = "text/plain") {
    return "POST /2018-06-01/runtime/invocation/" + std::string(id) +
           "/response HTTP/1.1\r\nHost: h\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
           "Content-Type: " + std::string(content_type) +
           "\r\nTransfer-Encoding: chunked\r\n"
           "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n";
}

std::string chunk(std::string_view data) {
    char size[20];
    std::snprintf(size, sizeof size, "%zx", data.size());
    return std::string(size) + "\r\n" + std::string(data) + "\r\n";
}

}  // namespace

TEST_F(RuntimeApiEndpointTest, AStreamedBodyReachesTheStreamChunkByChunkBeforeItEnds) {
    worker_->stream_high_water = 1 << 20;
    RuntimeClient runtime(port_);
    runtime.send(streamed_head("req-s1") + chunk("first line\n"));
    std::string seen;
    for (int i = 0; i < 5000 && seen.size() < 11; ++i) {
        seen = on_io([&] { return worker_->stream ? std::string(worker_->stream->readable()) : std::string(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(seen, "first line\n") << "the first chunk is in the stream while the body has not ended";
    EXPECT_TRUE(on_io([&] { return worker_->stream->state() == funcd::ResponseStream::State::open; }));
    EXPECT_TRUE(runtime.silent_for(std::chrono::milliseconds(50))) << "no answer before the body ends";

    runtime.send(chunk("second") + chunk("") );
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 202);
    EXPECT_EQ(on_io([&] { return std::string(worker_->stream->readable()); }), "first line\nsecond");
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].kind, "stream");
    EXPECT_EQ(calls[0].request_id, "req-s1");
    EXPECT_EQ(calls[0].content_type, "text/plain");
    EXPECT_EQ(calls[1].kind, "stream_end");
    EXPECT_EQ(calls[1].error_type, "") << "a body that ends normally carries no error";
}

TEST_F(RuntimeApiEndpointTest, ErrorTrailersEndAStreamWithTheDecodedErrorBody) {
    worker_->stream_high_water = 1 << 20;
    RuntimeClient runtime(port_);
    // base64 of {"errorMessage":"boom","errorType":"Stream.Broke"}, the trailer split over two sends.
    runtime.send(streamed_head("req-s2") + chunk("partial") + "0\r\nLambda-Runtime-Function-Error-Type: Stream.Broke\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    runtime.send("Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJib29tIiwiZXJyb3JUeXBlIjoiU3RyZWFtLkJyb2tlIn0=\r\n\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[1].kind, "stream_end");
    EXPECT_EQ(calls[1].error_type, "Stream.Broke");
    EXPECT_EQ(calls[1].body, R"({"errorMessage":"boom","errorType":"Stream.Broke"})");
}

TEST_F(RuntimeApiEndpointTest, AStreamedResponseTheWorkerWantsWholeIsBufferedWithItsErrorTrailers) {
    // stream_high_water 0: the worker's caller wants the whole response.
    RuntimeClient runtime(port_);
    runtime.send(streamed_head("req-s3", "application/vnd.awslambda.http-integration-response") + chunk("ab") +
                 chunk("cd") + "0\r\n\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[1].kind, "response");
    EXPECT_EQ(calls[1].body, "abcd");
    EXPECT_EQ(calls[1].content_type, "application/vnd.awslambda.http-integration-response");

    runtime.send(streamed_head("req-s4") + chunk("ab") +
                 "0\r\nLambda-Runtime-Function-Error-Type: Oops\r\nLambda-Runtime-Function-Error-Body: "
                 "eyJlcnJvck1lc3NhZ2UiOiJib29tIn0=\r\n\r\n");
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 4u);
    EXPECT_EQ(calls[3].kind, "error") << "an error trailer makes the buffered response an error";
    EXPECT_EQ(calls[3].error_type, "Oops");
    EXPECT_EQ(calls[3].body, R"({"errorMessage":"boom"})");
}

TEST_F(RuntimeApiEndpointTest, AStreamPastItsLimitEndsWithResponseSizeTooLarge) {
    RuntimeApiLimits limits;
    limits.max_stream_bytes = 10;
    reopen(limits);
    worker_->stream_high_water = 1 << 20;
    RuntimeClient runtime(port_);
    runtime.send(streamed_head("req-s5") + chunk("123456") + chunk("7890ab") + "0\r\n\r\n");
    const auto res = runtime.read_response();
    EXPECT_EQ(res.result_int(), 413);
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[1].kind, "error");
    EXPECT_EQ(calls[1].error_type, "Function.ResponseSizeTooLarge");
    EXPECT_EQ(json_of(calls[1].body)["errorMessage"],
              "Response payload size exceeded maximum allowed payload size (10 bytes).");
    EXPECT_EQ(on_io([&] { return std::string(worker_->stream->readable()); }), "123456");
}

TEST_F(RuntimeApiEndpointTest, AConnectionThatEndsMidStreamIsReported) {
    worker_->stream_high_water = 1 << 20;
    {
        RuntimeClient runtime(port_);
        runtime.send(streamed_head("req-s6") + chunk("partial"));
        for (int i = 0; i < 5000 && worker_->calls_snapshot().empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (int i = 0; i < 5000 && worker_->calls_snapshot().size() < 2; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto calls = worker_->calls_snapshot();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[1].kind, "stream_broken");
    EXPECT_EQ(calls[1].request_id, "req-s6");
}

TEST_F(RuntimeApiEndpointTest, AFullStreamStopsReadingTheRuntimeUntilItsCallerTakesHalf) {
    constexpr std::size_t kHighWater = 64 * 1024;
    worker_->stream_high_water = kHighWater;
    RuntimeClient runtime(port_);
    // 8 MiB in 64 KiB chunks from another thread: it blocks once the socket buffers are full.
    const std::string piece(64 * 1024, 'z');
    std::atomic<bool> sent{false};
    std::thread writer([&] {
        try {
            runtime.send(streamed_head("req-s7"));
            for (int i = 0; i < 128; ++i) runtime.send(chunk(piece));
            runtime.send("0\r\n\r\n");
            sent = true;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "the runtime could not send its stream: " << e.what() << " errno " << errno;
        }
    });
    // Nothing is taken from the stream: it stops at the high-water mark plus one read.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto held = on_io([&] { return worker_->stream ? worker_->stream->buffered() : std::size_t{0}; });
    EXPECT_GE(held, kHighWater);
    EXPECT_LE(held, kHighWater + 64 * 1024 + 64) << "the stream held more than its high-water mark and one read";
    EXPECT_FALSE(sent.load()) << "the runtime could send everything although nobody read it";
    EXPECT_LE(usage().body_bytes, 64u * 1024) << "a streamed body is not buffered in the body budget";

    // The caller takes everything as it comes: the rest flows, and the stream ends.
    std::uint64_t taken = 0;
    for (int i = 0; i < 20000 && worker_->calls_snapshot().size() < 2; ++i) {
        taken += on_io([&] {
            const auto n = worker_->stream->buffered();
            worker_->stream->consume(n);
            return n;
        });
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    writer.join();
    EXPECT_TRUE(sent.load());
    EXPECT_EQ(runtime.read_response().result_int(), 202);
    taken += on_io([&] { return worker_->stream->buffered(); });
    EXPECT_EQ(taken, 128u * 64 * 1024);
}
