#pragma once
// One Runtime API request, keeping only what the endpoint uses. Beast's generic request
// parser stores every header field in an allocation of its own; this one stores the
// target and body in buffers the connection reuses, and two fields.
// Only the endpoint (runtime_api_endpoint.cpp) and the fuzz targets include this (it pulls
// in Beast).
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/http/basic_parser.hpp>

#include "funcd/runtime_api/response_stream.hpp"
#include "funcd/runtime_api/runtime_body_buffer.hpp"

namespace funcd {

// Lambda's limit for a synchronous invocation's response payload (6 MB, counted in MiB).
inline constexpr std::size_t kMaxRuntimePayloadBytes = 6'291'456;

class RuntimeRequestParser final : public boost::beast::http::basic_parser<true> {
public:
    // `target` and `body` are the connection's, cleared here and reused request after request.
    RuntimeRequestParser(std::string& target, BodyBuffer& body);

    std::string method_string;  // as sent
    std::string error_type;  // the Lambda-Runtime-Function-Error-Type header
    bool expect_continue = false;
    // The body could not be buffered: the worker's connections already hold its budget.
    bool over_budget = false;
    // Lambda-Runtime-Function-Response-Mode: streaming (a streamed response, whose errors
    // after the first byte come as trailers).
    bool streaming = false;
    std::string content_type;  // the Content-Type header (a streamed response's is the caller's)
    // The trailers of a chunked body: Lambda-Runtime-Function-Error-Type and
    // Lambda-Runtime-Function-Error-Body (base64 of the error document, as sent).
    std::string trailer_error_type;
    std::string trailer_error_body;

    // From now on the body goes to `stream` instead of the buffer, up to `limit` bytes in all
    // (more fails the parse with body_limit). Called once the head is parsed.
    void stream_to(ResponseStream& stream, std::uint64_t limit);

private:
    using error_code = boost::system::error_code;
    using string_view = boost::beast::string_view;

    void on_request_impl(boost::beast::http::verb, string_view method_str, string_view target, int,
                         error_code&) override;
    void on_response_impl(int, string_view, int, error_code& ec) override;
    void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                       error_code&) override;
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override;
    std::size_t on_body_impl(string_view data, error_code& ec) override { return append(data, ec); }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, string_view data, error_code& ec) override {
        return append(data, ec);
    }
    void on_finish_impl(error_code&) override {}
    std::size_t append(string_view data, error_code& ec);

    std::string& target_;
    BodyBuffer& body_;
    std::size_t ceiling_ = kMaxRuntimePayloadBytes;
    ResponseStream* stream_ = nullptr;
    std::uint64_t stream_limit_ = 0;
    bool seen_expect_ = false;
    bool seen_error_type_ = false;
    bool seen_mode_ = false;
    bool seen_content_type_ = false;
};

}  // namespace funcd
