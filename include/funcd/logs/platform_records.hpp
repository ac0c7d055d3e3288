#pragma once
// What funcd writes into a function's log about its invocations and workers, in the form
// the function's LoggingConfig asks for:
//
//   Text  Lambda's lines: INIT_START, START, END, REPORT, LOGS_DROPPED and funcd's own
//         notices (INIT_ERROR, OUT_OF_MEMORY, ...), as they have always been.
//   JSON  Lambda's telemetry records, one JSON object a line: {"time", "type", "record"},
//         type platform.initStart, platform.start, platform.runtimeDone, platform.report,
//         platform.initReport, platform.logsDropped; funcd's notices as platform.notice.
//         Each type has a level (Lambda's mapping: runtimeDone DEBUG, logsDropped WARN,
//         notices WARN, the rest INFO) and records below the function's system_log_level
//         are not written.
//
// Every platform record of a function's log is built here; the worker calls these where
// its invocations and processes start and end.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "funcd/logs/function_log.hpp"
#include "funcd/logs/log_levels.hpp"

namespace funcd {

// The part of a function's LoggingConfig platform records follow.
struct PlatformLogFormat {
    LogFormat format = LogFormat::text;
    LogLevel system_level = LogLevel::info;
};

// A worker's launch (INIT_START / platform.initStart).
struct InitStartFigures {
    std::string_view function_name;
    std::string_view version;  // "$LATEST" or the number
    std::string_view runtime_version;
    std::string_view runtime_version_arn;
    bool provisioned = false;  // initializationType provisioned-concurrency, else on-demand
};

// An invocation's end (END, REPORT / platform.runtimeDone, platform.report).
struct InvocationFigures {
    std::string_view request_id;
    std::string_view version;
    std::int64_t duration_us = 0;
    std::int64_t billed_ms = 0;
    int memory_mb = 0;
    std::uint64_t max_memory_used_mb = 0;
    std::optional<std::int64_t> init_duration_us;
    std::string_view trace_id;  // the whole X-Amzn-Trace-Id value; empty if none
    // Lambda's statuses: success, error (the function's), failure (the runtime's), timeout.
    std::string_view status = "success";
    std::string_view error_type;  // with a status other than success
};

class PlatformRecords {
public:
    explicit PlatformRecords(PlatformLogFormat format = {}) : format_(format) {}

    const PlatformLogFormat& format() const { return format_; }

    void init_start(FunctionLog& log, const InitStartFigures& f) const;
    // A worker's init failed (INIT_ERROR, INIT_TIMEOUT / platform.initReport): `text` is the
    // Text line, `status` error or timeout, `duration_us` since the launch.
    // `request_id`: the invocation that waited for this worker, if one did.
    void init_failed(FunctionLog& log, std::string_view text, std::string_view status, std::string_view error_type,
                     std::int64_t duration_us, std::string_view request_id = {}) const;
    // Each returns the record as written, when `line` is set (for an invocation's log
    // tail), and writes it to `log` when `log` is set: a caller answered before the log is
    // written renders first and writes after.
    void start(FunctionLog* log, std::string* line, std::string_view request_id, std::string_view version,
               std::string_view trace_id) const;
    void end(FunctionLog* log, std::string* line, const InvocationFigures& f) const;
    void report(FunctionLog* log, std::string* line, const InvocationFigures& f) const;
    // Output dropped over a budget (LOGS_DROPPED / platform.logsDropped): `text` the Text line.
    void logs_dropped(FunctionLog* log, std::string* line, std::string_view text, std::uint64_t dropped_bytes,
                      std::uint64_t dropped_records, std::string_view reason) const;
    // One of funcd's own notices (SANDBOX_VIOLATION, OUT_OF_MEMORY, CLIENT_DISCONNECTED,
    // TELEMETRY_MALFORMED ...): `text` the Text line, whose first word names it.
    void notice(FunctionLog& log, std::string_view text, std::string_view request_id = {}) const;

private:
    bool wanted(LogLevel level) const;
    // Writes/returns one record.
    void emit(FunctionLog* log, std::string* line, LogLevel level, std::string_view request_id,
              std::string_view text) const;

    PlatformLogFormat format_;
};

}  // namespace funcd
