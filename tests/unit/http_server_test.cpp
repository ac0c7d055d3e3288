#include "funcd/gateway/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include "raw_http_client.hpp"
#include <nlohmann/json.hpp>

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using funcd::http::Request;
using funcd::http::Responder;
using funcd::http::Response;
using funcd::http::Server;
using funcd::http::ConnectionLimits;
using funcd::http::HeadDecision;
using funcd::http::ServerOptions;

using Client = funcd::testing::RawHttpClient;

class HttpServerTest : public ::testing::Test {
protected:
    void start(std::size_t body_limit = 1024, std::chrono::milliseconds read_timeout = ConnectionLimits{}.head_timeout) {
        ConnectionLimits limits;
        limits.head_timeout = read_timeout;
        limits.body_timeout = read_timeout;
        start_with(limits, [body_limit](const Request&) { return HeadDecision::read_body(body_limit); });
    }

    void start_with(ConnectionLimits limits, funcd::http::HeadFn head) {
        ServerOptions options;
        options.host = "127.0.0.1";
        options.port = 0;
        options.limits = limits;
        server_ = std::make_unique<Server>(
            io_, options, std::move(head),
            [this](Request r, Responder respond) {
                ++calls_;
                handler_(std::move(r), std::move(respond));
            });
        server_->listen();
        thread_ = std::thread([this] { io_.run(); });
    }

    void TearDown() override {
        on_io([this] { server_.reset(); });
        work_.reset();
        io_.stop();
        if (thread_.joinable()) thread_.join();
    }

    template <class F>
    void on_io(F f) {
        std::promise<void> done;
        net::post(io_, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }

    unsigned short port() const { return server_->port(); }

    net::io_context io_;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
    std::thread thread_;
    std::unique_ptr<Server> server_;
    std::atomic<int> calls_{0};
    std::function<void(Request, Responder)> handler_ = [](Request r, Responder respond) {
        respond(Response{200, {}, "echo:" + r.body, "text/plain"});
    };
};

std::string error_type(const std::string& body) { return nlohmann::json::parse(body)["error"]["type"]; }
std::string error_message(const std::string& body) { return nlohmann::json::parse(body)["error"]["message"]; }

TEST_F(HttpServerTest, AnswersWithStatusBodyAndHeaders) {
    std::mutex mutex;
    Request seen;
    handler_ = [&](Request r, Responder respond) {
        {
            std::lock_guard lock(mutex);
            seen = r;
        }
        respond(Response{201, {{"X-Answer", "42"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}, "got " + r.body,
                         "text/plain"});
    };
    start();
    ASSERT_NE(port(), 0);

    Client client(port());
    client.send("POST /2015-03-31/functions/f/invocations?x=1 HTTP/1.1\r\nHost: h\r\nX-Mixed-CASE: Value\r\n"
                "Content-Length: 5\r\n\r\nhello");
    const auto res = client.read_response();
    EXPECT_EQ(res.result_int(), 201);
    EXPECT_EQ(res.reason(), "Created");
    EXPECT_EQ(res.body(), "got hello");
    EXPECT_EQ(res["X-Answer"], "42");
    EXPECT_EQ(res["Server"], "funcd");
    EXPECT_EQ(res["Content-Type"], "text/plain");
    EXPECT_EQ(res["Content-Length"], "9");
    EXPECT_EQ(res.count("Set-Cookie"), 2u);

    std::lock_guard lock(mutex);
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.target, "/2015-03-31/functions/f/invocations?x=1");
    EXPECT_EQ(seen.body, "hello");
    EXPECT_EQ(seen.remote_address, "127.0.0.1");
    EXPECT_EQ(seen.header("x-mixed-case"), "Value");
    EXPECT_EQ(seen.header("content-length"), "5");
    EXPECT_FALSE(seen.has_header("X-Mixed-CASE"));
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    start();
    Client client(port());
    client.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(client.read_response().body(), "echo:");
    client.send("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
    const auto second = client.read_response();
    EXPECT_EQ(second.body(), "echo:hi");
    EXPECT_TRUE(second.keep_alive());
    EXPECT_EQ(calls_, 2);
}

TEST_F(HttpServerTest, AnswerMayComeLaterAndNothingIsReadMeanwhile) {
    std::atomic<int> calls_when_answered{-1};
    handler_ = [&](Request r, Responder respond) {
        auto timer = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(50));
        timer->async_wait([&, timer, r = std::move(r), respond](boost::system::error_code) {
            if (calls_when_answered < 0) calls_when_answered = calls_.load();
            respond(Response{200, {}, "late:" + r.target, "text/plain"});
        });
    };
    start();
    Client client(port());
    // Both requests at once: the second must wait until the first is answered.
    client.send("GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(client.read_response().body(), "late:/one");
    EXPECT_EQ(client.read_response().body(), "late:/two");
    EXPECT_EQ(calls_when_answered, 1);
}

TEST_F(HttpServerTest, BodyOverLimitIsRefusedWithoutReadingIt) {
    start(10);
    Client client(port());
    // The body is never sent: the answer must come from the head alone.
    client.send("POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
    const auto res = client.read_response();
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_EQ(error_type(res.body()), "RequestTooLargeException");
    EXPECT_EQ(error_message(res.body()), "request body is 1000 bytes; the limit for this endpoint is 10 bytes");
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(client.closed_by_server());
    EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitIsRefused) {
    start(10);
    Client client(port());
    client.send("POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n");
    const auto res = client.read_response();
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_EQ(error_type(res.body()), "RequestTooLargeException");
    EXPECT_TRUE(client.closed_by_server());
    EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, ChunkedBodyWithinLimitIsDelivered) {
    start(10);
    Client client(port());
    client.send("POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    EXPECT_EQ(client.read_response().body(), "echo:abcde");
}

TEST_F(HttpServerTest, GarbageGets400AndClose) {
    start();
    Client client(port());
    client.send("HELLO THERE\r\n\r\n");
    const auto res = client.read_response();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(error_type(res.body()), "InvalidRequestContentException");
    EXPECT_EQ(error_message(res.body()).rfind("malformed HTTP request: ", 0), 0u);
    EXPECT_TRUE(client.closed_by_server());
    EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, Http10AndConnectionCloseEndTheConnection) {
    start();
    {
        Client client(port());
        client.send("GET /old HTTP/1.0\r\n\r\n");
        const auto res = client.read_response();
        EXPECT_EQ(res.version(), 10);
        EXPECT_EQ(res.body(), "echo:");
        EXPECT_TRUE(client.closed_by_server());
    }
    {
        Client client(port());
        client.send("GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        const auto res = client.read_response();
        EXPECT_FALSE(res.keep_alive());
        EXPECT_TRUE(client.closed_by_server());
    }
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimAnswerBeforeTheBody) {
    start();
    Client client(port());
    client.send("POST /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    EXPECT_EQ(client.read_response().result_int(), 100);
    client.send("data");
    EXPECT_EQ(client.read_response().body(), "echo:data");
}

TEST_F(HttpServerTest, LargeUploadWithExpectContinueIsReadWhole) {
    constexpr std::size_t kSize = 50 * 1024 * 1024;
    handler_ = [](Request r, Responder respond) {
        respond(Response{200, {}, std::to_string(r.body.size()) + ":" + r.body.substr(r.body.size() - 3), "text/plain"});
    };
    start(64 * 1024 * 1024);
    Client client(port());
    client.send("POST /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(kSize) +
                "\r\n\r\n");
    EXPECT_EQ(client.read_response().result_int(), 100);
    std::string body(kSize, 'x');
    body.replace(kSize - 3, 3, "end");
    client.send(body);
    EXPECT_EQ(client.read_response().body(), std::to_string(kSize) + ":end");
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndFinishesBusyOnes) {
    std::mutex mutex;
    std::optional<Responder> parked;
    handler_ = [&](Request r, Responder respond) {
        if (r.target == "/park") {
            std::lock_guard lock(mutex);
            parked = std::move(respond);
            return;
        }
        respond(Response{200, {}, "ok", "text/plain"});
    };
    start();
    Client idle(port());
    idle.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(idle.read_response().body(), "ok");
    Client busy(port());
    busy.send("GET /park HTTP/1.1\r\nHost: h\r\n\r\n");
    while (calls_ < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));

    on_io([&] { server_->stop(); });
    EXPECT_TRUE(idle.closed_by_server());
    EXPECT_THROW(Client{port()}, std::runtime_error);  // no longer accepting
    EXPECT_TRUE(busy.silent_for(std::chrono::milliseconds(50)));

    on_io([&] { (*parked)(Response{200, {}, "late", "text/plain"}); });
    const auto res = busy.read_response();
    EXPECT_EQ(res.body(), "late");
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(busy.closed_by_server());
}

TEST_F(HttpServerTest, AnswerToADeadConnectionIsDropped) {
    std::mutex mutex;
    std::optional<Responder> parked;
    handler_ = [&](Request r, Responder respond) {
        if (r.target == "/park") {
            std::lock_guard lock(mutex);
            parked = std::move(respond);
            return;
        }
        respond(Response{200, {}, "ok", "text/plain"});
    };
    start();
    {
        Client gone(port());
        gone.send("GET /park HTTP/1.1\r\nHost: h\r\n\r\n");
        while (calls_ < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    on_io([&] {
        (*parked)(Response{200, {}, std::string(1 << 20, 'x'), "text/plain"});
        (*parked)(Response{500, {}, "second answer is ignored", "text/plain"});
    });
    Client client(port());
    client.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(client.read_response().body(), "ok");
}

// Sends `request` on a fresh connection and returns everything received until the server closes.
std::string exchange_until_close(unsigned short port, std::string_view request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("connect failed");
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    for (std::string_view rest = request; !rest.empty();) {
        const auto n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    char buf[4096];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

TEST_F(HttpServerTest, HeadAnswerCarriesTheLengthButNoBody) {
    start();
    const std::string answer = exchange_until_close(port(), "HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
    EXPECT_NE(answer.find("\r\nContent-Length: 5\r\n"), std::string::npos) << answer;  // "echo:"
    ASSERT_GE(answer.size(), 4u);
    EXPECT_EQ(answer.substr(answer.size() - 4), "\r\n\r\n") << answer;
}

TEST_F(HttpServerTest, NoContentAnswerHasNoLength) {
    handler_ = [](Request, Responder respond) { respond(Response{204, {}, {}, ""}); };
    start();
    Client client(port());
    client.send("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n");
    const auto res = client.read_response();
    EXPECT_EQ(res.result_int(), 204);
    EXPECT_EQ(res.count("Content-Length"), 0u);
    EXPECT_EQ(res.count("Content-Type"), 0u);
    // The connection stays usable.
    client.send("DELETE /y HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(client.read_response().result_int(), 204);
}

TEST_F(HttpServerTest, Http10KeepAliveIsHonoured) {
    start();
    Client client(port());
    client.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const auto first = client.read_response();
    EXPECT_EQ(first.version(), 10);
    EXPECT_EQ(first["Connection"], "keep-alive");
    EXPECT_EQ(first.body(), "echo:");
    client.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(client.read_response().body(), "echo:");
}

TEST_F(HttpServerTest, IdleAndHalfSentRequestsAreClosedAfterTheReadTimeout) {
    start(1024, std::chrono::seconds(1));
    Client idle(port());
    Client half(port());
    half.send("POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234");
    const auto began = std::chrono::steady_clock::now();
    EXPECT_TRUE(idle.closed_by_server());
    EXPECT_TRUE(half.closed_by_server());
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(4));
    EXPECT_EQ(calls_, 0);

    // A connection that keeps sending in time is served, however many requests it makes.
    Client busy(port());
    for (int i = 0; i < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(600));
        busy.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
        EXPECT_EQ(busy.read_response().body(), "echo:");
    }
}

// A request refused from its head (no credentials) is answered at once: the server does
// not wait for, or buffer, the body it declared.
TEST_F(HttpServerTest, ARequestRefusedByItsHeadIsAnsweredWithoutItsBody) {
    start_with({}, [](const Request& head) {
        if (head.header("authorization") == "Bearer right") return HeadDecision::read_body(100u << 20);
        return HeadDecision::refuse(Response{401, {}, R"({"error":"no"})", "application/json"});
    });
    Client anonymous(port());
    anonymous.send("PUT /v1/functions/f HTTP/1.1\r\nHost: h\r\nContent-Length: 62914560\r\n\r\n");
    const auto refused = anonymous.read_response();
    EXPECT_EQ(refused.result_int(), 401);
    EXPECT_EQ(refused.body(), R"({"error":"no"})");
    EXPECT_EQ(refused["Connection"], "close");
    EXPECT_EQ(calls_, 0);

    // With 100-continue the client is told before it sends anything.
    Client waiting(port());
    waiting.send("PUT /v1/functions/f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    EXPECT_EQ(waiting.read_response().result_int(), 401);

    // The same request with credentials has its body read and handled.
    Client allowed(port());
    allowed.send_post("/v1/functions/f", "hello", "Authorization: Bearer right\r\n");
    EXPECT_EQ(allowed.read_response().body(), "echo:hello");
    EXPECT_EQ(calls_, 1);
}

// Each connection has started a request (so none can be closed to make room): the next one
// is told 503 and closed.
TEST_F(HttpServerTest, ConnectionsOverTheCapAreAnswered503AndClosed) {
    ConnectionLimits limits;
    limits.max_connections = 2;
    start_with(limits, [](const Request&) { return HeadDecision::read_body(1024); });
    auto a = std::make_unique<Client>(port());
    Client b(port());
    a->send("GET /a HTTP/1.1\r\n");
    b.send("GET /b HTTP/1.1\r\n");
    // Both are registered (their bytes were read) before the third arrives.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));

    Client third(port());
    const auto refused = third.read_response();
    EXPECT_EQ(refused.result_int(), 503);
    EXPECT_NE(refused.body().find("too many open connections"), std::string::npos) << refused.body();
    EXPECT_EQ(refused["Retry-After"], "1");
    EXPECT_TRUE(third.closed_by_server());

    // The busy ones are untouched and finish their requests.
    b.send("Host: h\r\n\r\n");
    EXPECT_EQ(b.read_response().body(), "echo:");

    // A slot freed is a slot taken again.
    a.reset();
    for (int attempt = 0;; ++attempt) {
        Client next(port());
        next.send("GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
        const auto r = next.read_response();
        if (r.result_int() == 200) break;
        ASSERT_LT(attempt, 50) << "the closed connection's slot was never freed";
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Connections that were opened and left idle cannot lock others out: at the cap, the one
// idle longest is closed to make room.
TEST_F(HttpServerTest, AtTheCapTheLongestIdleConnectionMakesRoom) {
    ConnectionLimits limits;
    limits.max_connections = 2;
    start_with(limits, [](const Request&) { return HeadDecision::read_body(1024); });
    Client oldest(port());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Client busy(port());
    busy.send("GET /b HTTP/1.1\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    Client newcomer(port());
    newcomer.send("GET /n HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(newcomer.read_response().body(), "echo:");
    EXPECT_TRUE(oldest.closed_by_server());
    busy.send("Host: h\r\n\r\n");
    EXPECT_EQ(busy.read_response().body(), "echo:");
}

TEST_F(HttpServerTest, AnOversizedHeadIsAnswered431) {
    ConnectionLimits limits;
    limits.header_limit = 2048;
    start_with(limits, [](const Request&) { return HeadDecision::read_body(1024); });
    Client client(port());
    client.send("GET /a HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(4096, 'x') + "\r\n\r\n");
    const auto r = client.read_response();
    EXPECT_EQ(r.result_int(), 431);
    EXPECT_NE(r.body().find("2048 bytes"), std::string::npos) << r.body();
    EXPECT_EQ(calls_, 0);
}

// The body deadline is for the whole body: a client trickling a byte at a time, each in
// time for a per-read timeout, is still cut off.
TEST_F(HttpServerTest, ATricklingBodyIsCutOffAtTheBodyDeadline) {
    ConnectionLimits limits;
    limits.body_timeout = std::chrono::milliseconds(800);
    start_with(limits, [](const Request&) { return HeadDecision::read_body(1024); });
    Client client(port());
    client.send("POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n");
    const auto began = std::chrono::steady_clock::now();
    bool cut = false;
    for (int i = 0; i < 40 && !cut; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        try {
            client.send("x");
        } catch (const std::runtime_error&) {
            cut = true;
        }
        if (!cut && !client.silent_for(std::chrono::milliseconds(0))) cut = client.closed_by_server();
    }
    EXPECT_TRUE(cut);
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(3));
    EXPECT_EQ(calls_, 0);
}

TEST(HttpServerListen, ThrowsWhenThePortIsTaken) {
    net::io_context io;
    auto limit = [](const Request&) { return HeadDecision::read_body(0); };
    auto handler = [](Request, Responder respond) { respond(Response{}); };
    Server first(io, ServerOptions{"127.0.0.1", 0}, limit, handler);
    first.listen();
    // Without SO_REUSEPORT a second listener on the same port must fail to bind.
    Server second(io, ServerOptions{"127.0.0.1", first.port()}, limit, handler);
    EXPECT_THROW(second.listen(), std::system_error);
}

}  // namespace
