#include "funcd/dispatch/invocation.hpp"

#include "funcd/common/json_text.hpp"

namespace funcd {

std::string error_document(std::string_view type, std::string_view message) {
    return json_text({{"errorMessage", message}, {"errorType", type}});
}

}  // namespace funcd
