#include "funcd/logs/log_query.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "funcd/common/unique_fd.hpp"
#include "funcd/logs/log_index.hpp"
#include "funcd/logs/log_levels.hpp"

namespace funcd {
namespace {

// Ranges kept per request and file: each holds a record at least, so this many hold more
// than an answer's most records (logs.max_results), in 1 MiB.
constexpr std::size_t kMaxRangesPerLookup = 1u << 16;

struct OpenLog {
    std::filesystem::path path;
    UniqueFd fd;
    std::uint64_t size = 0;
    bool rolled = false;
};

// Calls on_line(line) for each whole line of fd[from, to).
template <class OnLine>
void read_lines(int fd, std::uint64_t from, std::uint64_t to, OnLine&& on_line) {
    std::string block(static_cast<std::size_t>(std::min<std::uint64_t>(kLogReadBlock, to - from)), '\0');
    std::string carry;
    bool skipping = false;
    std::uint64_t pos = from;
    while (pos < to) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), to - pos));
        const ssize_t n = ::pread(fd, block.data(), want, static_cast<off_t>(pos));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0) spdlog::error("logs: reading a log failed: {} (errno {})", std::strerror(errno), errno);
            return;
        }
        pos += static_cast<std::uint64_t>(n);
        std::string_view data(block.data(), static_cast<std::size_t>(n));
        while (!data.empty()) {
            const auto nl = data.find('\n');
            if (nl == std::string_view::npos) {
                if (!skipping) {
                    carry.append(data);
                    if (carry.size() > kMaxScannedLogLine) {
                        carry.clear();
                        skipping = true;
                    }
                }
                break;
            }
            if (skipping) {
                skipping = false;
            } else if (!carry.empty()) {
                carry.append(data.substr(0, nl));
                on_line(std::string_view(carry));
                carry.clear();
            } else {
                on_line(data.substr(0, nl));
            }
            data.remove_prefix(nl + 1);
        }
    }
}

// The files of a log, oldest first, each open once: a rollover while they are opened moves
// a file to the next name, where it may be opened again; the same inode is kept once.
std::vector<OpenLog> open_logs(const std::filesystem::path& live, int files) {
    std::vector<OpenLog> out;
    std::set<std::pair<dev_t, ino_t>> seen;
    for (int n = 0; n < std::max(1, files); ++n) {
        OpenLog l;
        l.path = live;
        if (n > 0) l.path += "." + std::to_string(n);
        l.fd.reset(::open(l.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!l.fd) {
            if (errno != ENOENT)
                spdlog::warn("logs: opening {} failed: {} (errno {})", l.path.string(), std::strerror(errno), errno);
            continue;
        }
        struct stat st {};
        if (::fstat(l.fd.get(), &st) != 0 || !seen.insert({st.st_dev, st.st_ino}).second) continue;
        l.size = static_cast<std::uint64_t>(st.st_size);
        l.rolled = n > 0;
        out.push_back(std::move(l));
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::uint8_t effective_level(LogLevel l) {
    return static_cast<std::uint8_t>(l == LogLevel::none ? LogLevel::info : l);
}

}  // namespace

bool LogFilter::matches(const LogLine& line) const {
    if (since && line.stamp < *since) return false;
    if (until && !(line.stamp < *until)) return false;
    if (min_level != LogLevel::none && effective_level(line.level) < static_cast<std::uint8_t>(min_level))
        return false;
    if (!request_ids.empty() &&
        std::find(request_ids.begin(), request_ids.end(), line.request_id) == request_ids.end())
        return false;
    return true;
}

void LogResults::add(std::string_view function, std::string_view line) {
    if (max_records_ == 0) {
        ++left_out_;
        return;
    }
    records_.push_back({std::string(function), std::string(line)});
    bytes_ += line.size();
    while (records_.size() > max_records_ || (bytes_ > max_bytes_ && records_.size() > 1)) {
        bytes_ -= records_.front().line.size();
        records_.pop_front();
        ++left_out_;
    }
}

void LogResults::sort_by_time() {
    std::stable_sort(records_.begin(), records_.end(), [](const Found& a, const Found& b) {
        return std::string_view(a.line).substr(0, kLogStampWidth) < std::string_view(b.line).substr(0, kLogStampWidth);
    });
}

void query_function_log(const std::filesystem::path& live, int files, const std::string& function,
                        const LogFilter& filter, LogResults& out) {
    auto take = [&](std::string_view raw) {
        if (auto line = parse_log_line(raw); line && filter.matches(*line)) out.add(function, raw);
    };
    for (const auto& log : open_logs(live, files)) {
        if (log.size == 0) continue;
        if (filter.request_ids.empty()) {
            read_lines(log.fd.get(), 0, log.size, take);
            continue;
        }
        // Each request's ranges through the index, read in the file's order.
        std::vector<ByteRange> ranges;
        for (const auto& id : filter.request_ids) {
            auto r = lookup_log_index(log.path, log.fd.get(), log.size, id, kMaxRangesPerLookup, log.rolled);
            ranges.insert(ranges.end(), r.begin(), r.end());
        }
        std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
        for (const auto& r : ranges) read_lines(log.fd.get(), r.offset, r.offset + r.length, take);
    }
}

nlohmann::json log_record_json(std::string_view function, const LogLine& line) {
    using nlohmann::json;
    json j = json::object();
    j["timestamp"] = line.stamp;
    if (!function.empty()) j["function"] = function;
    j["request_id"] = line.request_id.empty() ? json(nullptr) : json(line.request_id);
    j["level"] = line.level == LogLevel::none ? json(nullptr) : json(to_string(line.level));
    j["stream"] = stream_name(line.stream);
    std::string message = line.message();
    // A JSON log record (the runtime's JSON format) also comes parsed.
    if (!message.empty() && message.front() == '{') {
        json parsed = json::parse(message, nullptr, false);
        if (parsed.is_object()) j["record"] = std::move(parsed);
    }
    j["message"] = std::move(message);
    return j;
}

}  // namespace funcd
