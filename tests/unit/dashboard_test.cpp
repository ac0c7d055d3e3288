// The dashboard's files: what the build embedded, and how /ui answers (types, ETags, the
// security headers, no token needed).
#include "funcd/gateway/dashboard.hpp"

#include <openssl/sha.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "funcd/gateway/dashboard_files.hpp"

namespace {

namespace fs = std::filesystem;
using funcd::http::Request;
using funcd::http::Response;
namespace dashboard = funcd::dashboard;

const fs::path kUiDir = fs::path(FUNCD_SOURCE_DIR) / "ui";

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    std::string hex;
    for (unsigned char c : digest) hex += fmt::format("{:02x}", c);
    return hex;
}

Response get(const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {},
             std::string method = "GET") {
    Request req;
    req.method = std::move(method);
    req.target = target;
    req.headers = std::move(headers);
    auto r = dashboard::respond(funcd::api::parse_target(target), req);
    if (!r) throw std::runtime_error("not a dashboard path: " + target);
    return *r;
}

std::string header(const Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return {};
}

// What `gzip -dc` makes of `compressed`.
std::string gunzip(std::string_view compressed) {
    const fs::path dir = fs::temp_directory_path() / ("funcd-gunzip-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "in.gz", std::ios::binary) << compressed;
    const std::string cmd = "gzip -dc '" + (dir / "in.gz").string() + "' > '" + (dir / "out").string() + "'";
    const int rc = std::system(cmd.c_str());
    std::string out = rc == 0 ? read_all(dir / "out") : "gzip -dc failed";
    fs::remove_all(dir);
    return out;
}

void expect_security_headers(const Response& r) {
    EXPECT_EQ(header(r, "Content-Security-Policy"),
              "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
              "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
    EXPECT_EQ(header(r, "Referrer-Policy"), "no-referrer");
}

TEST(DashboardFiles, EveryFileOfUiIsEmbeddedWithItsBytesAndDigest) {
    std::set<std::string> on_disk;
    for (const auto& entry : fs::recursive_directory_iterator(kUiDir))
        if (entry.is_regular_file()) on_disk.insert(fs::relative(entry.path(), kUiDir).generic_string());
    ASSERT_TRUE(on_disk.count("index.html"));
    ASSERT_TRUE(on_disk.count("app.js"));

    std::set<std::string> embedded;
    for (const auto& f : dashboard::embedded_files()) {
        embedded.insert(std::string(f.path));
        const std::string disk = read_all(kUiDir / f.path);
        EXPECT_TRUE(f.bytes == disk) << f.path << " differs from the source tree: the build did not embed it anew";
        EXPECT_EQ(f.sha256, sha256_hex(disk)) << f.path;
    }
    EXPECT_EQ(embedded, on_disk);
}

TEST(DashboardFiles, TextIsAlsoEmbeddedGzippedAndTheSameOnceUnzipped) {
    std::size_t plain = 0;
    std::size_t zipped = 0;
    for (const auto& f : dashboard::embedded_files()) {
        if (f.path.ends_with(".png")) continue;
        ASSERT_FALSE(f.gzip.empty()) << f.path;
        EXPECT_LT(f.gzip.size(), f.bytes.size()) << f.path;
        EXPECT_EQ(f.gzip.substr(4, 4), std::string(4, '\0')) << f.path << ": no time in the header";
        EXPECT_TRUE(gunzip(f.gzip) == f.bytes) << f.path;
        plain += f.bytes.size();
        zipped += f.gzip.size();
    }
    EXPECT_LT(zipped * 2, plain) << "text compresses to well under half";
}

TEST(DashboardFiles, PagesLoadNoInlineCodeAndScriptsNeverWriteMarkup) {
    for (const auto& f : dashboard::embedded_files()) {
        const std::string text(f.bytes);
        if (f.path.ends_with(".html")) {
            // Every script is a file (the policy refuses inline ones), no style attributes or
            // inline handlers, no <style> blocks.
            std::regex script("<script\\b([^>]*)>");
            for (auto it = std::sregex_iterator(text.begin(), text.end(), script); it != std::sregex_iterator(); ++it)
                EXPECT_NE((*it)[1].str().find("src=\"/ui/"), std::string::npos) << f.path << ": " << it->str();
            EXPECT_EQ(text.find("<style"), std::string::npos) << f.path;
            EXPECT_FALSE(std::regex_search(text, std::regex("\\s(style|on[a-z]+)\\s*="))) << f.path;
        }
        if (f.path.ends_with(".js")) {
            // Data reaches the page as text nodes only.
            for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                                     "new Function", "localStorage"})
                EXPECT_EQ(text.find(sink), std::string::npos) << f.path << " uses " << sink;
        }
    }
}

TEST(DashboardFiles, ThePagePreloadsEveryModuleAppJsImports) {
    // Without a preload each level of imports waits for the one before: four round trips
    // before the first page is drawn instead of one.
    const std::string index = read_all(kUiDir / "index.html");
    for (const auto& entry : fs::directory_iterator(kUiDir)) {
        const std::string name = entry.path().filename().string();
        if (!name.ends_with(".js") || name == "app.js") continue;
        EXPECT_NE(index.find("<link rel=\"modulepreload\" href=\"/ui/" + name + "\">"), std::string::npos)
            << name << " is not preloaded by index.html";
    }
    std::regex preload("<link rel=\"modulepreload\" href=\"/ui/([^\"]+)\">");
    for (auto it = std::sregex_iterator(index.begin(), index.end(), preload); it != std::sregex_iterator(); ++it)
        EXPECT_TRUE(fs::exists(kUiDir / (*it)[1].str())) << "index.html preloads a missing " << (*it)[1];
}

TEST(Dashboard, ServesTheIndexAtUiWithTheSecurityHeaders) {
    for (const std::string target : {"/ui", "/ui/", "/ui/index.html"}) {
        Response r = get(target);
        EXPECT_EQ(r.status, 200) << target;
        EXPECT_EQ(r.content_type, "text/html; charset=utf-8") << target;
        EXPECT_NE(r.body.find("<script type=\"module\" src=\"/ui/app.js\">"), std::string::npos) << target;
        EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
        EXPECT_EQ(header(r, "ETag").size(), 34u) << header(r, "ETag");
        expect_security_headers(r);
    }
}

TEST(Dashboard, ServesEachFileWithItsContentType) {
    EXPECT_EQ(get("/ui/app.js").content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(get("/ui/app.css").content_type, "text/css; charset=utf-8");
    EXPECT_EQ(get("/ui/icon.svg").content_type, "image/svg+xml");
    EXPECT_EQ(dashboard::content_type_for("x.json"), "application/json");
    EXPECT_EQ(dashboard::content_type_for("x.bin"), "application/octet-stream");
    Response js = get("/ui/app.js");
    EXPECT_EQ(js.body, read_all(kUiDir / "app.js"));
    expect_security_headers(js);
}

TEST(Dashboard, AMatchingEtagIsAnswered304WithoutABody) {
    Response first = get("/ui/app.js");
    const std::string etag = header(first, "ETag");
    Response again = get("/ui/app.js", {{"if-none-match", etag}});
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(header(again, "ETag"), etag);
    expect_security_headers(again);
    EXPECT_EQ(get("/ui/app.js", {{"if-none-match", "\"other\", W/" + etag}}).status, 304);
    EXPECT_EQ(get("/ui/app.js", {{"if-none-match", "*"}}).status, 304);
    EXPECT_EQ(get("/ui/app.js", {{"if-none-match", "\"other\""}}).status, 200);
    // Another file's tag does not match.
    EXPECT_EQ(get("/ui/app.css", {{"if-none-match", etag}}).status, 200);
}

TEST(Dashboard, SendsTheGzipFormToClientsThatAcceptIt) {
    Response plain = get("/ui/app.js");
    EXPECT_EQ(header(plain, "Content-Encoding"), "");
    EXPECT_EQ(header(plain, "Vary"), "Accept-Encoding");

    Response zipped = get("/ui/app.js", {{"accept-encoding", "br, gzip, deflate"}});
    EXPECT_EQ(zipped.status, 200);
    EXPECT_EQ(header(zipped, "Content-Encoding"), "gzip");
    EXPECT_EQ(header(zipped, "Vary"), "Accept-Encoding");
    EXPECT_EQ(zipped.content_type, "text/javascript; charset=utf-8");
    EXPECT_LT(zipped.body.size(), plain.body.size());
    EXPECT_EQ(gunzip(zipped.body), plain.body);
    expect_security_headers(zipped);
    // Two representations, two tags: each revalidates only itself.
    EXPECT_NE(header(zipped, "ETag"), header(plain, "ETag"));
    EXPECT_EQ(get("/ui/app.js", {{"accept-encoding", "gzip"}, {"if-none-match", header(zipped, "ETag")}}).status, 304);
    EXPECT_EQ(get("/ui/app.js", {{"if-none-match", header(zipped, "ETag")}}).status, 200);

    EXPECT_EQ(header(get("/ui/app.js", {{"accept-encoding", "GZIP;q=0.5"}}), "Content-Encoding"), "gzip");
    EXPECT_EQ(header(get("/ui/app.js", {{"accept-encoding", "*"}}), "Content-Encoding"), "gzip");
    EXPECT_EQ(header(get("/ui/app.js", {{"accept-encoding", "gzip;q=0"}}), "Content-Encoding"), "");
    EXPECT_EQ(header(get("/ui/app.js", {{"accept-encoding", "gzip; q=0.000, br"}}), "Content-Encoding"), "");
    EXPECT_EQ(header(get("/ui/app.js", {{"accept-encoding", "identity"}}), "Content-Encoding"), "");
}

TEST(Dashboard, UnknownFilesAndOtherMethodsAreRefusedWithTheHeadersToo) {
    Response missing = get("/ui/nope.js");
    EXPECT_EQ(missing.status, 404);
    EXPECT_NE(missing.body.find("NotFoundException"), std::string::npos);
    expect_security_headers(missing);
    // Only the embedded files: no path reaches the filesystem.
    EXPECT_EQ(get("/ui/../ui/index.html").status, 404);
    EXPECT_EQ(get("/ui/%2e%2e/CMakeLists.txt").status, 404);
    EXPECT_EQ(get("/ui/..%2fCMakeLists.txt").status, 404);

    Response post = get("/ui", {}, "POST");
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(header(post, "Allow"), "GET, HEAD");
    expect_security_headers(post);
    EXPECT_EQ(get("/ui/app.js", {}, "HEAD").status, 200);
}

TEST(Dashboard, OtherPathsAreNotTheDashboards) {
    Request req;
    req.method = "GET";
    for (const std::string target : {"/", "/uix", "/v1/ui", "/fn/ui", "/healthz"}) {
        req.target = target;
        EXPECT_FALSE(dashboard::respond(funcd::api::parse_target(target), req)) << target;
    }
}

}  // namespace
