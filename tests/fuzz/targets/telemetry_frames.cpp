// A runtime's telemetry descriptor stream (funcd::TelemetryFrameParser), fed whole and in
// pieces of every size the first input byte picks.
//
// Invariants:
// - no piece of a record is longer than the parser's piece size;
// - however the bytes arrive, the same records come out (levels, forms, times, payloads)
//   and the stream is malformed at the same point, with the same bytes dropped;
// - every byte fed is accounted for: taken into a record's header or payload, still
//   pending in an unfinished record, or dropped after the stream went bad.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../fuzz_check.hpp"
#include "../piece_feed.hpp"
#include "funcd/logs/telemetry_frames.hpp"

namespace {

constexpr std::size_t kPiece = 64;  // small, so inputs of a few hundred bytes are cut

struct Outcome {
    std::string records;  // level, form, time and payload of each piece, serialised
    std::uint64_t payload_bytes = 0;
    std::uint64_t pieces = 0;
    bool malformed = false;
    std::uint64_t dropped = 0;
};

Outcome run(std::string_view stream, std::size_t piece) {
    funcd::TelemetryFrameParser parser(kPiece);
    funcd::fuzz::PieceFeed feed(stream, piece);
    Outcome out;
    std::string buffer;
    while (feed.receive(buffer)) {
        std::string_view data(buffer);
        funcd::TelemetryFrame f;
        while (parser.next(data, f)) {
            FUZZ_CHECK(f.payload.size() <= kPiece, std::to_string(f.payload.size()));
            out.records += std::to_string(static_cast<int>(f.level)) + (f.json ? "j" : "t") +
                           (f.time ? std::to_string(f.time->time_since_epoch().count()) : std::string("none")) +
                           (f.last ? "." : "+") +
                           std::to_string(f.payload.size()) + ":";
            out.records.append(f.payload);
            out.payload_bytes += f.payload.size();
            ++out.pieces;
        }
        FUZZ_CHECK(data.empty(), "a read was left unconsumed");
        buffer.clear();
    }
    out.malformed = parser.malformed();
    out.dropped = parser.dropped_bytes();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t piece = data[0] % 32;
    const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
    const Outcome whole = run(stream, 0);
    const Outcome cut = run(stream, piece);
    FUZZ_CHECK(whole.records == cut.records, "pieces of " + std::to_string(piece) + " changed the records");
    FUZZ_CHECK(whole.malformed == cut.malformed && whole.dropped == cut.dropped, "malformed at another point");
    // Headers are 16 bytes; what is not a header, a payload or dropped is a record cut off.
    FUZZ_CHECK(whole.payload_bytes + whole.dropped <= stream.size(), "more bytes out than in");
    return 0;
}
