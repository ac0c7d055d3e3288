#include "funcd/lambda_api/lambda_error.hpp"

#include <array>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_text.hpp"

namespace funcd {
namespace {

// Exceptions whose message member botocore's model names `Message`; every other one
// names it `message` (service-2.json, "shapes").
constexpr std::array<std::string_view, 8> kCapitalMessage = {
    "ResourceNotFoundException", "ServiceException",          "CodeSigningConfigNotFoundException",
    "InvalidZipFileException",   "InvalidRuntimeException",   "ResourceInUseException",
    "RecursiveInvocationException", "UnknownOperationException",
};

bool capital_message(std::string_view type) {
    for (auto t : kCapitalMessage)
        if (t == type) return true;
    return false;
}

}  // namespace

LambdaError to_lambda_error(const ApiError& e) {
    if (e.type() == "NotFoundException") return LambdaError::unknown_operation(e.what());
    if (e.type() == "RequestTooLargeException") return LambdaError::too_large(e.what());
    if (e.type() == "ServiceUnavailableException" || e.type() == "StorageUnavailableException")
        return LambdaError::unavailable(e.what());
    return LambdaError(e.status(), e.type(), e.what());
}

http::Response lambda_error_response(const LambdaError& e, std::string_view request_id) {
    nlohmann::json body{{"Type", e.status() >= 500 ? "Service" : "User"},
                        {capital_message(e.type()) ? "Message" : "message", e.what()},
                        {"__type", e.type()}};
    if (e.reason()) body["Reason"] = *e.reason();
    http::Response r{e.status(), {}, json_text(body), "application/json"};
    r.headers.emplace_back("x-amzn-ErrorType", e.type());
    r.headers.emplace_back("x-amzn-RequestId", request_id);
    // Throttled, or refused before any code ran (503): either may be sent again.
    if (e.status() == 429 || e.status() == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
}

LambdaError validation_error(std::string_view value, std::string_view field, std::string_view constraint) {
    return LambdaError::validation("1 validation error detected: Value '" + std::string(value) + "' at '" +
                                   std::string(field) + "' failed to satisfy constraint: " + std::string(constraint));
}

}  // namespace funcd
