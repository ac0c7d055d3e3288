#include "funcd/gateway/dashboard.hpp"

#include <string>

#include "funcd/common/text.hpp"
#include "funcd/gateway/dashboard_files.hpp"

namespace funcd::dashboard {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kIndex = "index.html";
// ETags are the first 128 bits of the file's SHA-256, hex: as unique as the whole for
// telling versions of a file apart, and half as long on every request.
constexpr std::size_t kEtagHexDigits = 32;

const EmbeddedFile* find_file(std::string_view path) {
    for (const auto& f : embedded_files())
        if (f.path == path) return &f;
    return nullptr;
}

// The gzip form is another representation, so it has a tag of its own (RFC 9110 section 8.8.3).
std::string etag_of(const EmbeddedFile& f, bool gzip) {
    return "\"" + std::string(f.sha256.substr(0, kEtagHexDigits)) + (gzip ? "-gzip" : "") + "\"";
}

// RFC 9110 section 13.1.2: If-None-Match compares weakly (W/ ignored); `*` matches any.
bool none_match_hits(std::string_view header, std::string_view etag) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view tag = trim_ows(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        if (tag == "*") return true;
        if (tag.starts_with("W/")) tag.remove_prefix(2);
        if (tag == etag) return true;
    }
    return false;
}

// Accept-Encoding names gzip (or *) without q=0 (RFC 9110 section 12.5.3).
bool accepts_gzip(std::string_view header) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view item = trim_ows(header.substr(0, comma));
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        const auto semi = item.find(';');
        const std::string_view coding = trim_ows(item.substr(0, semi));
        if (!iequals(coding, "gzip") && coding != "*") continue;
        if (semi == std::string_view::npos) return true;
        std::string_view weight = trim_ows(item.substr(semi + 1));
        if (!weight.starts_with("q=") && !weight.starts_with("Q=")) return true;
        weight.remove_prefix(2);
        // q=0, q=0.0, q=0.000 refuse it; any other weight accepts it.
        return weight.find_first_not_of("0.") != std::string_view::npos;
    }
    return false;
}

// What every answer under /ui carries, errors included.
void add_security_headers(http::Response& r) {
    r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    // For browsers that predate frame-ancestors.
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
    r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

std::string joined(const std::vector<std::string>& segments) {
    std::string path;
    for (std::size_t i = 1; i < segments.size(); ++i) {
        if (i > 1) path += '/';
        path += segments[i];
    }
    return path;
}

}  // namespace

bool is_dashboard_path(const api::ParsedTarget& t) { return !t.segments.empty() && t.segments[0] == "ui"; }

std::string_view content_type_for(std::string_view path) {
    struct Type {
        std::string_view extension;
        std::string_view content_type;
    };
    static constexpr Type kTypes[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (const auto& t : kTypes)
        if (path.ends_with(t.extension)) return t.content_type;
    return "application/octet-stream";
}

std::optional<http::Response> respond(const api::ParsedTarget& t, const http::Request& req) {
    if (!is_dashboard_path(t)) return std::nullopt;
    http::Response r;
    if (req.method != "GET" && req.method != "HEAD") {
        r = api::method_not_allowed(req.method, "GET, HEAD");
    } else {
        const std::string path = t.segments.size() == 1 ? std::string(kIndex) : joined(t.segments);
        const EmbeddedFile* file = find_file(path);
        if (!file) {
            r = api::error_response(404, "NotFoundException", "the dashboard has no file '" + path + "'");
        } else {
            const bool gzip = !file->gzip.empty() && accepts_gzip(req.header("accept-encoding"));
            std::string etag = etag_of(*file, gzip);
            if (none_match_hits(req.header("if-none-match"), etag)) {
                r.status = 304;
                r.content_type.clear();
            } else {
                r.status = 200;
                r.content_type = std::string(content_type_for(file->path));
                r.body = std::string(gzip ? file->gzip : file->bytes);
                if (gzip) r.headers.emplace_back("Content-Encoding", "gzip");
            }
            // Caches keep the two forms apart.
            if (!file->gzip.empty()) r.headers.emplace_back("Vary", "Accept-Encoding");
            r.headers.emplace_back("ETag", std::move(etag));
            // Kept, but checked with the daemon before each use: a new build's files are
            // seen at once, an unchanged file costs a 304.
            r.headers.emplace_back("Cache-Control", "no-cache");
        }
    }
    add_security_headers(r);
    return r;
}

}  // namespace funcd::dashboard
