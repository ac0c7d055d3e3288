#pragma once
// Per-function log files under DATA_DIR/logs/<function>.log: the workers' output, each
// line tagged with the request it was printed during, and Lambda's START/END/REPORT
// lines. Lines are buffered and written in batches: logs are not on the caller's
// critical path and need not survive a crash of the daemon to the last line.
//
// A log is bounded (OutputLimits): the live file rolls over before it would pass
// log_max_bytes (<fn>.log -> <fn>.log.1 -> ... -> <fn>.log.<log_files - 1>, the oldest
// removed), so a function's log never takes more than log_max_bytes * log_files. What is
// lost on the way (output over a worker's budget, a write that failed) is counted per
// function and said in a LOGS_DROPPED line.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "funcd/common/unique_fd.hpp"
#include "funcd/logs/log_record.hpp"
#include "funcd/logs/output_budget.hpp"
#include "funcd/logs/output_limits.hpp"

namespace funcd {

// What was lost of one function's output. It outlives the FunctionLog (whose file is closed
// when no worker of the function is left), so the count only grows while the daemon runs.
struct LogCounters {
    // Output dropped over a worker's budget plus log bytes a write failed to store.
    std::uint64_t dropped_bytes = 0;
};

class FunctionLog {
public:
    explicit FunctionLog(std::filesystem::path file, const OutputLimits& limits = {},
                         std::shared_ptr<LogCounters> counters = std::make_shared<LogCounters>());
    ~FunctionLog();
    FunctionLog(const FunctionLog&) = delete;
    FunctionLog& operator=(const FunctionLog&) = delete;

    // One line of a worker's output; `request_id` empty outside an invocation.
    void output(std::string_view request_id, std::string_view text);
    // One record: a worker's line or framed record, or one of funcd's own. Written in the
    // line format of output() and platform(), its line breaks as '\r' so it stays one line.
    void record(const LogRecord& r);
    // A line from funcd itself (START, END, REPORT, errors).
    void platform(std::string_view text);
    // The same, formatted straight into the buffer (the lines written on every invocation).
    template <class... Args>
    void platform(fmt::format_string<Args...> format, Args&&... args) {
        append_prefix();
        fmt::format_to(std::back_inserter(buffer_), format, std::forward<Args>(args)...);
        end_line();
    }
    // A line written by `write(out)`, `out` an output iterator into the buffer.
    template <class Write>
    void platform_with(Write&& write) {
        append_prefix();
        write(std::back_inserter(buffer_));
        end_line();
    }
    // A stretch of a worker's output went over `budget`: counts what was dropped and logs
    // one LOGS_DROPPED line saying so (nothing if nothing was dropped). `request_id` is the
    // invocation's, empty for output between invocations. Returns the line's text, for an
    // invocation's log tail (empty if none).
    std::string dropped_output(std::string_view request_id, const OutputBudget& budget);
    // Counts `bytes` of the function's output as dropped, its record written elsewhere (a
    // platform.logsDropped record, a malformed telemetry stream's rest).
    void count_dropped(std::uint64_t bytes) { counters_->dropped_bytes += bytes; }
    void flush();

    // The function is deleted: its files are removed by the LogDirectory, and whatever is
    // still logged through this object (workers finishing) goes nowhere.
    void discard();

    const OutputLimits& limits() const { return limits_; }
    std::uint64_t dropped_bytes() const { return counters_->dropped_bytes; }
    const std::filesystem::path& path() const { return file_; }
    // <fn>.log.<n>: the n-th newest rolled-over file.
    static std::filesystem::path rotated(const std::filesystem::path& live, int n);

private:
    // The current time as the lines' first field.
    const std::string& stamp();
    void append_prefix();
    void end_line();
    bool open_live(bool truncate);
    void rotate();
    // Writes `data` across rollovers; returns how many bytes of it could not be written.
    std::size_t write_rotating(std::string_view data);
    // One write(2) loop into the live file; false on an error (errno set), having written
    // part of `data` maybe.
    bool write_fully(std::string_view data, std::size_t& written);

    std::filesystem::path file_;
    OutputLimits limits_;
    std::shared_ptr<LogCounters> counters_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;  // of the live file
    bool discarded_ = false;
    // Bytes lost to failed writes since the last one that worked, and why: said in one
    // LOGS_DROPPED line as soon as the file takes writes again.
    std::uint64_t lost_bytes_ = 0;
    std::string lost_reason_;
    // A failed write may leave a cut line at the end of the file: the next line starts afresh.
    bool mid_line_ = false;
    std::string buffer_;
    // The last timestamp written and the second it is for: lines within one second only
    // differ in the milliseconds, so the calendar arithmetic is done once a second.
    std::string stamp_;
    std::int64_t stamp_second_ = INT64_MIN;
};

// Hands out one FunctionLog per function and flushes them all periodically.
class LogDirectory {
public:
    LogDirectory(boost::asio::io_context& io, std::filesystem::path dir, const OutputLimits& limits = {});
    ~LogDirectory();

    std::shared_ptr<FunctionLog> open(const std::string& function);
    // The live file; rolled-over ones are FunctionLog::rotated(path_for(f), n).
    std::filesystem::path path_for(const std::string& function) const;
    // Function `function` is deleted: its log files go, the rolled-over ones included, and
    // so does its count of dropped bytes. A function created later under the same name
    // starts a fresh log.
    void remove(const std::string& function);
    // Bytes of `function`'s output dropped or lost since the daemon started (0 if none).
    std::uint64_t dropped_bytes(const std::string& function) const;
    const OutputLimits& limits() const { return limits_; }
    void flush_all();

private:
    struct Slot {
        std::weak_ptr<FunctionLog> log;
        std::shared_ptr<LogCounters> counters = std::make_shared<LogCounters>();
    };
    void schedule_flush();

    std::filesystem::path dir_;
    OutputLimits limits_;
    boost::asio::steady_timer timer_;
    std::map<std::string, Slot> logs_;
    // Gone with the directory. A flush whose timer had already fired when the directory was
    // destroyed still runs, with no error (destroying a timer cancels only waits that have
    // not completed): it sees this expired and does nothing.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace funcd
