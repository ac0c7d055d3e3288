#pragma once
// An error as Lambda's API reports it, and the one place its wire form is built:
// the HTTP status, the exception name in `x-amzn-ErrorType` (which botocore and the JS
// SDK turn into their exception classes; without it they see only the status), and a
// JSON body whose message member is spelled as botocore's model spells it per exception
// (`Message` or `message`). Deterministic failures are never 5xx: clients retry those.
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "funcd/gateway/http_types.hpp"

namespace funcd {

class ApiError;

class LambdaError : public std::runtime_error {
public:
    LambdaError(int status, std::string type, const std::string& message, std::optional<std::string> reason = {})
        : std::runtime_error(message), status_(status), type_(std::move(type)), reason_(std::move(reason)) {}

    int status() const noexcept { return status_; }
    const std::string& type() const noexcept { return type_; }
    const std::optional<std::string>& reason() const noexcept { return reason_; }

    static LambdaError not_found(const std::string& m) { return {404, "ResourceNotFoundException", m}; }
    static LambdaError conflict(const std::string& m) { return {409, "ResourceConflictException", m}; }
    static LambdaError invalid_parameter(const std::string& m) { return {400, "InvalidParameterValueException", m}; }
    // A constraint of the API's model (pattern, range, enum) that the request breaks.
    static LambdaError validation(const std::string& m) { return {400, "ValidationException", m}; }
    static LambdaError invalid_content(const std::string& m) { return {400, "InvalidRequestContentException", m}; }
    static LambdaError precondition_failed(const std::string& m) { return {412, "PreconditionFailedException", m}; }
    static LambdaError too_large(const std::string& m) { return {413, "RequestEntityTooLargeException", m}; }
    static LambdaError unsupported_media(const std::string& m) { return {415, "UnsupportedMediaTypeException", m}; }
    static LambdaError throttled(const std::string& m, std::string reason) {
        return {429, "TooManyRequestsException", m, std::move(reason)};
    }
    static LambdaError access_denied(const std::string& m) { return {403, "AccessDeniedException", m}; }
    static LambdaError provisioned_config_not_found(const std::string& m) {
        return {404, "ProvisionedConcurrencyConfigNotFoundException", m};
    }
    static LambdaError unknown_operation(const std::string& m) { return {404, "UnknownOperationException", m}; }
    static LambdaError service(const std::string& m) { return {500, "ServiceException", m}; }
    static LambdaError unavailable(const std::string& m) { return {503, "ServiceException", m}; }

private:
    int status_;
    std::string type_;
    std::optional<std::string> reason_;
};

// funcd's own errors (shared validation, the registry) in Lambda's terms: their types are
// already Lambda's exception names.
LambdaError to_lambda_error(const ApiError& e);

// The response for `e`, with `x-amzn-ErrorType`, `x-amzn-RequestId` and, for throttles,
// `Retry-After`.
http::Response lambda_error_response(const LambdaError& e, std::string_view request_id);

// Lambda's validation message: "1 validation error detected: Value '<value>' at '<field>'
// failed to satisfy constraint: <constraint>".
LambdaError validation_error(std::string_view value, std::string_view field, std::string_view constraint);

}  // namespace funcd
