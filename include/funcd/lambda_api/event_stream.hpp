#pragma once
// AWS's event stream encoding (application/vnd.amazon.eventstream), the framing of
// InvokeWithResponseStream's answer: each message is its total length, its headers' length
// and a CRC32 of those two (big-endian), the headers, the payload, and a CRC32 of all before.
// Every header here is a string (value type 7).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace funcd {

std::string event_stream_message(const std::vector<std::pair<std::string_view, std::string_view>>& headers,
                                 std::string_view payload);

// Lambda's events: a piece of the function's response, and the end of the invocation
// (`complete_json`: {"ErrorCode", "ErrorDetails", "LogResult"} as far as they apply).
std::string payload_chunk_event(std::string_view bytes);
std::string invoke_complete_event(std::string_view complete_json);

}  // namespace funcd
