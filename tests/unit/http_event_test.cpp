#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "funcd/common/base64.hpp"
#include "funcd/common/time_format.hpp"
#include "funcd/triggers/http_event.hpp"

using namespace funcd;
using json = nlohmann::json;

namespace {

SystemTime event_time(std::string_view rfc3339) {
    auto t = parse_rfc3339(rfc3339);
    EXPECT_TRUE(t) << rfc3339;
    return t.value_or(SystemTime{});
}

http::Request request(std::string method, std::string target,
                      std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = {}) {
    http::Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = std::move(headers);
    r.body = std::move(body);
    r.remote_address = "203.0.113.7";
    return r;
}

HttpEventContext context() {
    HttpEventContext c;
    c.route_key = "ANY /fn/hello";
    c.raw_path = "/";
    c.request_id = "6f1c1c52-8a3a-4c55-9b39-4a4c5f0b2e11";
    c.domain_name = "localhost:8080";
    c.api_id = "hello";
    c.time = event_time("2026-11-27T02:05:04.123Z");
    return c;
}

json event_for(const http::Request& req) { return make_http_event(req, context()); }

std::vector<std::string> header_values(const http::Response& r, std::string_view name) {
    std::vector<std::string> out;
    for (const auto& [k, v] : r.headers)
        if (k == name) out.push_back(v);
    return out;
}

bool has_header_ci(const http::Response& r, std::string lower) {
    return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) {
        std::string k = h.first;
        std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
        return k == lower;
    });
}

void expect_malformed(std::string_view result) {
    std::string why;
    const http::Response r = map_http_result(result, &why);
    EXPECT_EQ(r.status, 502) << result;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(json::parse(r.body), json({{"message", "Internal Server Error"}})) << result;
    EXPECT_FALSE(why.empty()) << result;
}

}  // namespace

// ---- the event ---------------------------------------------------------------------------------

TEST(HttpEvent, EveryFieldOfAFullRequest) {
    http::Request req = request("POST", "/fn/hello/users/a%20b?x=1&y=two",
                                {{"host", "localhost:8080"},
                                 {"user-agent", "curl/8.5.0"},
                                 {"content-type", "application/json"},
                                 {"cookie", "session=abc; theme=dark"},
                                 {"x-trace", "t1"}},
                                R"({"k":"v"})");
    HttpEventContext ctx = context();
    ctx.route_key = "ANY /fn/hello/{proxy+}";
    ctx.raw_path = "/users/a%20b";
    ctx.path_parameters = {{"proxy", "users/a b"}};

    const json expected = {
        {"version", "2.0"},
        {"routeKey", "ANY /fn/hello/{proxy+}"},
        {"rawPath", "/users/a%20b"},
        {"rawQueryString", "x=1&y=two"},
        {"cookies", {"session=abc", "theme=dark"}},
        {"headers",
         {{"host", "localhost:8080"},
          {"user-agent", "curl/8.5.0"},
          {"content-type", "application/json"},
          {"x-trace", "t1"}}},
        {"queryStringParameters", {{"x", "1"}, {"y", "two"}}},
        {"pathParameters", {{"proxy", "users/a b"}}},
        {"requestContext",
         {{"accountId", "000000000000"},
          {"apiId", "hello"},
          {"domainName", "localhost:8080"},
          {"domainPrefix", "localhost"},
          {"http",
           {{"method", "POST"},
            {"path", "/users/a%20b"},
            {"protocol", "HTTP/1.1"},
            {"sourceIp", "203.0.113.7"},
            {"userAgent", "curl/8.5.0"}}},
          {"requestId", "6f1c1c52-8a3a-4c55-9b39-4a4c5f0b2e11"},
          {"routeKey", "ANY /fn/hello/{proxy+}"},
          {"stage", "$default"},
          {"time", "27/Nov/2026:02:05:04 +0000"},
          {"timeEpoch", 1795745104123}}},
        {"body", R"({"k":"v"})"},
        {"isBase64Encoded", false},
    };
    EXPECT_EQ(make_http_event(req, ctx), expected) << make_http_event(req, ctx).dump(2);
}

TEST(HttpEvent, EmptyCollectionsAndBodyAreOmitted) {
    const json e = event_for(request("GET", "/fn/hello", {{"host", "h"}}));
    EXPECT_FALSE(e.contains("cookies"));
    EXPECT_FALSE(e.contains("queryStringParameters"));
    EXPECT_FALSE(e.contains("pathParameters"));
    EXPECT_FALSE(e.contains("body"));
    EXPECT_FALSE(e.contains("stageVariables"));
    EXPECT_EQ(e["isBase64Encoded"], false);
    EXPECT_EQ(e["rawQueryString"], "");
    EXPECT_EQ(e["requestContext"]["http"]["userAgent"], "");
}

TEST(HttpEvent, CookiesAreSplitPerPairAndLeftOutOfHeaders) {
    const json e = event_for(request("GET", "/", {{"cookie", "a=1; b=2;c=3"}, {"cookie", " d=4 ;; "}}));
    EXPECT_EQ(e["cookies"], json({"a=1", "b=2", "c=3", "d=4"}));
    EXPECT_FALSE(e["headers"].contains("cookie"));
}

TEST(HttpEvent, RepeatedHeadersAreJoinedWithCommas) {
    const json e = event_for(request("GET", "/", {{"accept", "text/html"}, {"x-a", "1"}, {"accept", "application/json"}}));
    EXPECT_EQ(e["headers"]["accept"], "text/html,application/json");
    EXPECT_EQ(e["headers"]["x-a"], "1");
}

TEST(HttpEvent, HeaderNamesAreLowerCased) {
    // The server lower-cases names already; the event does not rely on it.
    const json e = event_for(request("GET", "/", {{"X-Mixed-Case", "v"}}));
    EXPECT_EQ(e["headers"], json({{"x-mixed-case", "v"}}));
}

TEST(HttpEvent, RepeatedQueryKeysAreJoinedAndValuesDecoded) {
    const json e = event_for(request("GET", "/p?a=1&a=2&b=x+y%26z&flag&&=orphan&c=&a=3"));
    EXPECT_EQ(e["rawQueryString"], "a=1&a=2&b=x+y%26z&flag&&=orphan&c=&a=3");
    EXPECT_EQ(e["queryStringParameters"], json({{"a", "1,2,3"}, {"b", "x y&z"}, {"flag", ""}, {"c", ""}}));
}

TEST(HttpEvent, MalformedQueryEscapesAreKeptAsSent) {
    const json e = event_for(request("GET", "/p?q=100%&r=%zz"));
    EXPECT_EQ(e["queryStringParameters"], json({{"q", "100%"}, {"r", "%zz"}}));
}

TEST(HttpEvent, RawPathIsTheContextsPathNotTheTarget) {
    HttpEventContext ctx = context();
    ctx.raw_path = "/a%2Fb/c";
    const json e = make_http_event(request("GET", "/fn/hello/a%2Fb/c?x=1"), ctx);
    EXPECT_EQ(e["rawPath"], "/a%2Fb/c");
    EXPECT_EQ(e["requestContext"]["http"]["path"], "/a%2Fb/c");
}

TEST(HttpEvent, TextualBodiesTravelAsTheyAre) {
    for (const std::string type :
         {"text/plain", "text/html; charset=utf-8", "TEXT/CSV", "application/json", "application/json; charset=UTF-8",
          "application/xml", "application/javascript", "application/problem+json", "application/atom+xml"}) {
        const json e = event_for(request("POST", "/", {{"content-type", type}}, "héllo <b>"));
        EXPECT_EQ(e["body"], "héllo <b>") << type;
        EXPECT_EQ(e["isBase64Encoded"], false) << type;
    }
}

TEST(HttpEvent, OtherBodiesAreBase64Encoded) {
    // As HTTP APIs do: no content-type and form posts are base64 too.
    for (const std::string type : {"application/octet-stream", "image/png", "multipart/form-data; boundary=x",
                                   "application/x-www-form-urlencoded", "application/jsonx", ""}) {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!type.empty()) headers.emplace_back("content-type", type);
        const json e = event_for(request("POST", "/", headers, "a=1&b=2"));
        EXPECT_EQ(e["isBase64Encoded"], true) << type;
        EXPECT_EQ(e["body"], base64_encode("a=1&b=2")) << type;
    }
}

TEST(HttpEvent, BinaryBodyRoundTripsThroughBase64) {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
    bytes += bytes;
    const json e = event_for(request("PUT", "/", {{"content-type", "application/octet-stream"}}, bytes));
    ASSERT_EQ(e["isBase64Encoded"], true);
    const auto decoded = base64_decode(e["body"].get<std::string>());
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, bytes);
    EXPECT_NO_THROW((void)e.dump());
}

TEST(HttpEvent, TextualTypeWithBytesThatAreNotUtf8IsBase64Encoded) {
    const std::string latin1 = "caf\xE9";
    const json e = event_for(request("POST", "/", {{"content-type", "text/plain; charset=iso-8859-1"}}, latin1));
    EXPECT_EQ(e["isBase64Encoded"], true);
    EXPECT_EQ(base64_decode(e["body"].get<std::string>()), latin1);
}

TEST(HttpEvent, InvalidUtf8OutsideTheBodyBecomesReplacementCharacters) {
    HttpEventContext ctx = context();
    ctx.raw_path = "/a\xFF";
    ctx.path_parameters = {{"id", "\xC0\xAF"}};  // an overlong '/'
    const json e =
        make_http_event(request("GET", "/x?q=%FF", {{"x-bin", "a\x80z"}, {"cookie", "k=\xED\xA0\x80"}}), ctx);
    EXPECT_NO_THROW((void)e.dump());
    EXPECT_EQ(e["headers"]["x-bin"], "a\xEF\xBF\xBDz");
    EXPECT_EQ(e["queryStringParameters"]["q"], "\xEF\xBF\xBD");
    EXPECT_EQ(e["rawPath"], "/a\xEF\xBF\xBD");
    EXPECT_EQ(e["pathParameters"]["id"], "\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(e["cookies"][0], "k=\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(HttpEvent, DomainPrefixIsTheFirstLabel) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"abc123.lambda-url.local:8080", "abc123"}, {"localhost", "localhost"}, {"localhost:8080", "localhost"},
        {"127.0.0.1:8080", "127.0.0.1"},           {"[::1]:8080", "[::1]"},     {"", ""}};
    for (const auto& [domain, prefix] : cases) {
        HttpEventContext ctx = context();
        ctx.domain_name = domain;
        const json e = make_http_event(request("GET", "/"), ctx);
        EXPECT_EQ(e["requestContext"]["domainName"], domain);
        EXPECT_EQ(e["requestContext"]["domainPrefix"], prefix) << domain;
    }
}

TEST(HttpEvent, ContextFieldsPassThrough) {
    HttpEventContext ctx = context();
    ctx.route_key = "GET /api/users/{id}";
    ctx.stage = "prod";
    ctx.account_id = "123456789012";
    ctx.api_id = "funcd";
    const json e = make_http_event(request("GET", "/api/users/7"), ctx);
    EXPECT_EQ(e["routeKey"], "GET /api/users/{id}");
    EXPECT_EQ(e["requestContext"]["routeKey"], "GET /api/users/{id}");
    EXPECT_EQ(e["requestContext"]["stage"], "prod");
    EXPECT_EQ(e["requestContext"]["accountId"], "123456789012");
    EXPECT_EQ(e["requestContext"]["apiId"], "funcd");
}

TEST(HttpEvent, TimeFormat) {
    EXPECT_EQ(format_http_event_time(event_time("2026-11-27T02:05:04.999Z")), "27/Nov/2026:02:05:04 +0000");
    EXPECT_EQ(format_http_event_time(event_time("2020-03-12T19:03:58Z")), "12/Mar/2020:19:03:58 +0000");
    EXPECT_EQ(format_http_event_time(event_time("2021-01-05T00:00:00Z")), "05/Jan/2021:00:00:00 +0000");
    EXPECT_EQ(format_http_event_time(event_time("2021-12-31T23:59:59+02:00")), "31/Dec/2021:21:59:59 +0000");
    EXPECT_EQ(format_http_event_time(event_time("1969-12-31T23:59:59.500Z")), "31/Dec/1969:23:59:59 +0000");
    const json e = event_for(request("GET", "/"));
    EXPECT_EQ(e["requestContext"]["timeEpoch"].get<std::int64_t>(), 1795745104123);
}

// ---- the result --------------------------------------------------------------------------------

TEST(HttpEventResult, ValuesWithoutStatusCodeAreTheBody) {
    // "If your function returns valid JSON and doesn't return a statusCode": 200, JSON, as returned.
    for (const std::string result :
         {R"({ "message": "Hello from Lambda!" })", R"("Hello from Lambda!")", "42", "null", "true", R"([1, 2])",
          R"({"status": 201, "body": "x"})", "  {\"a\":1}\n"}) {
        const http::Response r = map_http_result(result);
        EXPECT_EQ(r.status, 200) << result;
        EXPECT_EQ(r.content_type, "application/json") << result;
        EXPECT_EQ(r.body, result);
        EXPECT_TRUE(r.headers.empty()) << result;
    }
}

TEST(HttpEventResult, EmptyResultIsAnEmpty200) {
    const http::Response r = map_http_result("");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "");
}

TEST(HttpEventResult, NotJsonIsMalformed) {
    expect_malformed("Hello from Lambda!");
    expect_malformed("{\"statusCode\": 200");
}

TEST(HttpEventResult, ResponseObjectIsTheResponse) {
    const json result = {{"statusCode", 201},
                         {"headers", {{"Content-Type", "text/html; charset=utf-8"}, {"My-Custom-Header", "Custom Value"}}},
                         {"body", "<h1>hi</h1>"},
                         {"isBase64Encoded", false}};
    const http::Response r = map_http_result(result.dump());
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(r.body, "<h1>hi</h1>");
    EXPECT_EQ(header_values(r, "My-Custom-Header"), std::vector<std::string>{"Custom Value"});
    EXPECT_FALSE(has_header_ci(r, "content-type")) << "content-type travels in Response::content_type";
}

TEST(HttpEventResult, StatusCodeAloneGivesAnEmptyJsonResponse) {
    const http::Response r = map_http_result(R"({"statusCode": 204})");
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, "");
    EXPECT_TRUE(r.headers.empty());
}

TEST(HttpEventResult, NullHeaderValuesAreLeftOut) {
    const http::Response r =
        map_http_result(R"({"statusCode": 200, "headers": {"content-type": null, "x-gone": null}, "body": "x"})");
    EXPECT_EQ(r.content_type, "");
    EXPECT_TRUE(r.headers.empty());
}

TEST(HttpEventResult, ScalarHeaderValuesAreStringified) {
    const http::Response r = map_http_result(R"({"statusCode": 200, "headers": {"x-count": 5, "x-flag": true}})");
    EXPECT_EQ(header_values(r, "x-count"), std::vector<std::string>{"5"});
    EXPECT_EQ(header_values(r, "x-flag"), std::vector<std::string>{"true"});
}

TEST(HttpEventResult, CookiesBecomeOneSetCookieEach) {
    const json result = {{"statusCode", 200},
                         {"cookies", {"Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"}},
                         {"body", "ok"}};
    const http::Response r = map_http_result(result.dump());
    EXPECT_EQ(header_values(r, "Set-Cookie"),
              (std::vector<std::string>{"Cookie_1=Value1; Expires=21 Oct 2021 07:48 GMT", "Cookie_2=Value2; Max-Age=78000"}));
}

TEST(HttpEventResult, Base64BodyIsDecoded) {
    std::string bytes;
    for (int i = 255; i >= 0; --i) bytes.push_back(static_cast<char>(i));
    const json result = {{"statusCode", 200},
                         {"headers", {{"content-type", "image/png"}}},
                         {"body", base64_encode(bytes)},
                         {"isBase64Encoded", true}};
    const http::Response r = map_http_result(result.dump());
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.content_type, "image/png");
    EXPECT_EQ(r.body, bytes);
}

TEST(HttpEventResult, InvalidBase64BodyIsMalformed) {
    expect_malformed(R"({"statusCode": 200, "body": "not base64!", "isBase64Encoded": true})");
}

TEST(HttpEventResult, BadStatusCodesAreMalformed) {
    for (const std::string code : {R"("200")", "200.5", "99", "100", "199", "600", "-1", "null", "true", "{}",
                                   "18446744073709551615"})
        expect_malformed(R"({"statusCode": )" + code + "}");
    EXPECT_EQ(map_http_result(R"({"statusCode": 200})").status, 200);
    EXPECT_EQ(map_http_result(R"({"statusCode": 599})").status, 599);
}

TEST(HttpEventResult, MalformedFieldsAreMalformed) {
    expect_malformed(R"({"statusCode": 200, "headers": ["a"]})");
    expect_malformed(R"({"statusCode": 200, "headers": {"x": {"y": 1}}})");
    expect_malformed(R"({"statusCode": 200, "headers": {"x": ["a", "b"]}})");
    expect_malformed(R"({"statusCode": 200, "cookies": "a=1"})");
    expect_malformed(R"({"statusCode": 200, "cookies": ["a=1", 2]})");
    expect_malformed(R"({"statusCode": 200, "body": {"message": "hi"}})");
    expect_malformed(R"({"statusCode": 200, "body": 5})");
    expect_malformed(R"({"statusCode": 200, "isBase64Encoded": "yes"})");
}

TEST(HttpEventResult, HeaderInjectionIsMalformed) {
    expect_malformed(R"({"statusCode": 200, "headers": {"x": "a\r\nSet-Cookie: evil=1"}})");
    expect_malformed(R"({"statusCode": 200, "headers": {"x": "a\nb"}})");
    expect_malformed(R"({"statusCode": 200, "headers": {"bad name": "v"}})");
    expect_malformed(R"({"statusCode": 200, "headers": {"": "v"}})");
    expect_malformed(R"({"statusCode": 200, "headers": {"x:y": "v"}})");
    expect_malformed(R"({"statusCode": 200, "cookies": ["a=1\r\n\r\n<html>"]})");
    expect_malformed(R"({"statusCode": 200, "headers": {"content-type": "text/html\r\nX: y"}})");
}

TEST(HttpEventResult, FramingHeadersStayTheServers) {
    const http::Response r = map_http_result(
        R"({"statusCode": 200, "headers": {"Content-Length": "999", "Transfer-Encoding": "chunked",
            "Connection": "close", "Keep-Alive": "timeout=5", "Upgrade": "h2c", "X-Kept": "yes"}, "body": "abc"})");
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"X-Kept", "yes"}));
    EXPECT_EQ(r.body, "abc");
}

TEST(HttpEventResult, MultiValueHeadersAreNotPartOfFormat2) {
    const http::Response r =
        map_http_result(R"({"statusCode": 200, "multiValueHeaders": {"x-a": ["1", "2"]}, "body": "b"})");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.headers.empty());
}

TEST(HttpEventResult, MalformedReasonIsOptional) {
    const http::Response r = map_http_result(R"({"statusCode": "x"})");
    EXPECT_EQ(r.status, 502);
    std::string why;
    (void)map_http_result(R"({"statusCode": "x"})", &why);
    EXPECT_NE(why.find("statusCode"), std::string::npos) << why;
}
