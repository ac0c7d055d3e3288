#include "funcd/runtime_api/runtime_request_parser.hpp"

#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace funcd {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr std::string_view kErrorTypeHeader = "Lambda-Runtime-Function-Error-Type";
constexpr std::string_view kErrorBodyTrailer = "Lambda-Runtime-Function-Error-Body";
constexpr std::string_view kResponseModeHeader = "Lambda-Runtime-Function-Response-Mode";

}  // namespace

RuntimeRequestParser::RuntimeRequestParser(std::string& target, BodyBuffer& body) : target_(target), body_(body) {
    target_.clear();
    body_.reset();
    // The limit is known before the head: a declared length above it fails at the head,
    // a chunked body once it grows past it.
    body_limit(kMaxRuntimePayloadBytes);
    // One step per put(): the endpoint decides between the head and the body whether the
    // body is buffered or streamed (see Session::parse).
    eager(false);
}

void RuntimeRequestParser::on_request_impl(bhttp::verb, string_view method_str, string_view target, int,
                                           error_code&) {
    method_string.assign(method_str.data(), method_str.size());
    target_.assign(target.data(), target.size());
}

void RuntimeRequestParser::on_response_impl(int, string_view, int, error_code& ec) {
    ec = bhttp::error::bad_version;
}

void RuntimeRequestParser::on_field_impl(bhttp::field name, string_view name_string, string_view value,
                                         error_code&) {
    if (is_header_done()) {
        // A trailer of a chunked body. The last occurrence counts: a trailer is the sender's
        // last word.
        if (name == bhttp::field::unknown && beast::iequals(name_string, kErrorTypeHeader))
            trailer_error_type.assign(value.data(), value.size());
        else if (name == bhttp::field::unknown && beast::iequals(name_string, kErrorBodyTrailer))
            trailer_error_body.assign(value.data(), value.size());
        return;
    }
    // The first occurrence counts, as a lookup in Beast's fields would find.
    if (name == bhttp::field::content_type) {
        if (!seen_content_type_) content_type.assign(value.data(), value.size());
        seen_content_type_ = true;
    } else if (name == bhttp::field::unknown && !seen_mode_ && beast::iequals(name_string, kResponseModeHeader)) {
        streaming = beast::iequals(value, "streaming");
        seen_mode_ = true;
    } else if (name == bhttp::field::expect) {
        if (!seen_expect_) expect_continue = beast::iequals(value, "100-continue");
        seen_expect_ = true;
    } else if (name == bhttp::field::unknown && !seen_error_type_ && beast::iequals(name_string, kErrorTypeHeader)) {
        error_type.assign(value.data(), value.size());
        seen_error_type_ = true;
    }
}

void RuntimeRequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) {
    // Already checked against the body limit. Only a ceiling: nothing is allocated
    // for bytes that have not arrived.
    ceiling_ = length ? static_cast<std::size_t>(*length) : kMaxRuntimePayloadBytes;
}

void RuntimeRequestParser::stream_to(ResponseStream& stream, std::uint64_t limit) {
    stream_ = &stream;
    stream_limit_ = limit;
    // The stream's own limit replaces the buffered payload limit for what is left.
    body_limit(boost::none);
}

std::size_t RuntimeRequestParser::append(string_view data, error_code& ec) {
    if (stream_) {
        if (stream_->total_bytes() + data.size() > stream_limit_) {
            ec = bhttp::error::body_limit;
            return 0;
        }
        stream_->write({data.data(), data.size()});
        return data.size();
    }
    if (body_.append({data.data(), data.size()}, ceiling_)) return data.size();
    over_budget = true;
    ec = bhttp::error::buffer_overflow;
    return 0;
}

}  // namespace funcd
