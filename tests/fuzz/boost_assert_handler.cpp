// BOOST_ASSERT for the fuzz build (BOOST_ENABLE_ASSERT_HANDLER): every failed assertion in
// Boost aborts, as assert() does, except one known-wrong assertion in Boost 1.81's Beast.
//
// basic_parser::parse_chunk_header asserts that at least 5 bytes are buffered when it
// resumes after a final chunk ("0\r\n") whose trailer has not fully arrived, which holds only
// when a data chunk came before it; a body that is nothing but "0\r\n" followed by one more
// byte in a separate read trips it. The code after the assertion handles that case (builds
// without assertions, as funcd's release build, behave correctly). Fixed upstream in
// boostorg/beast#2861 (merged May 2024, after 1.81); until then fuzzing would stop at it in
// every run.
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace boost {

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
    if (std::strstr(file, "boost/beast/http/impl/basic_parser.ipp") && std::strcmp(expr, "n >= 5") == 0) return;
    std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed%s%s\n", file, line, function, expr, msg ? ": " : "",
                 msg ? msg : "");
    std::abort();
}

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
    assertion_failed_msg(expr, nullptr, function, file, line);
}

}  // namespace boost
