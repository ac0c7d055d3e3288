// Log formats: a function's LoggingConfig (/v1 settings, storage and the migration of what
// earlier versions kept), the telemetry descriptor's framing, and funcd's platform records.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/logs/log_line.hpp"
#include "funcd/logs/platform_records.hpp"
#include "funcd/logs/telemetry_frames.hpp"
#include "funcd/registry/function_config.hpp"
#include "funcd/registry/function_record.hpp"

using namespace funcd;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string expect_bad_parameter(const std::function<void()>& f) {
    try {
        f();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        return e.what();
    }
    ADD_FAILURE() << "no ApiError";
    return {};
}

// --- LoggingConfig in /v1 settings -------------------------------------------------------

TEST(LoggingConfig, TextByDefaultAndJsonWithLevelsInAnyCase) {
    auto plain = parse_deploy_json("fn", R"({"runtime":"python3.12"})");
    EXPECT_EQ(plain.config.logging, LoggingConfig{});
    EXPECT_FALSE(plain.config.logging.json());

    auto j = parse_deploy_json(
        "fn", R"({"runtime":"python3.12","log_format":"json","application_log_level":"debug","system_log_level":"WARN"})");
    EXPECT_EQ(j.config.logging.format, LogFormat::json);
    EXPECT_EQ(j.config.logging.application_level, LogLevel::debug);
    EXPECT_EQ(j.config.logging.system_level, LogLevel::warn);

    // JSON without levels: INFO for both, as Lambda reports them.
    auto defaults = parse_deploy_json("fn", R"({"runtime":"python3.12","log_format":"JSON"})");
    EXPECT_EQ(defaults.config.logging.application_level, LogLevel::info);
    EXPECT_EQ(defaults.config.logging.system_level, LogLevel::info);

    auto q = parse_deploy_query("fn", {{"runtime", "nodejs20.x"}, {"log_format", "JSON"}, {"application_log_level", "TRACE"}},
                                "zip");
    EXPECT_EQ(q.config.logging.format, LogFormat::json);
    EXPECT_EQ(q.config.logging.application_level, LogLevel::trace);
}

TEST(LoggingConfig, RefusesLevelsWithTextAndBadValuesNamingTheField) {
    auto m = expect_bad_parameter(
        [] { parse_deploy_json("fn", R"({"runtime":"python3.12","application_log_level":"DEBUG"})"); });
    EXPECT_NE(m.find("application_log_level"), std::string::npos) << m;
    EXPECT_NE(m.find("JSON"), std::string::npos) << m;
    m = expect_bad_parameter([] {
        parse_deploy_json("fn", R"({"runtime":"python3.12","log_format":"Text","system_log_level":"WARN"})");
    });
    EXPECT_NE(m.find("system_log_level"), std::string::npos) << m;
    m = expect_bad_parameter([] { parse_deploy_json("fn", R"({"runtime":"python3.12","log_format":"XML"})"); });
    EXPECT_NE(m.find("log_format"), std::string::npos) << m;
    m = expect_bad_parameter([] {
        parse_deploy_json("fn", R"({"runtime":"python3.12","log_format":"JSON","application_log_level":"LOUD"})");
    });
    EXPECT_NE(m.find("application_log_level"), std::string::npos) << m;
    // TRACE, ERROR and FATAL are application levels only.
    m = expect_bad_parameter([] {
        parse_deploy_json("fn", R"({"runtime":"python3.12","log_format":"JSON","system_log_level":"ERROR"})");
    });
    EXPECT_NE(m.find("system_log_level"), std::string::npos) << m;
    m = expect_bad_parameter([] {
        parse_deploy_query("fn", {{"runtime", "python3.12"}, {"system_log_level", "INFO"}}, "zip");
    });
    EXPECT_NE(m.find("system_log_level"), std::string::npos) << m;
    m = expect_bad_parameter(
        [] { parse_deploy_json("fn", R"({"runtime":"python3.12","log_format":"JSON","system_log_level":3})"); });
    EXPECT_NE(m.find("system_log_level"), std::string::npos) << m;
}

TEST(LoggingConfig, DescribedOnlyWithJsonLevels) {
    FunctionVersion v;
    v.config.name = "fn";
    auto d = describe(v);
    EXPECT_EQ(d["log_format"], "Text");
    EXPECT_TRUE(d["application_log_level"].is_null());
    v.config.logging = {LogFormat::json, LogLevel::error, LogLevel::debug};
    d = describe(v);
    EXPECT_EQ(d["log_format"], "JSON");
    EXPECT_EQ(d["application_log_level"], "ERROR");
    EXPECT_EQ(d["system_log_level"], "DEBUG");
}

TEST(LoggingConfig, StoredAndReadBack) {
    FunctionConfig c;
    c.name = "fn";
    c.runtime_id = "python3.12";
    c.runtime = Runtime::python3;
    c.handler = "app.handler";
    c.logging = {LogFormat::json, LogLevel::warn, LogLevel::debug};
    c.recorded.log_group = "/custom/group";
    const FunctionConfig back = config_from_json("fn", config_to_json(c));
    EXPECT_EQ(back.logging, c.logging);
    EXPECT_EQ(back.recorded.log_group, "/custom/group");
}

TEST(LoggingConfig, MigratesWhatTheLambdaApiKeptUnchecked) {
    // Documents from before funcd acted on LoggingConfig kept it among the recorded settings.
    json doc{{"runtime", "python3.12"}, {"handler", "app.handler"}, {"memory_mb", 128}, {"timeout_s", 3},
             {"env", json::object()}, {"keep_alive_s", 600},
             {"recorded",
              {{"role", "r"}, {"log_format", "JSON"}, {"application_log_level", "DEBUG"}, {"system_log_level", "WARN"},
               {"log_group", "/g"}}}};
    FunctionConfig c = config_from_json("fn", doc);
    EXPECT_EQ(c.logging, (LoggingConfig{LogFormat::json, LogLevel::debug, LogLevel::warn}));
    EXPECT_EQ(c.recorded.log_group, "/g");
    // Written again, the settings move to their own object and read the same.
    EXPECT_TRUE(config_to_json(c).contains("logging"));
    EXPECT_FALSE(config_to_json(c)["recorded"].contains("log_format"));
    EXPECT_EQ(config_from_json("fn", config_to_json(c)).logging, c.logging);

    // Kept unchecked: levels with Text, or names Lambda would refuse, become INFO.
    doc["recorded"] = {{"log_format", "Text"}, {"application_log_level", "DEBUG"}};
    EXPECT_EQ(config_from_json("fn", doc).logging, LoggingConfig{});
    doc["recorded"] = {{"log_format", "JSON"}, {"application_log_level", "loud"}, {"system_log_level", "FATAL"}};
    EXPECT_EQ(config_from_json("fn", doc).logging, (LoggingConfig{LogFormat::json, LogLevel::info, LogLevel::info}));
    // And a document with none of it is Text.
    doc.erase("recorded");
    EXPECT_EQ(config_from_json("fn", doc).logging, LoggingConfig{});
}

// --- The telemetry descriptor's framing ----------------------------------------------------

std::string frame(std::uint32_t type, std::string_view payload, std::int64_t micros = 1'700'000'000'123'456) {
    std::string out;
    auto put = [&](std::uint64_t v, int bytes) {
        for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    put(type, 4);
    put(payload.size(), 4);
    put(static_cast<std::uint64_t>(micros), 8);
    out.append(payload);
    return out;
}

struct Piece {
    LogLevel level;
    bool json;
    std::int64_t micros;
    std::string payload;
    bool last;
    bool operator==(const Piece&) const = default;
};

std::vector<Piece> parse(TelemetryFrameParser& p, const std::string& stream, std::size_t read_size) {
    std::vector<Piece> out;
    for (std::size_t at = 0; at < stream.size(); at += read_size) {
        std::string_view data = std::string_view(stream).substr(at, read_size);
        TelemetryFrame f;
        while (p.next(data, f))
            out.push_back({f.level, f.json,
                           f.time ? std::chrono::duration_cast<std::chrono::microseconds>(f.time->time_since_epoch()).count()
                                  : -1,
                           std::string(f.payload), f.last});
        EXPECT_TRUE(data.empty());
    }
    return out;
}

TEST(TelemetryFrames, EveryLevelAndBothFormsAsTheRuntimeInterfaceClientsWriteThem) {
    // The types AWS's clients write: 0xA55A0003 text / 0xA55A0002 JSON, OR the level << 2.
    std::string stream;
    std::vector<Piece> expected;
    for (int level = 0; level <= 6; ++level) {
        for (bool json : {false, true}) {
            const std::uint32_t type = (json ? 0xA55A0002u : 0xA55A0003u) | static_cast<std::uint32_t>(level) << 2;
            const std::string payload = "record " + std::to_string(level) + "\nsecond line\n";
            stream += frame(type, payload, 1000 + level);
            expected.push_back({static_cast<LogLevel>(level), json, 1000 + level, payload, true});
        }
    }
    // Node's TRACE (0xA55A0007) and Python's CRITICAL JSON frame (0xA55A001A), spelled out.
    stream += frame(0xA55A0007, "t");
    expected.push_back({LogLevel::trace, false, 1'700'000'000'123'456, "t", true});
    stream += frame(0xA55A001A, "{}");
    expected.push_back({LogLevel::fatal, true, 1'700'000'000'123'456, "{}", true});
    stream += frame(0xA55A0003, "");  // an empty record is a record
    expected.push_back({LogLevel::none, false, 1'700'000'000'123'456, "", true});
    TelemetryFrameParser whole(1024);
    EXPECT_EQ(parse(whole, stream, stream.size()), expected);
    EXPECT_FALSE(whole.malformed());
    EXPECT_FALSE(whole.mid_record());
}

// A stamp the system clock cannot hold (its nanoseconds end in 2262) would overflow: such a
// record has no stamp of its own and is stamped when it is logged.
TEST(TelemetryFrames, AStampBeyondTheClocksRangeIsLeftOut) {
    TelemetryFrameParser p(1024);
    const auto pieces = parse(p, frame(0xA55A0003, "far", -6'727'636'073'941'130'590) +
                                     frame(0xA55A0003, "latest", 9'223'372'036'854'775), 1024);
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[0].micros, -1) << "no stamp";
    EXPECT_EQ(pieces[0].payload, "far");
    EXPECT_EQ(pieces[1].micros, 9'223'372'036'854'775) << "the latest the clock holds is kept";
    EXPECT_FALSE(p.malformed());
}

TEST(TelemetryFrames, SplitAcrossReadsAnywhere) {
    const std::string stream = frame(0xA55A000F, "first\nrecord") + frame(0xA55A0016, R"({"a":1})") +
                               frame(0xA55A0003, std::string(300, 'x'));
    TelemetryFrameParser reference(1024);
    const auto expected = parse(reference, stream, stream.size());
    ASSERT_EQ(expected.size(), 3u);
    for (std::size_t read = 1; read <= stream.size(); ++read) {
        TelemetryFrameParser p(1024);
        EXPECT_EQ(parse(p, stream, read), expected) << "reads of " << read;
        EXPECT_FALSE(p.mid_record());
    }
    // Cut off in the middle: nothing comes out, and the parser knows a record is open.
    TelemetryFrameParser cut(1024);
    EXPECT_TRUE(parse(cut, stream.substr(0, 20), 7).empty());
    EXPECT_TRUE(cut.mid_record());
    TelemetryFrameParser header_only(1024);
    EXPECT_TRUE(parse(header_only, stream.substr(0, 10), 10).empty());
    EXPECT_TRUE(header_only.mid_record());
}

TEST(TelemetryFrames, OversizedRecordComesOutInPiecesOfTheCap) {
    const std::string payload = std::string(100, 'a') + std::string(100, 'b') + std::string(50, 'c');
    const std::string stream = frame(0xA55A0013, payload, 42) + frame(0xA55A000F, "after");
    for (std::size_t read : {std::size_t{1}, std::size_t{13}, std::size_t{100}, stream.size()}) {
        TelemetryFrameParser p(100);
        const auto pieces = parse(p, stream, read);
        ASSERT_EQ(pieces.size(), 4u) << "reads of " << read;
        EXPECT_EQ(pieces[0], (Piece{LogLevel::warn, false, 42, std::string(100, 'a'), false}));
        EXPECT_EQ(pieces[1], (Piece{LogLevel::warn, false, 42, std::string(100, 'b'), false}));
        EXPECT_EQ(pieces[2], (Piece{LogLevel::warn, false, 42, std::string(50, 'c'), true}));
        EXPECT_EQ(pieces[3].payload, "after");  // and the stream stays in step
    }
}

TEST(TelemetryFrames, GarbageMakesTheStreamMalformedOnceAndTheRestIsDropped) {
    const std::string good = frame(0xA55A000F, "kept");
    for (const std::string& bad :
         {std::string("this is not a frame, just text on the descriptor\n"),
          frame(0xA55B000F, "wrong magic"),
          frame(0xA55A0001, "form 1 is neither text nor JSON"),
          frame(0xA55A001F, "level 7 does not exist"),
          frame(0xA55A010F, "bits above the level")}) {
        TelemetryFrameParser p(1024);
        const std::string stream = good + bad + good;
        const auto pieces = parse(p, stream, 5);
        ASSERT_EQ(pieces.size(), 1u) << bad;
        EXPECT_EQ(pieces[0].payload, "kept");
        EXPECT_TRUE(p.malformed());
        EXPECT_NE(p.error().find("0x"), std::string::npos) << p.error();
        // Every byte from the bad header on is counted as dropped.
        EXPECT_EQ(p.dropped_bytes(), bad.size() + good.size()) << bad;
        TelemetryFrame f;
        std::string_view more = "anything else";
        EXPECT_FALSE(p.next(more, f));
        EXPECT_EQ(p.dropped_bytes(), bad.size() + good.size() + 13);
    }
}

// --- Platform records --------------------------------------------------------------------

class PlatformRecordsTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("funcd-platform-records-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // The messages written, one per line (each line's time, request id and tag read off). All
    // of them are platform records, and each names its invocation's request id, if any.
    std::vector<std::string> lines() {
        log_->flush();
        std::ifstream in(dir_ / "fn.log");
        std::vector<std::string> out;
        for (std::string line; std::getline(in, line);) {
            const auto parsed = parse_log_line(line);
            EXPECT_TRUE(parsed) << line;
            if (!parsed) continue;
            EXPECT_EQ(parsed->stream, LogStream::platform) << line;
            const std::string message = parsed->message();
            if (message.find("req-1") != std::string::npos) {
                EXPECT_EQ(parsed->request_id, "req-1") << line;
            }
            out.push_back(message);
        }
        return out;
    }

    static InvocationFigures figures() {
        InvocationFigures f;
        f.request_id = "req-1";
        f.version = "$LATEST";
        f.duration_us = 12'345;
        f.billed_ms = 13;
        f.memory_mb = 256;
        f.max_memory_used_mb = 40;
        f.init_duration_us = 98'765;
        f.trace_id = "Root=1-6761a3f2-5e1f0a6d2b8c4e9f1a3b5c7d;Parent=9c1e2a3b4d5f6a7b;Sampled=0";
        return f;
    }

    fs::path dir_;
    std::unique_ptr<FunctionLog> log_ = nullptr;
};

TEST_F(PlatformRecordsTest, TextKeepsTheLinesAsTheyWere) {
    log_ = std::make_unique<FunctionLog>(dir_ / "fn.log");
    PlatformRecords text;
    text.init_start(*log_, {"fn", "$LATEST", "python:3.11.2", "arn:aws:lambda:us-east-1::runtime:abc", false});
    text.start(log_.get(), nullptr, "req-1", "$LATEST", figures().trace_id);
    text.end(log_.get(), nullptr, figures());
    text.report(log_.get(), nullptr, figures());
    std::string tail;
    text.report(nullptr, &tail, figures());
    EXPECT_EQ(lines(), (std::vector<std::string>{
                           "INIT_START Runtime Version: python:3.11.2\tRuntime Version ARN: "
                           "arn:aws:lambda:us-east-1::runtime:abc",
                           "START RequestId: req-1 Version: $LATEST",
                           "END RequestId: req-1",
                           "REPORT RequestId: req-1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\t"
                           "Max Memory Used: 40 MB\tInit Duration: 98.77 ms\tTraceId: "
                           "1-6761a3f2-5e1f0a6d2b8c4e9f1a3b5c7d"}));
    EXPECT_EQ(tail, lines().back());
}

TEST_F(PlatformRecordsTest, JsonRecordsHaveLambdasShapes) {
    log_ = std::make_unique<FunctionLog>(dir_ / "fn.log");
    PlatformRecords records(PlatformLogFormat{LogFormat::json, LogLevel::debug});
    records.init_start(*log_, {"fn", "$LATEST", "python:3.11.2", "arn:aws:lambda:us-east-1::runtime:abc", true});
    records.start(log_.get(), nullptr, "req-1", "$LATEST", figures().trace_id);
    auto f = figures();
    f.status = "error";
    f.error_type = "ValueError";
    records.end(log_.get(), nullptr, f);
    records.report(log_.get(), nullptr, f);
    records.logs_dropped(log_.get(), nullptr, "", 100, 3, "over the budget");
    records.notice(*log_, "OUT_OF_MEMORY RequestId: req-1 memory_mb=128", "req-1");
    const auto all = lines();
    ASSERT_EQ(all.size(), 6u);
    std::vector<json> docs;
    for (const auto& l : all) {
        docs.push_back(json::parse(l));
        EXPECT_TRUE(docs.back()["time"].is_string());
        EXPECT_TRUE(docs.back()["time"].get<std::string>().ends_with("Z"));
        EXPECT_TRUE(docs.back()["record"].is_object());
    }
    EXPECT_EQ(docs[0]["type"], "platform.initStart");
    EXPECT_EQ(docs[0]["record"],
              (json{{"initializationType", "provisioned-concurrency"}, {"phase", "init"},
                    {"runtimeVersion", "python:3.11.2"}, {"runtimeVersionArn", "arn:aws:lambda:us-east-1::runtime:abc"},
                    {"functionName", "fn"}, {"functionVersion", "$LATEST"}}));
    EXPECT_EQ(docs[1]["type"], "platform.start");
    EXPECT_EQ(docs[1]["record"]["requestId"], "req-1");
    EXPECT_EQ(docs[1]["record"]["version"], "$LATEST");
    EXPECT_EQ(docs[1]["record"]["tracing"], (json{{"type", "X-Amzn-Trace-Id"}, {"value", figures().trace_id}}));
    EXPECT_EQ(docs[2]["type"], "platform.runtimeDone");
    EXPECT_EQ(docs[2]["record"]["status"], "error");
    EXPECT_EQ(docs[2]["record"]["errorType"], "ValueError");
    EXPECT_DOUBLE_EQ(docs[2]["record"]["metrics"]["durationMs"].get<double>(), 12.345);
    EXPECT_EQ(docs[3]["type"], "platform.report");
    const json& r = docs[3]["record"];
    EXPECT_EQ(r["requestId"], "req-1");
    EXPECT_EQ(r["status"], "error");
    EXPECT_DOUBLE_EQ(r["metrics"]["durationMs"].get<double>(), 12.345);
    EXPECT_EQ(r["metrics"]["billedDurationMs"], 13);
    EXPECT_EQ(r["metrics"]["memorySizeMB"], 256);
    EXPECT_EQ(r["metrics"]["maxMemoryUsedMB"], 40);
    EXPECT_DOUBLE_EQ(r["metrics"]["initDurationMs"].get<double>(), 98.765);
    EXPECT_EQ(r["tracing"]["value"], figures().trace_id);
    EXPECT_EQ(docs[4]["type"], "platform.logsDropped");
    EXPECT_EQ(docs[4]["record"], (json{{"reason", "over the budget"}, {"droppedRecords", 3}, {"droppedBytes", 100}}));
    EXPECT_EQ(docs[5]["type"], "platform.notice");
    EXPECT_EQ(docs[5]["record"]["event"], "OUT_OF_MEMORY");
    EXPECT_EQ(docs[5]["record"]["requestId"], "req-1");

    // A warm invocation's report has no initDurationMs; the tail gets the same record.
    f.init_duration_us.reset();
    std::string tail;
    records.report(nullptr, &tail, f);
    EXPECT_FALSE(json::parse(tail)["record"]["metrics"].contains("initDurationMs"));
}

TEST_F(PlatformRecordsTest, SystemLevelFiltersAsLambdaMapsItsEvents) {
    log_ = std::make_unique<FunctionLog>(dir_ / "fn.log");
    auto types_at = [&](LogLevel level) {
        fs::remove(dir_ / "fn.log");
        log_ = std::make_unique<FunctionLog>(dir_ / "fn.log");
        PlatformRecords records(PlatformLogFormat{LogFormat::json, level});
        records.init_start(*log_, {"fn", "$LATEST", "v", "arn", false});
        records.start(log_.get(), nullptr, "req-1", "$LATEST", "");
        records.end(log_.get(), nullptr, figures());
        records.report(log_.get(), nullptr, figures());
        records.logs_dropped(log_.get(), nullptr, "", 1, 1, "r");
        std::vector<std::string> types;
        for (const auto& l : lines()) types.push_back(json::parse(l)["type"]);
        return types;
    };
    EXPECT_EQ(types_at(LogLevel::debug),
              (std::vector<std::string>{"platform.initStart", "platform.start", "platform.runtimeDone", "platform.report",
                                        "platform.logsDropped"}));
    EXPECT_EQ(types_at(LogLevel::info), (std::vector<std::string>{"platform.initStart", "platform.start",
                                                                  "platform.report", "platform.logsDropped"}));
    EXPECT_EQ(types_at(LogLevel::warn), (std::vector<std::string>{"platform.logsDropped"}));
}

TEST_F(PlatformRecordsTest, FunctionRecordsKeepTheRuntimesTimeAndStayOneLine) {
    log_ = std::make_unique<FunctionLog>(dir_ / "fn.log");
    const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
    log_->record(LogRecord{"req-1", LogStream::function, LogLevel::error, "Error: boom\n    at f (app.js:1:1)", when});
    log_->flush();
    std::ifstream in(dir_ / "fn.log");
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    // Its level as the line's tag, its line feed as U+2424: one line, read back whole.
    EXPECT_EQ(line, "2023-11-14T22:13:20.123Z\treq-1\tERROR\tError: boom\xE2\x90\xA4    at f (app.js:1:1)");
    EXPECT_FALSE(std::getline(in, line));
}

}  // namespace
