#pragma once
// The web dashboard (docs/dashboard.md): GET /ui and /ui/<file>, the embedded files of ui/
// (dashboard_files.hpp). The files hold no data and need no token; the page signs in with
// the API token and reads everything through the /v1 API. Every answer under /ui carries
// a strict Content-Security-Policy (scripts and styles only from these files, no inline
// code, no framing), nosniff and an ETag; a matching If-None-Match is answered 304.
#include <optional>
#include <string_view>

#include "funcd/gateway/api_request.hpp"
#include "funcd/gateway/http_types.hpp"

namespace funcd::dashboard {

// The policy every /ui answer carries. connect-src 'self': the page talks only to this
// daemon's API; form-action 'none': the sign-in form is never submitted as a navigation
// (the token would land in a URL or a request line).
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// "/ui" and everything under it.
bool is_dashboard_path(const api::ParsedTarget& t);
// The Content-Type a file is served with, from its extension.
std::string_view content_type_for(std::string_view path);
// The answer to a request for a dashboard path (GET or HEAD; others 405); nullopt for any
// other path.
std::optional<http::Response> respond(const api::ParsedTarget& t, const http::Request& req);

}  // namespace funcd::dashboard
