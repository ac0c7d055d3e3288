#pragma once
// Small text helpers shared by the daemon's file readers.
#include <string>
#include <string_view>

namespace funcd {

// `s` without leading and trailing ASCII whitespace.
std::string trim(std::string_view s);

}  // namespace funcd
