#pragma once
// What every refusal of bad input must be: an ApiError with one of the expected statuses and
// a message. The daemon's error documents quote the offending input, and serialise bytes
// that are not UTF-8 as U+FFFD (funcd::json_text); input that was UTF-8 must come back
// intact, so its message must be UTF-8 too (no text cut in the middle of a character).
#include <initializer_list>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "funcd/common/api_error.hpp"
#include "funcd/common/utf8.hpp"

namespace funcd::fuzz {

inline void check_refusal(const ApiError& e, std::string_view input, std::initializer_list<int> statuses) {
    bool expected = false;
    for (int s : statuses) expected = expected || e.status() == s;
    FUZZ_CHECK(expected, "refused with " + std::to_string(e.status()) + " " + e.type() + ": " + e.what());
    FUZZ_CHECK(*e.what() != '\0', "a refusal without a message");
    if (is_valid_utf8(input))
        FUZZ_CHECK(is_valid_utf8(e.what()), std::string("UTF-8 input, a message that is not: ") + e.what());
}

}  // namespace funcd::fuzz
