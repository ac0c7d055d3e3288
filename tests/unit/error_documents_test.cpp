// Every builder of an error document answers with JSON even when the message quotes bytes
// that are not UTF-8 (a request path, a query parameter, a header, a runtime's error body):
// those become U+FFFD. nlohmann::json's dump() throws on them instead, which left requests
// unanswered or, thrown out of a pool thread or the event loop, stopped the daemon.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_text.hpp"
#include "funcd/dispatch/invocation.hpp"
#include "funcd/gateway/api_request.hpp"
#include "funcd/lambda_api/lambda_error.hpp"

namespace funcd {
namespace {

using json = nlohmann::json;

constexpr const char* kBytes = "path /caf\xE9 and \xFF\xFE";
constexpr const char* kAsText = "path /caf\xEF\xBF\xBD and \xEF\xBF\xBD\xEF\xBF\xBD";

TEST(ErrorDocuments, ApiErrorsQuoteBytesThatAreNotUtf8AsReplacementCharacters) {
    const auto r = api::error_response(400, "InvalidParameterValueException", kBytes);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["message"], kAsText);
}

TEST(ErrorDocuments, LambdaErrorsQuoteBytesThatAreNotUtf8AsReplacementCharacters) {
    const auto r = lambda_error_response(LambdaError::invalid_parameter(kBytes), "req-1");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["message"], kAsText);
}

TEST(ErrorDocuments, FunctionErrorsQuoteBytesThatAreNotUtf8AsReplacementCharacters) {
    // What a worker wraps a runtime's error body in when the body is not JSON.
    const auto doc = json::parse(error_document("Unhandled", kBytes));
    EXPECT_EQ(doc["errorMessage"], kAsText);
    EXPECT_EQ(doc["errorType"], "Unhandled");
}

// A 503 is a refusal before any code ran: it says when to try again, so a client, or a
// balancer in front of several nodes, may resend it; other errors do not invite a resend.
TEST(ErrorDocuments, EveryRefusalBeforeAnyCodeRanSaysWhenToRetry) {
    auto retry_after = [](const http::Response& r) {
        for (const auto& [name, value] : r.headers)
            if (name == "Retry-After") return value;
        return std::string();
    };
    EXPECT_EQ(retry_after(api::error_response(503, "ServiceUnavailableException", "shutting down")), "1");
    auto answer_to = [](const ApiError& e) {
        try {
            throw e;
        } catch (...) {
            return api::response_for_current_exception();
        }
    };
    EXPECT_EQ(retry_after(answer_to(ApiError::shutting_down("stopping"))), "1");
    EXPECT_EQ(retry_after(answer_to(ApiError::storage_unavailable("database down"))), "1");
    EXPECT_EQ(retry_after(lambda_error_response(LambdaError::unavailable("database down"), "req-1")), "1");
    EXPECT_EQ(retry_after(api::error_response(500, "ServiceException", "bug")), "");
    EXPECT_EQ(retry_after(lambda_error_response(LambdaError::invalid_parameter("x"), "req-1")), "");
}

TEST(ErrorDocuments, JsonTextKeepsUtf8AsItIs) {
    EXPECT_EQ(json_text({{"m", "caf\xC3\xA9 \xF0\x9F\x98\x80"}}), "{\"m\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}");
}

}  // namespace
}  // namespace funcd
