#include "funcd/dispatch/invocation.hpp"

#include <nlohmann/json.hpp>

namespace funcd {

std::string error_document(std::string_view type, std::string_view message) {
    return nlohmann::json{{"errorMessage", message}, {"errorType", type}}.dump();
}

}  // namespace funcd
