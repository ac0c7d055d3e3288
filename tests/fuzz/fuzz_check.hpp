#pragma once
// FUZZ_CHECK(condition, detail): an invariant of the code under fuzzing. A broken one prints
// what broke (and `detail`, a std::string) and aborts, which libFuzzer reports as a crash and
// saves the input for. Unlike assert() it is never compiled out.
#include <cstdio>
#include <cstdlib>
#include <string>

namespace funcd::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* condition, const std::string& detail) {
    std::fprintf(stderr, "\n%s:%d: invariant broken: %s\n%s\n", file, line, condition, detail.c_str());
    std::abort();
}

}  // namespace funcd::fuzz

#define FUZZ_CHECK(condition, detail)                                                 \
    do {                                                                              \
        if (!(condition)) ::funcd::fuzz::fail(__FILE__, __LINE__, #condition, detail); \
    } while (0)
