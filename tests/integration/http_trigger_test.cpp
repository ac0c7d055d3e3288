// Functions as HTTP endpoints through the real daemon: function URLs, routes, the API
// Gateway event and response mapping, auth and CORS.
#include <gtest/gtest.h>

#include "daemon_harness.hpp"
#include "funcd/common/base64.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;

// Returns the event it got, as the body of a response with a header and a cookie.
const char* kEchoEventPy = R"(import json
def handler(event, context):
    return {"statusCode": 201, "headers": {"x-echo": "yes", "content-type": "application/json"},
            "cookies": ["a=1; Path=/", "b=2"], "body": json.dumps(event)}
)";

// Returns whatever the event's body asks for: a plain value, a binary body, or an error.
const char* kShapesPy = R"(import base64, json
def handler(event, context):
    ask = event.get("rawQueryString", "")
    if ask == "plain":
        return {"hello": "world"}
    if ask == "binary":
        return {"statusCode": 200, "headers": {"content-type": "image/png"},
                "isBase64Encoded": True, "body": base64.b64encode(bytes(range(256))).decode()}
    if ask == "fail":
        raise RuntimeError("boom")
    if ask == "echo-binary":
        return {"statusCode": 200, "body": event["body"], "isBase64Encoded": event["isBase64Encoded"]}
    return "just a string"
)";

HttpResult call(Daemon& d, const std::string& method, const std::string& target, const std::string& body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}, bool with_token = true) {
    if (with_token) headers.emplace_back("Authorization", "Bearer " + Daemon::kToken);
    return http_request(d.port(), method, target, body, headers);
}

TEST(HttpTrigger, FunctionUrlPassesAnApiGatewayEventAndMapsTheResponse) {
    Daemon d;
    ASSERT_EQ(d.deploy("echo", python_settings({{"url_auth", "none"}}), python_zip(kEchoEventPy)).status, 201);
    auto r = call(d, "POST", "/fn/echo/users/42?b=2&a=1&a=3", R"({"x": 1})",
                  {{"Content-Type", "application/json"}, {"Cookie", "s=abc; t=def"}, {"X-Custom", "v"},
                   {"User-Agent", "tester/1"}},
                  false);
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.header("x-echo"), "yes");
    EXPECT_FALSE(r.header("x-funcd-request-id").empty());
    json e = r.json();
    EXPECT_EQ(e["version"], "2.0");
    EXPECT_EQ(e["routeKey"], "$default");
    EXPECT_EQ(e["rawPath"], "/users/42");
    EXPECT_EQ(e["rawQueryString"], "b=2&a=1&a=3");
    EXPECT_EQ(e["queryStringParameters"], json({{"a", "1,3"}, {"b", "2"}}));
    EXPECT_EQ(e["cookies"], json({"s=abc", "t=def"}));
    EXPECT_EQ(e["headers"]["x-custom"], "v");
    EXPECT_FALSE(e["headers"].contains("cookie"));
    EXPECT_EQ(e["body"], R"({"x": 1})");
    EXPECT_EQ(e["isBase64Encoded"], false);
    EXPECT_EQ(e["requestContext"]["http"]["method"], "POST");
    EXPECT_EQ(e["requestContext"]["http"]["path"], "/users/42");
    EXPECT_EQ(e["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    EXPECT_EQ(e["requestContext"]["http"]["userAgent"], "tester/1");
    EXPECT_EQ(e["requestContext"]["requestId"], r.header("x-funcd-request-id"));
    EXPECT_TRUE(e["requestContext"]["timeEpoch"].is_number_integer());
    EXPECT_FALSE(e.contains("pathParameters"));
}

TEST(HttpTrigger, ResultShapesBinaryBodiesAndErrors) {
    Daemon d;
    ASSERT_EQ(d.deploy("shapes", python_settings({{"url_auth", "none"}}), python_zip(kShapesPy)).status, 201);
    auto plain = call(d, "GET", "/fn/shapes?plain", {}, {}, false);
    ASSERT_EQ(plain.status, 200);
    EXPECT_EQ(plain.json(), json({{"hello", "world"}}));
    EXPECT_NE(plain.header("content-type").find("application/json"), std::string::npos);

    auto str = call(d, "GET", "/fn/shapes", {}, {}, false);
    ASSERT_EQ(str.status, 200);
    EXPECT_EQ(str.body, "\"just a string\"");

    auto bin = call(d, "GET", "/fn/shapes?binary", {}, {}, false);
    ASSERT_EQ(bin.status, 200);
    EXPECT_EQ(bin.header("content-type"), "image/png");
    ASSERT_EQ(bin.body.size(), 256u);
    for (int i = 0; i < 256; ++i) ASSERT_EQ(static_cast<unsigned char>(bin.body[i]), i);

    // A binary request body reaches the function base64-encoded and can come back intact.
    std::string payload;
    for (int i = 0; i < 256; ++i) payload += static_cast<char>(255 - i);
    auto round = call(d, "POST", "/fn/shapes?echo-binary", payload, {{"Content-Type", "application/octet-stream"}},
                      false);
    ASSERT_EQ(round.status, 200) << round.body;
    EXPECT_EQ(round.body, payload);

    auto fail = call(d, "GET", "/fn/shapes?fail", {}, {}, false);
    EXPECT_EQ(fail.status, 502);
    EXPECT_EQ(fail.json(), json({{"message", "Internal Server Error"}}));

    EXPECT_EQ(call(d, "GET", "/fn/missing", {}, {}, false).status, 404);
}

TEST(HttpTrigger, TimeoutAnswers504AndThrottle429) {
    Daemon d({"--queue-wait-ms", "0"});
    const char* slow = R"(import time
def handler(event, context):
    time.sleep(5)
)";
    ASSERT_EQ(d.deploy("slow", python_settings({{"url_auth", "none"}, {"timeout_s", 1}}), python_zip(slow)).status, 201);
    auto r = call(d, "GET", "/fn/slow", {}, {}, false);
    EXPECT_EQ(r.status, 504);
    ASSERT_EQ(d.api("PUT", "/v1/functions/slow/concurrency", R"({"reserved_concurrency": 0})").status, 200);
    auto t = call(d, "GET", "/fn/slow", {}, {}, false);
    EXPECT_EQ(t.status, 429);
    EXPECT_EQ(t.json(), json({{"message", "Too Many Requests"}}));
}

TEST(HttpTrigger, UrlAuthTokenRequiresTheApiToken) {
    Daemon d;
    ASSERT_EQ(d.deploy("private", python_settings(), python_zip(kShapesPy)).status, 201);
    EXPECT_EQ(d.api("GET", "/v1/functions/private").json()["url_auth"], "token") << "token is the default";
    auto denied = call(d, "GET", "/fn/private?plain", {}, {}, false);
    EXPECT_EQ(denied.status, 401);
    EXPECT_EQ(denied.header("www-authenticate"), "Bearer");
    EXPECT_EQ(call(d, "GET", "/fn/private?plain", {}, {{"Authorization", "Bearer wrong"}}, false).status, 401);
    EXPECT_EQ(call(d, "GET", "/fn/private?plain").status, 200);
}

TEST(HttpTrigger, CorsPreflightAndResponseHeaders) {
    Daemon d;
    json cors{{"allow_origins", {"https://app.example"}},
              {"allow_methods", {"GET", "POST"}},
              {"allow_headers", {"content-type", "x-api-key"}},
              {"max_age_s", 600}};
    ASSERT_EQ(d.deploy("web", python_settings({{"cors", cors}}), python_zip(kShapesPy)).status, 201);
    auto pre = call(d, "OPTIONS", "/fn/web",
                    {}, {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}}, false);
    EXPECT_EQ(pre.status, 204) << "a preflight needs no token";
    EXPECT_EQ(pre.header("access-control-allow-origin"), "https://app.example");
    EXPECT_EQ(pre.header("access-control-allow-methods"), "GET, POST");
    EXPECT_EQ(pre.header("access-control-allow-headers"), "content-type, x-api-key");
    EXPECT_EQ(pre.header("access-control-max-age"), "600");

    auto other = call(d, "OPTIONS", "/fn/web", {},
                      {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}}, false);
    EXPECT_TRUE(other.header("access-control-allow-origin").empty());

    auto get = call(d, "GET", "/fn/web?plain", {}, {{"Origin", "https://app.example"}});
    ASSERT_EQ(get.status, 200);
    EXPECT_EQ(get.header("access-control-allow-origin"), "https://app.example");

    auto bad = d.deploy("web2", python_settings({{"cors", {{"allow_origins", {"not a url"}}}}}), python_zip(kShapesPy));
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("cors.allow_origins"), std::string::npos) << bad.body;
}

TEST(HttpTrigger, RoutesMatchMostSpecificAndRejectConflicts) {
    Daemon d;
    const char* which = R"(def handler(event, context):
    return {"fn": context.function_name, "route": event["routeKey"], "path": event["rawPath"],
            "params": event.get("pathParameters", {})}
)";
    for (const char* name : {"get-user", "user-any", "files", "me"})
        ASSERT_EQ(d.deploy(name, python_settings({{"url_auth", "none"}}), python_zip(which)).status, 201);
    json routes = json::array({
        {{"method", "GET"}, {"path", "/users/{id}"}, {"function", "get-user"}},
        {{"method", "ANY"}, {"path", "/users/{id}"}, {"function", "user-any"}},
        {{"method", "GET"}, {"path", "/users/me"}, {"function", "me"}},
        {{"method", "ANY"}, {"path", "/files/{proxy+}"}, {"function", "files"}},
    });
    auto put = d.api("PUT", "/v1/routes", routes.dump());
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(d.api("GET", "/v1/routes").json()["routes"].size(), 4u);

    auto u = call(d, "GET", "/api/users/a%20b");
    ASSERT_EQ(u.status, 200) << u.body;
    EXPECT_EQ(u.json()["fn"], "get-user");
    EXPECT_EQ(u.json()["route"], "GET /users/{id}");
    EXPECT_EQ(u.json()["params"], json({{"id", "a b"}}));
    EXPECT_EQ(call(d, "DELETE", "/api/users/7").json()["fn"], "user-any");
    EXPECT_EQ(call(d, "GET", "/api/users/me").json()["fn"], "me");
    auto f = call(d, "PUT", "/api/files/a/b/c.txt");
    EXPECT_EQ(f.json()["fn"], "files");
    EXPECT_EQ(f.json()["params"], json({{"proxy", "a/b/c.txt"}}));
    EXPECT_EQ(f.json()["path"], "/files/a/b/c.txt");
    EXPECT_EQ(call(d, "GET", "/api/nothing/here").status, 404);

    json conflict = routes;
    conflict.push_back({{"method", "GET"}, {"path", "/users/{name}"}, {"function", "me"}});
    auto c = d.api("PUT", "/v1/routes", conflict.dump());
    EXPECT_EQ(c.status, 409) << c.body;
    EXPECT_NE(c.body.find("GET /users/{name}"), std::string::npos) << c.body;
    json missing = json::array({{{"method", "GET"}, {"path", "/x"}, {"function", "nope"}}});
    EXPECT_EQ(d.api("PUT", "/v1/routes", missing.dump()).status, 400);
    EXPECT_EQ(d.api("PUT", "/v1/routes", R"({"routes": []})").status, 400);
    EXPECT_EQ(d.api("GET", "/v1/routes").json()["routes"].size(), 4u) << "refused tables change nothing";

    // Routes survive a restart.
    d.keep_data_dir();
    const auto dir = d.data_dir();
    d.stop();
    {
        Daemon again({}, dir);
        EXPECT_EQ(call(again, "GET", "/api/users/me").json()["fn"], "me");
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace funcd::testing
