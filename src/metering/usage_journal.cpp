#include "funcd/metering/usage_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/metering/usage_record_json.hpp"

namespace funcd {
namespace {

constexpr std::string_view kSegmentSuffix = ".jsonl";
constexpr std::size_t kNumberDigits = 20;  // every uint64_t, so names sort as numbers

// A record's line is a few hundred bytes (function names and request ids are short); a
// "line" longer than this is not one of ours and is skipped without being held in memory.
constexpr std::size_t kMaxLineBytes = 64 * 1024;
// How much of a segment replay holds at once.
constexpr std::size_t kReadChunkBytes = 64 * 1024;
// How much of a skipped line goes into the log.
constexpr std::size_t kLogPreviewBytes = 120;

std::optional<std::uint64_t> segment_number(const std::filesystem::path& p) {
    const std::string name = p.filename().string();
    if (name.size() != kNumberDigits + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) return std::nullopt;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + kNumberDigits, n);
    if (ec != std::errc() || end != name.data() + kNumberDigits) return std::nullopt;
    return n;
}

std::filesystem::path segment_path(const std::filesystem::path& dir, std::uint64_t n) {
    return dir / fmt::format("{:0{}}{}", n, kNumberDigits, kSegmentSuffix);
}

std::string preview(std::string_view bytes) {
    std::string out;
    for (char c : bytes.substr(0, kLogPreviewBytes)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    if (bytes.size() > kLogPreviewBytes) out += "...";
    return out;
}

// One line of a segment, without its '\n'.
void read_line(const std::filesystem::path& segment, std::string_view line, UsageJournal::ReadStats& stats,
               const std::function<void(UsageRecord)>& on_record) {
    if (line.empty()) return;
    auto parse = [](std::string_view text) -> std::optional<UsageRecord> {
        auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        return j.is_discarded() ? std::nullopt : usage_record_from_json(j);
    };
    if (auto r = parse(line)) {
        ++stats.records;
        return on_record(std::move(*r));
    }
    // A record is one flat object whose strings cannot hold `{"` unescaped, so a record
    // glued behind a torn fragment starts at the last `{"` of the line.
    const auto start = line.rfind("{\"");
    if (start != std::string_view::npos && start > 0) {
        if (auto r = parse(line.substr(start))) {
            spdlog::warn("usage journal {}: skipping a torn fragment of {} bytes before a record: {}",
                         segment.string(), start, preview(line.substr(0, start)));
            ++stats.skipped_lines;
            ++stats.records;
            return on_record(std::move(*r));
        }
    }
    ++stats.skipped_lines;
    spdlog::warn("usage journal {}: skipping a line that is not a usage record ({} bytes): {}", segment.string(),
                 line.size(), preview(line));
}

}  // namespace

UsageJournal::UsageJournal(std::filesystem::path dir) : dir_(std::move(dir)) {
    namespace fs = std::filesystem;
    // The journal was one file at this path before it was a directory of segments: move
    // it in (through a name of its own, so a crash halfway leaves it findable).
    const fs::path migrating = dir_.string() + ".migrating";
    std::error_code ec;
    if (fs::is_regular_file(dir_, ec)) {
        fs::rename(dir_, migrating, ec);
        if (ec) throw std::runtime_error("usage journal: cannot move " + dir_.string() + " aside: " + ec.message());
    }
    fs::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("usage journal: cannot create " + dir_.string() + ": " + ec.message());
    if (::chmod(dir_.c_str(), 0700) != 0)
        spdlog::warn("usage journal {}: chmod 0700 failed: {} (errno {})", dir_.string(), std::strerror(errno), errno);

    std::vector<std::pair<std::uint64_t, fs::path>> found;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        if (auto n = segment_number(entry.path()))
            found.emplace_back(*n, entry.path());
        else
            spdlog::warn("usage journal {}: ignoring {}, which is not a segment", dir_.string(),
                         entry.path().filename().string());
    }
    if (ec) throw std::runtime_error("usage journal: cannot list " + dir_.string() + ": " + ec.message());
    std::sort(found.begin(), found.end());
    std::uint64_t next = found.empty() ? 0 : found.back().first + 1;
    if (fs::exists(migrating, ec)) {
        const fs::path to = segment_path(dir_, next);
        fs::rename(migrating, to, ec);
        if (ec) throw std::runtime_error("usage journal: cannot move " + migrating.string() + " to " + to.string() + ": " +
                                         ec.message());
        spdlog::info("usage journal: the journal file of an earlier version became segment {}", to.string());
        found.emplace_back(next++, to);
    }
    for (auto& [n, p] : found) leftovers_.push_back(std::move(p));
    next_number_ = next;
}

std::optional<UsageJournal::Segment> UsageJournal::create_segment(int& error) {
    const std::filesystem::path path = segment_path(dir_, next_number_.fetch_add(1));
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) {
        error = errno;
        spdlog::error("usage journal {}: cannot create segment: {} (errno {})",
                      path.string(), std::strerror(error), error);
        return std::nullopt;
    }
    error = 0;
    return Segment{path, std::move(fd), 0};
}

int UsageJournal::probe_space(const Segment& segment, std::int64_t bytes) {
    const int fd = segment.fd.get();
    int e = ::fallocate(fd, 0, static_cast<off_t>(segment.bytes), static_cast<off_t>(bytes)) == 0 ? 0 : errno;
    if (e == EOPNOTSUPP) {
        // No fallocate on this file system: write the probe instead (O_APPEND, so at the end).
        const std::string block(4096, '\0');
        e = 0;
        for (std::int64_t left = bytes; left > 0 && e == 0;) {
            const ssize_t n = ::write(fd, block.data(), static_cast<std::size_t>(std::min<std::int64_t>(left, 4096)));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) e = n < 0 ? errno : ENOSPC;
            else left -= n;
        }
    }
    // Given back whatever happened: the segment starts empty.
    if (::ftruncate(fd, static_cast<off_t>(segment.bytes)) != 0) {
        const int t = errno;
        spdlog::error("usage journal {}: giving back the probed space failed: {} (errno {})", segment.path.string(),
                      std::strerror(t), t);
        return t;
    }
    return e;
}

void UsageJournal::discard(Segment segment) {
    segment.fd.reset();
    if (::unlink(segment.path.c_str()) != 0 && errno != ENOENT)
        spdlog::error("usage journal {}: unlink failed: {} (errno {})",
                      segment.path.string(), std::strerror(errno), errno);
}

void UsageJournal::remove(const std::vector<std::filesystem::path>& files) {
    for (const auto& f : files)
        if (::unlink(f.c_str()) != 0 && errno != ENOENT)
            spdlog::error("usage journal {}: unlink failed: {} (errno {})", f.string(), std::strerror(errno), errno);
}

int UsageJournal::write_line(Segment& segment, std::string_view line) {
    std::string_view rest = line;
    // One write(2) in the normal case; a short write only happens when the disk fills up
    // (or on a signal), and the loop then gets the error itself.
    while (!rest.empty()) {
        const ssize_t n = ::write(segment.fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = n < 0 ? errno : EIO;
            spdlog::error("usage journal {}: write failed after {} of {} bytes: {} (errno {})", segment.path.string(),
                          line.size() - rest.size(), line.size(), std::strerror(e), e);
            // Shrinking needs no space; if even that fails, replay skips the fragment as a torn tail.
            if (rest.size() != line.size() && ::ftruncate(segment.fd.get(), static_cast<off_t>(segment.bytes)) != 0)
                spdlog::error("usage journal {}: cutting off the partial line failed: {} (errno {}); replay will skip "
                              "it as a torn tail",
                              segment.path.string(), std::strerror(errno), errno);
            return e;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    segment.bytes += line.size();
    return 0;
}

void UsageJournal::roll(Segment next, std::uint64_t end_seq) {
    seal(end_seq);
    current_ = std::move(next);
}

int UsageJournal::append(std::string_view line, std::uint64_t end_seq) {
    const int e = write_line(*current_, line);
    if (e != 0) seal(end_seq);
    return e;
}

void UsageJournal::seal(std::uint64_t end_seq) {
    if (!current_) return;
    if (current_->bytes == 0) {
        discard(std::move(*current_));
    } else {
        sealed_.push_back({current_->path, end_seq});
    }
    current_.reset();
}

std::vector<std::filesystem::path> UsageJournal::take_committed(std::uint64_t committed) {
    std::vector<std::filesystem::path> out;
    while (!sealed_.empty() && sealed_.front().end_seq <= committed) {
        out.push_back(std::move(sealed_.front().path));
        sealed_.pop_front();
    }
    return out;
}

std::vector<std::filesystem::path> UsageJournal::live_segments() const {
    std::vector<std::filesystem::path> out;
    for (const auto& s : sealed_) out.push_back(s.path);
    if (current_has_records()) out.push_back(current_->path);
    return out;
}

UsageJournal::ReadStats UsageJournal::read(const std::filesystem::path& segment,
                                           const std::function<void(UsageRecord)>& on_record) {
    UniqueFd fd(::open(segment.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        const int e = errno;
        throw std::runtime_error(
            fmt::format("usage journal: cannot open {} for replay: {} (errno {})", segment.string(),
                        std::strerror(e), e));
    }
    ReadStats stats;
    std::string pending;  // the start of a line whose '\n' has not been read yet
    bool overlong = false;  // skipping the rest of a line longer than kMaxLineBytes
    std::string chunk(kReadChunkBytes, '\0');
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            throw std::runtime_error(
                fmt::format("usage journal: cannot read {}: {} (errno {})", segment.string(), std::strerror(e), e));
        }
        if (n == 0) break;
        std::string_view data(chunk.data(), static_cast<std::size_t>(n));
        for (auto nl = data.find('\n'); nl != std::string_view::npos; nl = data.find('\n')) {
            if (overlong) {
                overlong = false;
            } else if (pending.empty()) {
                read_line(segment, data.substr(0, nl), stats, on_record);
            } else {
                pending.append(data.substr(0, nl));
                read_line(segment, pending, stats, on_record);
                pending.clear();
            }
            data.remove_prefix(nl + 1);
        }
        if (overlong) continue;
        pending.append(data);
        if (pending.size() > kMaxLineBytes) {
            spdlog::warn("usage journal {}: skipping a line longer than {} bytes: {}", segment.string(), kMaxLineBytes,
                         preview(pending));
            ++stats.skipped_lines;
            pending.clear();
            overlong = true;
        }
    }
    if (!pending.empty()) {
        // A write cut short (a full disk, a crash inside write(2)). The process that wrote
        // it kept that record in memory (a crash inside the write: its caller had no answer
        // yet), and nothing follows it in this file: the next record went to a new segment.
        stats.torn_tail_bytes = pending.size();
        spdlog::warn("usage journal {}: skipping a torn last line of {} bytes: {}", segment.string(), pending.size(),
                     preview(pending));
    }
    return stats;
}

}  // namespace funcd
