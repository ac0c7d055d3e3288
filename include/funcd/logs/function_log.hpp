#pragma once
// Per-function log files under DATA_DIR/logs/<function>.log: the workers' output, each
// line tagged with the request it was printed during, and Lambda's START/END/REPORT
// lines. Lines are buffered and written in batches: logs are not on the caller's
// critical path and need not survive a crash of the daemon to the last line.
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

namespace funcd {

class FunctionLog {
public:
    explicit FunctionLog(std::filesystem::path file);
    ~FunctionLog();
    FunctionLog(const FunctionLog&) = delete;
    FunctionLog& operator=(const FunctionLog&) = delete;

    // One line of a worker's output; `request_id` empty outside an invocation.
    void output(std::string_view request_id, std::string_view text);
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
    void flush();

private:
    void append_prefix();
    void end_line();

    std::filesystem::path file_;
    UniqueFd fd_;
    std::string buffer_;
    // The last timestamp written and the second it is for: lines within one second only
    // differ in the milliseconds, so the calendar arithmetic is done once a second.
    std::string stamp_;
    std::int64_t stamp_second_ = INT64_MIN;
};

// Hands out one FunctionLog per function and flushes them all periodically.
class LogDirectory {
public:
    LogDirectory(boost::asio::io_context& io, std::filesystem::path dir);
    ~LogDirectory();

    std::shared_ptr<FunctionLog> open(const std::string& function);
    std::filesystem::path path_for(const std::string& function) const;
    void flush_all();

private:
    void schedule_flush();

    std::filesystem::path dir_;
    boost::asio::steady_timer timer_;
    std::map<std::string, std::weak_ptr<FunctionLog>> logs_;
};

}  // namespace funcd
