#include "funcd/lambda_api/code_locations.hpp"

#include <openssl/crypto.h>

#include <charconv>
#include <fstream>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/hmac.hpp"

namespace funcd {
namespace {

constexpr std::string_view kPrefix = "/_funcd/code/";

bool is_hex_sha256(std::string_view s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

http::Response text_error(int status, std::string_view type, std::string_view message) {
    return api::error_response(status, type, message);
}

}  // namespace

CodeLocations::CodeLocations(boost::asio::io_context& io, boost::asio::thread_pool& blocking, CodeStore& code,
                             std::string key, Clock clock)
    : io_(io), blocking_(blocking), code_(code), key_(std::move(key)), clock_(std::move(clock)) {}

std::string CodeLocations::signature(std::string_view sha256, long long expires) const {
    return to_hex(hmac_sha256(key_, fmt::format("GET\n{}{}.zip\n{}", kPrefix, sha256, expires)));
}

std::string CodeLocations::url(std::string_view host, std::string_view sha256) const {
    const long long expires =
        std::chrono::duration_cast<std::chrono::seconds>((clock_() + kLifetime).time_since_epoch()).count();
    return fmt::format("http://{}{}{}.zip?expires={}&signature={}", host, kPrefix, sha256, expires,
                       signature(sha256, expires));
}

bool CodeLocations::handle(const api::ParsedTarget& t, const http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    if (s.size() != 3 || s[0] != "_funcd" || s[1] != "code") return false;
    if (req.method != "GET" && req.method != "HEAD") return respond(api::method_not_allowed(req.method, "GET")), true;
    const std::string& file = s[2];
    const std::string sha = file.size() > 4 && file.ends_with(".zip") ? file.substr(0, file.size() - 4) : "";
    const auto expires_text = api::param(t, "expires");
    const auto given = api::param(t, "signature");
    long long expires = 0;
    if (!is_hex_sha256(sha) || !expires_text || !given ||
        std::from_chars(expires_text->data(), expires_text->data() + expires_text->size(), expires).ec != std::errc())
        return respond(text_error(403, "AccessDenied", "not a valid code location URL")), true;
    const std::string expected = signature(sha, expires);
    // Constant time: the comparison must not tell how much of a forged signature was right.
    if (given->size() != expected.size() || CRYPTO_memcmp(given->data(), expected.data(), expected.size()) != 0)
        return respond(text_error(403, "AccessDenied", "the signature of this code location URL is not valid")), true;
    const long long now = std::chrono::duration_cast<std::chrono::seconds>(clock_().time_since_epoch()).count();
    if (now > expires)
        return respond(text_error(403, "AccessDenied", "this code location URL has expired; ask GetFunction for a new one")),
               true;
    // Up to 50 MB from disk: not on the loop. (For HEAD the server sends the head only.)
    api::offload(io_, blocking_, std::move(respond), [this, sha]() {
        std::ifstream in(code_.zip_for(sha), std::ios::binary);
        if (!in) throw ApiError::not_found("the zip of code " + sha + " is not kept (uploaded before funcd kept zips)");
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return http::Response{200, {}, std::move(bytes), "application/zip"};
    });
    return true;
}

}  // namespace funcd
