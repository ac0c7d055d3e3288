#include "funcd/logs/function_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
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

FunctionLog::FunctionLog(std::filesystem::path file, const OutputLimits& limits,
                         std::shared_ptr<LogCounters> counters, std::shared_ptr<LogFollowers> followers)
    : file_(std::move(file)), limits_(limits), counters_(std::move(counters)), followers_(std::move(followers)) {
    limits_.log_files = std::clamp(limits_.log_files, 1, OutputLimits::kMaxLogFiles);
    if (limits_.log_max_bytes < 1) limits_.log_max_bytes = 1;
    open_live(false);
    // Files beyond the number kept, left by an earlier start with a larger --log-files.
    for (int n = limits_.log_files;; ++n) {
        ::unlink(log_index_path(rotated(file_, n)).c_str());
        if (::unlink(rotated(file_, n).c_str()) != 0) break;
    }
}

std::filesystem::path FunctionLog::rotated(const std::filesystem::path& live, int n) {
    auto p = live;
    p += "." + std::to_string(n);
    return p;
}

bool FunctionLog::open_live(bool truncate) {
    // What a function prints can be anything it holds: the daemon's user only (a log from
    // an older data directory is narrowed too). Never through a link planted in its place.
    const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (truncate ? O_TRUNC : 0);
    fd_.reset(::open(file_.c_str(), flags, 0600));
    if (!fd_) {
        if (lost_bytes_ == 0)
            spdlog::error("logs: open {} failed: {} (errno {})", file_.string(), std::strerror(errno), errno);
        lost_reason_ = fmt::format("open failed: {}", std::strerror(errno));
        return false;
    }
    if (::fchmod(fd_.get(), 0600) != 0)
        spdlog::warn("logs: chmod 0600 {} failed: {} (errno {})", file_.string(), std::strerror(errno), errno);
    struct stat st {};
    size_ = ::fstat(fd_.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    mid_line_ = false;
    index_.open(file_, fd_.get(), size_);
    return true;
}

void FunctionLog::rotate() {
    index_.mark(size_);
    index_.close();
    fd_.reset();
    // Oldest first, so each rename lands on a name already moved on; the oldest kept file
    // is replaced by the one before it. Failures are logged and the live file is started
    // afresh all the same: the bound on the disk holds whatever happened to the history.
    // Each file's index goes with it (one that does not is found out by its inode).
    for (int n = limits_.log_files - 1; n >= 1; --n) {
        const auto from = n == 1 ? file_ : rotated(file_, n - 1);
        if (::rename(from.c_str(), rotated(file_, n).c_str()) != 0 && errno != ENOENT)
            spdlog::warn("logs: rename {} failed: {} (errno {})", from.string(), std::strerror(errno), errno);
        if (::rename(log_index_path(from).c_str(), log_index_path(rotated(file_, n)).c_str()) != 0 && errno != ENOENT)
            spdlog::warn("logs: rename {} failed: {} (errno {})", log_index_path(from).string(), std::strerror(errno),
                         errno);
    }
    if (limits_.log_files == 1) ::unlink(log_index_path(file_).c_str());
    open_live(true);
}

FunctionLog::~FunctionLog() { flush(); }

const std::string& FunctionLog::stamp() {
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
    return stamp_;
}

void FunctionLog::record(const LogRecord& r) {
    const std::size_t line_begin = buffer_.size();
    if (r.time) {
        append_log_line(buffer_, format_rfc3339(*r.time), r.request_id, r.stream, r.level, r.message);
    } else {
        append_log_line(buffer_, stamp(), r.request_id, r.stream, r.level, r.message);
    }
    end_line(line_begin);
}

std::size_t FunctionLog::begin_platform(std::string_view request_id) {
    platform_line_begin_ = buffer_.size();
    append_log_prefix(buffer_, stamp(), request_id, LogStream::platform, LogLevel::none);
    return buffer_.size();
}

void FunctionLog::end_platform(std::size_t message_from) {
    escape_message_in_place(buffer_, message_from, true);
    end_line(platform_line_begin_);
}

void FunctionLog::end_line(std::size_t line_begin) {
    const std::string_view line = std::string_view(buffer_).substr(line_begin);
    if (followers_ && !followers_->empty()) followers_->deliver(line);
    // The id as the line has it: what a scan of the file would index.
    const std::string_view request_id = log_line_request_id(line);
    const std::uint64_t h = request_id.empty() ? 0 : log_request_hash(request_id);
    buffer_ += '\n';
    if (h != 0) {
        if (!runs_.empty() && runs_.back().hash == h && runs_.back().end == line_begin) {
            runs_.back().end = buffer_.size();
        } else {
            runs_.push_back({h, line_begin, buffer_.size()});
        }
    }
    if (buffer_.size() >= kFlushThresholdBytes) flush();
}

std::string FunctionLog::dropped_output(std::string_view request_id, const OutputBudget& budget) {
    if (budget.dropped_bytes() == 0) return {};
    counters_->dropped_bytes += budget.dropped_bytes();
    // After Lambda's telemetry event platform.logsDropped: what was dropped and why.
    std::string line =
        request_id.empty()
            ? fmt::format("LOGS_DROPPED Dropped: {} bytes, {} lines\tReason: output between invocations went "
                          "over {} bytes (output.idle_bytes)",
                          budget.dropped_bytes(), budget.dropped_lines(), budget.limit())
            : fmt::format("LOGS_DROPPED RequestId: {}\tDropped: {} bytes, {} lines\tReason: the invocation "
                          "printed more than {} bytes (output.invocation_bytes)",
                          request_id, budget.dropped_bytes(), budget.dropped_lines(), budget.limit());
    platform_for(request_id, line);
    return line;
}

void FunctionLog::discard() {
    discarded_ = true;
    buffer_.clear();
    runs_.clear();
    index_.close();
    fd_.reset();
}

bool FunctionLog::write_fully(std::string_view data, std::size_t& written) {
    written = 0;
    while (written < data.size()) {
        const ssize_t n = ::write(fd_.get(), data.data() + written, data.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            // A regular file never takes zero bytes of a non-empty write but on an error:
            // never retried, so a full or broken disk cannot spin the loop.
            if (n == 0) errno = EIO;
            if (written > 0) mid_line_ = data[written - 1] != '\n';
            size_ += written;
            return false;
        }
        written += static_cast<std::size_t>(n);
    }
    size_ += written;
    if (!data.empty()) mid_line_ = data.back() != '\n';
    return true;
}

std::size_t FunctionLog::write_rotating(std::string_view data, const std::vector<Run>& runs) {
    const std::uint64_t max = limits_.log_max_bytes;
    std::size_t consumed = 0;  // of data as given
    run_cursor_ = 0;
    while (!data.empty()) {
        if (!fd_ && !open_live(false)) return data.size();
        const std::uint64_t room = size_ < max ? max - size_ : 0;
        std::size_t take = data.size();
        if (take > room) {
            // Whole lines to a file, unless one line alone is larger than a file.
            const auto cut = room > 0 ? data.substr(0, static_cast<std::size_t>(room)).rfind('\n')
                                      : std::string_view::npos;
            if (cut != std::string_view::npos) {
                take = cut + 1;
            } else if (size_ > 0) {
                rotate();  // leaves an empty live file, or none: either way this loop moves on
                continue;
            } else {
                take = static_cast<std::size_t>(room);
            }
        }
        std::size_t written = 0;
        const std::uint64_t file_offset = size_;
        if (!write_fully(data.substr(0, take), written)) {
            lost_reason_ = fmt::format("write failed: {}", std::strerror(errno));
            if (lost_bytes_ == 0)
                spdlog::error("logs: write {} failed: {} (errno {}); lines are dropped and counted until it works",
                              file_.string(), std::strerror(errno), errno);
            return data.size() - written;
        }
        // The runs (or their parts) in data[consumed, consumed + take) are now at file_offset.
        const std::size_t end = consumed + take;
        while (run_cursor_ < runs.size() && runs[run_cursor_].begin < end) {
            const Run& r = runs[run_cursor_];
            const std::size_t from = std::max(r.begin, consumed), to = std::min(r.end, end);
            if (to > from) index_.add(r.hash, file_offset + (from - consumed), to - from);
            if (r.end > end) break;
            ++run_cursor_;
        }
        consumed = end;
        data.remove_prefix(take);
    }
    return 0;
}

void FunctionLog::flush() {
    if (buffer_.empty()) return;
    if (discarded_) {
        buffer_.clear();
        runs_.clear();
        return;
    }
    if (lost_bytes_ > 0) {
        // Say what a failed write cost before anything else reaches the file.
        std::string marker = mid_line_ ? "\n" : "";
        append_log_line(marker, stamp(), {}, LogStream::platform, LogLevel::none,
                        fmt::format("LOGS_DROPPED Dropped: {} bytes\tReason: {}", lost_bytes_, lost_reason_));
        marker += '\n';
        if (write_rotating(marker) == 0) {
            spdlog::warn("logs: {} written again; {} bytes were lost ({})", file_.string(), lost_bytes_, lost_reason_);
            lost_bytes_ = 0;
        }
    }
    if (lost_bytes_ > 0) {
        counters_->dropped_bytes += buffer_.size();
        lost_bytes_ += buffer_.size();
    } else if (const std::size_t lost = write_rotating(buffer_, runs_); lost > 0) {
        counters_->dropped_bytes += lost;
        lost_bytes_ += lost;
    } else {
        index_.mark(size_);
    }
    buffer_.clear();
    runs_.clear();
}

LogDirectory::LogDirectory(boost::asio::io_context& io, std::filesystem::path dir, const OutputLimits& limits,
                           const LogsApiLimits& api_limits)
    : dir_(std::move(dir)), limits_(limits), api_limits_(api_limits), timer_(io) {
    std::filesystem::create_directories(dir_);
    schedule_flush();
}

LogDirectory::~LogDirectory() { flush_all(); }

std::filesystem::path LogDirectory::path_for(const std::string& function) const {
    return dir_ / (function + ".log");
}

std::shared_ptr<FunctionLog> LogDirectory::open(const std::string& function) {
    auto& slot = logs_[function];
    if (auto existing = slot.log.lock()) return existing;
    auto log = std::make_shared<FunctionLog>(path_for(function), limits_, slot.counters, slot.followers);
    slot.log = log;
    return log;
}

void LogDirectory::remove(const std::string& function) {
    if (auto it = logs_.find(function); it != logs_.end()) {
        if (auto log = it->second.log.lock()) log->discard();
        const auto followers = it->second.followers;
        follower_count_ -= followers->size();
        logs_.erase(it);
        followers->end_all("deleted");
    }
    // Every <function>.log.<n>, not only the ones the current --log-files keeps, and their
    // indexes (<name>.idx, and <name>.idx.tmp... left by a crash). Names of functions hold no
    // '.', so no other function's files match.
    const std::string live = function + ".log";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        std::string name = entry.path().filename().string();
        if (const auto idx = name.find(".idx"); idx != std::string::npos) name.resize(idx);
        const bool rolled = name.size() > live.size() + 1 && name.starts_with(live + ".") &&
                            std::all_of(name.begin() + static_cast<std::ptrdiff_t>(live.size() + 1), name.end(),
                                        [](char c) { return c >= '0' && c <= '9'; });
        if (name != live && !rolled) continue;
        if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT)
            spdlog::error("logs: remove {} failed: {} (errno {})", entry.path().string(), std::strerror(errno), errno);
    }
    if (ec) spdlog::error("logs: listing {} failed: {}", dir_.string(), ec.message());
}

std::uint64_t LogDirectory::dropped_bytes(const std::string& function) const {
    auto it = logs_.find(function);
    return it == logs_.end() ? 0 : it->second.counters->dropped_bytes;
}

void LogDirectory::flush_all() {
    for (auto& [name, slot] : logs_) {
        if (auto log = slot.log.lock()) log->flush();
    }
}

void LogDirectory::flush(const std::string& function) {
    if (auto it = logs_.find(function); it != logs_.end())
        if (auto log = it->second.log.lock()) log->flush();
}

std::optional<std::string> LogDirectory::follow(const std::string& function, std::shared_ptr<LogFollower> follower) {
    if (followers_ended_) return "the daemon is stopping";
    if (follower_count_ >= static_cast<std::size_t>(std::max(0, api_limits_.max_followers)))
        return fmt::format("{} logs are being followed, the most at once (logs.max_followers)", follower_count_);
    auto& slot = logs_[function];
    if (slot.followers->size() >= static_cast<std::size_t>(std::max(0, api_limits_.max_followers_per_function)))
        return fmt::format("function '{}' has {} followers of its log, the most at once "
                           "(logs.max_followers_per_function)",
                           function, slot.followers->size());
    slot.followers->add(std::move(follower));
    ++follower_count_;
    return std::nullopt;
}

void LogDirectory::unfollow(const std::string& function, const LogFollower* follower) {
    if (auto it = logs_.find(function); it != logs_.end() && it->second.followers->remove(follower))
        --follower_count_;
}

void LogDirectory::end_followers() {
    followers_ended_ = true;
    follower_count_ = 0;
    for (auto& [name, slot] : logs_) slot.followers->end_all("shutdown");
}

void LogDirectory::schedule_flush() {
    // Heartbeats shorter than a flush interval (tests shrink them) are sent at each tick.
    timer_.expires_after(std::min<std::chrono::steady_clock::duration>(kFlushInterval, api_limits_.heartbeat_interval));
    timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        flush_all();
        if (follower_count_ > 0 && std::chrono::steady_clock::now() - last_heartbeat_ >= api_limits_.heartbeat_interval) {
            last_heartbeat_ = std::chrono::steady_clock::now();
            for (auto& [name, slot] : logs_) slot.followers->heartbeat();
        }
        schedule_flush();
    });
}

}  // namespace funcd
