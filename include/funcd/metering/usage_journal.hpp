#pragma once
// The write-ahead journal of usage records: a directory of numbered segment files.
//
// Format. `DIR/<20-digit number>.jsonl`, numbers increasing in creation order. A segment
// is a sequence of lines, each one usage record as one JSON object (append_journal_line)
// followed by '\n'. A line counts only once its '\n' is there: a last line without one is
// a torn write (a full disk, a crash inside write(2)) and is skipped on replay.
//
// Invariants:
// - Appends go to one current segment, opened O_APPEND by this process; a segment from an
//   earlier run is never appended to, only replayed and deleted.
// - After a failed append the partial line is cut off where the file system allows it, and
//   the segment is sealed either way: the next record starts a new segment, so a torn
//   fragment is always the last bytes of its file and can never glue itself to the record
//   after it.
// - The owner numbers its records; a sealed segment remembers the number after its last
//   record, so it is deleted exactly when every record in it is committed to SQLite.
//
// Not thread-safe: the owner (UsageStore) calls it under its lock, except for the members
// marked as touching the file system, which it calls without the lock.
#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "funcd/common/unique_fd.hpp"
#include "funcd/metering/usage_record.hpp"

namespace funcd {

class UsageJournal {
public:
    struct Segment {
        std::filesystem::path path;
        UniqueFd fd;
        std::uint64_t bytes = 0;  // written so far
    };

    // What reading one segment found.
    struct ReadStats {
        std::size_t records = 0;
        std::size_t skipped_lines = 0;  // not a record (malformed, or a fragment of a torn write)
        std::size_t torn_tail_bytes = 0;  // a last line without its '\n'
    };

    // Opens the journal at `dir`, creating the directory (mode 0700). A journal file from
    // before segments at that path is moved into it as a segment. Throws std::runtime_error
    // if the directory cannot be made.
    explicit UsageJournal(std::filesystem::path dir);

    const std::filesystem::path& dir() const { return dir_; }

    // Segments left by earlier runs, oldest first, as found when the journal was opened.
    const std::vector<std::filesystem::path>& leftover_segments() const { return leftovers_; }

    // --- Touch the file system; thread-safe; call without the owner's lock.

    // A new, empty segment file (O_APPEND, mode 0600). nullopt with `error` set to the
    // errno on failure (logged here).
    std::optional<Segment> create_segment(int& error);
    // 0 if `bytes` of space can be had for `segment` (allocated, then given back), else the errno.
    static int probe_space(const Segment& segment, std::int64_t bytes);
    // Closes and deletes an unused segment.
    static void discard(Segment segment);
    // Deletes segments whose records are all committed.
    static void remove(const std::vector<std::filesystem::path>& files);
    // Calls `on_record` for each record of `segment`, in order, reading it in bounded
    // chunks; logs and skips what is not a record (a torn fragment before a record on the
    // same line, written by versions that appended after a failed write, is cut off and
    // the record kept). Throws std::runtime_error if the file cannot be read; whatever
    // `on_record` throws passes through.
    static ReadStats read(const std::filesystem::path& segment, const std::function<void(UsageRecord)>& on_record);
    // Appends `line` to `segment` in full; 0 or the errno. On failure the partial line is
    // cut off again if possible (ftruncate to the previous size).
    static int write_line(Segment& segment, std::string_view line);

    // --- Under the owner's lock.

    bool has_current() const { return current_.has_value(); }
    bool current_has_records() const { return current_ && current_->bytes > 0; }
    // `next` becomes the segment appended to. The current one, if any, is sealed with
    // `end_seq`: every record in it is numbered below it.
    void roll(Segment next, std::uint64_t end_seq);
    // Appends one line (ending in '\n') to the current segment (there must be one): 0 or
    // the errno. On failure the current segment is sealed with `end_seq` and there is no
    // current segment until roll().
    int append(std::string_view line, std::uint64_t end_seq);
    // Seals the current segment without a successor (at shutdown).
    void seal(std::uint64_t end_seq);
    // Sealed segments whose records are all numbered below `committed`, taken off the
    // list; the caller deletes them with remove() outside its lock.
    std::vector<std::filesystem::path> take_committed(std::uint64_t committed);
    // Every segment still on disk that holds records: sealed ones, then the current one.
    std::vector<std::filesystem::path> live_segments() const;

private:
    struct Sealed {
        std::filesystem::path path;
        std::uint64_t end_seq = 0;
    };

    std::filesystem::path dir_;
    std::vector<std::filesystem::path> leftovers_;
    std::atomic<std::uint64_t> next_number_{0};
    std::optional<Segment> current_;
    std::deque<Sealed> sealed_;
};

}  // namespace funcd
