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
using funcd::http::ServerOptions;

using Client = funcd::testing::RawHttpClient;

class HttpServerTest : public ::testing::Test {
protected:
    void start(std::size_t body_limit = 1024, std::chrono::milliseconds read_timeout = ConnectionLimits{}.head_timeout) {
        ServerOptions options;
        options.host = "127.0.0.1";
        options.port = 0;
        options.limits.head_timeout = read_timeout;
        options.limits.body_timeout = read_timeout;
        server_ = std::make_unique<Server>(
            io_, options, [body_limit](std::string_view, std::string_view) { return body_limit; },
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

TEST(HttpServerListen, ThrowsWhenThePortIsTaken) {
    net::io_context io;
    auto limit = [](std::string_view, std::string_view) -> std::size_t { return 0; };
    auto handler = [](Request, Responder respond) { respond(Response{}); };
    Server first(io, ServerOptions{"127.0.0.1", 0}, limit, handler);
    first.listen();
    // Without SO_REUSEPORT a second listener on the same port must fail to bind.
    Server second(io, ServerOptions{"127.0.0.1", first.port()}, limit, handler);
    EXPECT_THROW(second.listen(), std::system_error);
}

}  // namespace
