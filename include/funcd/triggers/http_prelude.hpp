#pragma once
// Lambda's HTTP integration prelude. A streamed response whose Content-Type is
// application/vnd.awslambda.http-integration-response (what awslambda.HttpResponseStream
// and the runtimes' streaming helpers write) starts with a JSON document — statusCode,
// headers, cookies — and 8 NUL bytes; the rest is the answer's body. A function URL or
// route reads the prelude before it sends the answer's head (map_http_prelude).
#include <cstddef>
#include <string>
#include <string_view>

namespace funcd {

inline constexpr std::string_view kHttpIntegrationContentType = "application/vnd.awslambda.http-integration-response";
// The prelude's delimiter: 8 NUL bytes.
inline constexpr std::size_t kPreludeDelimiterBytes = 8;
// Most bytes of prelude metadata read before the delimiter must have come: API Gateway's
// documented limit for the same prelude (metadata within the first 16 KB of the stream).
inline constexpr std::size_t kMaxPreludeBytes = 16 * 1024;

// Splits the prelude off a stream fed in pieces of any size (a delimiter may straddle two).
class HttpPreludeSplitter {
public:
    enum class Status { need_more, done, too_long };

    // Takes the next bytes of the stream. Once done, metadata() is the JSON text and body()
    // the bytes after the delimiter received so far; later bytes are the body and are not fed.
    Status feed(std::string_view data);
    Status status() const { return status_; }
    std::string_view metadata() const { return std::string_view(bytes_).substr(0, split_); }
    std::string_view body() const {
        return status_ == Status::done ? std::string_view(bytes_).substr(split_ + kPreludeDelimiterBytes)
                                       : std::string_view();
    }
    // Bytes held before the split (what an incomplete prelude was, for an error message).
    std::size_t held() const { return bytes_.size(); }

private:
    std::string bytes_;
    std::size_t split_ = 0;
    std::size_t searched_ = 0;  // bytes_ before this hold no delimiter start
    Status status_ = Status::need_more;
};

// Whether a runtime's Content-Type is the HTTP integration's (parameters ignored).
bool is_http_integration_content_type(std::string_view content_type);

}  // namespace funcd
