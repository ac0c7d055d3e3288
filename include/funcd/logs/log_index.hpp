#pragma once
// The index of one log file: which byte ranges of it hold a request's records, so finding
// one request's lines reads a small sidecar file and those ranges instead of the whole log.
//
// The sidecar is <log>.idx, next to its log file and renamed with it at each rollover
// (<fn>.log.1.idx belongs to <fn>.log.1). It is a header (a magic and the log file's inode,
// so a sidecar that does not belong to the file next to it is never believed) followed by
// fixed 24-byte entries, appended as the log is written:
//   - a range: a hash of a request id, the offset and the length of a run of that request's
//     consecutive records;
//   - a mark (hash 0): the log file's size after a write; everything before the last mark
//     is indexed.
// Each entry carries a check of its fields. Whatever is not covered by good entries (a
// missing, truncated or damaged sidecar, or a log written to after the last mark) is found by
// reading that part of the log: a lookup is always complete, and a sidecar found wanting is
// rebuilt (a rolled-over file's by the lookup that found it so, the live file's when its
// FunctionLog opens it).
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/common/unique_fd.hpp"

namespace funcd {

// Logs and their sidecars are read in blocks of this size: a lookup or a scan holds one block,
// whatever the size of the files.
inline constexpr std::size_t kLogReadBlock = 256 * 1024;
// A line longer than this (a log written with another limit, or not a log; no worker writes
// one) is skipped by a scan rather than held whole, so a scan's memory stays bounded.
inline constexpr std::size_t kMaxScannedLogLine = 8u << 20;

struct LogIndexEntry {
    std::uint64_t hash = 0;  // 0: a mark
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
    std::uint32_t check = 0;
};
static_assert(sizeof(LogIndexEntry) == 24);

struct ByteRange {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

// A request id's hash as the index keeps it (FNV-1a, never 0).
std::uint64_t log_request_hash(std::string_view request_id);
std::filesystem::path log_index_path(const std::filesystem::path& log);
LogIndexEntry make_index_entry(std::uint64_t hash, std::uint64_t offset, std::uint32_t length);

// The live file's index, written by its FunctionLog (on the event loop).
class LogIndexWriter {
public:
    // Opens `log`'s sidecar for the log file open (for writing) as `log_fd`, now `log_size`
    // bytes long:
    // kept if it belongs to it and is sound, completed by reading the log past its last mark,
    // rebuilt by reading the whole log if missing or damaged.
    void open(const std::filesystem::path& log, int log_fd, std::uint64_t log_size);
    // A run of one request's records written at `offset`.
    void add(std::uint64_t hash, std::uint64_t offset, std::uint64_t length);
    // The log is `log_size` bytes and all of it written: the pending entries and a mark go
    // to the sidecar (one write).
    void mark(std::uint64_t log_size);
    void close();
    bool is_open() const { return static_cast<bool>(fd_); }

private:
    std::filesystem::path path_;
    UniqueFd fd_;
    std::vector<LogIndexEntry> pending_;
};

// The ranges of `log_fd` (the log file `log`, `log_size` bytes) that may hold records of
// `request_id`, oldest first; at most the last `max_ranges` (each range holds one record at
// least, so that many ranges hold the newest `max_ranges` records). Reads the sidecar in
// fixed-size blocks; what it does not cover is read from the log. `repair`: a rolled-over
// file, whose sidecar is rewritten when it was found missing or wanting.
std::vector<ByteRange> lookup_log_index(const std::filesystem::path& log, int log_fd, std::uint64_t log_size,
                                        std::string_view request_id, std::size_t max_ranges, bool repair);

// Builds a sidecar for `log_fd` from scratch by reading the log (written to a temporary
// file renamed into place). False (logged) on an error.
bool rebuild_log_index(const std::filesystem::path& log, int log_fd, std::uint64_t log_size);

}  // namespace funcd
