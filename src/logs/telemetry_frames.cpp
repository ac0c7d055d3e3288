#include "funcd/logs/telemetry_frames.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace funcd {
namespace {

std::uint64_t big_endian(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
    return v;
}

// The two payload forms of the type's low bits.
constexpr std::uint32_t kFormJson = 2;
constexpr std::uint32_t kFormText = 3;
// The type's bits a frame may set below the magic: form (0-1) and level (2-4).
constexpr std::uint32_t kTypeBits = 0x1F;

}  // namespace

TelemetryFrameParser::TelemetryFrameParser(std::size_t max_piece_bytes) : max_piece_(std::max<std::size_t>(max_piece_bytes, 1)) {}

namespace {
// The latest microsecond stamp std::chrono::system_clock (nanoseconds in 64 bits) can hold.
constexpr std::uint64_t kLatestStampMicros =
    static_cast<std::uint64_t>(std::chrono::system_clock::duration::max().count() / 1000);
}  // namespace

bool TelemetryFrameParser::start_record(TelemetryFrame& out) {
    const auto type = static_cast<std::uint32_t>(big_endian(header_.data(), 4));
    const std::uint32_t form = type & 0x3;
    const std::uint32_t level = (type >> 2) & 0x7;
    if ((type & ~kTypeBits) != kMagic || (form != kFormJson && form != kFormText) ||
        level > static_cast<std::uint32_t>(LogLevel::fatal)) {
        error_ = fmt::format("frame type 0x{:08x} is not a log record (0xA55A0002/3 with a level)", type);
        dropped_bytes_ += kHeaderBytes;
        return false;
    }
    remaining_ = big_endian(header_.data() + 4, 4);
    // A runtime's clock, as it sends it; a stamp the system clock cannot hold (before the
    // epoch, or past what its nanoseconds reach in 2262) would overflow: none, and the record
    // is stamped when it is logged.
    const auto micros = big_endian(header_.data() + 8, 8);
    time_.reset();
    if (micros <= kLatestStampMicros)
        time_ = std::chrono::system_clock::time_point(std::chrono::microseconds(static_cast<std::int64_t>(micros)));
    level_ = static_cast<LogLevel>(level);
    json_ = form == kFormJson;
    header_have_ = 0;
    in_payload_ = remaining_ > 0;
    if (remaining_ == 0) {
        out = TelemetryFrame{level_, json_, time_, {}, true};
        return true;
    }
    return false;
}

bool TelemetryFrameParser::next(std::string_view& data, TelemetryFrame& out) {
    if (clear_buffer_) {
        buffer_.clear();
        clear_buffer_ = false;
    }
    while (!data.empty()) {
        if (malformed()) {
            dropped_bytes_ += data.size();
            data = {};
            return false;
        }
        if (!in_payload_) {
            const std::size_t take = std::min(kHeaderBytes - header_have_, data.size());
            std::copy_n(data.data(), take, header_.data() + header_have_);
            header_have_ += take;
            data.remove_prefix(take);
            if (header_have_ < kHeaderBytes) return false;
            if (start_record(out)) return true;
            continue;
        }
        const std::size_t piece = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, max_piece_));
        if (buffer_.empty() && data.size() >= piece) {
            // The whole piece is in this read: handed out where it lies.
            out = TelemetryFrame{level_, json_, time_, data.substr(0, piece), remaining_ == piece};
            data.remove_prefix(piece);
        } else {
            const std::size_t take = std::min(piece - buffer_.size(), data.size());
            buffer_.append(data.data(), take);
            data.remove_prefix(take);
            if (buffer_.size() < piece) return false;
            out = TelemetryFrame{level_, json_, time_, buffer_, remaining_ == piece};
            clear_buffer_ = true;
        }
        remaining_ -= piece;
        in_payload_ = remaining_ > 0;
        return true;
    }
    return false;
}

}  // namespace funcd
