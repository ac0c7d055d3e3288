#pragma once
// What every API handler needs to read a request and write an answer: the parsed
// target, query parameters, media types, the JSON error shape, and running blocking
// work off the loop.
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/gateway/http_types.hpp"

namespace funcd::api {

struct ParsedTarget {
    std::vector<std::string> segments;  // percent-decoded; a trailing empty segment dropped
    std::vector<std::pair<std::string, std::string>> params;
};

// Throws ApiError(400) for a malformed target.
ParsedTarget parse_target(std::string_view target);
std::optional<std::string> param(const ParsedTarget& t, std::string_view key);
void reject_unknown_params(const ParsedTarget& t, std::initializer_list<std::string_view> allowed);
std::optional<SystemTime> time_param(const ParsedTarget& t, std::string_view key);
// An integer query parameter in [min, max], or `fallback` when absent.
int int_param(const ParsedTarget& t, std::string_view key, int min, int max, int fallback);

// "application/json; charset=utf-8" -> "application/json".
std::string_view media_type(std::string_view content_type);
// Throws ApiError(415) unless the request's body is declared JSON.
void require_json(const http::Request& req);

// The request carries `Authorization: Bearer <token>` (compared in constant time).
bool bearer_token_matches(const http::Request& req, const std::string& token);

http::Response json_response(int status, const nlohmann::json& body);
// {"error": {"type": ..., "message": ...}}
http::Response error_response(int status, std::string_view type, std::string_view message);
http::Response method_not_allowed(std::string_view method, std::string_view allowed);

// The answer to the exception being handled (call inside a catch): an ApiError's own, 507
// for StorageFull, else 500 (logged). The one place caller-facing error documents of the
// /v1 API are chosen.
http::Response response_for_current_exception();

// Runs `work` on `blocking` and answers with its result (or its ApiError) on `io`.
void offload(boost::asio::io_context& io, boost::asio::thread_pool& blocking, http::Responder respond,
             std::function<http::Response()> work);

// Runs `commit` on `blocking`, then `apply` on `io`, which answers: for changes that must
// be durable before they take effect on the loop. An error in `commit` answers instead.
void commit_then_apply(boost::asio::io_context& io, boost::asio::thread_pool& blocking, http::Responder respond,
                       std::function<void()> commit, std::function<http::Response()> apply);

}  // namespace funcd::api
