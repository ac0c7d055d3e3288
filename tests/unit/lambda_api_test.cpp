// The pieces of Lambda's API that need no daemon: how functions and layers are named,
// the error wire form clients parse, Lambda's formats, and code download URLs.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/lambda_api/code_locations.hpp"
#include "funcd/lambda_api/lambda_api.hpp"
#include "funcd/lambda_api/lambda_error.hpp"
#include "funcd/lambda_api/lambda_shapes.hpp"
#include "funcd/registry/arn.hpp"
#include "zip_builder.hpp"

using namespace funcd;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string header(const http::Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return {};
}

TEST(FunctionRef, EveryFormLambdaAccepts) {
    auto bare = parse_function_ref("my-fn_1");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->name, "my-fn_1");
    EXPECT_FALSE(bare->qualifier);

    auto qualified = parse_function_ref("f:$LATEST");
    ASSERT_TRUE(qualified);
    EXPECT_EQ(qualified->qualifier, "$LATEST");

    auto partial = parse_function_ref("123456789012:function:f:prod");
    ASSERT_TRUE(partial);
    EXPECT_EQ(partial->name, "f");
    EXPECT_EQ(partial->account, "123456789012");
    EXPECT_EQ(partial->qualifier, "prod");

    auto full = parse_function_ref("arn:aws:lambda:eu-west-1:000000000000:function:f:7");
    ASSERT_TRUE(full);
    EXPECT_EQ(full->name, "f");
    EXPECT_EQ(full->region, "eu-west-1");
    EXPECT_EQ(full->account, "000000000000");
    EXPECT_EQ(full->qualifier, "7");

    for (const char* bad : {"", "a b", "f:", "f:a:b", "arn:aws:s3:::bucket", "arn:aws:lambda:us-east-1:12:function:f",
                            "arn:aws:lambda:us-east-1:000000000000:layer:l:1", "12345:function:f", "f/x"})
        EXPECT_FALSE(parse_function_ref(bad)) << bad;
}

TEST(LayerArn, VersionsAndNames) {
    auto v = parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->name, "my-layer");
    EXPECT_EQ(v->version, 3);
    EXPECT_FALSE(parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:my-layer:0"));
    EXPECT_FALSE(parse_layer_version_arn("arn:aws:lambda:us-east-1:000000000000:layer:my-layer"));
    EXPECT_FALSE(parse_layer_version_arn("my-layer:1"));
    EXPECT_EQ(parse_layer_name("arn:aws:lambda:us-east-1:000000000000:layer:my-layer"), "my-layer");
    EXPECT_EQ(parse_layer_name("my-layer"), "my-layer");
    EXPECT_FALSE(parse_layer_name("my layer"));
    EXPECT_EQ(layer_version_arn("us-east-1", "000000000000", "l", 2), "arn:aws:lambda:us-east-1:000000000000:layer:l:2");
    EXPECT_EQ(function_arn("us-east-1", "000000000000", "f", "$LATEST"),
              "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST");
}

TEST(LambdaErrorShape, HeaderTypeAndTheMemberNameBotocoreExpects) {
    // botocore takes the code from x-amzn-ErrorType and the message from `message` or
    // `Message`, whichever the exception's shape names.
    auto nf = lambda_error_response(LambdaError::not_found("Function not found: arn"), "req-1");
    EXPECT_EQ(nf.status, 404);
    EXPECT_EQ(header(nf, "x-amzn-ErrorType"), "ResourceNotFoundException");
    EXPECT_EQ(header(nf, "x-amzn-RequestId"), "req-1");
    json body = json::parse(nf.body);
    EXPECT_EQ(body["Message"], "Function not found: arn");
    EXPECT_FALSE(body.contains("message"));
    EXPECT_EQ(body["Type"], "User");
    EXPECT_EQ(body["__type"], "ResourceNotFoundException");

    auto bad = lambda_error_response(LambdaError::invalid_parameter("no"), "r");
    EXPECT_EQ(json::parse(bad.body)["message"], "no");

    auto throttled = lambda_error_response(LambdaError::throttled("Rate Exceeded.", "ConcurrentInvocationLimitExceeded"), "r");
    EXPECT_EQ(throttled.status, 429);
    EXPECT_EQ(json::parse(throttled.body)["Reason"], "ConcurrentInvocationLimitExceeded");
    EXPECT_EQ(header(throttled, "Retry-After"), "1");

    auto service = lambda_error_response(LambdaError::service("boom"), "r");
    EXPECT_EQ(json::parse(service.body)["Type"], "Service");

    auto v = validation_error("x", "functionName", "Member must not be null");
    EXPECT_EQ(v.status(), 400);
    EXPECT_EQ(v.type(), "ValidationException");
    EXPECT_STREQ(v.what(), "1 validation error detected: Value 'x' at 'functionName' failed to satisfy constraint: "
                           "Member must not be null");
    // funcd's own errors keep their Lambda names.
    EXPECT_EQ(to_lambda_error(ApiError::conflict("c")).type(), "ResourceConflictException");
    EXPECT_EQ(to_lambda_error(ApiError::too_large("t")).type(), "RequestEntityTooLargeException");
}

TEST(LambdaApiPaths, OperationsAndTheirBodyLimits) {
    EXPECT_TRUE(LambdaApi::is_lambda_path("/2015-03-31/functions/"));
    EXPECT_TRUE(LambdaApi::is_lambda_path("/2017-03-31/tags/arn%3Aaws"));
    EXPECT_FALSE(LambdaApi::is_lambda_path("/v1/functions"));
    EXPECT_FALSE(LambdaApi::is_lambda_path("/fn/x"));
    EXPECT_EQ(LambdaApi::body_limit("POST", "/2015-03-31/functions"), 70'167'211u);
    EXPECT_EQ(LambdaApi::body_limit("PUT", "/2015-03-31/functions/f/code"), 70'167'211u);
    EXPECT_EQ(LambdaApi::body_limit("POST", "/2015-03-31/functions/f%3A1/invocations"), 6'291'456u);
    EXPECT_LT(LambdaApi::body_limit("PUT", "/2015-03-31/functions/f/configuration"), 1'000'000u);
    auto r = LambdaApi::too_large("POST", "/2015-03-31/functions/f/invocations", 7'000'000, 6'291'456);
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(json::parse(r.body)["message"],
              "Request must be smaller than 6291456 bytes for the InvokeFunction operation");
}

TEST(LambdaFormats, TimestampsAndCodeHashes) {
    const SystemTime t{std::chrono::milliseconds(1'744'748'656'283)};
    EXPECT_EQ(lambda_timestamp(t), "2025-04-15T20:24:16.283+0000");
    // sha256("") in hex and in Lambda's base64.
    EXPECT_EQ(code_sha256_base64("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
              "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

class CodeLocationsTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("funcd-locations-" + random_hex(6));
        store_ = std::make_unique<CodeStore>(dir_ / "code");
        zip_ = funcd::testing::ZipBuilder().file("bootstrap", "#!/bin/sh\n", 0755).build();
        sha_ = store_->put(zip_).sha256;
    }
    void TearDown() override {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            if (it->is_directory()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(dir_, ec);
    }

    // GET of `url`'s path and query through handle(); the answer.
    http::Response get(CodeLocations& locations, const std::string& url) {
        const std::string target = url.substr(url.find("/_funcd"));
        http::Request req;
        req.method = "GET";
        req.target = target;
        std::optional<http::Response> out;
        http::Responder respond = [&](http::Response r) { out = std::move(r); };
        EXPECT_TRUE(locations.handle(api::parse_target(target), req, respond));
        // The file is read on the blocking pool and the answer posted back to the loop.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!out && std::chrono::steady_clock::now() < deadline) {
            io_.restart();
            io_.run_for(std::chrono::milliseconds(10));
        }
        return out.value_or(http::Response{0, {}, {}, ""});
    }

    boost::asio::io_context io_;
    boost::asio::thread_pool blocking_{1};
    fs::path dir_;
    std::unique_ptr<CodeStore> store_;
    std::string zip_, sha_;
};

TEST_F(CodeLocationsTest, ServesTheUploadedBytesUntilTheUrlExpires) {
    auto now = std::chrono::system_clock::now();
    CodeLocations locations(io_, blocking_, *store_, "key", [&] { return now; });
    const std::string url = locations.url("funcd.example:8080", sha_);
    EXPECT_TRUE(url.starts_with("http://funcd.example:8080/_funcd/code/" + sha_ + ".zip?expires="));
    auto ok = get(locations, url);
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, zip_);
    EXPECT_EQ(sha256_hex(ok.body), sha_);
    EXPECT_EQ(ok.content_type, "application/zip");

    std::string forged = url;
    forged.back() = forged.back() == '0' ? '1' : '0';
    EXPECT_EQ(get(locations, forged).status, 403);
    // Another key does not accept this URL; nor does this one after 10 minutes.
    CodeLocations other(io_, blocking_, *store_, "other key", [&] { return now; });
    EXPECT_EQ(get(other, url).status, 403);
    now += CodeLocations::kLifetime + std::chrono::seconds(1);
    EXPECT_EQ(get(locations, url).status, 403);
}

}  // namespace
