#include "funcd/logs/platform_records.hpp"

#include <chrono>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/common/trace_id.hpp"

namespace funcd {
namespace {

// Insertion order: the members come out in the order Lambda's records have them.
using ordered_json = nlohmann::ordered_json;

// Lambda's levels of its platform events (docs: "Log-level filtering", the event mapping of
// system log levels): what happens in every invocation is INFO, its runtimeDone (END's
// place) DEBUG, what went wrong WARN.
constexpr LogLevel kInitStartLevel = LogLevel::info;
constexpr LogLevel kInitReportLevel = LogLevel::info;
constexpr LogLevel kStartLevel = LogLevel::info;
constexpr LogLevel kRuntimeDoneLevel = LogLevel::debug;
constexpr LogLevel kReportLevel = LogLevel::info;
constexpr LogLevel kLogsDroppedLevel = LogLevel::warn;
constexpr LogLevel kNoticeLevel = LogLevel::warn;

// Milliseconds as Lambda's records give them: a number with up to three decimals.
double millis(std::int64_t us) { return static_cast<double>(us) / 1000.0; }

std::string envelope(std::string_view type, ordered_json record) {
    ordered_json j{{"time", format_rfc3339(std::chrono::system_clock::now())}, {"type", type}, {"record", std::move(record)}};
    return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

// Lambda's tracing member: the id the runtime got, as X-Amzn-Trace-Id.
void add_tracing(ordered_json& record, std::string_view trace_id) {
    if (trace_id.empty()) return;
    record["tracing"] = {{"type", "X-Amzn-Trace-Id"}, {"value", trace_id}};
}

// The REPORT line (Text), to any output iterator.
template <class Out>
void report_text(Out out, const InvocationFigures& f) {
    // The trace's Root, the id X-Ray and a log search know it by (Lambda prints it on an
    // XRAY line with active tracing; here it is a field of REPORT, always).
    const std::string_view trace = trace_root(f.trace_id);
    const std::string_view trace_label = trace.empty() ? "" : "\tTraceId: ";
    const std::string_view status = f.status == "timeout" ? "\tStatus: timeout" : "";
    if (f.init_duration_us)
        fmt::format_to(out,
                       "REPORT RequestId: {}\tDuration: {:.2f} ms\tBilled Duration: {} ms\tMemory Size: {} MB\t"
                       "Max Memory Used: {} MB\tInit Duration: {:.2f} ms{}{}{}",
                       f.request_id, millis(f.duration_us), f.billed_ms, f.memory_mb, f.max_memory_used_mb,
                       millis(*f.init_duration_us), trace_label, trace, status);
    else
        fmt::format_to(out,
                       "REPORT RequestId: {}\tDuration: {:.2f} ms\tBilled Duration: {} ms\tMemory Size: {} MB\t"
                       "Max Memory Used: {} MB{}{}{}",
                       f.request_id, millis(f.duration_us), f.billed_ms, f.memory_mb, f.max_memory_used_mb, trace_label,
                       trace, status);
}

}  // namespace

bool PlatformRecords::wanted(LogLevel level) const {
    // Levels filter JSON records only: Text has no levels, as on Lambda.
    return format_.format != LogFormat::json || level >= format_.system_level;
}

void PlatformRecords::emit(FunctionLog* log, std::string* line, LogLevel level, std::string_view request_id,
                           std::string_view text) const {
    if (line) *line = text;
    if (log) log->record(LogRecord{request_id, LogStream::platform, level, text, std::nullopt});
}

void PlatformRecords::init_start(FunctionLog& log, const InitStartFigures& f) const {
    if (!wanted(kInitStartLevel)) return;
    if (format_.format == LogFormat::text) {
        log.platform_for({}, "INIT_START Runtime Version: {}\tRuntime Version ARN: {}", f.runtime_version,
                         f.runtime_version_arn);
        return;
    }
    emit(&log, nullptr, kInitStartLevel, {},
         envelope("platform.initStart", {{"initializationType", f.provisioned ? "provisioned-concurrency" : "on-demand"},
                                         {"phase", "init"},
                                         {"runtimeVersion", f.runtime_version},
                                         {"runtimeVersionArn", f.runtime_version_arn},
                                         {"functionName", f.function_name},
                                         {"functionVersion", f.version}}));
}

void PlatformRecords::init_failed(FunctionLog& log, std::string_view text, std::string_view status,
                                  std::string_view error_type, std::int64_t duration_us,
                                  std::string_view request_id) const {
    if (!wanted(kInitReportLevel)) return;
    if (format_.format == LogFormat::text) {
        log.platform_for(request_id, text);
        return;
    }
    ordered_json record{{"initializationType", "on-demand"},
                {"phase", "init"},
                {"status", status},
                {"metrics", {{"durationMs", millis(duration_us)}}}};
    if (!error_type.empty()) record["errorType"] = error_type;
    emit(&log, nullptr, kInitReportLevel, request_id, envelope("platform.initReport", std::move(record)));
}

void PlatformRecords::start(FunctionLog* log, std::string* line, std::string_view request_id, std::string_view version,
                            std::string_view trace_id) const {
    if (!wanted(kStartLevel)) return;
    if (format_.format == LogFormat::text) {
        if (log) log->platform_for(request_id, "START RequestId: {} Version: {}", request_id, version);
        if (line) *line = fmt::format("START RequestId: {} Version: {}", request_id, version);
        return;
    }
    ordered_json record{{"requestId", request_id}, {"version", version}};
    add_tracing(record, trace_id);
    emit(log, line, kStartLevel, request_id, envelope("platform.start", std::move(record)));
}

void PlatformRecords::end(FunctionLog* log, std::string* line, const InvocationFigures& f) const {
    if (!wanted(kRuntimeDoneLevel)) return;
    if (format_.format == LogFormat::text) {
        if (log) log->platform_for(f.request_id, "END RequestId: {}", f.request_id);
        if (line) *line = fmt::format("END RequestId: {}", f.request_id);
        return;
    }
    ordered_json record{{"requestId", f.request_id}, {"status", f.status}, {"metrics", {{"durationMs", millis(f.duration_us)}}}};
    if (!f.error_type.empty()) record["errorType"] = f.error_type;
    add_tracing(record, f.trace_id);
    emit(log, line, kRuntimeDoneLevel, f.request_id, envelope("platform.runtimeDone", std::move(record)));
}

void PlatformRecords::report(FunctionLog* log, std::string* line, const InvocationFigures& f) const {
    if (!wanted(kReportLevel)) return;
    if (format_.format == LogFormat::text) {
        // Straight into the log's buffer: the line every invocation writes.
        if (log) log->platform_with(f.request_id, [&](auto out) { report_text(out, f); });
        if (line) {
            line->clear();
            report_text(std::back_inserter(*line), f);
        }
        return;
    }
    ordered_json metrics{{"durationMs", millis(f.duration_us)},
                 {"billedDurationMs", f.billed_ms},
                 {"memorySizeMB", f.memory_mb},
                 {"maxMemoryUsedMB", f.max_memory_used_mb}};
    if (f.init_duration_us) metrics["initDurationMs"] = millis(*f.init_duration_us);
    ordered_json record{{"requestId", f.request_id}, {"metrics", std::move(metrics)}, {"status", f.status}};
    if (!f.error_type.empty()) record["errorType"] = f.error_type;
    add_tracing(record, f.trace_id);
    emit(log, line, kReportLevel, f.request_id, envelope("platform.report", std::move(record)));
}

void PlatformRecords::logs_dropped(FunctionLog* log, std::string* line, std::string_view text,
                                   std::uint64_t dropped_bytes, std::uint64_t dropped_records,
                                   std::string_view reason) const {
    if (!wanted(kLogsDroppedLevel)) return;
    if (format_.format == LogFormat::text) {
        emit(log, line, kLogsDroppedLevel, {}, text);
        return;
    }
    emit(log, line, kLogsDroppedLevel, {},
         envelope("platform.logsDropped",
                  {{"reason", reason}, {"droppedRecords", dropped_records}, {"droppedBytes", dropped_bytes}}));
}

void PlatformRecords::notice(FunctionLog& log, std::string_view text, std::string_view request_id) const {
    if (!wanted(kNoticeLevel)) return;
    if (format_.format == LogFormat::text) {
        log.platform_for(request_id, text);
        return;
    }
    // funcd's own: no Lambda event says these. The first word names it, the rest says it.
    const auto space = text.find(' ');
    ordered_json record{{"event", text.substr(0, space)},
                {"message", space == std::string_view::npos ? std::string_view() : text.substr(space + 1)}};
    if (!request_id.empty()) record["requestId"] = request_id;
    emit(&log, nullptr, kNoticeLevel, request_id, envelope("platform.notice", std::move(record)));
}

}  // namespace funcd
