#pragma once
// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing above U+10FFFF.
// JSON strings are UTF-8, while much of what clients send (paths, headers, query values)
// is bytes.
#include <cstddef>
#include <string_view>

namespace funcd {

// Length of the well-formed UTF-8 sequence at s[i], or 0 when the bytes there are not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

bool is_valid_utf8(std::string_view s);

}  // namespace funcd
