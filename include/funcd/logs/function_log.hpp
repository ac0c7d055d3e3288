#pragma once
// Per-function log files under DATA_DIR/logs/<function>.log: the workers' output, each
// line tagged with the request it was printed during, and Lambda's START/END/REPORT
// lines. Lines are buffered and written in batches: logs are not on the caller's
// critical path and need not survive a crash of the daemon to the last line.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

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
    void flush();

private:
    void append_prefix();

    std::filesystem::path file_;
    UniqueFd fd_;
    std::string buffer_;
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
