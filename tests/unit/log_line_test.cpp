// The on-disk form of a log record: one line each, read back exactly.
#include "funcd/logs/log_line.hpp"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace funcd {
namespace {

constexpr std::string_view kStamp = "2026-11-26T23:40:18.123Z";

LogLine round_trip(std::string& buffer, std::string_view request_id, LogStream stream, LogLevel level,
                   std::string_view message) {
    buffer.clear();
    append_log_line(buffer, kStamp, request_id, stream, level, message);
    EXPECT_EQ(buffer.find('\n'), std::string::npos) << "one record, one line: " << buffer;
    auto line = parse_log_line(buffer);
    EXPECT_TRUE(line) << buffer;
    return line.value_or(LogLine{});
}

TEST(LogLine, BareOutputKeepsTodaysLine) {
    std::string line;
    append_log_line(line, kStamp, "req-1", LogStream::function, LogLevel::none, "got 7");
    EXPECT_EQ(line, "2026-11-26T23:40:18.123Z\treq-1\tgot 7");
    line.clear();
    append_log_line(line, kStamp, "", LogStream::function, LogLevel::none, "booting");
    EXPECT_EQ(line, "2026-11-26T23:40:18.123Z\t-\tbooting");
}

TEST(LogLine, PlatformAndLevelledRecordsCarryATag) {
    std::string line;
    append_log_line(line, kStamp, "req-1", LogStream::platform, LogLevel::none, "START RequestId: req-1");
    EXPECT_EQ(line, "2026-11-26T23:40:18.123Z\treq-1\tplatform\tSTART RequestId: req-1");
    line.clear();
    append_log_line(line, kStamp, "req-1", LogStream::function, LogLevel::error, "boom");
    EXPECT_EQ(line, "2026-11-26T23:40:18.123Z\treq-1\tERROR\tboom");
    line.clear();
    append_log_line(line, kStamp, "req-1", LogStream::platform, LogLevel::warn, "x");
    EXPECT_EQ(line, "2026-11-26T23:40:18.123Z\treq-1\tplatform.WARN\tx");
}

TEST(LogLine, EveryFieldComesBack) {
    std::string buffer;
    for (auto stream : {LogStream::function, LogStream::platform}) {
        for (int l = 0; l <= static_cast<int>(LogLevel::fatal); ++l) {
            const auto level = static_cast<LogLevel>(l);
            const LogLine line = round_trip(buffer, "8f2c-41", stream, level, "a message");
            EXPECT_EQ(line.stamp, kStamp);
            EXPECT_EQ(line.request_id, "8f2c-41");
            EXPECT_EQ(line.stream, stream);
            EXPECT_EQ(line.level, level);
            EXPECT_EQ(line.message(), "a message");
        }
    }
    const LogLine none = round_trip(buffer, "", LogStream::function, LogLevel::none, "");
    EXPECT_EQ(none.request_id, "");
    EXPECT_EQ(none.message(), "");
}

TEST(LogLine, NewlinesTabsBackslashesAndBytesSurvive) {
    std::string buffer;
    const std::string cases[] = {
        "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad",
        "tabs\tinside\tstay\t",
        "crlf\r\nline",
        "a backslash n: \\n, two: \\\\, one at the end \\",
        "\\\n\\\r\\&\\",
        "the symbols themselves: \xE2\x90\xA4 and \xE2\x90\x9B and \xE2\x90\x9B. and \xE2\x90\x9B\xE2\x90\xA4",
        "\xE2\x90\x9B.INFO\tan escape for nothing, literally",
        "cut symbols \xE2\x90 and \xE2",
        std::string("non-UTF-8 \xff\xfe and NUL \0 byte", 27),
        R"({"message": "quoted \"x\" and a \n escape in JSON", "level": "INFO"})",
        "INFO\tlooks like a tag",
        "platform\tlooks like one too",
        "platform.ERROR\tand so does this",
        "\\&INFO\tescaped already",
        "\n",
        "",
    };
    for (const auto& message : cases) {
        for (auto level : {LogLevel::none, LogLevel::info}) {
            const LogLine line = round_trip(buffer, "r", LogStream::function, level, message);
            EXPECT_EQ(line.message(), message) << buffer;
            EXPECT_EQ(line.level, level) << buffer;
            EXPECT_EQ(line.stream, LogStream::function) << buffer;
        }
    }
}

TEST(LogLine, TextWithoutLineFeedsIsWrittenAsItIs) {
    std::string buffer;
    const std::string json = R"({"a": "b \"c\" d\\e", "path": "C:\\dir", "trace": "x\n  y\r\n", "\u00e9": "é"})";
    append_log_line(buffer, kStamp, "r", LogStream::function, LogLevel::none, json);
    EXPECT_EQ(buffer, std::string(kStamp) + "\tr\t" + json);
    buffer.clear();
    append_log_line(buffer, kStamp, "r", LogStream::function, LogLevel::error, "Traceback:\n  File x\nError");
    EXPECT_EQ(buffer, std::string(kStamp) + "\tr\tERROR\tTraceback:\xE2\x90\xA4  File x\xE2\x90\xA4" "Error");
}

TEST(LogLine, RandomMessagesRoundTrip) {
    std::mt19937 rng(7);
    const std::vector<std::string> pieces = {"\\", "n", ".", "\n", "\r", "\t", "a", " ", "\xff", "\xE2", "\x90",
                                             "\xE2\x90\xA4", "\xE2\x90\x9B", "INFO\t", "platform\t"};
    std::string buffer;
    for (int i = 0; i < 20000; ++i) {
        std::string m;
        const int len = static_cast<int>(rng() % 10);
        for (int k = 0; k < len; ++k) m += pieces[rng() % pieces.size()];
        const LogLine line = round_trip(buffer, "r", LogStream::function, LogLevel::none, m);
        ASSERT_EQ(line.message(), m) << buffer;
    }
}

TEST(LogLine, FormattedTextIsEscapedInPlace) {
    std::string buffer = "prefix:";
    buffer += "line one\nline two";
    escape_message_in_place(buffer, 7, true);
    EXPECT_EQ(buffer, "prefix:line one\xE2\x90\xA4line two");
}

TEST(LogLine, LinesFromBeforeTagsReadAsPlatformRecords) {
    auto start = parse_log_line("2026-11-26T23:40:18.123Z\tSTART RequestId: abc-1 Version: $LATEST");
    ASSERT_TRUE(start);
    EXPECT_EQ(start->stream, LogStream::platform);
    EXPECT_EQ(start->request_id, "abc-1");
    EXPECT_EQ(start->message(), "START RequestId: abc-1 Version: $LATEST");
    auto out = parse_log_line("2026-11-26T23:40:18.123Z\tabc-1\thello");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->stream, LogStream::function);
    EXPECT_EQ(out->request_id, "abc-1");
    EXPECT_EQ(out->message(), "hello");
    EXPECT_FALSE(parse_log_line("cut line"));
}

TEST(LogLine, LevelsParseAsLambdaNamesThem) {
    EXPECT_EQ(parse_level("warn"), LogLevel::warn);
    EXPECT_EQ(parse_level("WARNING"), LogLevel::warn);
    EXPECT_EQ(parse_level("Fatal"), LogLevel::fatal);
    EXPECT_FALSE(parse_level("loud"));
    EXPECT_FALSE(parse_level(""));
}

}  // namespace
}  // namespace funcd
