#pragma once
// Per-function log files under DATA_DIR/logs/<function>.log: the workers' output, each
// record tagged with the request it was printed during, and Lambda's START/END/REPORT
// records, one line each (log_line.hpp). Lines are buffered and written in batches: logs are
// not on the caller's critical path and need not survive a crash of the daemon to the last
// line. Each file has an index of where each request's records are (log_index.hpp), and
// followers of the log get each record as it is appended (log_followers.hpp).
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
#include <optional>
#include <vector>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "funcd/common/unique_fd.hpp"
#include "funcd/logs/log_followers.hpp"
#include "funcd/logs/log_index.hpp"
#include "funcd/logs/log_line.hpp"
#include "funcd/logs/log_record.hpp"
#include "funcd/logs/logs_api_limits.hpp"
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
                         std::shared_ptr<LogCounters> counters = std::make_shared<LogCounters>(),
                         std::shared_ptr<LogFollowers> followers = std::make_shared<LogFollowers>());
    ~FunctionLog();
    FunctionLog(const FunctionLog&) = delete;
    FunctionLog& operator=(const FunctionLog&) = delete;

    // One record (log_record.hpp).
    void record(const LogRecord& r);
    // One line of a worker's output; `request_id` empty outside an invocation.
    void output(std::string_view request_id, std::string_view text) {
        record({request_id, LogStream::function, LogLevel::none, text, std::nullopt});
    }
    // A record from funcd itself outside an invocation (INIT_START, INIT_ERROR...).
    void platform(std::string_view text) { platform_for({}, text); }
    // One from funcd about the invocation `request_id` (START, END, REPORT, LOGS_DROPPED...).
    void platform_for(std::string_view request_id, std::string_view text) {
        record({request_id, LogStream::platform, LogLevel::none, text, std::nullopt});
    }
    // The same, formatted straight into the buffer (the records written on every invocation).
    template <class... Args>
    void platform_for(std::string_view request_id, fmt::format_string<Args...> format, Args&&... args) {
        const std::size_t from = begin_platform(request_id);
        fmt::format_to(std::back_inserter(buffer_), format, std::forward<Args>(args)...);
        end_platform(from);
    }
    // A record of invocation `request_id` written by `write(out)`, `out` an output iterator
    // into the buffer.
    template <class Write>
    void platform_with(std::string_view request_id, Write&& write) {
        const std::size_t from = begin_platform(request_id);
        write(std::back_inserter(buffer_));
        end_platform(from);
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
    // A run of one request's consecutive records in buffer_, for the index.
    struct Run {
        std::uint64_t hash;
        std::size_t begin, end;
    };

    // The current time as the lines' first field.
    const std::string& stamp();
    std::size_t begin_platform(std::string_view request_id);
    void end_platform(std::size_t message_from);
    // The line starting at buffer_[line_begin] is complete: noted for the index, handed to
    // the followers, ended.
    void end_line(std::size_t line_begin);
    bool open_live(bool truncate);
    void rotate();
    // Writes `data` across rollovers; returns how many bytes of it could not be written.
    // `runs`: where in `data` each request's records are, for the index.
    std::size_t write_rotating(std::string_view data, const std::vector<Run>& runs = {});
    // One write(2) loop into the live file; false on an error (errno set), having written
    // part of `data` maybe.
    bool write_fully(std::string_view data, std::size_t& written);

    std::filesystem::path file_;
    OutputLimits limits_;
    std::shared_ptr<LogCounters> counters_;
    std::shared_ptr<LogFollowers> followers_;
    UniqueFd fd_;
    LogIndexWriter index_;
    std::vector<Run> runs_;
    std::size_t run_cursor_ = 0;  // during a flush: the first run not yet wholly indexed
    std::size_t platform_line_begin_ = 0;  // of the record platform_for/platform_with writes
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
    LogDirectory(boost::asio::io_context& io, std::filesystem::path dir, const OutputLimits& limits = {},
                 const LogsApiLimits& api_limits = {});
    ~LogDirectory();

    std::shared_ptr<FunctionLog> open(const std::string& function);
    // The live file; rolled-over ones are FunctionLog::rotated(path_for(f), n). Safe from
    // any thread (the directory never changes).
    std::filesystem::path path_for(const std::string& function) const;
    // Function `function` is deleted: its log files go, the rolled-over ones included, and
    // so does its count of dropped bytes. A function created later under the same name
    // starts a fresh log.
    void remove(const std::string& function);
    // Bytes of `function`'s output dropped or lost since the daemon started (0 if none).
    std::uint64_t dropped_bytes(const std::string& function) const;
    const OutputLimits& limits() const { return limits_; }
    const LogsApiLimits& api_limits() const { return api_limits_; }
    void flush_all();
    // Writes what `function`'s log holds in memory, so a query of its files sees it.
    void flush(const std::string& function);

    // Adds a follower of `function`'s log; nullopt, or why not (over logs.max_followers or
    // logs.max_followers_per_function).
    std::optional<std::string> follow(const std::string& function, std::shared_ptr<LogFollower> follower);
    void unfollow(const std::string& function, const LogFollower* follower);
    // The daemon stops: every follower is ended ("shutdown").
    void end_followers();
    std::size_t followers() const { return follower_count_; }

private:
    struct Slot {
        std::weak_ptr<FunctionLog> log;
        std::shared_ptr<LogCounters> counters = std::make_shared<LogCounters>();
        std::shared_ptr<LogFollowers> followers = std::make_shared<LogFollowers>();
    };
    void schedule_flush();

    std::filesystem::path dir_;
    OutputLimits limits_;
    LogsApiLimits api_limits_;
    boost::asio::steady_timer timer_;
    std::size_t follower_count_ = 0;
    bool followers_ended_ = false;
    std::chrono::steady_clock::time_point last_heartbeat_ = std::chrono::steady_clock::now();
    std::map<std::string, Slot> logs_;
    // Gone with the directory. A flush whose timer had already fired when the directory was
    // destroyed still runs, with no error (destroying a timer cancels only waits that have
    // not completed): it sees this expired and does nothing.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace funcd
