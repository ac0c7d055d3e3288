#pragma once
// The HTTP trigger's event and response contract: a request becomes the event API Gateway's
// HTTP APIs and Lambda function URLs send (payload format version 2.0), and the function's
// result becomes the HTTP answer the same way those services map it, so handlers and
// frameworks written for them (Mangum, serverless-http, aws-lambda-web-adapter...) run as they are.
//
// References: "Create AWS Lambda proxy integrations for HTTP APIs in API Gateway"
// (payload format 2.0 and "Lambda function response for format 2.0") and "Invoking Lambda
// function URLs" (request and response payloads).
#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "funcd/gateway/http_types.hpp"

namespace funcd {

// What the gateway knows about a request beyond the request itself.
struct HttpEventContext {
    std::string route_key;  // "ANY /fn/hello", "GET /api/users/{id}" or "$default"
    // The path the function sees, still percent-encoded as the client sent it (the docs'
    // rawPath is "the request path"); also requestContext.http.path.
    std::string raw_path;
    std::map<std::string, std::string> path_parameters;  // decoded; empty: the field is omitted
    std::string stage = "$default";
    std::string request_id;   // the invocation's request id
    std::string domain_name;  // the Host header, else the listen address
    std::string account_id = "000000000000";
    std::string api_id;  // the function name, or "funcd"
    std::chrono::system_clock::time_point time;
};

// The payload format 2.0 event for `req`. Every string in it is valid UTF-8 (invalid bytes in
// headers, query or cookies become U+FFFD), so the event always serialises.
nlohmann::json make_http_event(const http::Request& req, const HttpEventContext& ctx);

// The HTTP answer for a function's result (the bytes its runtime posted as the response):
// - a JSON object with "statusCode": that status, its "headers", one Set-Cookie per entry of
//   "cookies", its "body" (base64-decoded when "isBase64Encoded" is true);
// - any other valid JSON (or an empty result): 200, application/json, the result as it is;
// - not JSON, or a response object that is malformed: 502 {"message": "Internal Server Error"};
//   then `malformed_reason`, when given, says what was wrong, for the function's log.
http::Response map_http_result(std::string_view function_result, std::string* malformed_reason = nullptr);

// The head of a streamed HTTP answer from the metadata of Lambda's HTTP integration prelude
// (the JSON document before the 8 NUL bytes, see http_prelude.hpp): "statusCode" (default
// 200), "headers" and "cookies" as in a response object; no content-type header:
// application/octet-stream. Malformed: 502 as for map_http_result (and `malformed_reason`).
// The answer's body is left empty: it is the stream.
http::Response map_http_prelude(std::string_view metadata, std::string* malformed_reason = nullptr);

// The 2.0 event's requestContext.time format: "27/Nov/2026:02:05:04 +0000" (always UTC).
std::string format_http_event_time(std::chrono::system_clock::time_point t);

}  // namespace funcd
