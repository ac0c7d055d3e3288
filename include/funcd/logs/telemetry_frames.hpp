#pragma once
// The framing a runtime writes to its telemetry descriptor (_LAMBDA_TELEMETRY_LOG_FD), as
// AWS's runtime interface clients do: each record is a 16-byte header, big-endian,
//
//   bytes 0-3   type: 0xA55A in the high half; bits 0-1 the payload's form (3 text, 2 JSON);
//               bits 2-4 the level (0 none, 1 TRACE, 2 DEBUG, 3 INFO, 4 WARN, 5 ERROR, 6 FATAL)
//   bytes 4-7   length of the payload in bytes
//   bytes 8-15  when the record was made, in microseconds since the Unix epoch (signed)
//
// then the payload. A record's line breaks are its own: a stack trace is one record.
//
// TelemetryFrameParser cuts a byte stream into records, whatever the reads it arrives in.
// It holds at most `max_piece_bytes` of a payload: a longer record comes out in pieces of
// that size (each with the record's level and time), as a long output line is cut. A header
// that is not of this form makes the stream malformed: nothing after it can be told apart
// (a payload may hold anything), so the parser takes no more records from it, and reports
// the bytes it was fed since as dropped.
#include <array>
#include <chrono>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "funcd/logs/log_record.hpp"

namespace funcd {

// One record, or one piece of a record longer than the parser's piece size.
struct TelemetryFrame {
    LogLevel level = LogLevel::none;
    bool json = false;  // the runtime formatted the payload as a JSON record
    // The runtime's stamp; none when it is past what the system clock holds (the year 2262).
    std::optional<std::chrono::system_clock::time_point> time;
    std::string_view payload;  // valid until the parser's next call
    bool last = true;          // false: more of the same record follows
};

class TelemetryFrameParser {
public:
    static constexpr std::size_t kHeaderBytes = 16;
    // The high half of every frame's type.
    static constexpr std::uint32_t kMagic = 0xA55A0000;

    explicit TelemetryFrameParser(std::size_t max_piece_bytes);

    // Takes bytes from the front of `data` until a record (or piece) is complete: true with
    // it in `out`, whose payload points into `data` or the parser's buffer. False when
    // `data` is used up without completing one (or the stream is malformed).
    bool next(std::string_view& data, TelemetryFrame& out);

    bool malformed() const { return !error_.empty(); }
    // Why the stream is malformed (empty if it is not).
    const std::string& error() const { return error_; }
    // Bytes fed after the stream became malformed, the bad header included.
    std::uint64_t dropped_bytes() const { return dropped_bytes_; }
    // Part of a record was read and the rest has not come (at the end of a stream: cut off).
    bool mid_record() const { return header_have_ > 0 || in_payload_; }

private:
    bool start_record(TelemetryFrame& out);

    std::size_t max_piece_;
    std::array<unsigned char, kHeaderBytes> header_{};
    std::size_t header_have_ = 0;
    bool in_payload_ = false;
    std::uint64_t remaining_ = 0;  // payload bytes of the current record not yet taken
    LogLevel level_ = LogLevel::none;
    bool json_ = false;
    std::optional<std::chrono::system_clock::time_point> time_;
    std::string buffer_;  // a piece being gathered across reads
    bool clear_buffer_ = false;
    std::string error_;
    std::uint64_t dropped_bytes_ = 0;
};

}  // namespace funcd
