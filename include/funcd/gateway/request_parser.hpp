#pragma once
// The gateway's HTTP/1.1 request parser: one request, parsed straight into the handler's
// Request (header names lower-cased as they arrive) rather than into Beast's message and
// then copied. What happens to the body is decided from the head: a request refused there
// (no valid credentials) and an oversized declared body fail before any of the body is read.
// Only the server (http_server.cpp) and the fuzz targets include this (it pulls in Beast).
#include <cstddef>
#include <cstdint>
#include <optional>

#include <boost/beast/http/basic_parser.hpp>

#include "funcd/gateway/http_types.hpp"

namespace funcd::http {

class RequestParser final : public boost::beast::http::basic_parser<true> {
public:
    // `header_limit`: most bytes of the head (larger: error::header_limit). `head` decides,
    // once the head is complete, the body limit or a refusal; it must outlive the parser.
    RequestParser(std::size_t header_limit, const HeadFn& head);

    Request request;
    unsigned version = 11;
    bool expect_continue = false;
    std::size_t limit = 0;                            // the endpoint's body limit, once the head is known
    std::optional<std::uint64_t> declared_too_large;  // a Content-Length over that limit
    std::optional<Response> refusal;                  // the head's answer, sent without reading the body

private:
    using error_code = boost::system::error_code;
    using string_view = boost::beast::string_view;

    void on_request_impl(boost::beast::http::verb, string_view method, string_view target, int v,
                         error_code&) override;
    void on_response_impl(int, string_view, int, error_code& ec) override;
    void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                       error_code&) override;
    void on_header_impl(error_code& ec) override;
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override;
    std::size_t on_body_impl(string_view data, error_code&) override;
    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, string_view data, error_code&) override;
    void on_finish_impl(error_code&) override {}

    const HeadFn& head_;
    bool seen_expect_ = false;
};

}  // namespace funcd::http
