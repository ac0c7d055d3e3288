// The daemon's own log as JSON lines (`--log-format json`), and the flags that choose it.
#include <spdlog/details/log_msg.h>

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "funcd/daemon/daemon_log_format.hpp"
#include "funcd/daemon/options.hpp"

namespace funcd {
namespace {

nlohmann::json formatted(spdlog::level::level_enum level, std::string_view text) {
    JsonLogFormatter f;
    spdlog::details::log_msg msg(spdlog::source_loc{}, "", level, text);
    spdlog::memory_buf_t out;
    f.format(msg, out);
    const std::string line(out.data(), out.size());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per message";
    return nlohmann::json::parse(line);
}

TEST(DaemonLogFormat, AMessageNamingItsPartBecomesComponentAndMessage) {
    const auto j = formatted(spdlog::level::warn, "dispatch: throttled function=f request_id=r reason=memory");
    EXPECT_EQ(j["level"], "warn");
    EXPECT_EQ(j["component"], "dispatch");
    EXPECT_EQ(j["message"], "throttled function=f request_id=r reason=memory");
    EXPECT_TRUE(j["thread"].is_number());
    const std::string time = j["time"];
    ASSERT_EQ(time.size(), 24u) << time;  // 2026-12-05T15:02:13.123Z
    EXPECT_EQ(time[10], 'T');
    EXPECT_EQ(time.back(), 'Z');
}

TEST(DaemonLogFormat, AMessageWithoutAPartKeepsItsTextWhole) {
    for (const char* text : {"listening on 127.0.0.1:8080", "A Capital: no", "a phrase with spaces: no", ": empty"}) {
        const auto j = formatted(spdlog::level::info, text);
        EXPECT_FALSE(j.contains("component")) << text;
        EXPECT_EQ(j["message"], text);
    }
    EXPECT_EQ(formatted(spdlog::level::err, "x")["level"], "error");
    EXPECT_EQ(formatted(spdlog::level::critical, "x")["level"], "critical");
}

TEST(DaemonLogFormat, QuotesNewlinesAndBytesThatAreNotUtf8StayValidJson) {
    const std::string text = std::string("logs: open \"/tmp/a\nb\" failed \xff\xfe end");
    const auto j = formatted(spdlog::level::err, text);
    EXPECT_EQ(j["component"], "logs");
    EXPECT_EQ(j["message"], "open \"/tmp/a\nb\" failed \xEF\xBF\xBD\xEF\xBF\xBD end");
}

TEST(DaemonLogFormat, FlagsAndEnvironmentChooseIt) {
    EXPECT_EQ(parse_serve_options({}).log_format, DaemonLogFormat::text);
    EXPECT_EQ(parse_serve_options({"--log-format", "json"}).log_format, DaemonLogFormat::json);
    EXPECT_EQ(parse_serve_options({"--log-format=text"}).log_format, DaemonLogFormat::text);
    try {
        parse_serve_options({"--log-format", "xml"});
        ADD_FAILURE() << "xml accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "--log-format must be text or json, not 'xml'");
    }
}

TEST(DaemonLogFormat, AnUnknownLogLevelIsRefusedRatherThanSilencingTheDaemon) {
    EXPECT_EQ(parse_serve_options({"--log-level", "warn"}).log_level, "warn");
    try {
        parse_serve_options({"--log-level", "verbose"});
        ADD_FAILURE() << "verbose accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "--log-level wants one of trace, debug, info, warn, error, got 'verbose'");
    }
}

}  // namespace
}  // namespace funcd
