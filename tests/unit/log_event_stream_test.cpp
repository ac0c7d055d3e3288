// A follower's Server-Sent Events: its records as `data:` events, filtered, a slow reader's
// overflow skipped and counted in an `event: dropped`, and the end.
#include "funcd/gateway/log_event_stream.hpp"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace funcd {
namespace {

std::string line(std::string_view request_id, LogLevel level, std::string_view message) {
    std::string out;
    append_log_line(out, "2026-11-26T23:40:18.123Z", request_id, LogStream::function, level, message);
    return out;
}

std::string take(ResponseStream& s) {
    std::string out(s.readable());
    s.consume(out.size());
    return out;
}

TEST(LogEventStream, RecordsThatPassTheFilterAreDataEvents) {
    auto stream = std::make_shared<ResponseStream>(1 << 20, "text/event-stream");
    LogFilter filter;
    filter.request_ids = {"r1"};
    filter.min_level = LogLevel::warn;
    LogEventStream events(stream, filter, 1 << 20);
    events.on_line(line("r1", LogLevel::error, "two\nlines"));
    events.on_line(line("r2", LogLevel::error, "another request"));
    events.on_line(line("r1", LogLevel::none, "no level: counts as INFO"));
    events.on_line("not a record");
    const std::string got = take(*stream);
    ASSERT_TRUE(got.starts_with("data: ")) << got;
    ASSERT_TRUE(got.ends_with("\n\n")) << got;
    EXPECT_EQ(got.find("data: ", 1), std::string::npos) << "one event: " << got;
    const auto rec = nlohmann::json::parse(got.substr(6, got.size() - 8));
    EXPECT_EQ(rec["message"], "two\nlines");
    EXPECT_EQ(rec["level"], "ERROR");
    EXPECT_EQ(rec["request_id"], "r1");
}

TEST(LogEventStream, ASlowReadersOverflowIsSkippedCountedAndSaid) {
    auto stream = std::make_shared<ResponseStream>(400, "text/event-stream");
    LogEventStream events(stream, {}, 400);
    for (int i = 0; i < 20; ++i) events.on_line(line("r", LogLevel::none, "record " + std::to_string(i)));
    EXPECT_LE(stream->buffered(), 400u);
    EXPECT_GT(events.dropped(), 0u);
    const std::uint64_t skipped = events.dropped();
    std::string got = take(*stream);
    EXPECT_NE(got.find("record 0"), std::string::npos);
    EXPECT_EQ(got.find("record 19"), std::string::npos);
    // Caught up: the count comes first, then the record.
    events.on_line(line("r", LogLevel::none, "record 20"));
    got = take(*stream);
    EXPECT_TRUE(got.starts_with("event: dropped\ndata: {\"records\":" + std::to_string(skipped) + "}\n\n")) << got;
    EXPECT_NE(got.find("record 20"), std::string::npos);
    EXPECT_EQ(events.dropped(), 0u);
    events.on_heartbeat();
    EXPECT_EQ(take(*stream), ": heartbeat\n\n");
}

TEST(LogEventStream, TheEndIsAnEventAndTheStreamsEnd) {
    auto stream = std::make_shared<ResponseStream>(1 << 20, "text/event-stream");
    LogEventStream events(stream, {}, 1 << 20);
    events.on_end("deleted");
    EXPECT_EQ(take(*stream), "event: end\ndata: {\"reason\":\"deleted\"}\n\n");
    EXPECT_EQ(stream->state(), ResponseStream::State::complete);
    events.on_line(line("r", LogLevel::none, "after the end"));
    EXPECT_EQ(stream->buffered(), 0u);
    // A client that went away gets nothing more.
    auto gone = std::make_shared<ResponseStream>(1 << 20, "text/event-stream");
    LogEventStream cancelled(gone, {}, 1 << 20);
    gone->cancel();
    cancelled.on_line(line("r", LogLevel::none, "x"));
    cancelled.on_end("shutdown");
    EXPECT_EQ(gone->buffered(), 0u);
}

}  // namespace
}  // namespace funcd
