#pragma once
// Plain request/response types between the HTTP server (Beast) and the handlers,
// so only the server's translation unit compiles Beast.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "funcd/runtime_api/response_stream.hpp"

namespace funcd::http {

struct Request {
    std::string method;  // upper case, as sent
    std::string target;  // path and query, as sent
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    std::string remote_address;

    // First header with this (lower-case) name, or empty.
    std::string_view header(std::string_view lower_name) const {
        for (const auto& [k, v] : headers)
            if (k == lower_name) return v;
        return {};
    }
    bool has_header(std::string_view lower_name) const {
        for (const auto& [k, v] : headers)
            if (k == lower_name) return true;
        return false;
    }
};

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string content_type = "application/json";
    // A streamed body: `body` goes first, then the stream's bytes as they come, in chunked
    // transfer coding (HTTP/1.0: until the connection closes). A stream that fails is cut
    // off without its terminating chunk, which HTTP clients report as an incomplete
    // response; a client that goes away cancels it.
    std::shared_ptr<ResponseStream> stream;
};

using Responder = std::function<void(Response)>;

// What the server does with a request once its head has arrived, before any of its body
// is read: read a body of at most `body_limit` bytes (larger ones are answered 413 without
// being read), or answer `refusal` at once and close (a request without valid credentials:
// its body is never buffered).
struct HeadDecision {
    std::size_t body_limit = 0;
    std::optional<Response> refusal;

    static HeadDecision read_body(std::size_t limit) { return {limit, std::nullopt}; }
    static HeadDecision refuse(Response r) { return {0, std::move(r)}; }
};

// Decides from the head alone (method, target and headers of `head`; its body is empty).
using HeadFn = std::function<HeadDecision(const Request& head)>;

// The answer to a request whose body is over its limit: `declared` is the Content-Length
// the head announced, if it did. Lets each API answer in its own error shape.
using TooLargeFn = std::function<Response(std::string_view method, std::string_view target,
                                          std::optional<std::uint64_t> declared, std::size_t limit)>;

// Handles one request; must call the responder exactly once (possibly later, from the
// same io_context).
using HandlerFn = std::function<void(Request, Responder)>;

}  // namespace funcd::http
