#pragma once
// The dashboard's files (ui/ in the source tree), embedded in the binary at build time by
// cmake/embed_files.cmake: the daemon serves them from memory, so an installed funcd needs
// nothing beside its binary to show its dashboard and nothing is read from disk per request.
#include <span>
#include <string_view>

namespace funcd::dashboard {

struct EmbeddedFile {
    std::string_view path;    // relative to ui/, '/'-separated, e.g. "index.html"
    std::string_view bytes;
    std::string_view sha256;  // of `bytes`, lower-case hex
    std::string_view gzip;    // `bytes` gzip-compressed; empty when that would not be smaller
};

// Every file of ui/, sorted by path. Defined in the generated dashboard_files.cpp.
std::span<const EmbeddedFile> embedded_files();

}  // namespace funcd::dashboard
