#include "funcd/gateway/request_parser.hpp"

#include <algorithm>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace funcd::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// Headers most requests carry (Host, Authorization, Content-Type, Content-Length, User-Agent,
// Accept...), reserved at once instead of growing the list one reallocation at a time.
constexpr std::size_t kExpectedHeaders = 8;

}  // namespace

RequestParser::RequestParser(std::size_t header_limit, const HeadFn& head) : head_(head) {
    this->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(header_limit, UINT32_MAX)));
    body_limit(boost::none);  // set in on_header_impl
    eager(true);              // head and body in one put() when both have arrived
    request.headers.reserve(kExpectedHeaders);
}

void RequestParser::on_request_impl(bhttp::verb, string_view method, string_view target, int v, error_code&) {
    request.method.assign(method.data(), method.size());
    request.target.assign(target.data(), target.size());
    version = static_cast<unsigned>(v);
}

void RequestParser::on_response_impl(int, string_view, int, error_code& ec) { ec = bhttp::error::bad_version; }

void RequestParser::on_field_impl(bhttp::field name, string_view name_string, string_view value, error_code&) {
    std::string lower(name_string.data(), name_string.size());
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    request.headers.emplace_back(std::move(lower), std::string(value.data(), value.size()));
    // The first occurrence counts, as a lookup in Beast's fields would find.
    if (name == bhttp::field::expect && !seen_expect_) {
        seen_expect_ = true;
        expect_continue = beast::iequals(value, "100-continue");
    }
}

void RequestParser::on_header_impl(error_code& ec) {
    HeadDecision decision = head_(request);
    if (decision.refusal) {
        refusal = std::move(decision.refusal);
        ec = bhttp::error::body_limit;  // stops the parser; the server answers `refusal`
        return;
    }
    limit = decision.body_limit;
    if (const auto length = content_length(); length && *length > limit) {
        declared_too_large = *length;
        ec = bhttp::error::body_limit;
        return;
    }
    body_limit(limit);
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) {
    if (length) request.body.reserve(static_cast<std::size_t>(*length));  // within the limit
}

std::size_t RequestParser::on_body_impl(string_view data, error_code&) {
    request.body.append(data.data(), data.size());
    return data.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view data, error_code&) {
    request.body.append(data.data(), data.size());
    return data.size();
}

}  // namespace funcd::http
