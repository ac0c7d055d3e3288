#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace funcd {

// Standard base64 (RFC 4648) with padding; whitespace in the input is ignored.
// nullopt when the input is not valid base64.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view data);

}  // namespace funcd
