#include "funcd/lambda_api/event_stream.hpp"

#include <cstdint>

#include <boost/crc.hpp>

namespace funcd {
namespace {

// The prelude (two lengths and their CRC) and the message's trailing CRC.
constexpr std::size_t kPreludeBytes = 12;
constexpr std::size_t kMessageCrcBytes = 4;
constexpr std::uint8_t kStringHeaderType = 7;

void put_u32(std::string& out, std::uint32_t v) {
    out.push_back(static_cast<char>(v >> 24));
    out.push_back(static_cast<char>(v >> 16));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
}

std::uint32_t crc32(std::string_view bytes) {
    boost::crc_32_type crc;
    crc.process_bytes(bytes.data(), bytes.size());
    return crc.checksum();
}

}  // namespace

std::string event_stream_message(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                                 std::string_view payload) {
    std::string encoded;
    for (const auto& [name, value] : headers) {
        encoded.push_back(static_cast<char>(name.size()));
        encoded.append(name);
        encoded.push_back(static_cast<char>(kStringHeaderType));
        encoded.push_back(static_cast<char>(value.size() >> 8));
        encoded.push_back(static_cast<char>(value.size()));
        encoded.append(value);
    }
    const auto total = static_cast<std::uint32_t>(kPreludeBytes + encoded.size() + payload.size() + kMessageCrcBytes);
    std::string out;
    out.reserve(total);
    put_u32(out, total);
    put_u32(out, static_cast<std::uint32_t>(encoded.size()));
    put_u32(out, crc32(out));
    out += encoded;
    out.append(payload);
    put_u32(out, crc32(out));
    return out;
}

std::string payload_chunk_event(std::string_view bytes) {
    return event_stream_message(
        {{":event-type", "PayloadChunk"}, {":content-type", "application/octet-stream"}, {":message-type", "event"}},
        bytes);
}

std::string invoke_complete_event(std::string_view complete_json) {
    return event_stream_message(
        {{":event-type", "InvokeComplete"}, {":content-type", "application/json"}, {":message-type", "event"}},
        complete_json);
}

}  // namespace funcd
