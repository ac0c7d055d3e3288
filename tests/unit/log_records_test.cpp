// Log records from the logs API, and the event stream of a followed log.
#include <gtest/gtest.h>

#include "funcd/cli/log_records.hpp"

namespace funcd::cli {
namespace {

TEST(SseParser, EventsAcrossPiecesCommentsAndCrlf) {
    const std::string stream =
        ": following the log of hello\n\n"
        "data: {\"message\":\"one\"}\n\n"
        ": heartbeat\n\n"
        "event: dropped\r\ndata: {\"records\":12}\r\n\r\n"
        "data: a\ndata: b\n\n"
        "event: end\ndata: {\"reason\":\"deleted\"}\n\n";
    // Fed a byte at a time: events come out whole whatever the pieces.
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, stream.size()}) {
        SseParser p;
        std::vector<SseEvent> got;
        for (std::size_t i = 0; i < stream.size(); i += step)
            p.feed(std::string_view(stream).substr(i, step), [&](const SseEvent& e) { got.push_back(e); });
        ASSERT_EQ(got.size(), 4u) << step;
        EXPECT_EQ(got[0].event, "");
        EXPECT_EQ(got[0].data, "{\"message\":\"one\"}");
        EXPECT_EQ(got[1].event, "dropped");
        EXPECT_EQ(got[1].data, "{\"records\":12}");
        EXPECT_EQ(got[2].data, "a\nb");
        EXPECT_EQ(got[3].event, "end");
    }
}

TEST(LogRecords, LinesAndFormat) {
    const auto records = parse_log_lines(
        "{\"timestamp\":\"2026-11-26T23:40:18.120Z\",\"request_id\":\"3f0c1234-aaaa\",\"level\":null,"
        "\"stream\":\"platform\",\"message\":\"START RequestId: 3f0c1234-aaaa Version: 1\"}\n"
        "not json\n"
        "{\"timestamp\":\"2026-11-26T23:40:18.121Z\",\"request_id\":null,\"level\":\"ERROR\",\"stream\":\"function\","
        "\"message\":\"boom\"}\n");
    ASSERT_EQ(records.size(), 2u);
    const Output plain(OutputFormat::human, false);
    EXPECT_EQ(format_log_record(records[0], plain),
              "2026-11-26T23:40:18.120Z  3f0c1234  START RequestId: 3f0c1234-aaaa Version: 1");
    EXPECT_EQ(format_log_record(records[1], plain), "2026-11-26T23:40:18.121Z  -         ERROR boom");
    const Output color(OutputFormat::human, true);
    EXPECT_NE(format_log_record(records[1], color).find("\x1b[31mERROR"), std::string::npos);
}

}  // namespace
}  // namespace funcd::cli
