#include "funcd/logs/log_index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "funcd/logs/log_line.hpp"

namespace funcd {
namespace {

constexpr char kMagic[8] = {'F', 'D', 'L', 'O', 'G', 'I', 'X', '1'};
constexpr std::size_t kHeaderBytes = 24;
// Entries between two marks: a writer marks after every write of at most its 64 KiB buffer
// (a few thousand runs at most), so more means a damaged file, and a lookup stops holding
// them there (1.5 MiB).
constexpr std::size_t kMaxEntriesBetweenMarks = 1u << 16;
// A rolled-over file never changes again, so its index is rewritten once sorted by request
// (the header's third field: this flag and the size of the log it covers): a lookup then
// binary-searches it, a few reads whatever the file's size, instead of reading it whole.
// Sorting holds the file's entries in memory: up to this many (48 MiB; a 64 MiB log of
// 64-byte records, each its own run, has a million), a larger index stays as written.
constexpr std::uint64_t kSortedFlag = 1ull << 63;
constexpr std::size_t kMaxSortedEntries = 2u << 20;

std::uint32_t entry_check(std::uint64_t hash, std::uint64_t offset, std::uint32_t length) {
    std::uint64_t x = hash ^ (offset * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t{length} << 17) ^ 0x5bd1e995ull;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return static_cast<std::uint32_t>(x);
}

bool entry_sound(const LogIndexEntry& e) { return e.check == entry_check(e.hash, e.offset, e.length); }

std::uint64_t inode_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

bool write_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return false;
        }
        data += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

std::string header_for(std::uint64_t inode, std::uint64_t third = 0) {
    std::string h(kHeaderBytes, '\0');
    std::memcpy(h.data(), kMagic, sizeof kMagic);
    std::memcpy(h.data() + 8, &inode, sizeof inode);
    std::memcpy(h.data() + 16, &third, sizeof third);
    return h;
}

struct Header {
    bool belongs = false;  // sound, and this log file's
    bool sorted = false;
    std::uint64_t covered = 0;  // sorted: the log's size it covers
};

Header read_header(int index_fd, int log_fd) {
    Header h;
    char header[kHeaderBytes];
    if (::pread(index_fd, header, kHeaderBytes, 0) != static_cast<ssize_t>(kHeaderBytes)) return h;
    std::uint64_t inode = 0, third = 0;
    std::memcpy(&inode, header + 8, sizeof inode);
    std::memcpy(&third, header + 16, sizeof third);
    if (std::memcmp(header, kMagic, sizeof kMagic) != 0 || inode != inode_of(log_fd)) return h;
    h.belongs = true;
    h.sorted = (third & kSortedFlag) != 0;
    h.covered = third & ~kSortedFlag;
    return h;
}

// Calls on_run(hash, offset, length) for each run of consecutive records of one request in
// log[from, to) (whole lines only: a line still being written at `to` is left out).
template <class OnRun>
void scan_runs(int fd, std::uint64_t from, std::uint64_t to, OnRun&& on_run) {
    std::string block(kLogReadBlock, '\0');
    std::string carry;  // the start of a line continued in the next block
    std::uint64_t carry_offset = from;
    bool skipping = false;  // inside a line longer than kMaxScannedLogLine
    std::uint64_t run_hash = 0, run_start = 0, run_end = 0;
    auto end_run = [&] {
        if (run_hash != 0) {
            // A run longer than an entry can say (never with sane limits) is split.
            while (run_end - run_start > UINT32_MAX) {
                on_run(run_hash, run_start, std::uint64_t{UINT32_MAX});
                run_start += UINT32_MAX;
            }
            on_run(run_hash, run_start, run_end - run_start);
        }
        run_hash = 0;
    };
    auto on_line = [&](std::string_view line, std::uint64_t offset) {
        const std::uint64_t end = offset + line.size() + 1;
        const std::string_view id = log_line_request_id(line);
        if (id.empty()) return end_run();
        const std::uint64_t h = log_request_hash(id);
        if (h == run_hash && offset == run_end) {
            run_end = end;
            return;
        }
        end_run();
        run_hash = h;
        run_start = offset;
        run_end = end;
    };
    std::uint64_t pos = from;
    while (pos < to) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), to - pos));
        const ssize_t n = ::pread(fd, block.data(), want, static_cast<off_t>(pos));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0) spdlog::error("logs: reading a log to index it failed: {} (errno {})", std::strerror(errno), errno);
            break;
        }
        std::string_view data(block.data(), static_cast<std::size_t>(n));
        std::uint64_t data_offset = pos;
        pos += static_cast<std::uint64_t>(n);
        while (!data.empty()) {
            const auto nl = data.find('\n');
            if (nl == std::string_view::npos) {
                if (!skipping) {
                    if (carry.empty()) carry_offset = data_offset;
                    carry.append(data);
                    if (carry.size() > kMaxScannedLogLine) {
                        carry.clear();
                        skipping = true;
                        end_run();
                    }
                }
                break;
            }
            if (skipping) {
                skipping = false;
            } else if (!carry.empty()) {
                carry.append(data.substr(0, nl));
                on_line(carry, carry_offset);
                carry.clear();
            } else {
                on_line(data.substr(0, nl), data_offset);
            }
            data.remove_prefix(nl + 1);
            data_offset += nl + 1;
        }
    }
    end_run();
}

// What a sidecar holds for the log open as `log_fd` of `log_size` bytes.
struct IndexState {
    bool belongs = false;        // the header is sound and names this log file
    std::uint64_t covered = 0;   // the log before this is indexed (the last sound mark)
    std::uint64_t good_end = 0;  // the sidecar's bytes up to and including that mark
    bool complete = false;       // nothing after the last mark, nothing damaged
};

// Reads the sidecar at `path` block by block; on_range(entry) for each range before the
// last mark that is sound and inside the log.
template <class OnRange>
IndexState read_index(const std::filesystem::path& path, int log_fd, std::uint64_t log_size, OnRange&& on_range) {
    IndexState state;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return state;
    // A sorted index is read by lookup_sorted; as entries in writing order it is no index.
    if (const Header h = read_header(fd.get(), log_fd); !h.belongs || h.sorted) return state;
    state.belongs = true;
    state.good_end = kHeaderBytes;
    state.complete = true;
    // Ranges since the last mark wait for the next one: a write cut short may have left
    // them pointing at bytes that never reached the log.
    std::vector<LogIndexEntry> since_mark;
    std::vector<LogIndexEntry> block(kLogReadBlock / sizeof(LogIndexEntry));
    std::uint64_t pos = kHeaderBytes;
    bool damaged = false;
    while (!damaged) {
        const ssize_t n = ::pread(fd.get(), block.data(), block.size() * sizeof(LogIndexEntry), static_cast<off_t>(pos));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        const std::size_t count = static_cast<std::size_t>(n) / sizeof(LogIndexEntry);
        if (count == 0) {
            damaged = true;  // a cut entry at the end
            break;
        }
        for (std::size_t i = 0; i < count; ++i) {
            const LogIndexEntry& e = block[i];
            const std::uint64_t at = pos + i * sizeof(LogIndexEntry);
            if (!entry_sound(e) || e.offset + e.length > log_size || (e.hash == 0 && e.offset < state.covered)) {
                damaged = true;
                break;
            }
            if (e.hash != 0) {
                since_mark.push_back(e);
                if (since_mark.size() > kMaxEntriesBetweenMarks) {
                    damaged = true;
                    break;
                }
                continue;
            }
            for (const auto& r : since_mark) on_range(r);
            since_mark.clear();
            state.covered = e.offset;
            state.good_end = at + sizeof(LogIndexEntry);
        }
        pos += count * sizeof(LogIndexEntry);
    }
    state.complete = !damaged && since_mark.empty();
    return state;
}

// Writes `entries` sorted by request (then offset) as the index of the log open as
// `log_fd`, `log_size` bytes, all covered. False (logged) on an error.
bool write_sorted_index(const std::filesystem::path& log, int log_fd, std::uint64_t log_size,
                        std::vector<LogIndexEntry>& entries) {
    static std::atomic<unsigned> serial{0};
    std::sort(entries.begin(), entries.end(), [](const LogIndexEntry& a, const LogIndexEntry& b) {
        return a.hash != b.hash ? a.hash < b.hash : a.offset < b.offset;
    });
    const auto final_path = log_index_path(log);
    auto tmp = final_path;
    tmp += ".tmp" + std::to_string(::getpid()) + "." + std::to_string(serial++);
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    const std::string header = header_for(inode_of(log_fd), log_size | kSortedFlag);
    const bool ok = fd && write_all(fd.get(), header.data(), header.size()) &&
                    write_all(fd.get(), reinterpret_cast<const char*>(entries.data()),
                              entries.size() * sizeof(LogIndexEntry));
    if (!ok || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
        spdlog::error("logs: writing the sorted index {} failed: {} (errno {})", final_path.string(),
                      std::strerror(errno), errno);
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

// The ranges of `want` in a sorted index: a binary search for the first, then the entries
// that follow while they are of the same request. nullopt when the index is not sound
// (it is then read no further: the caller reads the log).
template <class Keep>
bool lookup_sorted(int index_fd, std::uint64_t log_size, std::uint64_t want, Keep&& keep) {
    struct stat st {};
    if (::fstat(index_fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < kHeaderBytes ||
        (static_cast<std::uint64_t>(st.st_size) - kHeaderBytes) % sizeof(LogIndexEntry) != 0)
        return false;
    const std::uint64_t count = (static_cast<std::uint64_t>(st.st_size) - kHeaderBytes) / sizeof(LogIndexEntry);
    auto entry_at = [&](std::uint64_t i, LogIndexEntry& e) {
        return ::pread(index_fd, &e, sizeof e, static_cast<off_t>(kHeaderBytes + i * sizeof e)) ==
                   static_cast<ssize_t>(sizeof e) &&
               entry_sound(e) && e.offset + e.length <= log_size;
    };
    std::uint64_t lo = 0, hi = count;
    LogIndexEntry e;
    while (lo < hi) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        if (!entry_at(mid, e)) return false;
        if (e.hash < want) lo = mid + 1;
        else hi = mid;
    }
    // The request's entries, a block at a time.
    std::vector<LogIndexEntry> block(4096 / sizeof(LogIndexEntry));
    for (std::uint64_t i = lo; i < count;) {
        const std::uint64_t n = std::min<std::uint64_t>(block.size(), count - i);
        const auto bytes = static_cast<ssize_t>(n * sizeof(LogIndexEntry));
        if (::pread(index_fd, block.data(), static_cast<std::size_t>(bytes), static_cast<off_t>(kHeaderBytes + i * sizeof(LogIndexEntry))) != bytes)
            return false;
        for (std::uint64_t k = 0; k < n; ++k) {
            const LogIndexEntry& b = block[k];
            if (!entry_sound(b) || b.offset + b.length > log_size) return false;
            if (b.hash != want) return true;
            keep(b.offset, std::uint64_t{b.length});
        }
        i += n;
    }
    return true;
}

}  // namespace

std::uint64_t log_request_hash(std::string_view request_id) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : request_id) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h == 0 ? 1 : h;
}

std::filesystem::path log_index_path(const std::filesystem::path& log) {
    auto p = log;
    p += ".idx";
    return p;
}

LogIndexEntry make_index_entry(std::uint64_t hash, std::uint64_t offset, std::uint32_t length) {
    return LogIndexEntry{hash, offset, length, entry_check(hash, offset, length)};
}

bool rebuild_log_index(const std::filesystem::path& log, int log_fd, std::uint64_t log_size) {
    static std::atomic<unsigned> serial{0};
    const auto final_path = log_index_path(log);
    auto tmp = final_path;
    tmp += ".tmp" + std::to_string(::getpid()) + "." + std::to_string(serial++);
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
        spdlog::error("logs: creating {} failed: {} (errno {})", tmp.string(), std::strerror(errno), errno);
        return false;
    }
    std::string out = header_for(inode_of(log_fd));
    bool ok = true;
    auto put = [&](const LogIndexEntry& e) {
        out.append(reinterpret_cast<const char*>(&e), sizeof e);
        if (out.size() >= kLogReadBlock) {
            ok = ok && write_all(fd.get(), out.data(), out.size());
            out.clear();
        }
    };
    scan_runs(log_fd, 0, log_size, [&](std::uint64_t h, std::uint64_t off, std::uint64_t len) {
        put(make_index_entry(h, off, static_cast<std::uint32_t>(len)));
    });
    put(make_index_entry(0, log_size, 0));
    ok = ok && write_all(fd.get(), out.data(), out.size());
    if (!ok || ::rename(tmp.c_str(), final_path.c_str()) != 0) {
        spdlog::error("logs: writing the index {} failed: {} (errno {})", final_path.string(), std::strerror(errno),
                      errno);
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

void LogIndexWriter::open(const std::filesystem::path& log, int log_write_fd, std::uint64_t log_size) {
    close();
    path_ = log_index_path(log);
    // The log's own descriptor is write-only: it is read through one of its own, checked to
    // be the same file.
    UniqueFd reader(::open(log.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!reader || inode_of(reader.get()) != inode_of(log_write_fd)) {
        spdlog::error("logs: opening {} to index it failed: {} (errno {}); lookups read the log instead",
                      log.string(), std::strerror(errno), errno);
        ::unlink(path_.c_str());
        return;
    }
    const int log_fd = reader.get();
    const IndexState state = read_index(path_, log_fd, log_size, [](const LogIndexEntry&) {});
    if (!state.belongs) {
        if (log_size > 0) spdlog::info("logs: indexing {} ({} bytes): its index is missing or not its own", log.string(), log_size);
        if (!rebuild_log_index(log, log_fd, log_size)) {
            // Without a sidecar the lookups read the log itself: slower, still complete.
            ::unlink(path_.c_str());
            return;
        }
    }
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd_) {
        spdlog::error("logs: opening {} failed: {} (errno {})", path_.string(), std::strerror(errno), errno);
        return;
    }
    if (state.belongs) {
        // Whatever follows the last mark is dropped and the log past it indexed again.
        if (!state.complete || state.covered < log_size) {
            if (::ftruncate(fd_.get(), static_cast<off_t>(state.good_end)) != 0)
                spdlog::warn("logs: truncating {} failed: {} (errno {})", path_.string(), std::strerror(errno), errno);
        }
        ::lseek(fd_.get(), static_cast<off_t>(state.good_end), SEEK_SET);
        if (state.covered < log_size) {
            scan_runs(log_fd, state.covered, log_size,
                      [&](std::uint64_t h, std::uint64_t off, std::uint64_t len) { add(h, off, len); });
            mark(log_size);
        }
    } else {
        ::lseek(fd_.get(), 0, SEEK_END);
    }
}

void LogIndexWriter::add(std::uint64_t hash, std::uint64_t offset, std::uint64_t length) {
    if (!fd_) return;
    pending_.push_back(make_index_entry(hash, offset, static_cast<std::uint32_t>(std::min<std::uint64_t>(length, UINT32_MAX))));
}

void LogIndexWriter::mark(std::uint64_t log_size) {
    if (!fd_) {
        pending_.clear();
        return;
    }
    pending_.push_back(make_index_entry(0, log_size, 0));
    if (!write_all(fd_.get(), reinterpret_cast<const char*>(pending_.data()), pending_.size() * sizeof(LogIndexEntry))) {
        // The lookups read the log past the last mark that made it: nothing is lost.
        spdlog::error("logs: writing the index {} failed: {} (errno {}); lookups read the log instead",
                      path_.string(), std::strerror(errno), errno);
        fd_.reset();
    }
    pending_.clear();
}

void LogIndexWriter::close() {
    fd_.reset();
    pending_.clear();
}

std::vector<ByteRange> lookup_log_index(const std::filesystem::path& log, int log_fd, std::uint64_t log_size,
                                        std::string_view request_id, std::size_t max_ranges, bool repair) {
    const std::uint64_t want = log_request_hash(request_id);
    std::deque<ByteRange> found;
    auto keep = [&](std::uint64_t offset, std::uint64_t length) {
        if (!found.empty() && found.back().offset + found.back().length == offset) {
            found.back().length += length;  // a run continued in the next write
            return;
        }
        found.push_back({offset, length});
        if (found.size() > max_ranges) found.pop_front();
    };
    const auto index_path = log_index_path(log);
    {
        UniqueFd index(::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (index) {
            const Header h = read_header(index.get(), log_fd);
            if (h.belongs && h.sorted && h.covered == log_size) {
                if (lookup_sorted(index.get(), log_size, want, keep)) return {found.begin(), found.end()};
                found.clear();
            }
        }
    }
    // A rolled-over file's entries are kept, while few enough, to be written sorted.
    std::vector<LogIndexEntry> all;
    bool collecting = repair;
    auto collect = [&](const LogIndexEntry& e) {
        if (!collecting) return;
        if (all.size() >= kMaxSortedEntries) {
            collecting = false;
            all = {};
            return;
        }
        all.push_back(e);
    };
    const IndexState state = read_index(index_path, log_fd, log_size, [&](const LogIndexEntry& e) {
        if (e.hash == want) keep(e.offset, e.length);
        collect(e);
    });
    std::uint64_t covered = state.belongs ? state.covered : 0;
    if (!state.belongs) {
        found.clear();
        all.clear();
    }
    if (covered < log_size) {
        scan_runs(log_fd, covered, log_size, [&](std::uint64_t h, std::uint64_t off, std::uint64_t len) {
            if (h == want) keep(off, len);
            collect(make_index_entry(h, off, static_cast<std::uint32_t>(len)));
        });
        covered = log_size;
    }
    if (repair && collecting) write_sorted_index(log, log_fd, log_size, all);
    return {found.begin(), found.end()};
}

}  // namespace funcd
