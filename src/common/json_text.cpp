#include "funcd/common/json_text.hpp"

namespace funcd {

std::string json_text(const nlohmann::json& doc) {
    return doc.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace funcd
