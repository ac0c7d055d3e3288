#include "funcd/triggers/http_event.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <vector>

#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>

#include "funcd/common/base64.hpp"
#include "funcd/common/text.hpp"
#include "funcd/common/utf8.hpp"

namespace funcd {

using json = nlohmann::json;

namespace {

// The payload format version this file speaks (Lambda function URLs support only 2.0).
constexpr std::string_view kPayloadVersion = "2.0";
// Both the API Gateway and the function URL examples carry this; our server speaks HTTP/1.x and
// the event does not distinguish 1.0 from 1.1 for the function.
constexpr std::string_view kProtocol = "HTTP/1.1";

// What API Gateway answers when a function's response cannot be mapped.
constexpr int kMalformedResultStatus = 502;
constexpr std::string_view kMalformedResultBody = R"({"message":"Internal Server Error"})";

// "If your function returns valid JSON and doesn't return a statusCode": status 200 and
// content-type application/json; the same content-type when a response object names none.
constexpr int kInferredStatus = 200;
constexpr std::string_view kDefaultContentType = "application/json";
// A streamed answer whose function named no content type (as Lambda's function URLs answer).
constexpr std::string_view kStreamContentType = "application/octet-stream";

// A function may answer with any final status; 1xx are interim answers HTTP does not let
// a server send as the final one, and above 599 there are no classes.
constexpr int kMinResultStatus = 200;
constexpr int kMaxResultStatus = 599;

// The request's textual types, whose body reaches the function as it is. The AWS pages say only
// "if the content type of the request is binary, the body is base64-encoded"; the split below is
// what HTTP APIs are observed to do (text/*, JSON, JavaScript, XML as text; everything else,
// no content-type and application/x-www-form-urlencoded included, base64), plus the structured
// +json and +xml suffixes (RFC 6839), which are JSON and XML by definition.
constexpr std::array<std::string_view, 3> kTextualApplicationTypes = {
    "application/json", "application/javascript", "application/xml"};
constexpr std::array<std::string_view, 2> kTextualSuffixes = {"+json", "+xml"};

// RFC 9110 section 7.6.1: connection-specific fields, plus the message framing the daemon's
// server writes itself; copying a function's values would contradict what is on the wire.
constexpr std::array<std::string_view, 8> kServerOwnedHeaders = {
    "connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"};

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

std::string to_lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); });
    return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// JSON strings must be UTF-8 (nlohmann::json refuses to serialise anything else), but header
// values, query strings and decoded path segments are bytes; bad bytes become U+FFFD.
std::string as_text(std::string_view s) {
    if (is_valid_utf8(s)) return std::string(s);
    std::string out;
    out.reserve(s.size() + 8);
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            out += kReplacementCharacter;
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

// Query components decode '+' as a space (the form encoding browsers use for queries, as API
// Gateway does). A malformed escape is kept as sent rather than failing the whole request.
std::string decode_query_component(std::string_view s) {
    const auto pct = boost::urls::make_pct_string_view(s);
    if (!pct) return std::string(s);
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    return pct->decode(opts);
}

bool is_textual_content_type(std::string_view content_type) {
    const std::string type = to_lower(trim_ows(content_type.substr(0, content_type.find(';'))));
    if (type.starts_with("text/")) return true;
    if (std::find(kTextualApplicationTypes.begin(), kTextualApplicationTypes.end(), type) !=
        kTextualApplicationTypes.end())
        return true;
    return std::any_of(kTextualSuffixes.begin(), kTextualSuffixes.end(),
                       [&](std::string_view suffix) { return ends_with(type, suffix); });
}

// "All cookie headers in the request are combined ... and added to the cookies field": one entry
// per name=value pair. RFC 6265 section 4.2.1 separates pairs with "; ".
std::vector<std::string> request_cookies(const http::Request& req) {
    std::vector<std::string> out;
    for (const auto& [name, value] : req.headers) {
        if (name != "cookie") continue;
        std::string_view rest = value;
        while (!rest.empty()) {
            const auto semi = rest.find(';');
            const std::string_view pair = trim_ows(rest.substr(0, semi));
            if (!pair.empty()) out.push_back(as_text(pair));
            if (semi == std::string_view::npos) break;
            rest.remove_prefix(semi + 1);
        }
    }
    return out;
}

// "Duplicate headers are combined with commas"; the cookie header travels in `cookies` instead.
json request_headers(const http::Request& req) {
    std::map<std::string, std::string> joined;
    for (const auto& [name, value] : req.headers) {
        if (name == "cookie") continue;
        const std::string key = as_text(to_lower(name));
        auto [it, fresh] = joined.try_emplace(key, as_text(value));
        if (!fresh) {
            it->second += ',';
            it->second += as_text(value);
        }
    }
    json out = json::object();
    for (auto& [k, v] : joined) out[k] = std::move(v);
    return out;
}

std::string_view raw_query(std::string_view target) {
    const auto q = target.find('?');
    return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

// "Duplicate query strings are combined with commas". Values are decoded; pieces without a key
// (`&&`, `=x`) carry nothing a function could look up and are left out.
json query_parameters(std::string_view query) {
    std::map<std::string, std::string> joined;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view piece = query.substr(0, amp);
        const auto eq = piece.find('=');
        const std::string key = as_text(decode_query_component(piece.substr(0, eq)));
        const std::string value =
            eq == std::string_view::npos ? std::string() : as_text(decode_query_component(piece.substr(eq + 1)));
        if (!key.empty()) {
            auto [it, fresh] = joined.try_emplace(key, value);
            if (!fresh) {
                it->second += ',';
                it->second += value;
            }
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    json out = json::object();
    for (auto& [k, v] : joined) out[k] = std::move(v);
    return out;
}

// domainPrefix is the first label of the domain ("<url-id>" of "<url-id>.lambda-url...").
// A port is not part of the domain, and an IP address has no labels to split.
std::string domain_prefix(std::string_view domain) {
    if (domain.starts_with('[')) {  // IPv6 literal, with or without a port
        const auto close = domain.find(']');
        return std::string(domain.substr(0, close == std::string_view::npos ? domain.size() : close + 1));
    }
    const std::string_view host = domain.substr(0, domain.find(':'));
    const bool ipv4 = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= '0' && c <= '9') || c == '.';
    });
    if (ipv4) return std::string(host);
    return std::string(host.substr(0, host.find('.')));
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::floor<std::chrono::milliseconds>(t).time_since_epoch().count();
}

// RFC 9110 section 5.6.2: a field name is a token.
bool is_token(std::string_view s) {
    constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
    return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               kTokenPunctuation.find(c) != std::string_view::npos;
    });
}

// The server writes values verbatim, so a CR or LF would let a function forge headers or a
// second response (response splitting); NUL is refused by RFC 9110 section 5.5 as well.
bool is_safe_field_value(std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

struct Malformed {
    std::string reason;
};

http::Response malformed(std::string reason, std::string* why) {
    if (why) *why = std::move(reason);
    http::Response r;
    r.status = kMalformedResultStatus;
    r.content_type = std::string(kDefaultContentType);
    r.body = std::string(kMalformedResultBody);
    return r;
}

// Header values in a response object are meant to be strings; numbers and booleans are taken as
// their JSON text (as JavaScript handlers often return them), null leaves the header out.
std::optional<std::string> header_value(const json& v, const std::string& name) {
    if (v.is_null()) return std::nullopt;
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number() || v.is_boolean()) return v.dump();
    throw Malformed{"headers." + name + " must be a string"};
}

http::Response map_response_object(const json& doc) {
    const json& code = doc.at("statusCode");
    if (!code.is_number_integer() || code.get<std::int64_t>() < kMinResultStatus ||
        code.get<std::int64_t>() > kMaxResultStatus)
        throw Malformed{"statusCode must be an integer from " + std::to_string(kMinResultStatus) + " to " +
                        std::to_string(kMaxResultStatus) + " (got " + code.dump() + ")"};

    http::Response r;
    r.status = static_cast<int>(code.get<std::int64_t>());
    r.content_type = std::string(kDefaultContentType);

    if (auto it = doc.find("headers"); it != doc.end() && !it->is_null()) {
        if (!it->is_object()) throw Malformed{"headers must be an object"};
        for (const auto& [name, value] : it->items()) {
            if (!is_token(name)) throw Malformed{"header name '" + name + "' is not a valid field name"};
            const std::string lower = to_lower(name);
            const auto text = header_value(value, name);
            if (text && !is_safe_field_value(*text))
                throw Malformed{"headers." + name + " contains a line break or NUL"};
            if (lower == "content-type") {
                // null suppresses the default, as on API Gateway.
                r.content_type = text.value_or(std::string());
                continue;
            }
            if (!text) continue;
            if (std::find(kServerOwnedHeaders.begin(), kServerOwnedHeaders.end(), lower) != kServerOwnedHeaders.end())
                continue;
            r.headers.emplace_back(name, *text);
        }
    }

    // "In the response to the client, each cookie becomes a set-cookie header."
    if (auto it = doc.find("cookies"); it != doc.end() && !it->is_null()) {
        if (!it->is_array()) throw Malformed{"cookies must be an array of strings"};
        for (const auto& cookie : *it) {
            if (!cookie.is_string()) throw Malformed{"cookies must be an array of strings"};
            const auto& text = cookie.get_ref<const std::string&>();
            if (!is_safe_field_value(text)) throw Malformed{"a cookie contains a line break or NUL"};
            r.headers.emplace_back("Set-Cookie", text);
        }
    }

    bool base64 = false;
    if (auto it = doc.find("isBase64Encoded"); it != doc.end() && !it->is_null()) {
        if (!it->is_boolean()) throw Malformed{"isBase64Encoded must be a boolean"};
        base64 = it->get<bool>();
    }

    if (auto it = doc.find("body"); it != doc.end() && !it->is_null()) {
        if (!it->is_string()) throw Malformed{"body must be a string"};
        const auto& body = it->get_ref<const std::string&>();
        if (base64) {
            auto decoded = base64_decode(body);
            if (!decoded) throw Malformed{"body is not valid base64 although isBase64Encoded is true"};
            r.body = std::move(*decoded);
        } else {
            r.body = body;
        }
    }
    return r;
}

}  // namespace

std::string format_http_event_time(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    // floor, not duration_cast, so instants before 1970 land on the right day.
    const auto s = floor<seconds>(t);
    const auto day = floor<days>(s);
    const year_month_day ymd{day};
    const hh_mm_ss hms{s - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%02u/%s/%04d:%02d:%02d:%02lld +0000", static_cast<unsigned>(ymd.day()),
                  kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<long long>(hms.seconds().count()));
    return buf;
}

json make_http_event(const http::Request& req, const HttpEventContext& ctx) {
    const std::string raw_path = as_text(ctx.raw_path);
    const std::string_view query = raw_query(req.target);

    json http_ctx = {
        {"method", as_text(req.method)},
        {"path", raw_path},
        {"protocol", kProtocol},
        {"sourceIp", as_text(req.remote_address)},
        {"userAgent", as_text(req.header("user-agent"))},
    };
    json request_context = {
        {"accountId", as_text(ctx.account_id)},
        {"apiId", as_text(ctx.api_id)},
        {"domainName", as_text(ctx.domain_name)},
        {"domainPrefix", as_text(domain_prefix(ctx.domain_name))},
        {"http", std::move(http_ctx)},
        {"requestId", as_text(ctx.request_id)},
        {"routeKey", as_text(ctx.route_key)},
        {"stage", as_text(ctx.stage)},
        {"time", format_http_event_time(ctx.time)},
        {"timeEpoch", epoch_ms(ctx.time)},
    };

    json event = {
        {"version", kPayloadVersion},
        {"routeKey", as_text(ctx.route_key)},
        {"rawPath", raw_path},
        {"rawQueryString", as_text(query)},
        {"headers", request_headers(req)},
        {"requestContext", std::move(request_context)},
    };

    // Empty collections are left out rather than sent as null or {}: the function URL page says
    // Lambda "sets this to null or excludes this from the JSON", and handlers test for presence.
    if (auto cookies = request_cookies(req); !cookies.empty()) event["cookies"] = std::move(cookies);
    if (json params = query_parameters(query); !params.empty()) event["queryStringParameters"] = std::move(params);
    if (!ctx.path_parameters.empty()) {
        json params = json::object();
        for (const auto& [k, v] : ctx.path_parameters) params[as_text(k)] = as_text(v);
        event["pathParameters"] = std::move(params);
    }

    // "If the content type of the request is binary, the body is base64-encoded." A textual type
    // whose bytes are not UTF-8 cannot travel in a JSON string unchanged, so it goes as base64 too.
    bool base64 = false;
    if (!req.body.empty()) {
        base64 = !is_textual_content_type(req.header("content-type")) || !is_valid_utf8(req.body);
        event["body"] = base64 ? base64_encode(req.body) : req.body;
    }
    event["isBase64Encoded"] = base64;
    return event;
}

http::Response map_http_result(std::string_view function_result, std::string* malformed_reason) {
    // Nothing posted (a runtime may post an empty response) maps like `null` would, but keeps
    // the body exactly as returned.
    json doc;
    if (!trim_ows(function_result).empty()) {
        doc = json::parse(function_result, nullptr, /*allow_exceptions=*/false);
        if (doc.is_discarded()) return malformed("the function's result is not JSON", malformed_reason);
    }
    if (doc.is_object() && doc.contains("statusCode")) {
        try {
            return map_response_object(doc);
        } catch (Malformed& m) {
            return malformed(std::move(m.reason), malformed_reason);
        }
    }
    http::Response r;
    r.status = kInferredStatus;
    r.content_type = std::string(kDefaultContentType);
    r.body = std::string(function_result);
    return r;
}

http::Response map_http_prelude(std::string_view metadata, std::string* malformed_reason) {
    json doc = json::parse(metadata, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object())
        return malformed("the streamed response's prelude is not a JSON object", malformed_reason);
    // The prelude is the head alone: its status defaults to 200, a body in it means nothing.
    if (!doc.contains("statusCode")) doc["statusCode"] = kInferredStatus;
    doc.erase("body");
    doc.erase("isBase64Encoded");
    try {
        http::Response r = map_response_object(doc);
        // Without a content-type of its own a stream is bytes, not JSON.
        const json* headers = doc.contains("headers") && doc["headers"].is_object() ? &doc["headers"] : nullptr;
        bool named = false;
        if (headers)
            for (const auto& [name, value] : headers->items()) named = named || to_lower(name) == "content-type";
        if (!named) r.content_type = std::string(kStreamContentType);
        return r;
    } catch (Malformed& m) {
        return malformed("prelude: " + std::move(m.reason), malformed_reason);
    }
}

}  // namespace funcd
