#include "funcd/common/json_body.hpp"

#include "funcd/common/api_error.hpp"

namespace funcd {

nlohmann::json parse_json_object(std::string_view body) {
    nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) throw ApiError::bad_content("the request body is not valid JSON");
    if (!doc.is_object()) throw ApiError::bad_content("the request body must be a JSON object");
    return doc;
}

}  // namespace funcd
