// The HTTP trigger's contract with functions (payload format 2.0): a function's result
// mapped to the HTTP answer (funcd::map_http_result) and a request turned into the event
// (funcd::make_http_event).
//
// Input: the function's result, which is also read as a request: "METHOD TARGET" on the
// first line, "name: value" header lines, a blank line, the body.
//
// Invariants for the answer:
// - its status is a final one (200-599);
// - its header names are tokens, no value (the content type included) holds CR, LF or NUL
//   (no response splitting), and it sets none of the headers the server owns (framing and
//   connection management);
// - a result that is JSON but not a response object comes back unchanged with 200; a
//   malformed response object is a 502 with a reason.
// Invariants for the event:
// - it always serialises (every string in it is UTF-8, whatever bytes the request had);
// - its body is the request's body, as it is or base64-encoded as isBase64Encoded says.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../fuzz_check.hpp"
#include "funcd/common/base64.hpp"
#include "funcd/gateway/http_types.hpp"
#include "funcd/triggers/http_event.hpp"

namespace {

using json = nlohmann::json;

constexpr std::array<std::string_view, 8> kServerOwned = {
    "connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"};

bool is_token(std::string_view s) {
    constexpr std::string_view kPunctuation = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               kPunctuation.find(c) != std::string_view::npos;
    });
}

bool is_safe_value(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

void check_answer(std::string_view result) {
    std::string why;
    const funcd::http::Response r = funcd::map_http_result(result, &why);
    FUZZ_CHECK(r.status >= 200 && r.status <= 599, "status " + std::to_string(r.status));
    FUZZ_CHECK(is_safe_value(r.content_type), "a content type with CR, LF or NUL");
    for (const auto& [name, value] : r.headers) {
        FUZZ_CHECK(is_token(name), "header name '" + name + "'");
        FUZZ_CHECK(is_safe_value(value), "header " + name + " has CR, LF or NUL");
        FUZZ_CHECK(std::find(kServerOwned.begin(), kServerOwned.end(), lower(name)) == kServerOwned.end(),
                   "the function set the server's header " + name);
    }
    const json doc = json::parse(result, nullptr, /*allow_exceptions=*/false);
    const bool response_object = !doc.is_discarded() && doc.is_object() && doc.contains("statusCode");
    if (!doc.is_discarded() && !response_object) {
        FUZZ_CHECK(r.status == 200 && r.body == result, "a plain JSON result was not passed through");
    }
    if (r.status == 502 && r.body == R"({"message":"Internal Server Error"})")
        FUZZ_CHECK(!why.empty() || (response_object && doc["statusCode"] == 502), "a 502 without a reason");
    if (!why.empty()) FUZZ_CHECK(r.status == 502, "a reason without a 502: " + why);
}

// "METHOD TARGET\nname: value\n...\n\nbody"
funcd::http::Request as_request(std::string_view text) {
    funcd::http::Request req;
    const auto head_end = text.find("\n\n");
    std::string_view head = text.substr(0, head_end);
    if (head_end != std::string_view::npos) req.body = std::string(text.substr(head_end + 2));
    const auto first_nl = head.find('\n');
    const auto line = head.substr(0, first_nl);
    const auto space = line.find(' ');
    req.method = std::string(line.substr(0, space));
    req.target = space == std::string_view::npos ? "/" : std::string(line.substr(space + 1));
    head = first_nl == std::string_view::npos ? std::string_view{} : head.substr(first_nl + 1);
    while (!head.empty()) {
        const auto nl = head.find('\n');
        const auto field = head.substr(0, nl);
        const auto colon = field.find(':');
        if (colon != std::string_view::npos) {
            auto value = field.substr(colon + 1);
            while (value.starts_with(' ')) value.remove_prefix(1);
            req.headers.emplace_back(lower(field.substr(0, colon)), std::string(value));
        }
        if (nl == std::string_view::npos) break;
        head.remove_prefix(nl + 1);
    }
    req.remote_address = "127.0.0.1";
    return req;
}

void check_event(std::string_view text) {
    const funcd::http::Request req = as_request(text);
    funcd::HttpEventContext ctx;
    ctx.route_key = "ANY " + req.target.substr(0, req.target.find('?'));
    ctx.raw_path = req.target.substr(0, req.target.find('?'));
    ctx.path_parameters["proxy"] = ctx.raw_path;
    ctx.request_id = "00000000-0000-0000-0000-000000000000";
    ctx.domain_name = std::string(req.header("host"));
    ctx.api_id = "fuzz";
    ctx.time = std::chrono::system_clock::time_point(std::chrono::seconds(1'767'225'600));
    const json event = funcd::make_http_event(req, ctx);
    try {
        (void)event.dump();
    } catch (const json::exception& e) {
        FUZZ_CHECK(false, std::string("the event does not serialise: ") + e.what());
    }
    FUZZ_CHECK(event.at("isBase64Encoded").is_boolean(), "isBase64Encoded is not a boolean");
    if (req.body.empty()) {
        FUZZ_CHECK(!event.contains("body"), "a body for a request without one");
    } else if (event.at("isBase64Encoded").get<bool>()) {
        const auto decoded = funcd::base64_decode(event.at("body").get<std::string>());
        FUZZ_CHECK(decoded && *decoded == req.body, "the base64 body is not the request's");
    } else {
        FUZZ_CHECK(event.at("body").get<std::string>() == req.body, "the body is not the request's");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_answer(input);
    check_event(input);
    return 0;
}
