// The dashboard served by the real daemon: /ui and its files need no token and carry the
// security headers; the data behind it stays behind the token.
#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace {

using funcd::testing::Daemon;
using funcd::testing::http_request;

TEST(DashboardServing, PageAndFilesNeedNoTokenAndCarryTheSecurityHeaders) {
    Daemon d;
    auto page = http_request(d.port(), "GET", "/ui");
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(page.body.find("<form id=\"login-form\""), std::string::npos);
    const std::string csp = page.header("content-security-policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
    EXPECT_EQ(page.header("server"), "funcd");

    for (const auto& [file, type] : std::vector<std::pair<std::string, std::string>>{
             {"/ui/app.js", "text/javascript; charset=utf-8"},
             {"/ui/api.js", "text/javascript; charset=utf-8"},
             {"/ui/app.css", "text/css; charset=utf-8"},
             {"/ui/icon.svg", "image/svg+xml"}}) {
        auto r = http_request(d.port(), "GET", file);
        EXPECT_EQ(r.status, 200) << file;
        EXPECT_EQ(r.header("content-type"), type) << file;
        EXPECT_EQ(r.header("x-content-type-options"), "nosniff") << file;
        EXPECT_FALSE(r.header("content-security-policy").empty()) << file;
        EXPECT_FALSE(r.header("etag").empty()) << file;
    }

    // Revalidation: the same file is a 304 without a body.
    auto again = http_request(d.port(), "GET", "/ui/app.js", {}, {{"If-None-Match", http_request(d.port(), "GET", "/ui/app.js").header("etag")}});
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
    // Compressed for clients that take gzip.
    auto plain = http_request(d.port(), "GET", "/ui/function.js");
    auto zipped = http_request(d.port(), "GET", "/ui/function.js", {}, {{"Accept-Encoding", "gzip"}});
    EXPECT_EQ(zipped.status, 200);
    EXPECT_EQ(zipped.header("content-encoding"), "gzip");
    EXPECT_EQ(zipped.header("vary"), "Accept-Encoding");
    EXPECT_EQ(std::to_string(zipped.body.size()), zipped.header("content-length"));
    EXPECT_LT(zipped.body.size() * 2, plain.body.size());
    EXPECT_EQ(plain.header("content-encoding"), "");
    auto head = http_request(d.port(), "HEAD", "/ui/app.css");
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());

    EXPECT_EQ(http_request(d.port(), "GET", "/ui/missing.js").status, 404);
    EXPECT_EQ(http_request(d.port(), "DELETE", "/ui").status, 405);
    // The data is not public because the page is.
    EXPECT_EQ(http_request(d.port(), "GET", "/v1/functions").status, 401);
    EXPECT_EQ(d.api("GET", "/v1/functions").status, 200);
}

}  // namespace
