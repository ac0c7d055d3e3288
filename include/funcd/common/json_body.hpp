#pragma once
// A request body that must be one JSON object (every settings endpoint takes one).
#include <string_view>

#include <nlohmann/json.hpp>

namespace funcd {

// Throws ApiError(400 InvalidRequestContentException) when `body` is not valid JSON or not
// an object.
nlohmann::json parse_json_object(std::string_view body);

}  // namespace funcd
