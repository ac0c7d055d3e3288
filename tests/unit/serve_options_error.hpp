#pragma once
// The message `funcd serve` refuses these arguments with; "" when it accepts them.
#include <stdexcept>
#include <string>
#include <vector>

#include "funcd/daemon/options.hpp"

namespace funcd::testing {

inline std::string serve_options_error(const std::vector<std::string>& args) {
    try {
        parse_serve_options(args);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace funcd::testing
