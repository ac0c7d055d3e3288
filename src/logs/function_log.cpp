#include "funcd/logs/function_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "funcd/common/time_format.hpp"

namespace funcd {
namespace {

// Buffered log bytes that trigger a write even before the periodic flush.
constexpr std::size_t kFlushThresholdBytes = 64 * 1024;
// How stale a log line may be before it reaches the file: short enough for `tail -f`.
constexpr auto kFlushInterval = std::chrono::milliseconds(200);

}  // namespace

FunctionLog::FunctionLog(std::filesystem::path file) : file_(std::move(file)) {
    // What a function prints can be anything it holds: the daemon's user only (a log from
    // an older data directory is narrowed too).
    fd_.reset(::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_) spdlog::error("logs: open {} failed: {} (errno {})", file_.string(), std::strerror(errno), errno);
    else if (::fchmod(fd_.get(), 0600) != 0)
        spdlog::warn("logs: chmod 0600 {} failed: {} (errno {})", file_.string(), std::strerror(errno), errno);
}

FunctionLog::~FunctionLog() { flush(); }

void FunctionLog::append_prefix() {
    using namespace std::chrono;
    const auto now = floor<milliseconds>(system_clock::now());
    const auto second = floor<seconds>(now);
    if (second.time_since_epoch().count() != stamp_second_) {
        stamp_ = format_rfc3339(second);
        stamp_second_ = second.time_since_epoch().count();
    }
    // "2026-11-26T23:40:18.123Z": the milliseconds are the three digits before the 'Z'.
    if (stamp_.size() >= 5 && stamp_[stamp_.size() - 5] == '.') {
        auto ms = static_cast<unsigned>((now - second).count());
        char* digits = stamp_.data() + stamp_.size() - 4;
        digits[0] = static_cast<char>('0' + ms / 100);
        digits[1] = static_cast<char>('0' + ms / 10 % 10);
        digits[2] = static_cast<char>('0' + ms % 10);
    } else {
        stamp_ = format_rfc3339(now);
        stamp_second_ = INT64_MIN;
    }
    buffer_ += stamp_;
    buffer_ += '\t';
}

void FunctionLog::end_line() {
    buffer_ += '\n';
    if (buffer_.size() >= kFlushThresholdBytes) flush();
}

void FunctionLog::output(std::string_view request_id, std::string_view text) {
    append_prefix();
    buffer_ += request_id.empty() ? std::string_view("-") : request_id;
    buffer_ += '\t';
    buffer_ += text;
    end_line();
}

void FunctionLog::platform(std::string_view text) {
    append_prefix();
    buffer_ += text;
    end_line();
}

void FunctionLog::flush() {
    if (buffer_.empty() || !fd_) {
        buffer_.clear();
        return;
    }
    const char* p = buffer_.data();
    std::size_t left = buffer_.size();
    while (left > 0) {
        ssize_t n = ::write(fd_.get(), p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("logs: write {} failed: {} (errno {}); {} bytes dropped", file_.string(),
                          std::strerror(errno), errno, left);
            break;
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    buffer_.clear();
}

LogDirectory::LogDirectory(boost::asio::io_context& io, std::filesystem::path dir)
    : dir_(std::move(dir)), timer_(io) {
    std::filesystem::create_directories(dir_);
    schedule_flush();
}

LogDirectory::~LogDirectory() { flush_all(); }

std::filesystem::path LogDirectory::path_for(const std::string& function) const {
    return dir_ / (function + ".log");
}

std::shared_ptr<FunctionLog> LogDirectory::open(const std::string& function) {
    auto& slot = logs_[function];
    if (auto existing = slot.lock()) return existing;
    auto log = std::make_shared<FunctionLog>(path_for(function));
    slot = log;
    return log;
}

void LogDirectory::flush_all() {
    for (auto it = logs_.begin(); it != logs_.end();) {
        if (auto log = it->second.lock()) {
            log->flush();
            ++it;
        } else {
            it = logs_.erase(it);
        }
    }
}

void LogDirectory::schedule_flush() {
    timer_.expires_after(kFlushInterval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        flush_all();
        schedule_flush();
    });
}

}  // namespace funcd
