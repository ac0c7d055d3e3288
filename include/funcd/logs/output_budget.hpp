#pragma once
// How much of one stretch of a worker's output is logged: an invocation (START to its
// answer) or the time between two invocations. Lines are admitted while they fit; from the
// first one that does not, the rest of the stretch is dropped and counted, so the log shows
// a prefix of the stretch followed by one LOGS_DROPPED line rather than a random sample.
#include <cstddef>
#include <cstdint>

namespace funcd {

class OutputBudget {
public:
    explicit OutputBudget(std::uint64_t limit) : limit_(limit) {}

    // A line of `bytes` bytes (its newline counted): true if it is to be logged.
    bool admit(std::size_t bytes) {
        if (dropped_bytes_ == 0 && used_ + bytes <= limit_) {
            used_ += bytes;
            return true;
        }
        dropped_bytes_ += bytes;
        ++dropped_lines_;
        return false;
    }
    // Output known to be dropped whole (the budget is exhausted): `bytes` bytes holding
    // `lines` line ends, counted without being cut into lines.
    void drop(std::uint64_t bytes, std::uint64_t lines) {
        dropped_bytes_ += bytes;
        dropped_lines_ += lines;
    }
    // Whether every further line of this stretch will be dropped.
    bool exhausted() const { return dropped_bytes_ > 0 || used_ >= limit_; }

    std::uint64_t limit() const { return limit_; }
    std::uint64_t used() const { return used_; }
    std::uint64_t dropped_bytes() const { return dropped_bytes_; }
    std::uint64_t dropped_lines() const { return dropped_lines_; }

    // Starts the next stretch with `limit` bytes.
    void restart(std::uint64_t limit) { *this = OutputBudget(limit); }

private:
    std::uint64_t limit_;
    std::uint64_t used_ = 0;
    std::uint64_t dropped_bytes_ = 0;
    std::uint64_t dropped_lines_ = 0;
};

}  // namespace funcd
