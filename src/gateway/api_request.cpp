#include "funcd/gateway/api_request.hpp"

#include <openssl/crypto.h>

#include <boost/asio/post.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_text.hpp"
#include "funcd/common/storage_full.hpp"
#include "funcd/common/text.hpp"

namespace funcd::api {

using nlohmann::json;

ParsedTarget parse_target(std::string_view target) {
    auto parsed = boost::urls::parse_origin_form(target);
    if (!parsed) throw ApiError::bad_content("malformed request target: " + std::string(target));
    ParsedTarget out;
    for (auto seg : parsed->segments()) out.segments.emplace_back(seg);
    if (!out.segments.empty() && out.segments.back().empty()) out.segments.pop_back();  // trailing slash
    for (auto p : parsed->params()) out.params.emplace_back(p.key, p.has_value ? std::string(p.value) : std::string());
    return out;
}

std::optional<std::string> param(const ParsedTarget& t, std::string_view key) {
    for (const auto& [k, v] : t.params)
        if (k == key) return v;
    return std::nullopt;
}

void reject_unknown_params(const ParsedTarget& t, std::initializer_list<std::string_view> allowed) {
    for (const auto& [k, v] : t.params)
        if (std::find(allowed.begin(), allowed.end(), k) == allowed.end())
            throw ApiError::bad_parameter("unknown query parameter '" + k + "'");
}

std::optional<SystemTime> time_param(const ParsedTarget& t, std::string_view key) {
    auto v = param(t, key);
    if (!v) return std::nullopt;
    auto parsed = parse_rfc3339(*v);
    if (!parsed)
        throw ApiError::bad_parameter(fmt::format("{} must be an RFC 3339 time such as 2026-11-26T10:00:00Z (got '{}')",
                                                  key, *v));
    return parsed;
}

int int_param(const ParsedTarget& t, std::string_view key, int min, int max, int fallback) {
    auto v = param(t, key);
    if (!v) return fallback;
    int n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size() || n < min || n > max)
        throw ApiError::bad_parameter(fmt::format("{} must be an integer from {} to {} (got '{}')", key, min, max, *v));
    return n;
}

std::string_view media_type(std::string_view content_type) {
    auto semi = content_type.find(';');
    auto mt = content_type.substr(0, semi);
    while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
    return mt;
}

void require_json(const http::Request& req) {
    if (!iequals(media_type(req.header("content-type")), "application/json"))
        throw ApiError::unsupported_media("send the body as application/json (got Content-Type '" +
                                          std::string(req.header("content-type")) + "')");
}

bool bearer_token_matches(const http::Request& req, const std::string& token) {
    std::string_view auth = req.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || !iequals(auth.substr(0, kBearer.size()), kBearer)) return false;
    std::string_view given = auth.substr(kBearer.size());
    // Constant-time: the comparison must not tell an attacker how much of a guess was right.
    return given.size() == token.size() && CRYPTO_memcmp(given.data(), token.data(), given.size()) == 0;
}

http::Response json_response(int status, const json& body) { return {status, {}, json_text(body), "application/json"}; }

http::Response error_response(int status, std::string_view type, std::string_view message) {
    http::Response r = json_response(status, json{{"error", {{"type", type}, {"message", message}}}});
    // A 503 is a refusal before any code ran (shutting down, a store out of reach): the
    // caller, or a balancer in front of several nodes, may send it again, here or elsewhere.
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
}

http::Response method_not_allowed(std::string_view method, std::string_view allowed) {
    auto r = error_response(405, "MethodNotAllowedException",
                            fmt::format("method {} is not allowed here; use {}", method, allowed));
    r.headers.emplace_back("Allow", allowed);
    return r;
}

http::Response response_for_current_exception() {
    try {
        throw;
    } catch (const ApiError& e) {
        return error_response(e.status(), e.type(), e.what());
    } catch (const StorageFull& e) {
        spdlog::error("api: request refused, storage full: {}", e.what());
        return error_response(507, "InsufficientStorage",
                              std::string(e.what()) + "; nothing was stored. Free space in funcd's data directory "
                                                      "and retry");
    } catch (const std::exception& e) {
        spdlog::error("api: request failed: {}", e.what());
        return error_response(500, "ServiceException", "internal error; see the daemon's log");
    }
}

void offload(boost::asio::io_context& io, boost::asio::thread_pool& blocking, http::Responder respond,
             std::function<http::Response()> work) {
    boost::asio::post(blocking, [&io, respond = std::move(respond), work = std::move(work)]() mutable {
        http::Response r;
        try {
            r = work();
        } catch (...) {
            r = response_for_current_exception();
        }
        boost::asio::post(io, [respond = std::move(respond), r = std::move(r)]() mutable { respond(std::move(r)); });
    });
}


void commit_then_apply(boost::asio::io_context& io, boost::asio::thread_pool& blocking, http::Responder respond,
                       std::function<void()> commit, std::function<http::Response()> apply) {
    boost::asio::post(blocking, [&io, respond = std::move(respond), commit = std::move(commit),
                                 apply = std::move(apply)]() mutable {
        try {
            commit();
        } catch (...) {
            auto r = response_for_current_exception();
            boost::asio::post(io, [respond = std::move(respond), r = std::move(r)]() mutable { respond(std::move(r)); });
            return;
        }
        boost::asio::post(io, [respond = std::move(respond), apply = std::move(apply)]() mutable {
            http::Response r;
            try {
                r = apply();
            } catch (...) {
                r = response_for_current_exception();
            }
            respond(std::move(r));
        });
    });
}

}  // namespace funcd::api
