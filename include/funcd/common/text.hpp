#pragma once
// Small text helpers shared by the daemon's file readers and HTTP header parsers.
#include <string>
#include <string_view>
#include <vector>

namespace funcd {

// `s` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view trim_view(std::string_view s);
// The same, as a string of its own.
std::string trim(std::string_view s);
// `s` without HTTP's optional whitespace (RFC 9110 section 5.6.3: spaces and tabs) at
// either end, as around header field values and list elements.
std::string_view trim_ows(std::string_view s);
// `a` and `b` are equal but for the case of ASCII letters (header values, media types,
// level names).
bool iequals(std::string_view a, std::string_view b);
// The parts of `s` between commas, as written ("a,,b" has an empty part); none for "".
std::vector<std::string> split_commas(std::string_view s);

}  // namespace funcd
