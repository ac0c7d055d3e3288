#pragma once
// An error a client caused or must be told about, carried to the HTTP boundary.
// Thrown by validation and lookups; the gateway turns it into
// {"error": {"type": ..., "message": ...}} with `status`.
#include <stdexcept>
#include <string>

namespace funcd {

class ApiError : public std::runtime_error {
public:
    ApiError(int status, std::string type, const std::string& message)
        : std::runtime_error(message), status_(status), type_(std::move(type)) {}

    int status() const noexcept { return status_; }
    const std::string& type() const noexcept { return type_; }

    // Named after the Lambda API's error types, so Lambda tooling recognises them.
    static ApiError bad_parameter(const std::string& message) {
        return {400, "InvalidParameterValueException", message};
    }
    static ApiError bad_content(const std::string& message) {
        return {400, "InvalidRequestContentException", message};
    }
    static ApiError unauthorized(const std::string& message) {
        return {401, "UnauthorizedException", message};
    }
    static ApiError not_found(const std::string& message) {
        return {404, "ResourceNotFoundException", message};
    }
    static ApiError method_not_allowed(const std::string& message) {
        return {405, "MethodNotAllowedException", message};
    }
    static ApiError conflict(const std::string& message) {
        return {409, "ResourceConflictException", message};
    }
    static ApiError too_large(const std::string& message) {
        return {413, "RequestTooLargeException", message};
    }
    static ApiError unsupported_media(const std::string& message) {
        return {415, "UnsupportedMediaTypeException", message};
    }
    static ApiError internal(const std::string& message) {
        return {500, "ServiceException", message};
    }
    static ApiError shutting_down(const std::string& message) {
        return {503, "ServiceUnavailableException", message};
    }
    // Usage records cannot be made durable or read now (a full disk, a locked database):
    // the caller may retry once the operator has fixed it.
    static ApiError storage_unavailable(const std::string& message) {
        return {503, "StorageUnavailableException", message};
    }

private:
    int status_;
    std::string type_;
};

}  // namespace funcd
