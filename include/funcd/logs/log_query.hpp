#pragma once
// Reading records back from a function's log files (the live one and those rolled over),
// for GET /v1/functions/{name}/logs and GET /v1/logs. Runs on the blocking pool: it reads
// files the event loop keeps appending to and rolling over, and never changes them but to
// rewrite a rolled-over file's missing or stale index.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/logs/log_line.hpp"

namespace funcd {

struct LogFilter {
    // Records of any of these requests; empty: of any request or none.
    std::vector<std::string> request_ids;
    // [since, until), as format_rfc3339 writes times (records' times compare as text).
    std::optional<std::string> since;
    std::optional<std::string> until;
    // The least level kept. A record without a level counts as INFO: bare output and
    // funcd's START/END/REPORT are kept by level=INFO and below and left out by WARN and up.
    LogLevel min_level = LogLevel::none;

    bool matches(const LogLine& line) const;
};

// The records found, oldest first; the newest are kept within a count and a byte budget.
class LogResults {
public:
    LogResults(std::size_t max_records, std::uint64_t max_bytes) : max_records_(max_records), max_bytes_(max_bytes) {}

    struct Found {
        std::string function;
        std::string line;  // as written (log_line.hpp)
    };
    void add(std::string_view function, std::string_view line);
    // Orders by record time, keeping the order of records of the same time (for records of
    // several functions).
    void sort_by_time();
    const std::deque<Found>& records() const { return records_; }
    // Records that matched and were left out, the oldest, over the count or the bytes.
    std::uint64_t left_out() const { return left_out_; }

private:
    std::size_t max_records_;
    std::uint64_t max_bytes_;
    std::uint64_t bytes_ = 0;
    std::uint64_t left_out_ = 0;
    std::deque<Found> records_;
};

// Adds the records of `function`'s log matching `filter` to `out`, oldest first: the files
// <live>.<files-1> ... <live>.1, <live>. With request ids, only the ranges their index names
// are read.
void query_function_log(const std::filesystem::path& live, int files, const std::string& function,
                        const LogFilter& filter, LogResults& out);

// A record as the API answers it: timestamp, request_id (null outside an invocation), level
// (null for none), stream, message; `record` the message parsed when it is a JSON object;
// `function` when not empty.
nlohmann::json log_record_json(std::string_view function, const LogLine& line);

}  // namespace funcd
