// Response streaming's pieces that need no sockets: the stream between a runtime and its
// caller, and Lambda's HTTP integration prelude.
#include <gtest/gtest.h>

#include <string>

#include "funcd/runtime_api/response_stream.hpp"
#include "funcd/triggers/http_event.hpp"
#include "funcd/triggers/http_prelude.hpp"

namespace funcd {
namespace {

using namespace std::string_literals;

std::string header(const http::Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return {};
}

TEST(ResponseStream, ReaderIsToldOfBytesAndOfTheEnd) {
    ResponseStream s(100, "text/plain");
    int told = 0;
    s.when_readable([&] { ++told; });
    EXPECT_EQ(told, 0);
    s.write("abc");
    EXPECT_EQ(told, 1);
    EXPECT_EQ(s.readable(), "abc");
    s.consume(2);
    EXPECT_EQ(s.readable(), "c");
    s.when_readable([&] { ++told; });
    EXPECT_EQ(told, 2) << "bytes already there: told at once";
    s.consume(1);
    s.when_readable([&] { ++told; });
    s.finish();
    EXPECT_EQ(told, 3);
    EXPECT_EQ(s.state(), ResponseStream::State::complete);
    s.write("late");
    EXPECT_EQ(s.buffered(), 0u) << "nothing is written after the end";
}

TEST(ResponseStream, WriterIsHeldAtTheHighWaterMarkUntilHalfIsTaken) {
    ResponseStream s(10, "");
    s.write("0123456789");
    ASSERT_TRUE(s.full());
    bool resumed = false;
    s.when_drained([&] { resumed = true; });
    s.consume(4);
    EXPECT_FALSE(resumed) << "6 bytes still held, more than half the mark";
    s.consume(1);
    EXPECT_TRUE(resumed);
    EXPECT_FALSE(s.full());
}

TEST(ResponseStream, CancelTellsTheWriterAndReleasesIt) {
    ResponseStream s(4, "");
    s.write("0123");
    bool cancelled = false, resumed = false;
    s.on_cancel([&] { cancelled = true; });
    s.when_drained([&] { resumed = true; });
    s.cancel();
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(resumed) << "a paused writer goes on (and its bytes are dropped)";
    EXPECT_EQ(s.buffered(), 0u);
    s.write("more");
    EXPECT_EQ(s.buffered(), 0u);
}

TEST(ResponseStream, FailureKeepsTheError) {
    ResponseStream s(4, "");
    s.fail("Sandbox.Timedout", R"({"errorType":"Sandbox.Timedout"})");
    EXPECT_EQ(s.state(), ResponseStream::State::failed);
    EXPECT_EQ(s.error_type(), "Sandbox.Timedout");
    s.finish();
    EXPECT_EQ(s.state(), ResponseStream::State::failed) << "the first end counts";
}

TEST(HttpPrelude, SplitsWhenTheDelimiterStraddlesPieces) {
    const std::string metadata = R"({"statusCode":201,"headers":{"x-a":"1"},"cookies":["c=1"]})";
    const std::string stream = metadata + std::string(8, '\0') + "body bytes";
    // Every split point, the delimiter's own bytes included.
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        HttpPreludeSplitter p;
        auto status = p.feed(stream.substr(0, cut));
        if (status != HttpPreludeSplitter::Status::done) status = p.feed(stream.substr(cut));
        ASSERT_EQ(status, HttpPreludeSplitter::Status::done) << "cut at " << cut;
        EXPECT_EQ(p.metadata(), metadata) << "cut at " << cut;
        // Done within the first piece: the body is what that piece held; else all of it.
        const std::size_t body_at = metadata.size() + 8;
        EXPECT_EQ(p.body(), cut >= body_at ? stream.substr(body_at, cut - body_at) : "body bytes") << "cut at " << cut;
    }
}

TEST(HttpPrelude, FewerThanEightNulsAreMetadata) {
    HttpPreludeSplitter p;
    EXPECT_EQ(p.feed("{}"s + std::string(7, '\0')), HttpPreludeSplitter::Status::need_more);
    EXPECT_EQ(p.feed("x"), HttpPreludeSplitter::Status::need_more);
    EXPECT_EQ(p.feed(std::string(8, '\0')), HttpPreludeSplitter::Status::done);
    EXPECT_EQ(p.metadata(), "{}"s + std::string(7, '\0') + "x");
}

TEST(HttpPrelude, AMissingDelimiterIsRefusedAfterTheLimit) {
    HttpPreludeSplitter p;
    EXPECT_EQ(p.feed(std::string(kMaxPreludeBytes, ' ')), HttpPreludeSplitter::Status::need_more);
    EXPECT_EQ(p.feed(std::string(9, ' ')), HttpPreludeSplitter::Status::too_long);
}

TEST(HttpPrelude, ContentTypeIsRecognisedWithParametersAndCase) {
    EXPECT_TRUE(is_http_integration_content_type("application/vnd.awslambda.http-integration-response"));
    EXPECT_TRUE(is_http_integration_content_type(" Application/Vnd.AwsLambda.Http-Integration-Response; x=1"));
    EXPECT_FALSE(is_http_integration_content_type("application/json"));
    EXPECT_FALSE(is_http_integration_content_type(""));
}

TEST(HttpPrelude, MetadataSetsStatusHeadersAndCookies) {
    std::string why;
    const auto r = map_http_prelude(
        R"({"statusCode":404,"headers":{"Content-Type":"text/html","X-Trace":"t1"},"cookies":["a=1; Path=/","b=2"]})", &why);
    EXPECT_EQ(why, "");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.content_type, "text/html");
    EXPECT_EQ(header(r, "X-Trace"), "t1");
    int cookies = 0;
    for (const auto& [k, v] : r.headers) cookies += k == "Set-Cookie";
    EXPECT_EQ(cookies, 2);
    EXPECT_TRUE(r.body.empty());
}

TEST(HttpPrelude, MetadataDefaultsTo200AndBytes) {
    const auto r = map_http_prelude(R"({"headers":{}})");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "application/octet-stream");
}

TEST(HttpPrelude, MalformedMetadataIs502WithAReason) {
    std::string why;
    EXPECT_EQ(map_http_prelude("not json", &why).status, 502);
    EXPECT_NE(why, "");
    why.clear();
    EXPECT_EQ(map_http_prelude(R"({"statusCode":200,"headers":{"x":"a\r\nb"}})", &why).status, 502);
    EXPECT_NE(why.find("line break"), std::string::npos) << why;
}

}  // namespace
}  // namespace funcd
